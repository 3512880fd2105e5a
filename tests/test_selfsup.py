"""Sample metrics for data without labels: genlab's self-supervised feature network (SimCLR), trained on
the images alone, cached by the data's content, and meaningful (labels used only to check it)."""
import json

import numpy as np
import pytest
import torch

from conftest import genlab
from genlab.data import load_dataset
from genlab.data.containers.loader import transform
from genlab.evaluation import selfsup

pytestmark = pytest.mark.usefixtures("one_thread")
STEPS = 150       # tiny training: seconds on 8×8 images


@pytest.fixture(scope="module")
def unlabelled(tmp_path_factory):
    """The digits' training images as PNG files in one folder (no sub-folders: no labels), a tiny run on them,
    and the digits data set itself (whose test images the folder never holds)."""
    from PIL import Image
    root = tmp_path_factory.mktemp("unlabelled")
    digits = load_dataset("digits")
    folder = root / "digits"
    folder.mkdir()
    for i, img in enumerate(digits.train_x[:, 0].numpy()):
        Image.fromarray(np.ascontiguousarray(img)).save(folder / f"{i:04d}.png")
    assert genlab("train", "gmm", "--data", f"folder:{folder}", "--epochs", "2", "--components", "2",
                  "--out", root / "run", "--samples", "0", "--threads", "1") == 0
    ds = load_dataset(f"folder:{folder}")
    assert ds.train_y is None and len(ds.train_x) >= selfsup.MIN_TRAIN_IMAGES
    return {"run": root / "run", "data": ds, "digits": digits}


@pytest.fixture
def tiny_steps(monkeypatch):
    monkeypatch.setattr(selfsup, "STEPS", STEPS)


def cache_file(ds):
    return selfsup.cache_folder() / f"{selfsup._cache_stem(ds, STEPS)}.safetensors"


def test_unlabelled_data_get_fid_prdc_and_memorisation_once_trained_then_cached(unlabelled, tiny_steps, capsys):
    cached = cache_file(unlabelled["data"])
    for f in (cached, cached.with_suffix(".json")):
        f.unlink(missing_ok=True)                 # trained here, by this evaluation
    capsys.readouterr()
    argv = ("eval", unlabelled["run"], "--metrics", "fid,prdc,memorisation", "--samples", "300", "--threads", "1")
    assert genlab(*argv) == 0
    out = capsys.readouterr()
    assert "self-supervised feature network" in out.err          # its training is shown, like the classifier's
    assert "genlab self-supervised (SimCLR) v" in out.out         # the table names its feature network
    r = json.loads((unlabelled["run"] / "eval.json").read_text())
    assert r["feature_network"].startswith("genlab self-supervised (SimCLR)") and "128-d" in r["feature_network"]
    for key in ("fid", "fid_std", "precision", "recall", "density", "coverage", "memorisation_ratio", "copy_excess"):
        assert key in r, key
    # Two Gaussians of 8-bit pixels are far from the data: beyond the real-versus-real floor and its noise.
    assert r["fid"] > r["data_floor"]["fid"] > 0 and "fid" not in r["within_floor"] and "skipped" not in r
    assert cached.is_file()
    stamp, first = cached.stat().st_mtime_ns, r["fid"]
    assert genlab(*argv) == 0
    assert "self-supervised feature network" not in capsys.readouterr().err    # loaded, not retrained
    assert cached.stat().st_mtime_ns == stamp
    assert json.loads((unlabelled["run"] / "eval.json").read_text())["fid"] == first   # the same features


def test_modes_and_inception_score_are_skipped_with_their_reason(unlabelled, tiny_steps, capsys):
    capsys.readouterr()
    assert genlab("eval", unlabelled["run"], "--metrics", "fid,modes,is", "--samples", "200", "--threads", "1") == 0
    table = capsys.readouterr().out
    r = json.loads((unlabelled["run"] / "eval.json").read_text())
    assert "fid" in r and "modes_covered" not in r and "inception_score" not in r
    assert set(r["skipped"]) == {"modes", "is"} and "no class labels" in r["skipped"]["modes"]
    assert "modes and KL(modes) and IS not computed (the data have no class labels" in table


def test_the_features_are_meaningful(unlabelled, tiny_steps):
    """Trained on the folder's images (cached by the test above, or trained now), the features hold what a
    digit is: the 5 nearest training digits of an unseen digit mostly share its class (chance: 10%), and an
    augmented or binarised view of an image finds the image itself among 359 (chance: 0.3%); each more often
    than in the features of the same network untrained."""
    net, meta = selfsup.load_or_train(unlabelled["data"], "cpu", steps=STEPS)
    digits = unlabelled["digits"]
    g = torch.Generator().manual_seed(5)
    train = transform(digits.train_x, "none", g)
    test = transform(digits.test_x, "none", g)     # never in the folder
    torch.manual_seed(0)
    untrained = selfsup.Encoder(1, 8).eval()
    # The untrained network's standardisation: its own statistics over the training images, exactly.
    for m in untrained.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.momentum = None
    with torch.no_grad():
        untrained.train().embed(train)
    untrained.eval()

    def knn_accuracy(model):
        f_train, f_test = selfsup.embed(model, train), selfsup.embed(model, test)
        near = torch.cdist(f_test, f_train).topk(5, largest=False).indices
        return float((torch.mode(digits.train_y[near], 1).values == digits.test_y).double().mean())

    def retrieval(model, views):
        clean, moved = selfsup.embed(model, test), selfsup.embed(model, views)
        return float((torch.cdist(moved, clean).argmin(1) == torch.arange(len(test))).double().mean())

    augmented = selfsup.augment(test, torch.Generator().manual_seed(6))
    binarised = torch.bernoulli(test, generator=torch.Generator().manual_seed(7))
    accuracy, baseline = knn_accuracy(net), knn_accuracy(untrained)
    assert accuracy > 0.9 and accuracy > baseline, (accuracy, baseline)
    trained, baseline = retrieval(net, augmented), retrieval(untrained, augmented)
    assert trained > 0.2 and trained > baseline + 0.08, (trained, baseline)
    trained, baseline = retrieval(net, binarised), retrieval(untrained, binarised)
    assert trained > 0.35 and trained > baseline, (trained, baseline)
    assert meta["view_retrieval"] > 0.2 and "knn_accuracy" not in meta          # no labels in the folder


def test_features_selfsup_on_labelled_data(tmp_path, tiny_steps, capsys):
    assert genlab("train", "gmm", "--data", "digits", "--epochs", "2", "--components", "5", "--out", tmp_path / "run",
                  "--samples", "0", "--threads", "1") == 0
    capsys.readouterr()
    assert genlab("eval", tmp_path / "run", "--metrics", "fid,modes", "--features", "selfsup", "--samples", "200",
                  "--threads", "1") == 0
    table = capsys.readouterr().out
    r = json.loads((tmp_path / "run" / "eval.json").read_text())
    # Labels give the network a check of its own, named with it; still no class probabilities, so no modes.
    assert r["feature_network"].startswith("genlab self-supervised (SimCLR) v1 on digits") and "5-NN" in table
    assert r["skipped"] == {"modes": "the feature network gives no class probabilities"}
    assert r["fid"] > 0


@pytest.mark.parametrize("channels, size", [(1, 8), (1, 28), (3, 20), (3, 40), (3, 13)])
def test_the_encoder_takes_grey_or_colour_from_8_to_40_pixels(channels, size):
    net = selfsup.Encoder(channels, size)
    x = torch.rand(6, channels, size, size)
    views = selfsup.augment(x, torch.Generator().manual_seed(0))
    assert views.shape == x.shape and 0 <= float(views.min()) and float(views.max()) <= 1
    assert net(views).shape == (6, selfsup.PROJECTION)
    assert net.eval().embed(x).shape == (6, selfsup.FEATURES)


def test_nt_xent_equals_its_definition():
    """Against the loss written out pair by pair (Chen et al. 2020, eq. 1)."""
    g = torch.Generator().manual_seed(0)
    z1, z2, tau = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g), 0.3
    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1)
    n, total = 5, 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        sims = [float(z[i] @ z[k]) / tau for k in range(2 * n) if k != i]
        total += -(float(z[i] @ z[j]) / tau - np.log(np.sum(np.exp(sims))))
    assert float(selfsup.nt_xent(z1, z2, tau)) == pytest.approx(total / (2 * n), rel=1e-5)
