"""What the pages receive of a sample: bytes and their type (a PNG grid, a WAV clip, a GIF), which web/
turns into data URLs. Made by the modalities, who know how their data looks."""
from __future__ import annotations

import dataclasses
import io
import wave

import torch
from PIL import Image

from ..data.images import make_grid


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
