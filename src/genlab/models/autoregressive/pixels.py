"""What a pixel is to an autoregressive model: a discrete value per channel, and its distribution.

    binary pixels (binarised data, 0/1 floats):  a Bernoulli per channel, one logit
    8-bit pixels (--binarize none):              a 256-way softmax per channel
    palette pixels (--binarize palette:N):       one N-way softmax per pixel, over the palette's colours

A pixel holds `channels` discrete values (C, or one palette index) and the network reads it as
`features` numbers (each value scaled to [-1, 1]; for a palette, the index's colour, so that the net sees
which colours are alike). A network's output has channels·K features per pixel, value c's K logits at
features c·K … c·K+K-1 (so its channel groups line up with `masked.groups(channels·K, channels)`).
Sampling draws one uniform number per value and inverts the CDF, so two ways of computing the same
logits (naive and cached) turn the same random numbers into the same images.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from ...data.containers.base import DataInfo
from ...data.containers.palette import info_palette, palette_colours, palette_index


class Pixels:
    def __init__(self, info: DataInfo):
        self.binary = info.pixels == "binary"
        self.palette = info_palette(info) if info.pixels == "palette" else None
        self.channels = 1 if self.palette is not None else info.shape[0]     # discrete values per pixel
        self.features = info.shape[0]                                         # the network's inputs per pixel
        self.levels = 2 if self.binary else 256 if self.palette is None else len(self.palette)
        self.k = 1 if self.binary else self.levels                            # logits per value

    def values(self, x: torch.Tensor) -> torch.Tensor:
        """The discrete values (long, N×channels×H×W) of a batch as the data set gives it. 8-bit data
        arrive dequantised as (k + u)/256, samples as k/255: floor(x·256), capped at 255, is k for both.
        Palette data: each pixel's nearest palette colour (the data set's own are palette colours)."""
        if self.binary:
            return (x > 0.5).long()
        if self.palette is not None:
            return palette_index((x * 255).round().clamp(0, 255).to(torch.uint8), self._palette(x.device))
        return (x * 256).floor().clamp(0, 255).long()

    def encode(self, x: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
        """The network's input: each value scaled to [-1, 1] (zero padding then reads as 'no pixel')."""
        return self.scaled(self.values(x), dtype)

    def scaled(self, v: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
        """Values N×channels(×H×W) to the network's input N×features(×H×W)."""
        if self.palette is not None:
            colours = self._palette(v.device).to(dtype) * (2 / 255) - 1
            return colours[v.squeeze(1)].movedim(-1, 1)
        return v.to(dtype) * (2 / (self.levels - 1)) - 1

    def image(self, v: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
        """Discrete values back to what `sample` returns: 0/1 (binary), k/255 (8-bit) or the palette
        colours k/255 (N×C×H×W)."""
        if self.palette is not None:
            return palette_colours(v, self._palette(v.device)).to(dtype) / 255
        return v.to(dtype) / (self.levels - 1)

    def _palette(self, device) -> torch.Tensor:
        if self.palette.device != torch.device(device):
            self.palette = self.palette.to(device)
        return self.palette

    def log_prob(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-image log-likelihood in nats; logits N×(C·K)×H×W, x N×C×H×W."""
        v = self.values(x)
        if self.binary:
            lp = -F.binary_cross_entropy_with_logits(logits, v.to(logits.dtype), reduction="none")
        else:
            n, _, h, w = logits.shape
            lp = logits.view(n, self.channels, self.k, h, w).log_softmax(2).gather(2, v.unsqueeze(2))
        return lp.flatten(1).sum(1)

    def draw(self, logits: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """One channel's values (long, N) from its logits (N×K) and one uniform number per image (N)."""
        if self.binary:
            return (u < torch.sigmoid(logits[:, 0])).long()
        cdf = logits.softmax(-1).cumsum(-1)
        return (cdf < u[:, None]).sum(-1).clamp(max=self.k - 1)
