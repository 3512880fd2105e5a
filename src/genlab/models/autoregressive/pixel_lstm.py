"""Pixel LSTM: the simplest autoregressive image model, an LSTM over the flattened image.

The image is one sequence of values in raster order, channel by channel. At step t the LSTM reads the
value of step t-1 (nothing at t = 0) and a learned embedding of position t (which row, column and
channel comes next: an LSTM counting to 784 on its own learns slowly), and gives the logits of value t.
Each step sees every earlier value; there is no spatial structure at all — the baseline the
convolutional and two-dimensional recurrent models improve on.

Cached sampling carries the LSTM's state from one step to the next: one step per value.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..base import option
from .base import AutoregressiveModel


@dataclass
class PixelLSTMConfig:
    hidden: int = option(128, "LSTM state size", low=1)
    layers: int = option(2, "stacked LSTM layers", low=1)
    embed: int = option(16, "size of the learned position embedding", low=1)


class PixelLSTM(AutoregressiveModel):
    name = "pixel-lstm"
    Config = PixelLSTMConfig

    def __init__(self, config: PixelLSTMConfig, info):
        super().__init__(config, info)
        c, (h, w) = self.pixels.channels, info.shape[1:]
        self.step_features = self.pixels.features // c           # 1, or a palette colour's channels
        self.position = nn.Embedding(c * h * w, config.embed)
        self.lstm = nn.LSTM(self.step_features + config.embed, config.hidden, config.layers, batch_first=True)
        self.out = nn.Linear(config.hidden, self.pixels.k)

    def _steps(self, inp):
        """The LSTM's inputs: value t-1 beside the embedding of position t, N×T×(F+E)."""
        n, f = len(inp), self.step_features
        seq = inp.permute(0, 2, 3, 1).reshape(n, -1, f)                  # raster order, channels inside
        prev = torch.cat([seq.new_zeros(n, 1, f), seq[:, :-1]], dim=1)
        pos = self.position.weight.to(inp.dtype).expand(n, -1, -1)
        return torch.cat([prev, pos], dim=2)

    def forward(self, inp, condition=None):
        (n, _, h, w), c = inp.shape, self.pixels.channels
        out, _ = self.lstm(self._steps(inp))
        logits = self.out(out).view(n, h, w, c * self.pixels.k)
        return logits.permute(0, 3, 1, 2)                                # N×(C·K)×H×W

    # ---- cached: one LSTM step per value ----
    def cache_start(self, inp, condition):
        return {"state": None}

    def cache_step(self, st, inp, r, c, ch):
        channels, width, f = self.pixels.channels, inp.shape[3], self.step_features
        t = (r * width + c) * channels + ch
        if t == 0:
            prev = inp.new_zeros(len(inp), f)
        else:
            pr, rest = divmod(t - 1, width * channels)
            pc, pch = divmod(rest, channels)
            prev = inp[:, pch * f:(pch + 1) * f, pr, pc]
        x = torch.cat([prev, self.position.weight[t].to(inp.dtype).expand(len(inp), -1)], dim=1)
        out, st["state"] = self.lstm(x[:, None], st["state"])
        return self.out(out[:, 0])
