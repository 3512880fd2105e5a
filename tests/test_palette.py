"""Palette pixels (--binarize palette:N): the palette fitted to the training images, every image mapped to
its nearest colours, an N-way softmax per pixel with exact likelihood, and the whole command line on a
folder of real colour images (the digits, each drawn in an ink colour on a paper colour)."""
import itertools
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

import genlab
from conftest import genlab as cli
from genlab.data import Batches, ImageDataset, load_dataset, make_info
from genlab.data.containers.base import DataInfo
from genlab.data.containers.palette import fit_palette, in_palette, palette_colours, palette_index
from genlab.models import get_model_class
from test_autoregressive import TINY

INKS = [(220, 40, 40), (40, 160, 60), (40, 70, 220), (240, 200, 30)]
PAPERS = [(250, 245, 230), (30, 30, 40)]


pytestmark = pytest.mark.usefixtures("one_thread")


def build(name, info, dtype=torch.float64):
    torch.manual_seed(0)
    cls = get_model_class(name)
    return cls(cls.Config(**TINY[name]), info).to(dtype)


def dataset(x):
    return ImageDataset("t", train_x=x, test_x=x[:2])


def colours_of(images_u8):
    """The set of colours (tuples) in uint8 N×C×H×W images."""
    return set(map(tuple, images_u8.permute(0, 2, 3, 1).reshape(-1, images_u8.shape[1]).tolist()))


# ---- the transform --------------------------------------------------------------------------------

def test_data_with_few_colours_keep_exactly_those_sorted_dark_to_light():
    few = torch.tensor([(250, 245, 230), (30, 30, 40), (220, 40, 40), (40, 160, 60), (40, 70, 220)], dtype=torch.uint8)
    idx = torch.randint(0, 5, (40, 6, 7), generator=torch.Generator().manual_seed(0))
    x = few[idx].permute(0, 3, 1, 2).contiguous()
    info = make_info(dataset(x), "palette:8")
    assert info.pixels == "palette" and sorted(info.palette) == sorted(map(tuple, few.tolist()))
    lum = [0.299 * r + 0.587 * g + 0.114 * b for r, g, b in info.palette]
    assert lum == sorted(lum)
    assert torch.equal(in_palette(dataset(x), info).train_x, x)          # already in the palette: unchanged
    assert make_info(dataset(x), "palette:5").palette == info.palette    # exactly N colours: the same


def test_kmeans_palette_is_n_distinct_used_colours_and_pixels_go_to_the_nearest():
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (30, 3, 8, 8), dtype=torch.uint8, generator=g)    # ~1,900 distinct colours
    palette = fit_palette(x, 16)
    assert palette.dtype == torch.uint8 and palette.shape == (16, 3)
    assert len(colours_of(palette[:, :, None, None])) == 16
    assert torch.equal(palette, fit_palette(x, 16))                           # a fixed seed: reproducible
    index = palette_index(x, palette)
    assert index.shape == (30, 1, 8, 8) and set(index.unique().tolist()) == set(range(16))   # every colour used
    # nearest, checked by brute force in integers
    pixels = x.permute(0, 2, 3, 1).reshape(-1, 3).long()
    d = ((pixels[:, None] - palette.long()) ** 2).sum(-1)                       # P×K squared distances
    assert torch.equal(d.gather(1, index.flatten()[:, None])[:, 0], d.min(1).values)
    # and k-means' colours summarise the data far better than 16 of its pixels picked at random
    random = pixels[torch.randperm(len(pixels), generator=g)[:16]]
    error = lambda p: ((pixels[:, None] - p.long()) ** 2).sum(-1).min(1).values.double().mean()   # noqa: E731
    assert error(palette) < 0.8 * error(random)


def test_index_and_colour_round_trip():
    palette = torch.tensor([[0], [90], [255]], dtype=torch.uint8)            # grey: one channel
    index = torch.randint(0, 3, (5, 1, 4, 4))
    images = palette_colours(index, palette)
    assert images.shape == (5, 1, 4, 4) and torch.equal(palette_index(images, palette), index)
    near = torch.tensor([[[[10, 50, 200, 180]]]], dtype=torch.uint8)        # 45 ties 0/90: the lower index
    assert palette_index(near, palette).flatten().tolist() == [0, 1, 2, 2]
    assert palette_index(torch.tensor([[[[45]]]], dtype=torch.uint8), palette).item() == 0


def test_info_keeps_its_palette_in_json_and_batches_give_palette_colours():
    x = load_dataset("digits").train_x[:100]
    info = make_info(dataset(x), "palette:4")
    assert DataInfo.from_json(json.loads(json.dumps(info.to_json()))) == info
    assert "palette" not in make_info(dataset(x), "none").to_json()
    assert info.likelihood_dims == 64 and info.dims == 64
    snapped = in_palette(dataset(x), info).train_x
    for shuffle in (True, False):                                            # training and test splits
        batch, _ = Batches(snapped, None, binarize="palette:4", batch_size=100, shuffle=shuffle).all()
        assert colours_of((batch * 255).round().to(torch.uint8)) == set(info.palette)
        assert torch.equal(batch, (batch * 255).round() / 255)              # k/255 exactly, no noise
    assert colours_of(snapped) == set(info.palette)


# ---- the models -----------------------------------------------------------------------------------

TINY_PALETTE = DataInfo((3, 2, 3), 0, "palette", palette=((20, 20, 20), (200, 40, 40), (240, 240, 240)))


@pytest.mark.parametrize("name", list(TINY))
def test_log_prob_sums_to_one_over_every_image_of_three_colours(name):
    model = build(name, TINY_PALETTE)
    index = torch.tensor(list(itertools.product(range(3), repeat=6))).view(-1, 1, 2, 3)    # 729 images
    x = model.pixels.image(index, torch.float64)
    assert x.shape == (729, 3, 2, 3)
    with torch.no_grad():
        lp = model.log_prob(x)
    assert abs(float(torch.logsumexp(lp, 0))) < 1e-9
    assert torch.equal(model.pixels.values(x), index)


@pytest.mark.parametrize("name", ["pixelcnn", "pixel-lstm"])
def test_completion_keeps_the_given_pixels_and_matches_naive(name):
    model = build(name, TINY_PALETTE)
    x = model.pixels.image(torch.randint(0, 3, (5, 1, 2, 3)), torch.float64)
    mask = torch.tensor([[False, True, False], [True, True, True]])
    cached = model.complete(x, mask, generator=torch.Generator().manual_seed(1))
    assert torch.equal(cached, model.complete(x, mask, generator=torch.Generator().manual_seed(1), cached=False))
    assert cached.shape == x.shape and torch.equal(cached[..., ~mask], x[..., ~mask].float())
    assert colours_of((cached * 255).round().to(torch.uint8)) <= set(TINY_PALETTE.palette)


def test_a_palette_pixelcnn_beats_the_per_pixel_histogram_within_seconds():
    from genlab.evaluation.baselines import independent_pixel_nll

    ds = load_dataset("digits")
    info = make_info(ds, "palette:6")
    ds = in_palette(ds, info)
    cls = get_model_class("pixelcnn")
    torch.manual_seed(0)
    model = cls(cls.Config(channels=32, blocks=1, head=32, kernel=5), info)
    train = Batches(ds.train_x, None, binarize="palette:6", batch_size=32, shuffle=True)
    test = Batches(ds.test_x, None, binarize="palette:6", batch_size=512, shuffle=False)
    opt = model.configure_optimizers(5e-3)
    for epoch in range(3):
        for batch in train.epoch(epoch):
            model.train_step(batch, opt)
    with torch.no_grad():
        nll = -model.log_prob(test.all()[0]).mean().item()
    baseline = independent_pixel_nll(ds.train_x, test)
    assert nll < baseline - 10, (nll, baseline)


def test_models_without_a_categorical_output_refuse_palette_pixels():
    from genlab.errors import UserError

    from genlab.data import load_dataset
    from genlab.modalities import get

    cls = get_model_class("vae")
    with pytest.raises(UserError, match="cannot model palette pixels"):
        get("image").prepare(load_dataset("digits"), cls, cls.Config(), {"spec": "digits", "binarize": "palette:4"})


# ---- the command line, on real colour images ------------------------------------------------------

@pytest.fixture(scope="module")
def tinted(tmp_path_factory):
    """600 digits as colour PNGs, each in one of 4 inks on one of 2 papers."""
    root = tmp_path_factory.mktemp("tinted")
    ds = load_dataset("digits")
    rng = np.random.RandomState(0)
    for i, g in enumerate(ds.train_x[:600, 0].numpy() / 255.0):
        ink, paper = np.array(INKS[rng.randint(4)]), np.array(PAPERS[rng.randint(2)])
        rgb = paper * (1 - g[..., None]) + ink * g[..., None]
        Image.fromarray(np.rint(rgb).astype(np.uint8)).save(root / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def palette_run(tinted, tmp_path_factory):
    out = tmp_path_factory.mktemp("palette-run") / "run"
    threads = torch.get_num_threads()
    try:
        assert cli("train", "pixelcnn", "--data", f"folder:{tinted}", "--binarize", "palette:12", "--epochs", 4,
                   "--batch-size", 32, "--lr", "5e-3", "--channels", 32, "--blocks", 1, "--head", 32,
                   "--kernel", 5, "--samples", 16, "--threads", 1, "--out", out) == 0
    finally:
        torch.set_num_threads(threads)
    return out


def png_colours(path):
    a = np.asarray(Image.open(path).convert("RGB"))
    return set(map(tuple, a.reshape(-1, 3).tolist())) - {(128, 128, 128)}     # less the grid's borders


def test_cli_trains_evaluates_in_bits_per_pixel_and_beats_the_histogram(palette_run, capsys):
    config = json.loads((palette_run / "config.json").read_text())
    palette = set(map(tuple, config["info"]["palette"]))
    assert config["info"]["pixels"] == "palette" and config["data"]["binarize"] == "palette:12"
    assert 2 <= len(palette) <= 12
    capsys.readouterr()
    assert cli("eval", palette_run, "--json", "--threads", "1") == 0
    r = json.loads(capsys.readouterr().out)
    assert r["pixels"] == "palette:12 (palette)"
    assert abs(r["nll_bpd"] - r["nll_nats"] / (64 * math.log(2))) < 1e-9      # 8×8 pixels, one index each
    assert r["nll_nats"] < r["baseline_nll_nats"] - 10, r
    assert "baseline_gaussian_nll_nats" not in r
    # the exact NLL of the model's own log_prob on the snapped test images: no dequantisation shift
    model = genlab.load(palette_run)
    assert model.info.palette == tuple(map(tuple, config["info"]["palette"]))
    from genlab.modalities import get
    from genlab.runs import Run
    test = get("image").test_batches(get("image").reload(Run.open(palette_run)), "palette:12", "cpu")
    with torch.no_grad():
        nll = -torch.cat([model.log_prob(x) for x, *_ in test]).double().mean().item()
    assert abs(nll - r["nll_nats"]) < 1e-3
    # the grids drawn while training are in palette colours
    assert png_colours(palette_run / "samples" / "epoch-0004.png") <= palette


def test_cli_samples_completes_and_shows_data_in_palette_colours(palette_run, tinted, tmp_path, capsys):
    palette = set(map(tuple, json.loads((palette_run / "config.json").read_text())["info"]["palette"]))
    assert cli("sample", palette_run, "-n", "9", "-o", tmp_path / "s.png", "--threads", "1") == 0
    assert png_colours(tmp_path / "s.png") <= palette and len(png_colours(tmp_path / "s.png")) > 2
    assert cli("complete", palette_run, "--image", tinted / "007.png", "-n", "3", "-o", tmp_path / "c.png",
               "--threads", "1") == 0
    grid = np.asarray(Image.open(tmp_path / "c.png").convert("RGB"))
    assert grid.shape[:2] == ((8 + 2) * 26, (5 * 9 + 1) * 26)             # 256 px on its short side
    assert png_colours(tmp_path / "c.png") <= palette                        # the original snapped too
    capsys.readouterr()
    assert cli("data", f"folder:{tinted}", "--binarize", "palette:12", "-o", tmp_path / "d.png") == 0
    out = capsys.readouterr().out
    assert "palette  " in out and png_colours(tmp_path / "d.png") <= palette  # the same fit as training's
    x = genlab.load(palette_run).sample(4, generator=torch.Generator().manual_seed(0))
    assert x.shape == (4, 3, 8, 8) and colours_of((x * 255).round().to(torch.uint8)) <= palette


def test_cli_resumes_a_palette_run(palette_run, tmp_path):
    import shutil

    run = shutil.copytree(palette_run, tmp_path / "run")
    assert cli("train", "--resume", run, "--epochs", 5, "--threads", "1") == 0
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["epoch"] == 5


@pytest.mark.parametrize("mode, words", [
    ("palette:1", ["palette:N", "2 to 256", "'palette:1'"]),
    ("palette:300", ["palette:N", "2 to 256", "'palette:300'"]),
    ("palette:x", ["palette:N", "'palette:x'"]),
    ("rainbow", ["--binarize", "dynamic", "palette:N", "'rainbow'"]),
])
def test_bad_palette_modes_are_refused_in_one_line(mode, words, tmp_path, capsys):
    capsys.readouterr()
    code = cli("train", "pixelcnn", "--binarize", mode, "--out", tmp_path / "r")
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("genlab: error: ")
    assert all(w in err for w in words), err
    assert not (tmp_path / "r").exists()


def test_a_model_without_palette_pixels_is_refused_before_anything_is_written(tmp_path, capsys):
    capsys.readouterr()
    assert cli("train", "vae", "--binarize", "palette:8", "--out", tmp_path / "r") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "vae cannot model palette pixels" in err and "pixelcnn" in err
    assert not (tmp_path / "r").exists()


def test_palette_and_8bit_runs_of_one_data_set_are_judged_in_the_same_features():
    # A palette run's data come snapped to its colours; its feature network must still be the one learnt
    # from the images as they are, or its FID would not compare with an 8-bit run's.
    from genlab.evaluation.quality import SampleQuality
    ds = load_dataset("digits")
    palette = in_palette(ds, make_info(ds, "palette:4"))
    assert not torch.equal(palette.train_x, ds.train_x)                 # the snapped copy differs ...
    quality = SampleQuality(["fid"], 64, None, "cpu")
    plain, snapped = quality.judge("h", ds, "none", False), quality.judge("h", palette, "palette:4", False)
    x = ds.test_x[:16].float() / 255
    assert torch.equal(plain.network(x)[0], snapped.network(x)[0])     # ... but is judged in the same features
