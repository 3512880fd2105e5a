"""The trainer says, once, when a run is not learning: a collapsed posterior, or a figure stuck at its
baseline; and stays quiet for a run that learns."""
import genlab


def warnings_of(capsys):
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("genlab: warning:")]


def test_a_collapsed_vae_and_a_diverging_one_are_named(tmp_path, capsys):
    # The old defaults (10 epochs of 128 on digits, a 16-d code): the KL term dies.
    genlab.train("vae", "digits", tmp_path / "collapsed", epochs=10, batch_size=128, latent_dim=16,
                 threads=1, samples=0)
    said = warnings_of(capsys)
    assert len([w for w in said if "posterior collapse" in w]) == 1, said      # once, not every epoch
    assert any("no better than each pixel on its own" in w for w in said), said


def test_a_run_that_learns_is_not_warned_about(tmp_path, capsys):
    genlab.train("vae", "digits", tmp_path / "fine", epochs=12, batch_size=32, lr=2e-3, latent_dim=4,
                 hidden=256, threads=1, samples=0)
    assert warnings_of(capsys) == []
