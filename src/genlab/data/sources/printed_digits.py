"""`printed-digits`: the digits 0–9 printed in the fonts installed on this machine, 28×28 like MNIST and
labelled, the printed domain beside MNIST's handwritten one.

Every TrueType or OpenType font under FONT_DIRS (Debian's fonts-dejavu-core and fonts-liberation, and any
other) that draws ten distinct, non-empty digits is used; a font without digits (a symbol font, one whose
digits are all the same missing-glyph box) is left out. Each image, drawn with a fixed seed: a font, a
digit, a stroke weight (the font's own, or thickened), a small rotation (±ROTATION degrees), drawn large in
white on black, cropped to the digit, scaled (with antialiasing) so that its longer side is a height from
HEIGHTS, and placed in a 28×28 square with its centre of mass in the middle, as MNIST's digits are
(LeCun et al.: each digit in a 20×20 box, centred by its mass). The same fonts give the same images on
every machine; other fonts, other images (config.json's data hash tells them apart).

IMAGES images, a tenth of them of each digit; a fixed random 20% (seed 0) are the test split. Drawn once
(about ten seconds) and cached, under a name that changes with the fonts (their paths, sizes and times) and
with the way they are drawn.
"""
from __future__ import annotations

import functools
import hashlib
import zipfile
from pathlib import Path

import numpy as np
import PIL
import torch
from PIL import Image, ImageDraw, ImageFont

from ...atomic import write_atomic
from ...errors import UserError
from ..containers.base import ImageDataset
from .mnist import cache_dir

FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts")
SUFFIXES = (".ttf", ".otf", ".ttc")
SIDE = 28
HEIGHTS = (14, 16, 18, 20)        # the digit's longer side, in pixels (MNIST's box is 20)
ROTATION = 10.0                   # degrees either way
STROKES = (0, 0, 2, 4)            # thickening at the drawing size (DRAW_SIZE): the font's weight, or bolder
DRAW_SIZE = 96                    # points: each digit is drawn this large, then scaled down
IMAGES, TEST_FRACTION, SEED = 10_000, 0.2, 0
VERSION = 1                       # of the drawing: part of the cache's name (bump when it changes)
SOURCE = "the digits 0–9 printed in the fonts installed on this machine"
LICENCE = "as each font's licence (Debian's DejaVu: free; Liberation: SIL Open Font License 1.1)"
MISSING = ("no font with digits found under " + " or ".join(FONT_DIRS) + ": install some, e.g. apt-get install "
           "fonts-dejavu-core fonts-liberation")


def font_files(dirs=None) -> list[Path]:
    """Font files under `dirs` (default FONT_DIRS), sorted by path."""
    found = []
    for d in (FONT_DIRS if dirs is None else dirs):
        root = Path(d)
        if root.is_dir():
            found += [p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file()]
    return sorted(found)


def _draw(font: ImageFont.FreeTypeFont, digit: int, stroke: int = 0, angle: float = 0.0) -> Image.Image | None:
    """The digit in white on black, rotated and cropped to its ink; None when the font draws nothing."""
    side = DRAW_SIZE * 2
    im = Image.new("L", (side, side), 0)
    ImageDraw.Draw(im).text((side // 2, side // 2), str(digit), fill=255, font=font, anchor="mm",
                            stroke_width=stroke, stroke_fill=255)
    box = im.getbbox()
    if box is None:
        return None
    im = im.crop(box)
    if angle:                               # rotated once cropped: a far smaller image to turn
        im = im.rotate(angle, resample=Image.BICUBIC, expand=True)
        im = im.crop(im.getbbox())
    return im


@functools.lru_cache(maxsize=None)
def _usable(path: Path) -> ImageFont.FreeTypeFont | None:
    """The font at `path` when it draws ten digits, each with ink and no two alike; else None."""
    try:
        font = ImageFont.truetype(str(path), DRAW_SIZE, index=0)
        drawn = [_draw(font, d) for d in range(10)]
    except (OSError, ValueError):
        return None
    if any(im is None for im in drawn):
        return None
    if len({(im.size, im.tobytes()) for im in drawn}) < 10:
        return None
    return font


def usable_fonts(dirs=None) -> list[Path]:
    return [p for p in font_files(dirs) if _usable(p) is not None]


def available() -> tuple[bool, str]:
    fonts = usable_fonts()
    if not fonts:
        return False, MISSING
    return True, f"drawn on first use from the {len(fonts)} fonts with digits found under /usr/share/fonts"


def place(glyph: Image.Image, height: int) -> np.ndarray:
    """A cropped glyph scaled so its longer side is `height` pixels, in a SIDE×SIDE square centred by its mass."""
    w, h = glyph.size
    scale = height / max(w, h)
    small = glyph.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS)
    a = np.asarray(small, dtype=np.float64)
    total = a.sum()
    ys, xs = np.indices(a.shape)
    cy, cx = ((ys * a).sum() / total, (xs * a).sum() / total) if total > 0 else (a.shape[0] / 2, a.shape[1] / 2)
    top = round((SIDE - 1) / 2 - cy)                 # pixel centres 0 … SIDE − 1: the middle is 13.5
    left = round((SIDE - 1) / 2 - cx)
    top = min(max(top, 0), SIDE - a.shape[0])         # the whole digit stays inside
    left = min(max(left, 0), SIDE - a.shape[1])
    out = np.zeros((SIDE, SIDE), dtype=np.uint8)
    out[top:top + a.shape[0], left:left + a.shape[1]] = np.asarray(small, dtype=np.uint8)
    return out


def cache_path(fonts: tuple[Path, ...], count: int) -> Path:
    """Where the images drawn from these fonts are cached: a name that changes with them and with the drawing."""
    h = hashlib.sha256(repr((VERSION, count, SIDE, HEIGHTS, ROTATION, STROKES, DRAW_SIZE, SEED, TEST_FRACTION,
                             PIL.__version__)).encode())
    for f in fonts:
        st = f.stat()
        h.update(f"{f}:{st.st_size}:{int(st.st_mtime)}".encode())
    return cache_dir() / f"printed-digits-v{VERSION}-{h.hexdigest()[:16]}.npz"


def _cached_render(fonts: tuple[Path, ...], count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_render`'s arrays, from the cache when they are there (a damaged cache is drawn again)."""
    path = cache_path(fonts, count)
    try:
        with np.load(path) as z:
            return z["images"], z["labels"], z["fonts"]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError):
        pass
    images, labels, font_of = _render(fonts, count)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)

        def write(tmp):
            with open(tmp, "wb") as f:
                np.savez_compressed(f, images=images, labels=labels, fonts=font_of)
        write_atomic(path, write)
    except (OSError, UserError):
        pass                          # an unwritable cache: drawn again next time
    return images, labels, font_of


def _render(fonts: tuple[Path, ...], count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`count` images (uint8 N×28×28), their digits and the index of their font, with the fixed seed."""
    rng = np.random.RandomState(SEED)
    labels = np.arange(count) % 10
    font_of = rng.randint(len(fonts), size=count)
    heights = rng.choice(HEIGHTS, size=count)
    strokes = rng.choice(STROKES, size=count)
    angles = rng.uniform(-ROTATION, ROTATION, size=count)
    images = np.zeros((count, SIDE, SIDE), dtype=np.uint8)
    for i in range(count):
        glyph = _draw(_usable(fonts[font_of[i]]), int(labels[i]), int(strokes[i]), float(angles[i]))
        images[i] = place(glyph, int(heights[i]))
    return images, labels, font_of


def load(count: int = IMAGES, dirs=None) -> ImageDataset:
    fonts = tuple(usable_fonts(dirs))
    if not fonts:
        raise UserError(f"printed-digits: {MISSING}")
    images, labels, font_of = _cached_render(fonts, count)
    x = torch.from_numpy(images.copy()).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    perm = torch.from_numpy(np.random.RandomState(SEED).permutation(count))
    n_test = round(count * TEST_FRACTION)
    test, train = perm[:n_test], perm[n_test:]
    names = [p.name for p in fonts]
    return ImageDataset(
        name="printed-digits", train_x=x[train], train_y=y[train], test_x=x[test], test_y=y[test],
        class_names=tuple(str(d) for d in range(10)), licence=LICENCE,
        source=f"{SOURCE}: {len(fonts)} fonts ({', '.join(names[:6])}{', …' if len(names) > 6 else ''}), "
               f"heights {HEIGHTS[0]}–{HEIGHTS[-1]} px, rotations within ±{ROTATION:g}°, strokes thickened by "
               f"0–{max(STROKES)} px at {DRAW_SIZE} pt, centred by mass in {SIDE}×{SIDE}",
        split=f"{len(train)} train / {n_test} test, a fixed random permutation (seed {SEED})",
        extra={"fonts": [str(p) for p in fonts], "train_fonts": font_of[train.numpy()].tolist(),
               "test_fonts": font_of[test.numpy()].tolist()})
