"""Memorisation judged against held-out images, on real data through the judge `genlab eval` uses: exact
training images and lightly noised ones are copies; held-out images, the training set's mean image, k-means
centres and heavily blurred training images are not (they sit close to every image, seen or not); and a
model that learnt its 450 training images by heart is caught through `genlab eval` itself."""
import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from genlab.data import load_dataset
from genlab.evaluation.memorisation import kmeans_cells
from genlab.evaluation.sample_quality import SampleJudge

from conftest import genlab as run_cli

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def judge():
    ds = load_dataset("digits")
    return SampleJudge(ds, "none", 600, ["memorisation"], None, "cpu")


def verdict(judge, images, tmp_path) -> dict:
    images = (images.clamp(0, 1) * 255).round() / 255
    return judge.judge(images, memorise_picture=tmp_path / "m.png")


def train_images(judge, n=600, seed=0):
    x = judge.ds.train_x.float() / 255
    return x[torch.randint(len(x), (n,), generator=torch.Generator().manual_seed(seed))]


def blur(x, passes):
    k = torch.tensor([[1., 2., 1.], [2., 4., 2.], [1., 2., 1.]]).view(1, 1, 3, 3) / 16
    for _ in range(passes):
        x = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"), k)
    return x


def test_copies_are_flagged(judge, tmp_path):
    exact = verdict(judge, train_images(judge), tmp_path)
    assert exact["copies_found"] and exact["copy_excess"] > 0.5, exact["memorisation_verdict"]
    noisy = train_images(judge, seed=1) + 0.03 * torch.randn(600, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    r = verdict(judge, noisy, tmp_path)
    assert r["copies_found"] and r["data_copying_ct"] < -3, r["memorisation_verdict"]
    assert (tmp_path / "m.png").is_file()
    assert Image.open(tmp_path / "m.png").size[1] > Image.open(tmp_path / "m.png").size[0] / 10 * 2.5  # three rows


def test_new_images_and_blurs_are_not(judge, tmp_path):
    real = judge.pictures()[4].real.view(-1, 1, 8, 8)       # held-out images the comparison half does not hold
    pick = torch.randint(len(real), (600,), generator=torch.Generator().manual_seed(4))
    held = verdict(judge, real[pick], tmp_path)
    assert not held["copies_found"] and abs(held["copy_excess"]) < 0.05, held["memorisation_verdict"]
    mean = (judge.ds.train_x.float() / 255).mean(0, keepdim=True).expand(600, -1, -1, -1)
    centres = kmeans_cells((judge.ds.train_x.float() / 255).flatten(1), 10).float().view(10, 1, 8, 8)
    blurred = blur(train_images(judge, seed=3), 4)
    for name, images in (("mean image", mean), ("k-means centres", centres.repeat(60, 1, 1, 1)),
                         ("blurred training images", blurred)):
        r = verdict(judge, images, tmp_path)
        assert not r["copies_found"], (name, r["memorisation_verdict"])


def test_a_model_that_learnt_its_training_images_by_heart_is_caught(tmp_path, capsys):
    # 500 digits as a folder of PNGs (genlab holds 50 of them out); a mixture with a component per training
    # image and a tiny variance draws those back.
    ds = load_dataset("digits")
    for split, images in (("train", ds.train_x[:400]), ("test", ds.test_x[:100])):
        for i, img in enumerate(images):
            Image.fromarray(img[0].numpy()).save(tmp_path / f"{split}-{i:03d}.png")
    data = tmp_path / "data"
    data.mkdir()
    for f in tmp_path.glob("*.png"):
        f.rename(data / f.name)
    run = tmp_path / "run"
    assert run_cli("train", "gmm", "--data", f"folder:{data}", "--components", "450", "--covariance", "diag",
                   "--samples", "0", "--threads", "1", "--out", run) == 0
    capsys.readouterr()
    assert run_cli("eval", run, "--metrics", "memorisation", "--samples", "200", "--json") == 0
    r = json.loads(capsys.readouterr().out)
    assert r["copies_found"], r["memorisation_verdict"]
    assert Path(r["memorisation_picture"]).is_file()
