"""Completion of covered images: the covered part of a real image drawn by an autoregressive model,
given everything before it in raster order (`model.complete(x, mask)`).

Covers: bottom-half, right-half, or a percentage such as 75% — the last 75% of the pixels in raster
order (whole rows from the bottom, then the end of the row above). A raster-order model sees only what
comes before a pixel, so a cover always reaches to the end of the image. A conditional model draws the
class asked for, or, with none asked for, each completion as the next class in turn.
"""
from __future__ import annotations

import re

import torch

from ..errors import UserError
from ..models.base import GenerativeModel

COVERS = "bottom-half, right-half or a percentage such as 75%"


def cover_mask(spec: str, height: int, width: int) -> torch.Tensor:
    """H×W booleans, true where the model is to draw."""
    mask = torch.zeros(height, width, dtype=torch.bool)
    if spec == "bottom-half":
        mask[height // 2:] = True
    elif spec == "right-half":
        mask[:, width // 2:] = True
    else:
        m = re.fullmatch(r"(\d+(?:\.\d+)?)%", spec.strip())
        if not m or not 0 < float(m.group(1)) <= 100:
            raise UserError(f"--cover must be {COVERS} (more than 0%, at most 100%), not {spec!r}")
        covered = max(1, round(float(m.group(1)) / 100 * height * width))
        mask.view(-1)[height * width - covered:] = True
    return mask


@torch.no_grad()
def completions(model: GenerativeModel, x: torch.Tensor, cover: str, n: int = 8, *, seed: int = 0,
                label: int | None = None) -> torch.Tensor:
    """For one image x (1×C×H×W): the original, the covered input (covered pixels grey) and n
    completions, as n + 2 images in a row."""
    if "complete" not in model.abilities:
        raise UserError(f"{model.name} cannot complete images: completion needs an autoregressive model "
                        f"(pixelcnn, gated-pixelcnn, pixelrnn-row, pixelrnn-diag, pixel-lstm)")
    _, _, h, w = x.shape
    mask = cover_mask(cover, h, w).to(x.device)
    condition = None if label is None else torch.full((n,), label, dtype=torch.long, device=x.device)
    g = torch.Generator(device=model.device).manual_seed(seed)
    drawn = model.complete(x.expand(n, -1, -1, -1), mask, condition=condition, generator=g)
    shown = torch.where(mask, torch.full_like(x, 0.5), x)
    return torch.cat([x, shown, drawn.to(x.dtype)])
