"""PixelRNN with Diagonal BiLSTM layers (van den Oord et al. 2016, section 3.2).

Each layer runs two LSTMs along the image's diagonals. Skewing the map (row r shifted right by r) turns
diagonals into columns; an LSTM then steps column by column, its gates from a 1×1 input-to-state
convolution (mask B over channel groups) and a 2×1 state-to-state convolution over the previous column.
Unskewed, the left-to-right LSTM's state at (r, c) comes from (r, c-1) and (r-1, c): it has seen every
pixel above-left. The right-to-left one (the same on the mirrored map) has seen every pixel above-right
but also the rest of its own row, so its output is shifted down one row before the two are added.

The field of a pixel is then everything before it but one value: the last channel of the last pixel of
the row above, for pixels further left than first_kernel // 2 from the row's end. The mask-A first layer
hands that value only to pixels after it and below it, and the right-to-left LSTM reaches into the row
above only. (The paper's "complete" field has this hole too.)

States at the skewed map's padding are held at zero, which makes the first column's predecessor zero:
exactly what the cached form assumes.

Cached sampling: the left-to-right state moves with the pixels; the right-to-left one is run along a
row once the row is finished, when the next row begins (it is needed one row down only).
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .masked import MaskedConv2d, pointwise
from .pixelrnn import PixelRNN, lstm_cell


def diagonal_lstm(gates: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """D independent left-to-right diagonal LSTMs (the two directions run side by side).

    gates: input-to-state pre-activations D×N×H×W×4h; weight D×2h×4h acts on [state above, state to
    the left], bias D×4h. Returns the hidden states D×N×H×W×h."""
    d, n, height, width, g4 = gates.shape
    h, cols = g4 // 4, width + height - 1
    # Skew: row r moves right by r, so that column j holds the diagonal r + c = j. (unbind and stack
    # rather than indexing in a loop: the gradient is then one tensor, not a full-size zero map per slice.)
    skewed = torch.stack([F.pad(row, (0, 0, r, height - 1 - r)) for r, row in enumerate(gates.unbind(2))], 2)
    r = torch.arange(height, device=gates.device)[:, None]
    j = torch.arange(cols, device=gates.device)[None]
    valid = ((j - r >= 0) & (j - r < width)).to(gates.dtype)[..., None]          # H×cols×1: in the image
    hid = cell = gates.new_zeros(d, n, height, h)
    out = []
    for col, g in enumerate(skewed.unbind(3)):                                  # g: D×N×H×4h
        above = F.pad(hid, (0, 0, 1, 0))[:, :, :height]                         # previous column, row r-1
        s2s = torch.baddbmm(bias[:, None], torch.cat([above, hid], -1).flatten(1, 2), weight)
        hid, cell = lstm_cell(g + s2s.view_as(g), cell, dim=-1)
        hid, cell = hid * valid[:, col], cell * valid[:, col]
        out.append(hid)
    out = torch.stack(out, dim=3)                                                # D×N×H×cols×h
    return torch.stack([row[:, :, r:r + width] for r, row in enumerate(out.unbind(2))], dim=2)


class DiagonalBiLSTMLayer(nn.Module):
    def __init__(self, h: int, channels: int):
        super().__init__()
        # Both directions' gates from one 1×1 convolution: [left-to-right i f o g | right-to-left i f o g].
        self.input_to_state = MaskedConv2d(h, 8 * h, (1, 1), "B", channels, out_chunks=8)
        bound = 1 / math.sqrt(2 * h)                                             # nn.Linear's initialisation
        self.s2s_weight = nn.Parameter(torch.empty(2, 2 * h, 4 * h).uniform_(-bound, bound))
        self.s2s_bias = nn.Parameter(torch.empty(2, 4 * h).uniform_(-bound, bound))
        self.out = MaskedConv2d(h, h, (1, 1), "B", channels)

    def forward(self, x):
        fwd, bwd = self.input_to_state(x).permute(0, 2, 3, 1).chunk(2, dim=3)     # N×H×W×4h each
        hid = diagonal_lstm(torch.stack([fwd, bwd.flip(2)]), self.s2s_weight, self.s2s_bias)
        fwd, bwd = hid[0], hid[1].flip(2)
        bwd = F.pad(bwd, (0, 0, 0, 0, 1, 0))[:, :-1]           # down one row: it has seen its own row
        return x + self.out((fwd + bwd).permute(0, 3, 1, 2))

    # ---- cached ----
    def cache_start(self, n, height, width, like):
        h = self.out.weight.shape[0]
        z = like.new_zeros
        w_in, b_in = self.input_to_state.masked_weight().flatten(1).chunk(2), self.input_to_state.bias.chunk(2)
        return {"x": z(n, height, width, h), "fwd": z(n, height, width, h), "fwd_cell": z(n, width, h),
                "bwd": z(n, height, width, h), "zero": z(n, h), "out": pointwise(self.out),
                # left to right, all of a pixel's gates in one product: [state above, state left, input]
                "fwd_w": torch.cat([self.s2s_weight[0], w_in[0].t()]), "fwd_b": self.s2s_bias[0] + b_in[0],
                "bwd_in": (w_in[1], b_in[1] + self.s2s_bias[1])}

    def cache_row(self, st, r):
        """Run the right-to-left LSTM along the finished row r-1 (it feeds row r)."""
        if r == 0:
            return
        zero, bwd, width = st["zero"], st["bwd"], st["x"].shape[2]
        gates = F.linear(st["x"][:, r - 1], *st["bwd_in"])                          # N×W×4h
        hid = cell = zero
        for c in reversed(range(width)):
            above = bwd[:, r - 2, c] if r >= 2 else zero
            hid, cell = lstm_cell(torch.addmm(gates[:, c], torch.cat([above, hid], 1), self.s2s_weight[1]), cell)
            bwd[:, r - 1, c] = hid

    def cache_step(self, st, x, r, c):
        zero = st["zero"]
        st["x"][:, r, c] = x
        above = st["fwd"][:, r - 1, c] if r > 0 else zero
        beside = st["fwd"][:, r, c - 1] if c > 0 else zero
        cell = st["fwd_cell"][:, c - 1] if c > 0 else zero
        hid, cell = lstm_cell(torch.addmm(st["fwd_b"], torch.cat([above, beside, x], 1), st["fwd_w"]), cell)
        st["fwd"][:, r, c], st["fwd_cell"][:, c] = hid, cell
        down = st["bwd"][:, r - 1, c] if r > 0 else zero
        b, w = st["out"]
        return x + torch.addmm(b, hid + down, w)


class DiagonalBiLSTM(PixelRNN):
    name = "pixelrnn-diag"
    Layer = DiagonalBiLSTMLayer
