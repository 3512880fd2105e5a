"""The independent-pixel baseline every likelihood should beat: each pixel on its own, fitted on the
training split. Binarised data: a Bernoulli per pixel. 8-bit data: a 256-way histogram per pixel.
Palette data: an N-way histogram per pixel over the palette's colours. All are exact discrete
likelihoods, in nats per image."""
from __future__ import annotations

import math

import torch

from ..data.containers.loader import Batches
from ..data.containers.palette import colour_codes


def independent_pixel_nll(train_u8: torch.Tensor, test: Batches) -> float:
    """Mean test NLL (nats per image) of the independent-pixel model fitted on uint8 training images."""
    n = len(train_u8)
    if test.binarize == "none":
        # the test images' own 8-bit values
        return histogram_nll(train_u8.flatten(1).long(), test.images.cpu().flatten(1).long(), 256)
    if test.binarize.startswith("palette"):
        # Both splits are in palette colours (palette.in_palette): number the colours, one value per pixel.
        # Every palette colour occurs in the training split, so the colours seen are the palette.
        codes, ids = torch.cat([colour_codes(train_u8), colour_codes(test.images.cpu())]).unique(return_inverse=True)
        ids = ids.flatten(1)
        return histogram_nll(ids[:n], ids[n:], len(codes))
    # Bernoulli: p is the training probability of a 1 (intensity / 255 under dynamic binarisation).
    x = train_u8.double() / 255 if test.binarize == "dynamic" else (train_u8 >= 128).double()
    p = ((x.sum(0) + 1) / (n + 2)).flatten()
    total, count = 0.0, 0
    for xb, *_ in test.epoch(0):
        xb = xb.flatten(1).double()
        total += float(-(xb * p.log() + (1 - xb) * (1 - p).log()).sum())
        count += len(xb)
    return total / count


def histogram_nll(train: torch.Tensor, test: torch.Tensor, k: int) -> float:
    """Mean test NLL (nats per image) of an add-one smoothed k-way histogram per pixel; values long N×D."""
    counts = torch.zeros(train.shape[1], k, dtype=torch.float64)
    counts.scatter_add_(1, train.t(), torch.ones_like(train.t(), dtype=torch.float64))
    logp = ((counts + 1) / (len(train) + k)).log()                          # D×k
    return float(-logp.gather(1, test.t()).sum(0).mean())


def independent_gaussian_nll(train_u8: torch.Tensor, test: Batches) -> float:
    """For 8-bit data modelled as continuous: a Gaussian per pixel fitted on the dequantised training
    images, scored like every dequantised density (its NLL plus D·log 256), nats per image. The baseline
    in a continuous model's own class; the histogram above also exploits that pixels take few values."""
    x = (train_u8.flatten(1).double() + 0.5) / 256
    mean = x.mean(0)
    # Dequantisation adds variance 1/(12·256²) to every pixel, constant ones included.
    var = x.var(0, unbiased=False) + 1 / (12 * 256 ** 2)
    total, count = 0.0, 0
    for xb, *_ in test.epoch(0):
        xb = xb.flatten(1).double()
        total += float((0.5 * ((xb - mean) ** 2 / var + var.log() + math.log(2 * math.pi))).sum())
        count += len(xb)
    return total / count + x.shape[1] * math.log(256)
