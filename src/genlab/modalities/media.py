"""Samples as media: what the pages receive (bytes and their type: a PNG grid, a WAV clip, a GIF, which web/
turns into data URLs) and one picture written as a file. Made by the modalities, who know how their data
looks."""
from __future__ import annotations

import dataclasses
import io
import wave
from pathlib import Path

import torch
from PIL import Image

from ..atomic import write_atomic, write_error
from ..data.containers.images import make_grid
from ..errors import UserError


@dataclasses.dataclass(frozen=True)
class Media:
    data: bytes
    mime: str

    @classmethod
    def png(cls, images: torch.Tensor, nrow: int | None = None, pad: int = 1) -> "Media":
        return cls(png_bytes(images, nrow, pad), "image/png")

    @classmethod
    def wav(cls, clip: torch.Tensor, rate: int) -> "Media":
        return cls(wav_bytes(clip, rate), "audio/wav")


def png_bytes(images: torch.Tensor, nrow: int | None = None, pad: int = 1) -> bytes:
    """Images (N×C×H×W in [0, 1], or uint8) as one PNG grid at their own size (the page enlarges them)."""
    grid = make_grid(images.detach().cpu(), nrow=nrow, pad=pad if len(images) > 1 else 0)
    out = io.BytesIO()
    Image.fromarray(grid[..., 0] if grid.shape[2] == 1 else grid).save(out, format="PNG")
    return out.getvalue()


def wav_bytes(clip: torch.Tensor, rate: int) -> bytes:
    """One clip (T floats in [-1, 1]) as a mono 16-bit WAV file."""
    pcm = (clip.detach().float().cpu().reshape(-1).clamp(-1, 1) * 32767).round().to(torch.int16).numpy()
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(rate))
        w.writeframes(pcm.astype("<i2").tobytes())
    return out.getvalue()


def write_image(image: torch.Tensor, output: str) -> Path:
    """One uint8 image C×H×W as a file of its own size (PNG, JPEG or GIF by the name's suffix), written whole."""
    path = Path(output)
    fmt = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".gif": "GIF"}.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"cannot write {output}: the output must end in .png, .jpg or .gif")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_error(path.parent, e, "make the folder") from None
    a = image.permute(1, 2, 0).numpy()
    im = Image.fromarray(a[..., 0] if a.shape[2] == 1 else a)
    write_atomic(path, lambda tmp: im.save(tmp, format=fmt))
    return path
