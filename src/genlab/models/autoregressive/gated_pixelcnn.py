"""Gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN Decoders").

Two stacks remove PixelCNN's blind spot:
  vertical:    k-wide convolutions over the rows above only, so at row r it has seen exactly rows < r;
  horizontal:  1×(p+1) masked convolutions along the row (pixels c-p … c), fed the vertical stack's
               features of the same pixel through a 1×1 link, with a residual connection.
Both use gated units tanh(a)·σ(b); a class label, when the model is conditional, adds a learned bias to
every gate of both stacks. The field of pixel (r, c) is the full rectangle of rows r-R … r-1, columns
c-R … c+R, and the row's pixels c-R … c-1 (R = first kernel // 2 + (layers-1) · kernel // 2).

Cached sampling: at the start of each row the whole vertical stack is computed for that row (it depends
on earlier rows only); then each pixel costs one window per horizontal layer.
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
class GatedPixelCNNConfig:
    channels: int = option(32, "features per stack", low=1)
    layers: int = option(8, "gated layers (each a vertical and a horizontal step)", low=1)
    first_kernel: int = option(7, "kernel of the first layer (odd, at least 3)", low=3)
    kernel: int = option(3, "kernel of the later layers (odd)", low=1)
    head: int = option(64, "features of the 1×1 output layer", low=1)
    conditional: bool = option(False, "condition on the class label (labelled data only); "
                                      "then `genlab sample RUN --class K` draws class K")


def gate(a: torch.Tensor) -> torch.Tensor:
    t, s = a.chunk(2, dim=1)
    return torch.tanh(t) * torch.sigmoid(s)


class GatedLayer(nn.Module):
    def __init__(self, cin: int, h: int, k: int, first: bool, channels: int, classes: int):
        super().__init__()
        p = k // 2
        self.first, self.p = first, p
        # Vertical: the first layer sees rows r-p … r-1 of the image; later ones rows r-p … r of the
        # vertical features below them, which themselves hold rows < r only.
        self.v_rows = p if first else p + 1
        self.v_pad = (p, p, p, -1) if first else (p, p, p, 0)     # left, right, top, bottom (-1: crop)
        self.vconv = nn.Conv2d(cin, 2 * h, (self.v_rows, k))
        self.link = nn.Conv2d(2 * h, 2 * h, 1)
        self.hconv = MaskedConv2d(cin, 2 * h, (1, p + 1), "A" if first else "B", channels,
                                  centre=(0, p), out_chunks=2)
        self.hout = MaskedConv2d(h, h, (1, 1), "B", channels)
        self.embed = nn.Embedding(classes, 4 * h) if classes else None

    def cond(self, y):
        """The class's biases of the vertical and the horizontal gates (none for an unconditional model)."""
        if self.embed is None:
            return 0, 0
        return self.embed(y)[:, :, None, None].chunk(2, dim=1)

    def forward(self, v, h, y):
        cv, ch = self.cond(y)
        vpre = self.vconv(F.pad(v, self.v_pad)) + cv
        hpre = self.hconv(h) + self.link(vpre) + ch
        hnew = self.hout(gate(hpre))
        return gate(vpre), (hnew if self.first else h + hnew)


class GatedPixelCNN(AutoregressiveModel):
    name = "gated-pixelcnn"
    conditioning = "class"
    optional_conditioning = True      # only with conditional=true
    Config = GatedPixelCNNConfig

    def __init__(self, config: GatedPixelCNNConfig, info):
        super().__init__(config, info)
        c, h = self.pixels.channels, config.channels
        for k in (config.kernel, config.first_kernel):
            if k % 2 == 0:
                raise UserError(f"kernels must be odd, not {k}")
        if h < c or config.head < c:
            raise UserError(f"channels and head must be at least the image's {c} channels")
        self.layers = nn.ModuleList(
            GatedLayer(self.pixels.features if i == 0 else h, h, config.first_kernel if i == 0 else config.kernel,
                       i == 0, c, self.num_conditions) for i in range(config.layers))
        self.head = MaskedConv2d(h, config.head, (1, 1), "B", c)
        self.out = MaskedConv2d(config.head, c * self.pixels.k, (1, 1), "B", c)

    def _labels(self, condition, n):
        if self.condition_kind == "none":
            return None
        if condition is None:
            raise UserError(f"this {self.name} is conditional: it needs a class label for every image")
        y = condition.to(self.device).long()
        self.check_condition(y, n)
        return y.expand(n) if y.dim() == 0 else y

    def sampling_condition(self, n, condition):
        if self.condition_kind == "class" and condition is None:    # no class asked for: cycle through them, as a grid
            return torch.arange(n, device=self.device) % self.num_conditions
        return condition

    def forward(self, inp, condition=None):
        y = self._labels(condition, len(inp))
        v = h = inp
        for layer in self.layers:
            v, h = layer(v, h, y)
        return self.out(F.relu(self.head(F.relu(h))))

    # ---- cached sampling ----
    def cache_start(self, inp, condition):
        n, _, height, width = inp.shape
        vin = []
        for layer in self.layers:
            l, r, t, _ = layer.v_pad
            vin.append(inp.new_zeros(n, layer.vconv.weight.shape[1], height + t, width + l + r))  # padded
        return {"y": self._labels(condition, n), "vin": vin,
                "h": [PixelCache(layer.hconv, n, height, width, inp) for layer in self.layers],
                "hout": [pointwise(layer.hout) for layer in self.layers],
                "head": CachedHead(self.head, self.out, self.pixels.k)}

    def cache_row(self, st, inp, r):
        """The vertical stack for row r (it needs rows < r only, all final now), and its link into
        the horizontal stack, which becomes the part of each horizontal pre-activation known in advance."""
        width = inp.shape[3]
        if r > 0:
            first = self.layers[0]
            st["vin"][0][:, :, r - 1 + first.v_pad[2], first.v_pad[0]:first.v_pad[0] + width] = inp[:, :, r - 1]
        for i, layer in enumerate(self.layers):
            cv, ch = layer.cond(st["y"])
            vpre = layer.vconv(st["vin"][i][:, :, r:r + layer.v_rows]) + cv             # N×2h×1×W
            link = (layer.link(vpre) + ch)[:, :, 0].transpose(1, 2)                      # N×W×2h
            st["h"][i].above = link + layer.hconv.bias
            if i + 1 < len(self.layers):
                nxt = self.layers[i + 1]
                st["vin"][i + 1][:, :, r + nxt.v_pad[2], nxt.v_pad[0]:nxt.v_pad[0] + width] = gate(vpre)[:, :, 0]

    def cache_step(self, st, inp, r, c, ch):
        st["h"][0].put_row(r, inp[:, :, r])                  # this row so far, this pixel's earlier channels
        h = None
        for i, (hc, (bo, wo)) in enumerate(zip(st["h"], st["hout"])):
            if i > 0:
                hc.put(r, c, h)
            hnew = torch.addmm(bo, gate(hc.at(r, c)), wo)
            h = hnew if i == 0 else h + hnew
        return st["head"].logits(h, ch)
