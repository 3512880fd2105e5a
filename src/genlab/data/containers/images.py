"""The few image helpers genlab needs, on Pillow: read a file, write a grid of images."""
from __future__ import annotations

import contextlib
import math
import struct
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ...atomic import write_atomic, write_error
from ...errors import UserError
from ...printable import printable

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif")
MAX_PIXELS = 4096 * 4096        # 2^24: a larger image is refused from its header, before it is decoded

# What Pillow (or a file it cannot parse) raises; each becomes one line naming the file.
_READ_ERRORS = (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, IndexError, KeyError,
                TypeError, struct.error, MemoryError, Image.DecompressionBombError)


def _cannot_read(path, e: BaseException) -> UserError:
    detail = str(e).splitlines()[0][:200] if str(e).strip() else ""
    return UserError(f"cannot read image {printable(path)}: {e.__class__.__name__}"
                     + (f": {printable(detail)}" if detail else ""))


@contextlib.contextmanager
def open_image(path: str | Path):
    """Pillow's image of `path`, its header read and its size checked (nothing decoded yet).

    Every failure, in opening or in what the `with` body does with the image, is one UserError naming
    the file; an image of more than MAX_PIXELS pixels is refused before a byte of it is decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w < 1 or h < 1 or w * h > MAX_PIXELS:
                    raise UserError(f"cannot read image {printable(path)}: it is {w}×{h} pixels, more than "
                                    f"genlab reads ({MAX_PIXELS:,} pixels at most, e.g. 4096×4096)")
                yield im
    except UserError:
        raise
    except Image.DecompressionBombError:           # a header claiming ~10^8 pixels or more: Pillow's own check
        raise UserError(f"cannot read image {printable(path)}: its header claims a size far beyond what genlab "
                        f"reads ({MAX_PIXELS:,} pixels at most, e.g. 4096×4096)") from None
    except _READ_ERRORS as e:
        raise _cannot_read(path, e) from None


def _grey16_to_8(im: Image.Image) -> Image.Image:
    """A 16-bit (or 32-bit integer) grey image as 8-bit grey, 0..65535 scaled to 0..255."""
    a = np.asarray(im).astype(np.int64)
    a = np.clip(a, 0, 65535)
    return Image.fromarray(((a * 255 + 32767) // 65535).astype(np.uint8), "L")


def to_8bit(im: Image.Image, channels: int) -> Image.Image:
    """Any image Pillow opens as 8-bit "L" (channels 1) or "RGB" (channels 3): 16-bit grey scaled down,
    a palette looked up, transparency composited on white, CMYK and the rest converted by Pillow."""
    mode = im.mode
    if mode == "I" or mode.startswith("I;16"):
        im = _grey16_to_8(im)
    elif mode == "F":
        im = Image.fromarray(np.clip(np.nan_to_num(np.asarray(im, dtype=np.float64)), 0, 255)
                             .round().astype(np.uint8), "L")
    elif mode in ("LA", "La", "PA", "RGBA", "RGBa") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
    elif mode == "P":
        im = im.convert("RGB")
    return im.convert("L" if channels == 1 else "RGB")


def read_image(path: str | Path, channels: int, size: tuple[int, int]) -> torch.Tensor:
    """One image file as uint8 C×H×W, converted to `channels` and resized to `size` (H, W).

    Every mode Pillow opens reads with the right scale (16-bit grey, palette, alpha on white, CMYK, 1-bit);
    a file that is not an image, is damaged, or is larger than MAX_PIXELS is one UserError naming it."""
    try:
        with open_image(path) as im:
            im = to_8bit(im, channels)
            if im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), Image.BILINEAR)
            a = np.asarray(im, dtype=np.uint8)
    except UserError:
        raise
    except _READ_ERRORS as e:
        raise _cannot_read(path, e) from None
    if a.ndim == 2:
        a = a[None]
    else:
        a = a.transpose(2, 0, 1)
    return torch.from_numpy(a.copy())


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Model output in [0, 1] (any float) to uint8 for display."""
    return (x.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()


MIN_SIDE = 256       # a picture a person opens is at least this many pixels on its short side


def make_grid(images: torch.Tensor, nrow: int | None = None, pad: int = 1, scale: int = 1) -> np.ndarray:
    """N×C×H×W (uint8 or float in [0, 1]) to one H'×W'×C uint8 array, rows of `nrow` images."""
    if images.dtype != torch.uint8:
        images = to_uint8(images)
    n, c, h, w = images.shape
    nrow = nrow or max(1, int(math.ceil(math.sqrt(n))))
    rows = int(math.ceil(n / nrow))
    grid = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), 128, dtype=np.uint8)
    arr = images.permute(0, 2, 3, 1).numpy()
    for i in range(n):
        r, col = divmod(i, nrow)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[y:y + h, x:x + w] = arr[i]
    if scale > 1:
        grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    return grid


def label_rows(im: Image.Image, labels: list[str], row_height: float) -> Image.Image:
    """The grid with a white margin on its left holding each row's label (a caption, a class) in black."""
    from PIL import ImageDraw, ImageFont
    size = int(max(10, min(18, row_height * 0.45)))
    font = ImageFont.load_default(size=size)
    draw = ImageDraw.Draw(im)
    width = int(max(draw.textlength(t, font=font) for t in labels)) + 12
    out = Image.new(im.mode, (im.width + width, im.height), 255 if im.mode == "L" else (255, 255, 255))
    out.paste(im, (width, 0))
    draw = ImageDraw.Draw(out)
    for i, text in enumerate(labels):
        draw.text((6, (i + 0.5) * row_height), text, fill=0 if im.mode == "L" else (0, 0, 0), font=font, anchor="lm")
    return out


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None, scale: int | None = None,
              row_labels: list[str] | None = None) -> Path:
    """Write images as one PNG grid, each row labelled with its `row_labels` entry when given (a text2img
    grid's captions); written atomically. Enlarged `scale` times, nearest neighbour (pixels stay pixels), by
    default enough for each image to be 64 px tall and the picture MIN_SIDE px on its short side."""
    grid = make_grid(images, nrow=nrow)
    scale = scale or max(1, 64 // images.shape[-2], math.ceil(MIN_SIDE / min(grid.shape[:2])))
    grid = grid.repeat(scale, axis=0).repeat(scale, axis=1) if scale > 1 else grid
    im = Image.fromarray(grid[..., 0] if grid.shape[2] == 1 else grid)
    if row_labels:
        im = label_rows(im, row_labels, im.height / len(row_labels))
    path = Path(path)
    fmt = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".gif": "GIF"}.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"cannot write {printable(path)}: the output must end in .png, .jpg or .gif")
    if path.parent and not path.parent.is_dir():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise write_error(path.parent, e, "make the folder") from None
    write_atomic(path, lambda tmp: im.save(tmp, format=fmt))
    return path
