"""Autoregressive models through the command line: each learns the digits within seconds (test NLL below
the independent-pixel baseline), eval reports exact NLL, `genlab complete` draws covered pixels, and the
conditional gated PixelCNN draws the class asked for."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

import genlab
from conftest import genlab as cli

FAST = ["--data", "digits", "--batch-size", "32", "--lr", "5e-3", "--samples", "0", "--threads", "1"]
RUNS = {   # name: (model, epochs, settings); small enough to train in a few seconds on one CPU thread
    "pixelcnn": ("pixelcnn", 6, ["--channels", "32", "--blocks", "1", "--head", "32", "--kernel", "5"]),
    "gated-pixelcnn": ("gated-pixelcnn", 4, ["--channels", "16", "--layers", "3", "--head", "32", "--first-kernel", "5"]),
    "pixelrnn-row": ("pixelrnn-row", 4, ["--channels", "16", "--layers", "2", "--head", "32", "--first-kernel", "5"]),
    "pixelrnn-diag": ("pixelrnn-diag", 4, ["--channels", "16", "--layers", "1", "--head", "32", "--first-kernel", "5"]),
    "pixel-lstm": ("pixel-lstm", 6, ["--hidden", "32", "--layers", "1"]),
    "gated-conditional": ("gated-pixelcnn", 3, ["--channels", "16", "--layers", "3", "--head", "32",
                                                "--first-kernel", "5", "--conditional", "true"]),
    "pixelcnn-8bit": ("pixelcnn", 2, ["--channels", "32", "--blocks", "1", "--head", "32", "--kernel", "5",
                                      "--binarize", "none"]),
}


@pytest.fixture(scope="module")
def ar_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ar-runs")
    threads = torch.get_num_threads()
    try:
        for name, (model, epochs, settings) in RUNS.items():
            argv = ["train", model, *settings, *FAST, "--epochs", epochs, "--out", root / name]
            if name == "pixelcnn":
                argv += ["--samples", "16"]                   # one run also writes its sample grids
            assert cli(*argv) == 0
    finally:
        torch.set_num_threads(threads)                        # --threads 1 is process-wide
    return {name: root / name for name in RUNS}


def eval_json(run, capsys):
    capsys.readouterr()
    assert cli("eval", run, "--json", "--threads", "1") == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("name", ["pixelcnn", "gated-pixelcnn", "pixelrnn-row", "pixelrnn-diag", "pixel-lstm"])
def test_each_model_beats_independent_pixels_on_digits(ar_runs, capsys, name):
    r = eval_json(ar_runs[name], capsys)
    # Binarised digits: the independent-pixel baseline is about 27.1 nats per image.
    assert r["nll_nats"] < r["baseline_nll_nats"] - 1.0, r
    assert r["conditional"] is False and "nll_bpd" not in r
    assert (ar_runs[name] / "model.safetensors").is_file()


def test_eval_is_the_exact_nll_of_8bit_values_without_a_dequantisation_shift(ar_runs, capsys):
    from genlab.modalities import get
    from genlab.runs import Run

    r = eval_json(ar_runs["pixelcnn-8bit"], capsys)
    assert r["pixels"].startswith("none")
    assert abs(r["nll_bpd"] - r["nll_nats"] / (64 * np.log(2))) < 1e-9
    # the model's own log_prob of the discrete values, averaged: no D·log 256 added
    model = genlab.load(ar_runs["pixelcnn-8bit"])
    test = get("image").test_batches(get("image").reload(Run.open(ar_runs["pixelcnn-8bit"])), "none", "cpu")
    with torch.no_grad():
        nll = -torch.cat([model.log_prob(x) for x, *_ in test]).double().mean().item()
    assert abs(nll - r["nll_nats"]) < 1e-3
    assert r["nll_nats"] < r["baseline_nll_nats"] - 5, r        # beats a 256-way histogram per pixel


def test_sample_grids_and_loaded_models_sample_binary_images(ar_runs, tmp_path):
    assert (ar_runs["pixelcnn"] / "samples" / "epoch-0006.png").is_file()
    out = tmp_path / "s.png"
    assert cli("sample", ar_runs["pixelrnn-diag"], "-n", "9", "-o", out, "--threads", "1") == 0
    assert out.is_file()
    x = genlab.load(ar_runs["gated-pixelcnn"]).sample(4, generator=torch.Generator().manual_seed(0))
    assert set(x.unique().tolist()) <= {0.0, 1.0}


def test_conditional_gated_pixelcnn_uses_the_class(ar_runs, capsys, tmp_path):
    from genlab.data import Batches, load_dataset

    r = eval_json(ar_runs["gated-conditional"], capsys)
    assert r["conditional"] is True
    model = genlab.load(ar_runs["gated-conditional"])
    ds = load_dataset("digits")
    x, y = Batches(ds.test_x, ds.test_y, binarize="threshold", batch_size=512, shuffle=False).all()
    with torch.no_grad():
        right, wrong = model.log_prob(x, y).mean(), model.log_prob(x, (y + 1) % 10).mean()
    assert right > wrong + 2, (right, wrong)       # the label carries information about the image
    assert cli("sample", ar_runs["gated-conditional"], "-n", "4", "--class", "3", "-o", tmp_path / "c.png") == 0
    capsys.readouterr()
    assert cli("sample", ar_runs["pixelcnn"], "-n", "4", "--class", "3", "-o", tmp_path / "d.png") == 2
    assert "not conditional" in capsys.readouterr().err


def digit_png(tmp_path):
    from genlab.data import load_dataset

    path = tmp_path / "digit.png"
    Image.fromarray(load_dataset("digits").test_x[0, 0].numpy()).save(path)
    return path


@pytest.mark.parametrize("cover", ["bottom-half", "right-half", "75%"])
def test_complete_draws_completions_beside_the_original(ar_runs, tmp_path, cover):
    out = tmp_path / "c.png"
    assert cli("complete", ar_runs["pixelrnn-row"], "--image", digit_png(tmp_path), "--cover", cover,
               "-n", "5", "-o", out, "--threads", "1") == 0
    grid = np.asarray(Image.open(out))
    # one row: original, covered input, 5 completions; 8×8 digits, 1-pixel borders, enlarged 26 times: the
    # least whole factor that makes the picture's short side 256 px
    assert grid.shape[0] == (8 + 2) * 26 and grid.shape[1] == (7 * 9 + 1) * 26


def test_complete_in_python_keeps_the_top_half(ar_runs):
    from genlab.explore.completion import cover_mask

    model = genlab.load(ar_runs["pixelcnn"])
    x = (torch.rand(3, 1, 8, 8) < 0.5).float()
    mask = cover_mask("bottom-half", 8, 8)
    y = model.complete(x, mask, generator=torch.Generator().manual_seed(0))
    assert torch.equal(y[:, :, :4], x[:, :, :4]) and y.shape == x.shape
    assert mask.sum() == 32 and cover_mask("75%", 8, 8).sum() == 48 and cover_mask("right-half", 8, 8)[:, 4:].all()


@pytest.mark.parametrize("cover", ["top-left", "0%", "150%", "half"])
def test_complete_refuses_a_bad_cover_in_one_line(ar_runs, tmp_path, capsys, cover):
    out = tmp_path / "c.png"
    capsys.readouterr()
    assert cli("complete", ar_runs["pixelcnn"], "--image", digit_png(tmp_path), "--cover", cover, "-o", out) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("genlab: error: --cover") and repr(cover) in err
    assert not out.exists()
