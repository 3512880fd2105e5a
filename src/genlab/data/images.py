"""The few image helpers genlab needs, on Pillow: read a file, write a grid of images."""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif")


def read_image(path: str | Path, channels: int, size: tuple[int, int]) -> torch.Tensor:
    """One image file as uint8 C×H×W, converted to `channels` and resized to `size` (H, W)."""
    try:
        with Image.open(path) as im:
            im = im.convert("L" if channels == 1 else "RGB")
            if im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), Image.BILINEAR)
            a = np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise UserError(f"cannot read image {path}: {e.__class__.__name__}: {e}") from None
    if a.ndim == 2:
        a = a[None]
    else:
        a = a.transpose(2, 0, 1)
    return torch.from_numpy(a.copy())


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Model output in [0, 1] (any float) to uint8 for display."""
    return (x.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu()


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


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None, scale: int | None = None) -> Path:
    """Write images as one PNG grid, enlarged so that small images stay visible; written atomically."""
    h = images.shape[-2]
    scale = scale or max(1, 64 // h)
    grid = make_grid(images, nrow=nrow, scale=scale)
    im = Image.fromarray(grid[..., 0] if grid.shape[2] == 1 else grid)
    path = Path(path)
    fmt = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".gif": "GIF"}.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"cannot write {path}: the output must end in .png, .jpg or .gif")
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    im.save(tmp, format=fmt)
    os.replace(tmp, path)
    return path
