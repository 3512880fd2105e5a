"""Pixel LSTM: the simplest autoregressive image model, an LSTM over the flattened image.

The image is one sequence of values in raster order, channel by channel. At step t the LSTM reads the
value of step t-1 (nothing at t = 0) and a learned embedding of position t (which row, column and
channel comes next: an LSTM counting to 784 on its own learns slowly), and gives the logits of value t.
Each step sees every earlier value; there is no spatial structure at all — the baseline the
convolutional and two-dimensional recurrent models improve on.

Cached sampling carries the LSTM's state from one step to the next: one step per value, the cell's maths
done by hand on weights arranged once per sample (nn.LSTM's per-call overhead outweighs a single step).
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
        """nn.LSTM's own cell maths, by hand: called once per value, its per-call overhead costs more than
        the step's arithmetic. Every layer's state sits in one buffer, [value t-1 | h_0 | … | h_L-1]: layer
        l reads its input and its last state as one block of columns and writes its new state where the
        layer above reads its input, so a step copies nothing but value t-1. The position embedding's share
        of the first layer's gates is computed for every step at once, here; every view a step uses is
        made here too (a slice costs about what a small step's arithmetic does)."""
        n, f, hidden, dtype = len(inp), self.step_features, self.config.hidden, inp.dtype
        # nn.LSTM's gates are (i, f, g, o); as (i, f, o, g) one sigmoid and one tanh cover them
        order = torch.cat([torch.arange(2 * hidden), torch.arange(3 * hidden, 4 * hidden),
                           torch.arange(2 * hidden, 3 * hidden)]).to(inp.device)
        buf = inp.new_zeros(n, f + self.config.layers * hidden)
        layers = []
        for l in range(self.config.layers):
            w_ih, w_hh = (getattr(self.lstm, f"weight_{k}_l{l}").to(dtype)[order] for k in ("ih", "hh"))
            bias = (getattr(self.lstm, f"bias_ih_l{l}") + getattr(self.lstm, f"bias_hh_l{l}")).to(dtype)[order]
            if l == 0:            # step t's row: its position's embedding through its columns, plus the biases
                bias = torch.addmm(bias, self.position.weight.to(dtype), w_ih[:, f:].t()).unbind(0)
                w_ih = w_ih[:, :f]
            start = 0 if l == 0 else f + (l - 1) * hidden
            layers.append((buf[:, start:f + (l + 1) * hidden],                # reads: input, then own last state
                           torch.cat([w_ih, w_hh], 1).t().contiguous(), bias, inp.new_zeros(n, hidden),
                           buf[:, f + l * hidden:f + (l + 1) * hidden]))     # writes: its new state
        gates = inp.new_empty(n, 4 * hidden)
        return {"prev": buf[:, :f], "layers": layers, "top": layers[-1][-1], "gates": gates,
                "views": (gates[:, :3 * hidden], *gates.split(hidden, 1)), "tanh": inp.new_empty(n, hidden),
                "out": (self.out.bias.to(dtype), self.out.weight.to(dtype).t())}

    def cache_step(self, st, inp, r, c, ch):
        channels, width, f = self.pixels.channels, inp.shape[3], self.step_features
        t = (r * width + c) * channels + ch
        if t > 0:                                                         # at t = 0 it reads zeros
            pr, rest = divmod(t - 1, width * channels)
            pc, pch = divmod(rest, channels)
            st["prev"].copy_(inp[:, pch * f:(pch + 1) * f, pr, pc])
        gates, tanh, (sigmoids, i, forget, o, g) = st["gates"], st["tanh"], st["views"]
        for l, (reads, weight, bias, cell, writes) in enumerate(st["layers"]):
            torch.addmm(bias[t] if l == 0 else bias, reads, weight, out=gates)
            sigmoids.sigmoid_()
            g.tanh_()
            cell.mul_(forget).addcmul_(i, g)
            torch.mul(o, torch.tanh(cell, out=tanh), out=writes)
        b, w = st["out"]
        return torch.addmm(b, st["top"], w)
