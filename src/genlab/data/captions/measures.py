"""What genlab measures on each image, to caption it, from the image's moments (intensity as mass; rows y
grow downwards):
  stroke width   the width of the rectangle with the ink's area A (m00) and perimeter P (the image's total
                 variation): P/4 − √((P/4)² − A), exact for an upright bar of any length
  slant          |μ11 / μ02|: how far the ink moves sideways per row, 0 for an upright stroke
  size           √(μ20 + μ02): the radius of gyration of the ink, in pixels
  brightness     the mean intensity of the inked pixels (those above 2% of full scale)
  area           the inked pixels' share of the image
  width          √(12·μ20) of the inked pixels: the width of a rectangle with the same spread across
"""
from __future__ import annotations

import torch

INK = 0.02                    # an inked pixel: above 2% of full scale


def _grey(images: torch.Tensor) -> torch.Tensor:
    """N×C×H×W uint8 (or floats in [0, 1]) as N×H×W float64 intensities in [0, 1]."""
    x = images.double()
    if not images.is_floating_point():
        x = x / 255
    return x.mean(1)


def _moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mass and the central second moments (μ20 across, μ02 down, μ11) of N×H×W weights, per image."""
    _, h, w = x.shape
    ys, xs = torch.arange(h, dtype=x.dtype), torch.arange(w, dtype=x.dtype)
    cols, rows = x.sum(1), x.sum(2)                                   # mass per column (N×W), per row (N×H)
    m = cols.sum(1)
    safe = m.clamp_min(1e-12)
    cx, cy = cols @ xs / safe, rows @ ys / safe
    mu20 = cols @ (xs * xs) / safe - cx * cx
    mu02 = rows @ (ys * ys) / safe - cy * cy
    mu11 = torch.einsum("nhw,h,w->n", x, ys, xs) / safe - cx * cy
    return m, mu20.clamp_min(0), mu02.clamp_min(0), mu11


def stroke_width(images: torch.Tensor) -> torch.Tensor:
    x = _grey(images)
    area = x.sum((1, 2))
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))          # strokes at the border have an edge there too
    perimeter = padded.diff(dim=1).abs().sum((1, 2)) + padded.diff(dim=2).abs().sum((1, 2))
    q = perimeter / 4
    return q - (q * q - area).clamp_min(0).sqrt()


def slant(images: torch.Tensor) -> torch.Tensor:
    _, _, mu02, mu11 = _moments(_grey(images))
    return (mu11 / mu02.clamp_min(1e-12)).abs()


def size(images: torch.Tensor) -> torch.Tensor:
    _, mu20, mu02, _ = _moments(_grey(images))
    return (mu20 + mu02).sqrt()


def brightness(images: torch.Tensor) -> torch.Tensor:
    x = _grey(images)
    ink = x > INK
    return (x * ink).sum((1, 2)) / ink.sum((1, 2)).clamp_min(1)


def area(images: torch.Tensor) -> torch.Tensor:
    ink = _grey(images) > INK
    return ink.double().mean((1, 2))


def width(images: torch.Tensor) -> torch.Tensor:
    _, mu20, _, _ = _moments((_grey(images) > INK).double())
    return (12 * mu20).sqrt()
