"""WaveNet, built tiny: causality and the receptive field proven by gradients, exact normalisation, cached
(Fast WaveNet) generation giving the very clips naive generation gives, completion that keeps what it is
given, learning on tiny data of its own making, and the commands on a tiny run."""
import wave

import numpy as np
import pytest
import torch

from genlab.cli import main
from genlab.data.containers.audio import AudioInfo, mulaw_decode, mulaw_encode
from genlab.data.containers.audio_files import read_wav, write_wav
from genlab.data.containers.batch import Batch
from genlab.errors import UserError
from genlab.models import get_model_class
from genlab.modalities.audio import histogram_nll

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(residual_channels=8, skip_channels=8, head=8, layers=3, stacks=2)     # dilations 1 2 4 1 2 4
UNLABELLED = AudioInfo(length=48)
LABELLED = AudioInfo(length=48, num_classes=3, class_names=("a", "b", "c"), label="word")


def build(info=UNLABELLED, dtype=torch.float64, **extra):
    torch.manual_seed(0)
    cls = get_model_class("wavenet")
    return cls(cls.Config(**{**TINY, **extra}), info).to(dtype)


# ---- causality ------------------------------------------------------------------------------------

@pytest.mark.parametrize("conditional", [False, True])
def test_each_prediction_sees_exactly_its_receptive_field(conditional):
    """dep[t, s]: do position t's logits depend on the sample at s? Exactly for t - R <= s <= t - 1,
    R = 2 + Σ dilations: never the sample itself or a later one, and nothing older than R."""
    info = LABELLED if conditional else UNLABELLED
    model = build(info, conditional=conditional)
    t = info.length
    assert model.receptive_field == 2 + 2 * (1 + 2 + 4)
    e = torch.randn(8, TINY["residual_channels"], t, dtype=torch.float64, requires_grad=True)
    out = model.network(e, torch.arange(8) % 3 if conditional else None)
    dep = torch.zeros(t, t, dtype=torch.bool)
    for i in range(t):
        g, = torch.autograd.grad(out[:, :, i].sum(), e, retain_graph=True)
        dep[i] = g.abs().sum((0, 1)) != 0
    r = model.receptive_field
    expected = torch.tensor([[i - r <= s <= i - 1 for s in range(t)] for i in range(t)])
    assert torch.equal(dep, expected), (dep != expected).nonzero().tolist()[:5]


# ---- exact likelihood -----------------------------------------------------------------------------

@pytest.mark.parametrize("conditional", [False, True])
def test_probabilities_normalise(conditional):
    """Σ_x0 p(x0) = 1 over all 256 one-sample clips, and for some prefixes (x0, x1), Σ_x2 p(x0, x1, x2) =
    p(x0, x1): every conditional sums to one, scored as whole clips of each length."""
    model = build(LABELLED if conditional else UNLABELLED, conditional=conditional)

    def lp(x):
        with torch.no_grad():
            return model.log_prob(x, torch.full((len(x),), 2) if conditional else None)
    assert abs(float(torch.logsumexp(lp(torch.arange(256)[:, None]), 0))) < 1e-9
    for prefix in ([0, 0], [128, 128], [17, 240], [255, 3]):
        every = torch.cat([torch.tensor(prefix).expand(256, 2), torch.arange(256)[:, None]], 1)
        assert abs(float(torch.logsumexp(lp(every), 0) - lp(torch.tensor([prefix]))[0])) < 1e-9
    # a waveform is scored as its μ-law codes
    x = torch.randint(0, 256, (5, 48))
    assert torch.allclose(lp(mulaw_decode(x, torch.float64)), lp(x))


def test_the_label_matters_and_is_required_when_conditional():
    model = build(LABELLED, conditional=True)
    x = torch.randint(0, 256, (3, 48))
    assert not torch.allclose(model.log_prob(x, torch.tensor([0, 0, 0])), model.log_prob(x, torch.tensor([1, 1, 1])))
    with pytest.raises(UserError, match="class label"):
        model.log_prob(x)
    with pytest.raises(UserError, match="labelled data"):
        build(UNLABELLED, conditional=True)
    with pytest.raises(UserError, match="class must be"):
        model.sample(2, condition=torch.tensor([0, 3]))
    with pytest.raises(UserError, match="not conditional"):
        build().sample(2, condition=torch.tensor([0, 1]))


# ---- generation -----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("conditional", [False, True])
def test_cached_generation_gives_the_clips_naive_generation_gives(conditional, dtype):
    model = build(LABELLED if conditional else UNLABELLED, dtype, conditional=conditional)
    clips = {mode: model.sample(6, generator=torch.Generator().manual_seed(5), mode=mode)
             for mode in ("cached", "window", "full")}
    assert torch.equal(clips["cached"], clips["full"]) and torch.equal(clips["cached"], clips["window"])
    assert clips["cached"].shape == (6, 48) and float(clips["cached"].abs().max()) <= 1
    assert torch.equal(mulaw_decode(mulaw_encode(clips["cached"]), dtype), clips["cached"])   # μ-law values
    assert not torch.equal(clips["cached"], model.sample(6, generator=torch.Generator().manual_seed(6)))
    # longer than the receptive field, so the queues wrap many times
    assert 48 >= 3 * model.receptive_field


def test_completion_keeps_the_given_samples_and_matches_naive():
    model = build()
    x = torch.randint(0, 256, (4, 48))
    mask = torch.zeros(48, dtype=torch.bool)
    mask[20:30] = True
    mask[40:] = True                                   # not only a suffix: later given samples stay given
    cached = model.complete(x, mask, generator=torch.Generator().manual_seed(1))
    naive = model.complete(x, mask, generator=torch.Generator().manual_seed(1), cached=False)
    assert torch.equal(cached, naive)
    got = mulaw_encode(cached)
    assert torch.equal(got[:, ~mask], x[:, ~mask]) and not torch.equal(got[:, mask], x[:, mask])


# ---- learning -------------------------------------------------------------------------------------

def sawtooths(n, length=192, seed=0):
    """Clips of its own making: sawtooth waves of period 6, 9 or 12 samples, at one of two loudnesses,
    starting at a random phase."""
    g = torch.Generator().manual_seed(seed)
    period = torch.tensor([6, 9, 12])[torch.randint(0, 3, (n,), generator=g)]
    phase = torch.randint(0, 12, (n,), generator=g)
    amp = torch.tensor([0.3, 0.7])[torch.randint(0, 2, (n,), generator=g)]
    t = torch.arange(length)
    x = amp[:, None] * (((t + phase[:, None]) % period[:, None]) / period[:, None] * 2 - 1)
    return mulaw_encode(x)


def test_a_tiny_wavenet_learns_to_beat_the_histogram():
    train, test = sawtooths(64), sawtooths(16, seed=1)
    cls = get_model_class("wavenet")
    torch.manual_seed(0)
    model = cls(cls.Config(residual_channels=16, skip_channels=16, head=32, layers=4, stacks=1, crop=96),
                AudioInfo(length=192))
    opt = model.configure_optimizers(1e-2)
    with torch.no_grad():
        before = float(-model.log_prob(test).mean())
    for step in range(40):
        b = torch.randperm(64, generator=torch.Generator().manual_seed(step))[:16]
        logs = model.train_step(Batch(train[b]), opt)
    with torch.no_grad():
        after = float(-model.log_prob(test).mean())
    baseline = float(histogram_nll(train, test).mean())
    assert after < 0.3 * baseline < before, (before, after, baseline)
    assert logs["loss"] < 0.3 * baseline / 192              # nats per sample, on the training crops


# ---- the commands -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny conditional run on a folder of two classes of tones, trained through the command line."""
    root = tmp_path_factory.mktemp("wavenet")
    for k in range(12):
        label, hz = ("low", 250) if k % 2 else ("high", 1000)
        (root / "clips" / label).mkdir(parents=True, exist_ok=True)
        write_wav(root / "clips" / label / f"{k}.wav", 0.5 * np.sin(np.arange(300) * 2 * np.pi * hz / 8000 + k))
    out = root / "run"
    assert main(["train", "wavenet", "--data", f"audio:{root / 'clips'}", "--size", "200", "--epochs", "1",
                 "--samples", "2", "--threads", "1", "--out", str(out), "--set", "residual_channels=8",
                 "--set", "skip_channels=8", "--set", "head=8", "--set", "layers=3", "--set", "stacks=1",
                 "--set", "conditional=true"]) == 0
    return out


def frames(path) -> int:
    with wave.open(str(path)) as w:
        assert w.getframerate() == 8000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        return w.getnframes()


def test_training_writes_sound_samples_and_eval_reports_both_baselines(run, capsys):
    wav, = (run / "samples").glob("*.wav")
    assert frames(wav) == 2 * 200 + 4000 and wav.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    assert main(["eval", str(run), "--json", "--threads", "1"]) == 0
    import json
    r = json.loads(capsys.readouterr().out)
    for name in ("nll", "histogram", "linear_prediction"):
        assert r[f"{name}_bits_per_sample"] * 200 * np.log(2) == pytest.approx(r[f"{name}_nats"])
        assert r[f"{name}_nats_per_second"] == pytest.approx(r[f"{name}_nats"] * 8000 / 200)
    assert r["label"] == "folder" and r["test_clips"] == 1
    assert main(["eval", str(run), "--threads", "1"]) == 0
    table = capsys.readouterr().out
    assert "bits/sample" in table and "LPC" in table


def test_sample_writes_one_file_or_one_per_clip(run, tmp_path, capsys):
    out = tmp_path / "s.wav"
    assert main(["sample", str(run), "-n", "3", "-o", str(out), "--class", "1", "--threads", "1"]) == 0
    assert frames(out) == 3 * 200 + 2 * 4000 and out.with_suffix(".png").is_file()
    folder = tmp_path / "each"
    folder.mkdir()
    assert main(["sample", str(run), "-n", "2", "-o", f"{folder}/", "--threads", "1"]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["sample-1.png", "sample-1.wav", "sample-2.png", "sample-2.wav"]
    assert frames(folder / "sample-1.wav") == 200
    # the same seed, the same clips
    again = tmp_path / "again.wav"
    assert main(["sample", str(run), "-n", "3", "-o", str(again), "--class", "1", "--threads", "1"]) == 0
    assert np.array_equal(read_wav(out)[0], read_wav(again)[0])
    capsys.readouterr()
    for bad in (["-o", str(tmp_path / "s.mp3")], ["--class", "7"], ["--nrow", "2"], ["--temperature", "0.5"]):
        assert main(["sample", str(run), "-n", "2", *bad, "--threads", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("genlab: error: ") for line in err)


def test_complete_continues_a_clip(run, tmp_path, capsys):
    clip = tmp_path / "given.wav"
    x = 0.5 * np.sin(np.arange(200) * 2 * np.pi * 250 / 8000)
    write_wav(clip, x)
    out = tmp_path / "done.wav"
    assert main(["complete", str(run), "--clip", str(clip), "--cover", "25%", "-n", "2", "-o", str(out),
                 "--class", "1", "--threads", "1"]) == 0
    y, _ = read_wav(out)
    assert len(y) == 3 * 200 + 2 * 4000 and out.with_suffix(".png").is_file()
    given, first = y[:200], y[4200:4400]
    assert np.array_equal(first[:150], given[:150])          # the first 75% kept as given
    assert not np.array_equal(first[150:], given[150:])
    (tmp_path / "bad.wav").write_text("not sound")
    capsys.readouterr()
    assert main(["complete", str(run), "--clip", str(tmp_path / "bad.wav"), "-o", str(out), "--threads", "1"]) == 2
    assert main(["complete", str(run), "--clip", str(clip), "--cover", "half", "-o", str(out), "--threads", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "bad.wav" in err[0] and "--cover" in err[1]
