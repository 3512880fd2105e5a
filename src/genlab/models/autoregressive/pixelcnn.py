"""PixelCNN (van den Oord et al. 2016, "Pixel Recurrent Neural Networks", section 3.5).

A k×k mask-A convolution, then residual blocks (1×1 → 3×3 mask B → 1×1, ReLUs between, added to the
stream), then two 1×1 layers to the logits. Every convolution is masked (masked.py), so the whole net is
one forward pass at training time. Its receptive field has a blind spot (the upper right of the
pixel, beyond the first layer's reach); the gated PixelCNN removes it.

Cached sampling keeps, for every spatial layer, a padded map of its input (the queues of Ramachandran et
al. 2017, here whole maps: the images are small). When a row begins, each layer's kernel rows above the
centre are applied to the whole row; a new pixel then costs one window of its own row per layer.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ...errors import UserError
from ..base import option
from .base import AutoregressiveModel
from .masked import MaskedConv2d, PixelCache, pointwise
from .sampling import CachedHead


@dataclass
class PixelCNNConfig:
    channels: int = option(64, "features in the residual stream", low=1)
    blocks: int = option(6, "residual blocks (1×1, 3×3 mask B, 1×1)", low=0)
    kernel: int = option(7, "size of the first, mask-A convolution (odd)", low=1)
    head: int = option(64, "features of the 1×1 output layer", low=1)


class Block(nn.Module):
    def __init__(self, h: int, m: int, channels: int):
        super().__init__()
        self.reduce = MaskedConv2d(h, m, (1, 1), "B", channels)
        self.conv = MaskedConv2d(m, m, (3, 3), "B", channels)
        self.expand = MaskedConv2d(m, h, (1, 1), "B", channels)

    def forward(self, x):
        return x + self.expand(F.relu(self.conv(F.relu(self.reduce(F.relu(x))))))


class PixelCNN(AutoregressiveModel):
    name = "pixelcnn"
    Config = PixelCNNConfig

    def __init__(self, config: PixelCNNConfig, info):
        super().__init__(config, info)
        if config.kernel % 2 == 0:
            raise UserError(f"kernel must be odd, not {config.kernel}")
        c, h = self.pixels.channels, config.channels
        m = max(h // 2, c)
        if h < c or config.head < c:
            raise UserError(f"channels and head must be at least the image's {c} channels")
        self.first = MaskedConv2d(self.pixels.features, h, (config.kernel, config.kernel), "A", c)
        self.blocks = nn.ModuleList(Block(h, m, c) for _ in range(config.blocks))
        self.head = MaskedConv2d(h, config.head, (1, 1), "B", c)
        self.out = MaskedConv2d(config.head, c * self.pixels.k, (1, 1), "B", c)

    def forward(self, inp, condition=None):
        x = self.first(inp)
        for block in self.blocks:
            x = block(x)
        return self.out(F.relu(self.head(F.relu(x))))

    # ---- cached sampling ----
    def cache_start(self, inp, condition):
        n, _, h, w = inp.shape
        return {"first": PixelCache(self.first, n, h, w, inp),
                "blocks": [(pointwise(b.reduce), PixelCache(b.conv, n, h, w, inp), pointwise(b.expand))
                           for b in self.blocks],
                "head": CachedHead(self.head, self.out, self.pixels.k)}

    def cache_row(self, st, inp, r):
        if r > 0:
            st["first"].put_row(r - 1, inp[:, :, r - 1])     # the previous row is final now
        st["first"].row(r)
        for _, conv, _ in st["blocks"]:
            conv.row(r)

    def cache_step(self, st, inp, r, c, ch):
        st["first"].put_row(r, inp[:, :, r])                 # this row so far, this pixel's earlier channels
        x = st["first"].at(r, c)
        for (b1, w1), conv, (b2, w2) in st["blocks"]:
            conv.put(r, c, F.relu(torch.addmm(b1, F.relu(x), w1)))
            x = x + torch.addmm(b2, F.relu(conv.at(r, c)), w2)
        return st["head"].logits(x, ch)
