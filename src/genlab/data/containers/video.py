"""Video: clips of binary frames held in memory, their batches, animated GIFs read and written, and the
pictures of clips.

Every clip of a data set has the same number of frames of one size, each pixel 0 or 1: frames are
binarised when they are built or read (a pixel is on where its grey level is at least half), so a test
split is the same binary clips for every run and every likelihood is exact. Clips are kept packed, eight
pixels a byte (Moving MNIST's 11,000 clips of 20 frames of 64×64 are 113 MB so, 900 MB as bytes), and
unpacked a batch at a time.

`video:PATH` is a folder of the user's animated GIFs, one clip each.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar, Iterator

import numpy as np
import torch
from PIL import Image, ImageSequence

from ...atomic import write_atomic
from ...errors import UserError
from ...printable import printable
from .batch import Batch
from .images import _READ_ERRORS, open_image
from .loader import Shares

PREFIX = "video:"
SEED, TEST_FRACTION = 0, 0.1
MAX_SIDE = 256              # frames larger than this would make a pixel-by-pixel decoder far too slow
MAX_FRAMES = 1000
FRAME_MS = 200              # a GIF frame's duration when genlab writes one: 5 frames a second

Progress = Callable[[int, int], None]        # (done, total): a data build's progress


# ---- what a model knows, and the data set ---------------------------------------------------------------

@dataclass(frozen=True)
class VideoInfo:
    """What a video model needs to know of its data: the clips' frames and their size, how many of the
    first frames are given as context (the likelihood is of the frames after them), and the data set whose
    test clips `genlab sample` continues. Saved in config.json."""

    frames: int                          # frames per clip
    height: int
    width: int
    context: int                         # frames given before the scored ones
    data: str = ""                       # the data set's spec
    num_classes: ClassVar[int] = 0       # unlabelled: clips have no class
    class_names: ClassVar[tuple[str, ...]] = ()
    kind: ClassVar[str] = "video"
    scored: ClassVar[tuple[str, str]] = ("clip", "clips")     # likelihood figures per clip, of 0/1 pixels
    dequantised: ClassVar[bool] = False
    per_line: ClassVar[bool] = False
    pixels: ClassVar[str] = "binary"     # every pixel 0 or 1: the likelihood is in nats, no bits per dimension

    @property
    def frame_pixels(self) -> int:
        return self.height * self.width

    @property
    def predicted(self) -> int:
        """The frames the likelihood scores: those after the context."""
        return self.frames - self.context

    @property
    def dims(self) -> int:
        return self.frames * self.frame_pixels

    @property
    def likelihood_dims(self) -> int:
        return self.predicted * self.frame_pixels

    def to_json(self) -> dict:
        return {"kind": self.kind, "frames": self.frames, "height": self.height, "width": self.width,
                "context": self.context, "data": self.data}

    @classmethod
    def from_json(cls, d: dict) -> "VideoInfo":
        frames, h, w, k = d["frames"], d["height"], d["width"], d["context"]
        for name, v, low, high in (("frames", frames, 2, MAX_FRAMES), ("height", h, 1, MAX_SIDE),
                                   ("width", w, 1, MAX_SIDE), ("context", k, 1, frames - 1)):
            if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
                raise ValueError(f"{name} must be a whole number from {low} to {high}, not {v!r}")
        if not isinstance(d.get("data", ""), str):
            raise ValueError(f"data must be a data set's name, not {d.get('data')!r}")
        return cls(frames=frames, height=h, width=w, context=k, data=d.get("data", ""))


def pack(clips: np.ndarray) -> np.ndarray:
    """0/1 clips N×T×H×W as N×B bytes, eight pixels a byte."""
    return np.packbits(clips.reshape(len(clips), -1).astype(bool), axis=1)


@dataclass
class VideoDataset:
    """Binary clips of `frames` frames of height×width, split once and for all, packed (see `pack`).
    The first `context` frames of a clip are given, the rest scored."""

    name: str
    frames: int
    height: int
    width: int
    train_bits: np.ndarray
    test_bits: np.ndarray
    context: int = 0                       # 0: half the frames
    source: str = ""
    licence: str = ""
    split: str = ""
    notes: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        size = -(-self.frames * self.height * self.width // 8)
        for b in (self.train_bits, self.test_bits):
            assert b.dtype == np.uint8 and b.ndim == 2 and b.shape[1] == size, "clips must be packed N×B bytes"
        self.context = self.context or self.frames // 2

    @classmethod
    def from_clips(cls, name: str, train: np.ndarray, test: np.ndarray, **meta) -> "VideoDataset":
        _, frames, height, width = train.shape
        return cls(name, frames, height, width, pack(train), pack(test), **meta)

    def count(self, split: str) -> int:
        return len(self.train_bits if split == "train" else self.test_bits)

    def clips(self, split: str, idx=None) -> torch.Tensor:
        """The clips of a split (or those at `idx`), uint8 0/1, N×T×H×W."""
        bits = self.train_bits if split == "train" else self.test_bits
        if idx is not None:
            bits = bits[np.asarray(idx)]
        shape = (self.frames, self.height, self.width)
        x = np.unpackbits(bits, axis=1, count=int(np.prod(shape)))
        return torch.from_numpy(x.reshape(len(bits), *shape))

    def chunks(self, split: str, size: int = 500) -> Iterator[torch.Tensor]:
        """The clips of a split a few hundred at a time (a whole split unpacked can be a gigabyte)."""
        for i in range(0, self.count(split), size):
            yield self.clips(split, np.arange(i, min(i + size, self.count(split))))

    def content_hash(self) -> str:
        """A short hash of every pixel and the clips' shape, so numbers from different data never mix silently."""
        h = hashlib.sha256(f"{self.frames}x{self.height}x{self.width}:{self.context}".encode())
        for b in (self.train_bits, self.test_bits):
            h.update(np.ascontiguousarray(b).tobytes())
        return h.hexdigest()[:16]

    def describe(self) -> dict:
        out = {"name": self.name, "train": f"{self.count('train')} clips", "test": f"{self.count('test')} clips",
               "clips": f"{self.frames} frames of {self.height}×{self.width} binary pixels; the first "
                        f"{self.context} given, the likelihood of the other {self.frames - self.context}",
               "split": self.split, "source": self.source, "licence": self.licence}
        if self.notes:
            out["remarks"] = ", ".join(f"{n} {what}" for what, n in self.notes.items())
        return out


# ---- batches --------------------------------------------------------------------------------------------

class VideoBatches(Shares):
    """Batch(x) of one split: x the clips as 0/1 floats N×T×H×W. A new order every epoch when shuffled,
    reproducible from the seed; with `rank` and `world_size`, one process's share of each batch."""

    def __init__(self, ds: VideoDataset, split: str, *, batch_size: int, shuffle: bool, seed: int = 0,
                 device: str | torch.device = "cpu", rank: int = 0, world_size: int = 1):
        if batch_size < 1:
            raise UserError(f"--batch-size must be at least 1, not {batch_size}")
        if ds.count(split) == 0:
            raise UserError("no clips to batch")
        self.ds, self.split = ds, split
        self.batch_size, self.shuffle, self.seed, self.device = batch_size, shuffle, seed, torch.device(device)
        self.rank, self.world_size = rank, world_size

    def _count(self) -> int:
        return self.ds.count(self.split)


    def epoch(self, epoch: int = 0) -> Iterator[Batch]:
        for b in self._kept(epoch):
            b = b[self.rank::self.world_size]
            yield Batch(self.ds.clips(self.split, b.numpy()).to(self.device, torch.float32))

    def __iter__(self):
        return self.epoch(0)


# ---- GIF files ------------------------------------------------------------------------------------------

def read_gif(path: str | Path) -> np.ndarray:
    """An animated GIF's frames, binarised (grey level at least half: 1), uint8 T×H×W. Anything else is
    one line naming the file. (A GIF stores a frame that repeats the one before as a longer one: such a
    frame is read once.)"""
    shown = printable(path)
    try:
        with open_image(path) as im:
            if im.format != "GIF":
                raise UserError(f"{shown} is not a GIF file ({im.format or 'unknown'}): genlab reads clips as "
                                f"animated GIFs")
            w, h = im.size
            if w > MAX_SIDE or h > MAX_SIDE:
                raise UserError(f"{shown} is {w}×{h} pixels: genlab models frames of at most "
                                f"{MAX_SIDE}×{MAX_SIDE}")
            frames = []
            for frame in ImageSequence.Iterator(im):
                frames.append(np.asarray(frame.convert("L"), dtype=np.uint8) >= 128)
                if len(frames) > MAX_FRAMES:
                    raise UserError(f"{shown} has more than {MAX_FRAMES} frames")
    except UserError:
        raise
    except _READ_ERRORS as e:
        raise UserError(f"cannot read {shown}: a damaged GIF ({type(e).__name__})") from None
    return np.stack(frames).astype(np.uint8)


def write_gif(path: str | Path, frames: list[Image.Image], ms: int = FRAME_MS) -> Path:
    """An animated GIF of Pillow images (one per frame), shown `ms` each, looping; written whole or not at all."""
    path = Path(path)

    def write(tmp):
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=ms, loop=0)
    write_atomic(path, write)
    return path


def clip_gif(path: str | Path, clip, ms: int = FRAME_MS) -> Path:
    """One clip (T×H×W, 0/1) as an animated GIF of black and white frames."""
    x = (torch.as_tensor(clip).detach().cpu().numpy() > 0.5).astype(np.uint8) * 255
    return write_gif(path, [Image.fromarray(f, "L") for f in x], ms)


# ---- video:PATH -------------------------------------------------------------------------------------------

def load_folder(path: str, progress: Progress | None = None) -> VideoDataset:
    """`video:PATH`: every animated GIF under PATH (sorted by path; hidden ones skipped), one clip each, its
    frames binarised; every clip must have frames of one size, and all are cut to the shortest's count."""
    root = Path(path).expanduser()
    shown = printable(path)
    if not root.exists():
        raise UserError(f"folder {shown} does not exist")
    if not root.is_dir():
        raise UserError(f"{shown} is not a folder (video:PATH takes a folder of animated GIFs)")
    try:
        files = [p for p in sorted(root.rglob("*"), key=lambda p: p.relative_to(root).as_posix())
                 if p.is_file() and p.suffix.lower() == ".gif"
                 and not any(part.startswith(".") for part in p.relative_to(root).parts)]
    except OSError as e:
        raise UserError(f"cannot list the files in folder {shown}: {e.strerror or e}") from None
    if len(files) < 2:
        raise UserError(f"folder {shown} holds {len(files)} GIF file{'s' if len(files) != 1 else ''}; genlab needs "
                        f"at least 2 (a tenth, at least one, is kept for testing)")
    clips = []
    for i, f in enumerate(files):
        clip = read_gif(f)
        if clip.shape[1:] != (clips[0].shape[1:] if clips else clip.shape[1:]):
            raise UserError(f"{printable(f)} has frames of {clip.shape[2]}×{clip.shape[1]} pixels and "
                            f"{printable(files[0])} of {clips[0].shape[2]}×{clips[0].shape[1]}: every clip of a "
                            f"folder must have frames of one size")
        if len(clip) < 2:
            raise UserError(f"{printable(f)} has one frame: a clip needs at least 2 (the first given, the next "
                            f"predicted)")
        clips.append(clip)
        if progress is not None:
            progress(i + 1, len(files))
    frames = min(len(c) for c in clips)
    cut = sum(len(c) > frames for c in clips)
    x = np.stack([c[:frames] for c in clips])
    perm = np.random.RandomState(SEED).permutation(len(files))
    n_test = max(1, int(round(len(files) * TEST_FRACTION)))
    test, train = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    return VideoDataset.from_clips(
        f"{PREFIX}{shown}", x[train], x[test],
        source=f"{len(files)} animated GIFs in {printable(root.resolve())}, binarised at half grey",
        licence="as the folder's owner licensed its clips",
        split=f"{len(train)} train / {n_test} test, a fixed random permutation (seed {SEED}) of the files "
              f"sorted by path",
        notes={f"clips cut to {frames} frames": cut} if cut else {})


# ---- pictures -------------------------------------------------------------------------------------------

# The colours of the pictures: pixels black and white; a frame's border says what it is.
PALETTE = {"off": (0, 0, 0), "on": (255, 255, 255), "gap": (96, 96, 96), "context": (60, 110, 230),
           "model": (230, 60, 50), "truth": (40, 170, 70), "none": (40, 40, 40)}
INDEX = {name: i for i, name in enumerate(PALETTE)}
BORDER = 1


def _palette_image(a: np.ndarray) -> Image.Image:
    im = Image.fromarray(a.astype(np.uint8), "P")
    flat = [v for rgb in PALETTE.values() for v in rgb]
    im.putpalette(flat + [0] * (768 - len(flat)))
    return im


def _framed(frame: np.ndarray | None, kind: str, h: int, w: int, scale: int) -> np.ndarray:
    """One frame (H×W, 0/1; None: no frame) enlarged `scale` times, inside a border coloured by `kind`."""
    inner = np.full((h, w), INDEX["none"]) if frame is None else np.where(frame > 0.5, INDEX["on"], INDEX["off"])
    inner = inner.repeat(scale, 0).repeat(scale, 1)
    return np.pad(inner, BORDER, constant_values=INDEX[kind])


Panel = tuple[list, list[str]]      # a clip's frames (H×W arrays, 0/1, or None: no frame) and each one's kind


def _frames(panels: list[Panel]) -> tuple[int, int, int]:
    """(H, W, the longest panel's frames)."""
    h, w = next(f.shape for frames, _ in panels for f in frames if f is not None)
    return h, w, max(len(frames) for frames, _ in panels)


def _at(panel: Panel, t: int):
    frames, kinds = panel
    return (frames[t], kinds[t]) if t < len(frames) else (None, "none")


def strip_picture(path: str | Path, rows: list[Panel], group: int = 1, scale: int = 2, gap: int = 4) -> Path:
    """A PNG of clips as rows of frames, left to right, each frame's border coloured by its kind ("context",
    "model", "truth"); rows in groups of `group` (a clip as the model drew it and as it was: 2), a wider
    gap between groups. Written whole or not at all."""
    h, w, length = _frames(rows)
    fh, fw = h * scale + 2 * BORDER, w * scale + 2 * BORDER
    groups = -(-len(rows) // group)
    out = np.full((len(rows) * (fh + 1) + (groups - 1) * gap + 1, length * (fw + 1) + 1), INDEX["gap"])
    y = 1
    for i, row in enumerate(rows):
        for t in range(length):
            x = 1 + t * (fw + 1)
            out[y:y + fh, x:x + fw] = _framed(*_at(row, t), h, w, scale)
        y += fh + 1 + (gap if (i + 1) % group == 0 else 0)
    im = _palette_image(out)
    path = Path(path)
    write_atomic(path, lambda tmp: im.save(tmp, format="PNG"))
    return path


def grid_gif(path: str | Path, items: list[list[Panel]], scale: int = 2, per_row: int | None = None,
             ms: int = FRAME_MS) -> Path:
    """An animated GIF of clips side by side: each item one or more panels (a clip as the model drew it,
    and as it was), each frame's border coloured by its kind; items in rows of `per_row`."""
    h, w, length = _frames([p for item in items for p in item])
    panels = max(len(item) for item in items)
    per_row = per_row or max(1, int(np.ceil(np.sqrt(len(items)))))
    rows = -(-len(items) // per_row)
    fh, fw = h * scale + 2 * BORDER, w * scale + 2 * BORDER
    iw = panels * (fw + 1) - 1                          # an item: its panels, one pixel apart
    images = []
    for t in range(length):
        out = np.full((rows * (fh + 3) + 3, per_row * (iw + 3) + 3), INDEX["gap"])
        for i, item in enumerate(items):
            r, c = divmod(i, per_row)
            y, x = 3 + r * (fh + 3), 3 + c * (iw + 3)
            for j, panel in enumerate(item):
                out[y:y + fh, x + j * (fw + 1):x + j * (fw + 1) + fw] = _framed(*_at(panel, t), h, w, scale)
        images.append(_palette_image(out))
    return write_gif(path, images, ms)


def check_output(output: str, what: str) -> tuple[Path, Path]:
    """The GIF and the strip picture an output names: NAME.gif and NAME.png (either may be given)."""
    p = Path(output)
    if p.suffix.lower() not in (".gif", ".png"):
        raise UserError(f"{what} {printable(output)}: give a .gif file (the strip picture goes beside it as .png)")
    if not p.parent.is_dir():
        raise UserError(f"cannot write {printable(output)}: folder {printable(p.parent)} does not exist")
    return p.with_suffix(".gif"), p.with_suffix(".png")


__all__ = ["PREFIX", "VideoBatches", "VideoDataset", "VideoInfo", "check_output", "clip_gif", "grid_gif",
           "load_folder", "pack", "read_gif", "strip_picture", "write_gif"]
