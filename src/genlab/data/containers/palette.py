"""Palette pixels: every pixel one of N colours that come from the training images, held as an index.

The palette is fitted by k-means with a fixed seed: k-means++ seeding, then Lloyd's iterations, over the
distinct colours weighted by how often they occur (the same fit as over every pixel, and far cheaper), in
RGB (or grey) space or, with space="lab", in CIELAB (D65), where equal distances are closer to equal
differences as seen (grey images: in L*). Data with at most N distinct colours keep exactly those. The
colours are rounded to 8 bits and sorted dark to light; one that no training pixel would map to is
dropped, so a palette has at most N colours and every one of them occurs in the snapped training images.

An image is mapped to the palette pixel by pixel, to the nearest colour in RGB (squared distance, ties to
the lower index), whichever space the palette was fitted in: the palette alone (config.json) says how
a run's images are snapped.
"""
from __future__ import annotations

import dataclasses

import torch

from .base import DataInfo, ImageDataset

MAX_COLOURS = 1 << 16     # distinct colours k-means runs on; beyond it, a seeded sample of the pixels
CHUNK = 4096              # images per step when counting or mapping colours
SPACES = ("rgb", "lab")   # where k-means measures distances
DEFAULT_SPACE = "rgb"     # Lab fits: ~1% lower held-out ΔE76, ~7% higher RGB error (benchmarks/pokemon_palette.py)

# sRGB (IEC 61966-2-1) linear RGB -> CIE XYZ, D65; its rows sum to the D65 white (Xn, Yn, Zn).
_RGB_TO_XYZ = torch.tensor([[0.4124564, 0.3575761, 0.1804375],
                            [0.2126729, 0.7151522, 0.0721750],
                            [0.0193339, 0.1191920, 0.9503041]], dtype=torch.float64)
_DELTA = 6 / 29           # CIELAB's break between the cube root and the straight line near black


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


def srgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """8-bit sRGB values (…×3, any real numbers 0..255) to CIELAB L*, a*, b* under D65, float64."""
    c = rgb.double() / 255
    linear = torch.where(c <= 0.04045, c / 12.92, ((c.clamp(min=0) + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _RGB_TO_XYZ.t() / _RGB_TO_XYZ.sum(1)       # X/Xn, Y/Yn, Z/Zn
    f = torch.where(xyz > _DELTA ** 3, xyz.clamp(min=0) ** (1 / 3), xyz / (3 * _DELTA ** 2) + 4 / 29)
    fx, fy, fz = f.unbind(-1)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], -1)


def lab_to_srgb(lab: torch.Tensor) -> torch.Tensor:
    """CIELAB (D65, …×3) back to sRGB values on the 0..255 scale, float64, not clamped (Lab colours outside
    the sRGB gamut come out below 0 or above 255)."""
    lab = lab.double()
    fy = (lab[..., 0] + 16) / 116
    f = torch.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], -1)
    xyz = torch.where(f > _DELTA, f ** 3, 3 * _DELTA ** 2 * (f - 4 / 29)) * _RGB_TO_XYZ.sum(1)
    linear = xyz @ torch.linalg.inv(_RGB_TO_XYZ).t()
    c = torch.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear.clamp(min=0) ** (1 / 2.4) - 0.055)
    return c * 255


def to_space(colours: torch.Tensor, space: str) -> torch.Tensor:
    """8-bit colours P×C (C = 3, or 1 for grey) as points of `space`, float64: RGB as they are, or CIELAB
    (grey: L* alone, as a grey's a* and b* are 0)."""
    if space == "rgb":
        return colours.double()
    if colours.shape[1] == 1:
        return srgb_to_lab(colours.double().expand(-1, 3))[:, :1]
    return srgb_to_lab(colours)


def from_space(points: torch.Tensor, channels: int, space: str) -> torch.Tensor:
    """Points of `space` back to colours P×C on the 0..255 scale, float64, not yet rounded or clamped."""
    if space == "rgb":
        return points
    if channels == 1:
        lab = torch.cat([points, torch.zeros(len(points), 2, dtype=points.dtype)], 1)
        return lab_to_srgb(lab)[:, :1]
    return lab_to_srgb(points)


def fit_palette(images: torch.Tensor, n: int, seed: int = 0, iterations: int = 100,
                space: str = DEFAULT_SPACE) -> torch.Tensor:
    """At most n colours (uint8 K×C, dark to light) for uint8 N×C×H×W images, k-means in `space`."""
    if space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}, not {space!r}")
    channels = images.shape[1]
    codes, counts = colour_counts(images.cpu())
    g = torch.Generator().manual_seed(seed)
    if len(codes) > MAX_COLOURS:
        picks = torch.multinomial(counts.double(), MAX_COLOURS, replacement=True, generator=g)
        chosen, counts = picks.unique(return_counts=True)
        codes = codes[chosen]
    rgb, w = decode(codes, channels).double(), counts.double()
    if len(codes) <= n:
        return _sorted(rgb)
    x = to_space(rgb, space)
    centres = _kmeans_pp(x, w, n, g)
    for _ in range(iterations):
        a = nearest(x, centres)
        total = torch.zeros(n, dtype=torch.float64).index_add_(0, a, w)
        sums = torch.zeros_like(centres).index_add_(0, a, x * w[:, None])
        moved = torch.where(total[:, None] > 0, sums / total.clamp(min=1e-300)[:, None], centres)
        if torch.equal(moved, centres):
            break
        centres = moved
    palette = from_space(centres, channels, space).round().clamp(0, 255).unique(dim=0)
    used = torch.zeros(len(palette), dtype=torch.float64).index_add_(0, nearest(rgb, palette), w) > 0
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


def quantisation_error(images: torch.Tensor, palette: torch.Tensor) -> dict[str, float]:
    """How far uint8 images N×C×H×W move when snapped to the palette (RGB nearest, as everywhere), averaged
    over their pixels: the Euclidean distance in 8-bit RGB or grey levels (`rgb`) and CIE76 ΔE, the
    Euclidean distance in CIELAB (`delta_e`)."""
    codes, counts = colour_counts(images.cpu())
    colours = decode(codes, images.shape[1]).double()
    snapped = palette.double()[nearest(colours, palette)]
    w = counts.double() / counts.sum()
    rgb = ((colours - snapped) ** 2).sum(1).sqrt()
    delta_e = ((srgb_to_lab(colours.expand(-1, 3)) - srgb_to_lab(snapped.expand(-1, 3))) ** 2).sum(1).sqrt()
    return {"rgb": float(rgb @ w), "delta_e": float(delta_e @ w)}


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
    # The images as they were stay beside them: a feature network is learnt from those, so that palette and
    # 8-bit runs of one data set are judged in the same features.
    return dataclasses.replace(ds, train_x=snap(ds.train_x, info), test_x=snap(ds.test_x, info),
                               extra={**ds.extra, "original": ds})
