"""`fashion-mnist`: Zalando's 70,000 28×28 clothing images, official split, from Debian's package."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import torch

from ...errors import UserError
from ..containers.base import ImageDataset
from .idx import read_idx

PACKAGE = "dataset-fashion-mnist"
DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {"train_x": "train-images-idx3-ubyte.gz", "train_y": "train-labels-idx1-ubyte.gz",
         "test_x": "t10k-images-idx3-ubyte.gz", "test_y": "t10k-labels-idx1-ubyte.gz"}
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
SOURCE = "Fashion-MNIST (Zalando Research, 2017), from Debian's dataset-fashion-mnist package"
LICENCE = "MIT (Expat), Copyright 2017 Zalando SE"
SPLIT = "60000 train / 10000 test, the official Fashion-MNIST split"
MISSING = f"install Debian's {PACKAGE} package: apt-get install {PACKAGE}"


def _files() -> dict[str, Path] | None:
    """The four IDX files where dpkg says the package put them, else in the usual place; None if absent."""
    listed: dict[str, Path] = {}
    if shutil.which("dpkg"):
        try:
            out = subprocess.run(["dpkg", "-L", PACKAGE], capture_output=True, text=True, timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        names = {name: key for key, name in FILES.items()}
        for line in out.splitlines():
            p = Path(line.strip())
            if p.name in names and p.is_file():
                listed[names[p.name]] = p
    if len(listed) == len(FILES):
        return listed
    fallback = {key: DEFAULT_DIR / name for key, name in FILES.items()}
    return fallback if all(p.is_file() for p in fallback.values()) else None


def available() -> tuple[bool, str]:
    files = _files()
    if files is None:
        return False, MISSING
    return True, f"Debian package {PACKAGE} in {files['train_x'].parent}"


def load() -> ImageDataset:
    files = _files()
    if files is None:
        raise UserError(f"data set 'fashion-mnist' is not available here: {MISSING}")
    a = {key: read_idx(path) for key, path in files.items()}
    for split in ("train", "test"):
        x, y = a[f"{split}_x"], a[f"{split}_y"]
        ok = x.dtype == "uint8" and x.ndim == 3 and y.ndim == 1 and len(x) == len(y)
        if not ok or y.max(initial=0) >= len(CLASS_NAMES):
            raise UserError(f"{files[split + '_x']} and {files[split + '_y']} do not form a Fashion-MNIST "
                            f"{split} set (shapes {x.shape} and {y.shape})")
    t = {k: torch.from_numpy(v) for k, v in a.items()}
    return ImageDataset(
        name="fashion-mnist", train_x=t["train_x"].unsqueeze(1), train_y=t["train_y"].long(),
        test_x=t["test_x"].unsqueeze(1), test_y=t["test_y"].long(), class_names=CLASS_NAMES,
        source=SOURCE, licence=LICENCE, split=SPLIT)
