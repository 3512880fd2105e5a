"""Palette pixels: every pixel one of N colours that come from the training images, held as an index.

The palette is fitted by k-means in RGB (or grey) space with a fixed seed: k-means++ seeding, then
Lloyd's iterations, over the distinct colours weighted by how often they occur (the same fit as over every
pixel, and far cheaper). Data with at most N distinct colours keep exactly those. The colours are rounded
to 8 bits and sorted dark to light; one that no training pixel would map to is dropped, so a palette has
at most N colours and every one of them occurs in the snapped training images.

An image is mapped to the palette pixel by pixel, to the nearest colour (squared distance, ties to the
lower index).
"""
from __future__ import annotations

import dataclasses

import torch

from .base import DataInfo, ImageDataset

MAX_COLOURS = 1 << 16     # distinct colours k-means runs on; beyond it, a seeded sample of the pixels
CHUNK = 4096              # images per step when counting or mapping colours


def colour_codes(images: torch.Tensor) -> torch.Tensor:
    """uint8 N×C×H×W to one int64 per pixel, N×H×W: the colour's channels as base-256 digits."""
    codes = torch.zeros(images.shape[0], *images.shape[2:], dtype=torch.long, device=images.device)
    for ch in range(images.shape[1]):
        codes = codes * 256 + images[:, ch].long()
    return codes


def decode(codes: torch.Tensor, channels: int) -> torch.Tensor:
    """Codes (any shape S) back to colours S×C, uint8."""
    digits = [(codes // 256 ** (channels - 1 - ch)) % 256 for ch in range(channels)]
    return torch.stack(digits, -1).to(torch.uint8)


def nearest(colours: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """Index of the nearest palette colour (K×C) for each colour (P×C). float64: exact for 8-bit colours."""
    colours, palette = colours.double(), palette.double().to(colours.device)
    p2 = (palette ** 2).sum(1)
    # |x - p|² = |x|² - 2x·p + |p|²; |x|² is the same for every p.
    out = [(p2 - 2 * c @ palette.t()).argmin(1) for c in colours.split(16384)]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long, device=colours.device)


def colour_counts(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct colours' codes (sorted) and how many pixels have each."""
    codes, counts = zip(*(colour_codes(chunk).unique(return_counts=True) for chunk in images.split(CHUNK)))
    codes, inverse = torch.cat(codes).unique(return_inverse=True)
    return codes, torch.zeros(len(codes), dtype=torch.long).scatter_add_(0, inverse, torch.cat(counts))


def fit_palette(images: torch.Tensor, n: int, seed: int = 0, iterations: int = 100) -> torch.Tensor:
    """At most n colours (uint8 K×C, dark to light) for uint8 N×C×H×W images."""
    channels = images.shape[1]
    codes, counts = colour_counts(images.cpu())
    g = torch.Generator().manual_seed(seed)
    if len(codes) > MAX_COLOURS:
        picks = torch.multinomial(counts.double(), MAX_COLOURS, replacement=True, generator=g)
        chosen, counts = picks.unique(return_counts=True)
        codes = codes[chosen]
    x, w = decode(codes, channels).double(), counts.double()
    if len(codes) <= n:
        return _sorted(x)
    centres = _kmeans_pp(x, w, n, g)
    for _ in range(iterations):
        a = nearest(x, centres)
        total = torch.zeros(n, dtype=torch.float64).index_add_(0, a, w)
        sums = torch.zeros_like(centres).index_add_(0, a, x * w[:, None])
        moved = torch.where(total[:, None] > 0, sums / total.clamp(min=1e-300)[:, None], centres)
        if torch.equal(moved, centres):
            break
        centres = moved
    palette = centres.round().clamp(0, 255).unique(dim=0)
    used = torch.zeros(len(palette), dtype=torch.float64).index_add_(0, nearest(x, palette), w) > 0
    return _sorted(palette[used])


def _kmeans_pp(x: torch.Tensor, w: torch.Tensor, n: int, g: torch.Generator) -> torch.Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii 2007), each colour weighted by its pixel count."""
    first = int(torch.multinomial(w, 1, generator=g))
    centres = [x[first]]
    d2 = ((x - x[first]) ** 2).sum(1)
    for _ in range(1, n):
        i = int(torch.multinomial(w * d2, 1, generator=g))   # more than n distinct colours: some d2 > 0
        centres.append(x[i])
        d2 = torch.minimum(d2, ((x - x[i]) ** 2).sum(1))
    return torch.stack(centres)


def _sorted(palette: torch.Tensor) -> torch.Tensor:
    """uint8 colours by luminance (ITU-R 601 weights; grey: the level), ties by the colour itself."""
    palette = palette.round().to(torch.uint8)
    order = colour_codes(palette[:, :, None, None])[:, 0, 0].argsort()
    palette = palette[order]
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64) if palette.shape[1] == 3 else torch.ones(1)
    luminance = palette.double() @ weights.double()
    return palette[luminance.argsort(stable=True)]


def palette_index(images: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """uint8 N×C×H×W to the index of each pixel's nearest palette colour, long N×1×H×W."""
    out = []
    for chunk in images.split(CHUNK):
        codes, inverse = colour_codes(chunk).unique(return_inverse=True)
        out.append(nearest(decode(codes, chunk.shape[1]), palette)[inverse])
    return torch.cat(out).unsqueeze(1) if out else torch.zeros(0, 1, *images.shape[2:], dtype=torch.long)


def palette_colours(index: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """Indices N×1×H×W to their colours, uint8 N×C×H×W."""
    return palette.to(index.device)[index[:, 0]].permute(0, 3, 1, 2).contiguous()


def info_palette(info: DataInfo) -> torch.Tensor:
    return torch.tensor(info.palette, dtype=torch.uint8).view(len(info.palette), info.shape[0])


def snap(images: torch.Tensor, info: DataInfo) -> torch.Tensor:
    """uint8 images with every pixel its nearest palette colour; unchanged for other pixel kinds."""
    if info.pixels != "palette":
        return images
    palette = info_palette(info)
    return palette_colours(palette_index(images, palette), palette)


def in_palette(ds: ImageDataset, info: DataInfo) -> ImageDataset:
    """The data set as a palette model sees it (both splits snapped); unchanged for other pixel kinds."""
    if info.pixels != "palette":
        return ds
    return dataclasses.replace(ds, train_x=snap(ds.train_x, info), test_x=snap(ds.test_x, info))
