"""Sample quality of sound on the real spoken-digits (built by espeak-ng, or cached): the log-mel pictures, the
feature network learning the words inside torch.no_grad on an empty cache, real held-out clips at the
real-versus-real floor and noise and silence far from it, class agreement of real clips with their own labels
and with shuffled ones, copies found and not, and `genlab eval` of tiny wavenet runs."""
import json
import math

import pytest
import torch

from conftest import genlab, refused
from genlab import api
from genlab.data.sources import spoken_digits
from genlab.evaluation import sound_features
from genlab.evaluation.sound_features import clips, log_mel, mel_filterbank, pictures
from genlab.evaluation.sound_quality import SOUND_METRICS, SoundJudge
from genlab.modalities import get

ok, why = spoken_digits.available()
pytestmark = [pytest.mark.skipif(not ok, reason=why), pytest.mark.usefixtures("one_thread")]

FAST_CLIPS = 3000         # two epochs of spoken-digits: seconds, and well above chance
TINY = ["--set", "residual_channels=8", "--set", "skip_channels=8", "--set", "head=8", "--set", "layers=3",
        "--set", "stacks=1"]


@pytest.fixture(scope="module")
def fast_network():
    """The feature network trained on FAST_CLIPS clips (cached under its own name, never as the default's)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sound_features, "CLIPS_SEEN", FAST_CLIPS)
        yield


@pytest.fixture(scope="module")
def ds():
    torch.set_num_threads(1)
    return get("audio").load("spoken-digits", {"size": None})


@pytest.fixture(scope="module")
def judge(ds, fast_network):
    return SoundJudge(ds, 100, list(SOUND_METRICS), torch.device("cpu"), live=False)


def test_log_mel_pictures():
    bank = mel_filterbank(256, 8000, 40)
    assert bank.shape == (40, 129) and torch.allclose(bank.sum(1), torch.ones(40)) and bool((bank >= 0).all())
    t = torch.arange(8000) / 8000
    tone = log_mel((0.5 * torch.sin(2 * math.pi * 1000 * t))[None], 8000)
    assert tone.shape == (1, 1, 40, 63) and float(tone.min()) >= 0 and float(tone.max()) <= 1
    loudest = 39 - int(tone[0, 0, :, 30].argmax())         # rows run from high to low frequencies
    centres = 700 * (10 ** (torch.linspace(0, 2595 * math.log10(1 + 4000 / 700), 42) / 2595) - 1)
    assert abs(float(centres[loudest + 1]) - 1000) < 150
    assert float(log_mel(torch.zeros(2, 8000), 8000).abs().max()) == 0      # silence is black
    assert log_mel(torch.zeros(1, 100), 8000).shape[-1] >= 1                # shorter than one window


def test_the_network_learns_the_words_inside_no_grad_on_an_empty_cache(ds, tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path))           # the data set is already in memory
    monkeypatch.setattr(sound_features, "CLIPS_SEEN", FAST_CLIPS)
    with torch.no_grad():
        net, meta = sound_features.load_or_train(ds, torch.device("cpu"))
    assert meta["test_accuracy"] > 0.8 > 5 / 14, meta          # chance: 1/14 (ten digits and four words)
    assert meta["label"] == "word" and meta["classes"] == 14
    assert len(list((tmp_path / "features").glob("sound-classifier-*.safetensors"))) == 1
    # Cached: read back, not trained again, in any grad mode.
    monkeypatch.setattr(sound_features, "train_sound_classifier", lambda *a, **k: pytest.fail("trained again"))
    with torch.inference_mode():
        again, meta2 = sound_features.load_or_train(ds, torch.device("cpu"))
    x = pictures(clips(ds, "test")[:8], ds.rate)
    with torch.no_grad():
        assert meta2 == meta and torch.allclose(again.embed(x), net.embed(x), atol=1e-5)


def test_real_clips_score_at_the_floor_and_noise_and_silence_far_from_it(judge):
    floor, test = judge.floor_row(), judge.data_row()
    assert floor["samples"] == test["samples"] == 100
    for row in (floor, test):
        assert row["fid"] < 40 and row["precision"] > 0.6 and row["recall"] > 0.6 and row["coverage"] > 0.6
        assert row["fid_std"] > 0 and row["kid_std"] > 0
    n = 100
    g = torch.Generator().manual_seed(0)
    noise = judge.judge(pictures(torch.rand(n, 8000, generator=g) * 2 - 1, 8000))
    silence = judge.judge(pictures(torch.zeros(n, 8000), 8000))
    quiet_noise = judge.judge(pictures(0.01 * torch.randn(n, 8000, generator=g), 8000))
    for far in (noise, silence, quiet_noise):
        assert far["fid"] > 10 * max(floor["fid"], test["fid"]), far["fid"]
        assert far["coverage"] < 0.1 and far["recall"] < 0.1


def test_class_agreement_of_real_clips_with_their_labels_and_with_shuffled_ones(judge, ds):
    test = judge.data_row()
    assert test["class_agreement"] > 0.8 and test["class_chance"] == pytest.approx(1 / 14)
    assert judge.floor_row()["class_agreement"] > 0.9
    images, labels = judge.test
    shuffled = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))]
    r = judge.judge(images, shuffled)
    assert abs(r["class_agreement"] - 1 / 14) < 3 * max(r["class_agreement_std"], 0.03)


def test_copies_of_training_clips_are_found_and_held_out_clips_are_not(judge, ds, tmp_path):
    train = clips(ds, "train")
    copies = judge.judge(pictures(train[:100], ds.rate), picture=tmp_path / "copies.png")
    assert copies["copies_found"] and copies["copy_share"] > 0.9 and copies["memorisation_ratio"] < 0.05
    assert "training clip" in copies["memorisation_verdict"] and (tmp_path / "copies.png").is_file()
    unheld = torch.ones(len(ds.test_x), dtype=torch.bool)
    unheld[judge.held_index] = False                    # test clips the copy tests do not compare with
    held = judge.judge(pictures(clips(ds, "test")[unheld][:100], ds.rate), picture=tmp_path / "held.png")
    assert not held["copies_found"] and held["copy_excess"] < copies["copy_excess"] / 4


@pytest.fixture(scope="module")
def runs(tmp_path_factory, fast_network):
    """Tiny wavenet runs on spoken-digits cut to 400 samples, one epoch each: one conditional, one not."""
    root = tmp_path_factory.mktemp("sound")
    out = {}
    for name, conditional in (("cond", "true"), ("plain", "false")):
        out[name] = root / name
        assert genlab("train", "wavenet", "--data", "spoken-digits", "--size", "400", "--epochs", "1", "--batch-size",
                      "64", "--samples", "2", "--threads", "1", "--out", out[name], *TINY,
                      "--set", f"conditional={conditional}") == 0
    return out


def test_eval_prints_the_figures_with_their_floor_and_the_network(runs, capsys):
    capsys.readouterr()
    assert genlab("eval", runs["cond"], "--metrics", "fid,kid,prdc,memorisation,classes", "--samples", "30",
                  "--threads", "1") == 0
    table = capsys.readouterr().out
    for words in ("FID", "KID×10³", "prec", "cov", "classes", "chance", "copies", "(test clips)", "(training clips)",
                  "test accuracy", "±", "spectrograms.png"):
        assert words in table, words
    assert (runs["cond"] / "spectrograms.png").is_file() and (runs["cond"] / "memorisation.png").is_file()
    r = json.loads((runs["cond"] / "eval.json").read_text())          # what --json prints
    assert r["samples"] == 30 and r["data_floor"]["samples"] == 30 and r["class_chance"] == pytest.approx(1 / 14)
    for key in ("fid", "kid", "precision", "recall", "density", "coverage", "class_agreement", "copy_excess"):
        assert isinstance(r[key], float) and isinstance(r[f"{key}_std"], float), key
    assert 0 < r["feature_test_accuracy"] <= 1 and r["data_floor"]["class_agreement"] > 0.5


def test_classes_of_an_unconditional_run_is_one_line(runs, capsys):
    refused(capsys, ["eval", runs["plain"], "--metrics", "classes", "--threads", "1"], "classes",
            "not conditional")
    # all: every figure it has, and a word on why classes is not among them
    assert genlab("eval", runs["plain"], "--metrics", "all", "--samples", "20", "--json", "--threads", "1") == 0
    r = json.loads(capsys.readouterr().out)
    assert "nll_bits_per_sample" in r and "fid_std" in r and "class_agreement" not in r
    assert "not class-conditional" in r["skipped"]["classes"]
    assert "classes not computed" in api.format_results([r])
    refused(capsys, ["eval", runs["plain"], "--metrics", "fid", "--features", "net.pt"], "--features", "images")
    refused(capsys, ["eval", runs["plain"], "--metrics", "fid", "--samples", "3"], "--samples", "10")
