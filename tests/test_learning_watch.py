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


def test_a_loss_that_explodes_while_finite_stops_the_run(tmp_path, capsys):
    # --lr 10: the VAE's loss goes from about 45 nats to 1e16 within a few steps, every value finite.
    from conftest import genlab as run_cli, refused
    assert run_cli("train", "vae", "--epochs", "5", "--lr", "10", "--samples", "0", "--threads", "1",
                   "--out", tmp_path / "run") == 2
    out, err = capsys.readouterr()
    last = err.strip().splitlines()[-1]
    assert "Traceback" not in out + err and last.startswith("genlab: error: the training loss exploded")
    assert "--lr" in last and "no checkpoint" in last
    assert not (tmp_path / "run" / "model.safetensors").exists()
    refused(capsys, ["train", "vae", "--lr", "1e30", "--out", tmp_path / "other"], "--lr must be at most 10")
    assert not (tmp_path / "other").exists()


def test_a_diverged_run_is_marked_so_and_says_so_wherever_it_is_used(tmp_path, capsys):
    from conftest import genlab as run_cli
    run = tmp_path / "run"
    assert run_cli("train", "vae", "--epochs", "5", "--lr", "10", "--samples", "0", "--threads", "1",
                   "--checkpoint-every", "1", "--out", run) == 2
    capsys.readouterr()
    import json
    mark = json.loads((run / "config.json").read_text())["diverged"]
    assert mark["step"] > 5 and "exploded" in mark["why"]
    assert run_cli("sample", run, "-n", "4", "-o", tmp_path / "s.png") == 0          # its last good weights
    assert "its training diverged at step" in capsys.readouterr().err
    from genlab.web.report import write_report
    page = write_report([run], tmp_path / "r.html", threads=1, quiet=True).read_text()
    assert "· diverged" in page and "Its training diverged at step" in page
