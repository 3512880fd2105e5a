"""What the two PixelRNNs share (van den Oord et al. 2016, "Pixel Recurrent Neural Networks"): a k×k
mask-A convolution, a stack of residual LSTM layers (row_lstm.py, diagonal_bilstm.py), and two masked
1×1 layers to the logits.

Each LSTM layer maps the residual stream x (N×h×H×W) to x + 1×1(its LSTM's output), and has a cached
form that carries its state along the image: `cache_start`, `cache_row` (once per row, with every
earlier row final) and `cache_step` (one pixel, given the layer's input there).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ...errors import UserError
from ..base import option
from .base import AutoregressiveModel
from .masked import MaskedConv2d, PixelCache
from .sampling import CachedHead


@dataclass
class PixelRNNConfig:
    channels: int = option(32, "features of the residual stream and of each LSTM state", low=1)
    layers: int = option(4, "LSTM layers", low=1)
    first_kernel: int = option(7, "size of the first, mask-A convolution (odd)", low=1)
    head: int = option(64, "features of the 1×1 output layer", low=1)


def lstm_cell(gates: torch.Tensor, c: torch.Tensor, dim: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """gates: the four pre-activations (input, forget, output, candidate) stacked on `dim`."""
    i, f, o, g = gates.chunk(4, dim=dim)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


class PixelRNN(AutoregressiveModel):
    Config = PixelRNNConfig
    Layer: type[nn.Module]          # the LSTM layer, set by each model

    def __init__(self, config: PixelRNNConfig, info):
        super().__init__(config, info)
        c, h, k = self.pixels.channels, config.channels, config.first_kernel
        if k % 2 == 0:
            raise UserError(f"first_kernel must be odd, not {k}")
        if h < c or config.head < c:
            raise UserError(f"channels and head must be at least the image's {c} channels")
        self.first = MaskedConv2d(self.pixels.features, h, (k, k), "A", c)
        self.layers = nn.ModuleList(self.Layer(h, c) for _ in range(config.layers))
        self.head = MaskedConv2d(h, config.head, (1, 1), "B", c)
        self.out = MaskedConv2d(config.head, c * self.pixels.k, (1, 1), "B", c)

    def forward(self, inp, condition=None):
        x = self.first(inp)
        for layer in self.layers:
            x = layer(x)
        return self.out(F.relu(self.head(F.relu(x))))

    # ---- cached sampling ----
    def cache_start(self, inp, condition):
        n, _, h, w = inp.shape
        return {"first": PixelCache(self.first, n, h, w, inp), "head": CachedHead(self.head, self.out, self.pixels.k),
                "layers": [layer.cache_start(n, h, w, inp) for layer in self.layers]}

    def cache_row(self, st, inp, r):
        if r > 0:
            st["first"].put_row(r - 1, inp[:, :, r - 1])      # the previous row is final now
        st["first"].row(r)
        for layer, s in zip(self.layers, st["layers"]):
            layer.cache_row(s, r)

    def cache_step(self, st, inp, r, c, ch):
        st["first"].put_row(r, inp[:, :, r])                  # this row so far, this pixel's earlier channels
        x = st["first"].at(r, c)
        for layer, s in zip(self.layers, st["layers"]):
            x = layer.cache_step(s, x, r, c)
        return st["head"].logits(x, ch)
