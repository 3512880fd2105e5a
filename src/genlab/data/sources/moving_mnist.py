"""`moving-mnist` and `moving-mnist-32`: Moving MNIST (Srivastava et al. 2015, "Unsupervised Learning of
Video Representations using LSTMs") made from genlab's `mnist` digits with fixed seeds, and cached.

The construction is the paper's: each clip holds two digits, each starting at a uniformly random place
with a uniformly random direction and moving a tenth of its free range per frame, bouncing off the
frame's edges (the position held at the edge, that component of the velocity reversed); the first step is
taken before the first frame. A frame is the two digits pasted at their places, overlapping by the
maximum. 20 frames a clip.

    moving-mnist:     28×28 digits in 64×64 frames (3.6 pixels a frame); 10,000 training and 1,000 test clips
    moving-mnist-32:  the digits halved to 14×14 (the mean of each 2×2 block) in 32×32 frames, the same
                      motion at half the scale; 2,000 training and 500 test clips, for CPUs (an epoch of a
                      pixel-by-pixel video model over 10,000 clips is hours on one core)

Training clips take their digits from mnist's training split and test clips from its test split only, so
no test digit is ever seen in training. Frames are binarised at half grey: the likelihood is of binary
pixels. The training and the test clips are drawn with seeds of their own (0 and 1). The first 10 frames
of a clip are its context, the likelihood is of the last 10 (as in Srivastava et al. and Video Pixel
Networks).
"""
from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ...errors import UserError
from ..containers.base import ImageDataset
from ..containers.video import VideoDataset, pack
from . import mnist

# name -> (frame side, digit side, training clips, test clips)
SIZES = {"moving-mnist": (64, 28, 10_000, 1_000), "moving-mnist-32": (32, 14, 2_000, 500)}
FRAMES, CONTEXT, DIGITS = 20, 10, 2
STEP = 0.1                        # of the free range (frame side - digit side) per frame
SEEDS = {"train": 0, "test": 1}
VERSION = 1                       # of the construction: a new one gets a new cache file
CHUNK = 500                       # clips drawn at a time: 500 clips of 64×64 frames are 41 MB as bytes

Progress = Callable[[int, int], None]


def cache_path(name: str) -> Path:
    return mnist.cache_dir() / f"{name}-v{VERSION}-seeds{SEEDS['train']}{SEEDS['test']}.npz"


def available(name: str) -> tuple[bool, str]:
    if cache_path(name).is_file():
        return True, f"cached in {cache_path(name)}"
    ok, why = mnist.available()
    if not ok:
        return False, f"it is made from mnist, which is missing: {why}"
    return True, "made from the mnist digits on first use (or genlab data fetch " + name + "), then cached"


def trajectories(rng: np.random.RandomState, n: int, frames: int = FRAMES) -> tuple[np.ndarray, np.ndarray]:
    """(y, x) of n digits over `frames` frames, each in [0, 1] (a fraction of the free range), n×frames."""
    y, x = rng.rand(n), rng.rand(n)
    theta = rng.rand(n) * 2 * np.pi
    vy, vx = np.sin(theta), np.cos(theta)
    ys, xs = np.zeros((n, frames)), np.zeros((n, frames))
    for t in range(frames):
        y, x = y + vy * STEP, x + vx * STEP
        for pos, v in ((y, vy), (x, vx)):            # bounce: held at the edge, that component reversed
            low, high = pos <= 0, pos >= 1
            pos[low], pos[high] = 0, 1
            v[low | high] *= -1
        ys[:, t], xs[:, t] = y, x
    return ys, xs


def render(digits: np.ndarray, tops: np.ndarray, lefts: np.ndarray, side: int) -> np.ndarray:
    """Clips N×T×side×side (uint8 grey) of the digits N×D×d×d at their places N×D×T, overlapping by the maximum."""
    n, count, d, _ = digits.shape
    frames = tops.shape[2]
    out = np.zeros((n, frames, side, side), np.uint8)
    clip = np.arange(n)[:, None, None]
    span = np.arange(d)
    for k in range(count):
        for t in range(frames):
            rows = tops[:, k, t, None, None] + span[None, :, None]
            cols = lefts[:, k, t, None, None] + span[None, None, :]
            out[clip, t, rows, cols] = np.maximum(out[clip, t, rows, cols], digits[:, k])
    return out


def halve(digits: np.ndarray) -> np.ndarray:
    """28×28 digits (N×28×28 uint8) as 14×14: the mean of each 2×2 block, rounded."""
    n, h, w = digits.shape
    blocks = digits.reshape(n, h // 2, 2, w // 2, 2).astype(np.float64).mean((2, 4))
    return np.rint(blocks).astype(np.uint8)


def placements(count: int, n: int, seed: int, side: int, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which of `count` digits each of n clips holds (n×2 indices), and their boxes' top rows and left columns
    in every frame (each n×2×FRAMES): the draws of the split with this seed."""
    rng = np.random.RandomState(seed)
    which = rng.randint(0, count, size=(n, DIGITS))
    ys, xs = trajectories(rng, n * DIGITS)
    free = side - d
    tops = (free * ys).astype(np.int64).reshape(n, DIGITS, FRAMES)
    lefts = (free * xs).astype(np.int64).reshape(n, DIGITS, FRAMES)
    return which, tops, lefts


def make_split(digits: np.ndarray, n: int, seed: int, side: int, progress: Progress | None = None,
               done: int = 0, total: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n binary clips (packed, see video.pack) of two of `digits` each, and which digits (n×2 indices)."""
    which, tops, lefts = placements(len(digits), n, seed, side, digits.shape[1])
    bits = []
    for i in range(0, n, CHUNK):
        j = min(n, i + CHUNK)
        clips = render(digits[which[i:j]], tops[i:j], lefts[i:j], side)
        bits.append(pack(clips >= 128))
        if progress is not None:
            progress(done + j, total)
    return np.concatenate(bits), which


def fetch(name: str, progress: Progress | None = None) -> Path:
    mnist.writable_cache()                  # before minutes of drawing clips
    """Make the data set from the mnist digits (fetching mnist first if need be) and cache it; its path."""
    side, d, n_train, n_test = SIZES[name]
    digits = mnist.load()
    train_digits, test_digits = digits.train_x[:, 0].numpy(), digits.test_x[:, 0].numpy()
    if d != train_digits.shape[1]:
        train_digits, test_digits = halve(train_digits), halve(test_digits)
    train, train_which = make_split(train_digits, n_train, SEEDS["train"], side, progress, 0, n_train + n_test)
    test, test_which = make_split(test_digits, n_test, SEEDS["test"], side, progress, n_train, n_train + n_test)
    path = cache_path(name)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:      # a file object, so numpy does not append .npz to the name
            np.savez_compressed(f, train=train, test=test, train_digits=train_which, test_digits=test_which,
                                shape=np.array([FRAMES, side, side, CONTEXT]), mnist_hash=digits.content_hash())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load(name: str, progress: Progress | None = None) -> VideoDataset:
    path = cache_path(name)
    if not path.is_file():
        fetch(name, progress)
    try:
        with np.load(path) as z:
            train, test, (frames, height, width, context) = z["train"], z["test"], z["shape"].tolist()
            mnist_hash = str(z["mnist_hash"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise UserError(f"the {name} cache {path} is damaged ({e.__class__.__name__}); delete it or run "
                        f"`genlab data fetch {name}`") from None
    side, d = SIZES[name][:2]
    return VideoDataset(
        name=name, frames=frames, height=height, width=width, train_bits=train, test_bits=test, context=context,
        source=(f"Moving MNIST (Srivastava et al. 2015) made from genlab's mnist digits (data hash {mnist_hash}): "
                f"two {d}×{d} digits bouncing in {side}×{side} frames, binarised at half grey"),
        licence=mnist.LICENCE,
        split=(f"{len(train)} train clips of mnist's training digits / {len(test)} test clips of its test digits "
               f"only, drawn with seeds {SEEDS['train']} and {SEEDS['test']}"),
        extra={"cache": str(path), "digit_side": d})


@dataclass(frozen=True)
class TestDigits:
    """What is known of a data set's test clips' digits, for judging continued clips."""
    side: int                      # a digit's box in the frames, in pixels
    mnist: ImageDataset            # the digits the clips were cut from (genlab's classifier of them reads them)
    labels: np.ndarray | None      # each test clip's two digits' classes, N×2 (None: not known)
    centres: np.ndarray | None     # each digit's box centre (row, column) in every frame, N×2×T×2


def test_digits(name: str) -> TestDigits:
    """The test clips' digits of `name`, drawn again from its seeds: their classes and places are known
    where the cache holds these very draws (made from this mnist)."""
    side, d, _, n_test = SIZES[name]
    digits = mnist.load()
    which, tops, lefts = placements(len(digits.test_x), n_test, SEEDS["test"], side, d)
    try:
        with np.load(cache_path(name)) as z:
            same = np.array_equal(z["test_digits"], which) and str(z["mnist_hash"]) == digits.content_hash()
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError):
        same = False
    if not same:
        return TestDigits(d, digits, None, None)
    return TestDigits(d, digits, digits.test_y.numpy()[which], np.stack([tops, lefts], -1) + (d - 1) / 2)
