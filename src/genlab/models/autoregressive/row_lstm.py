"""PixelRNN with Row LSTM layers (van den Oord et al. 2016, section 3.1).

The image is processed a row at a time. For row r, an LSTM's four gates are
    input-to-state:  a masked 1×3 convolution of the layer's input along row r (pixels c-1 and c;
                     at c itself only the channel groups mask B allows)
    state-to-state:  a 1×3 convolution of the LSTM's hidden row r-1 (pixels c-1, c, c+1)
so each pixel sees a triangle of the rows above, widening by one pixel per row on each side.

Cached sampling: the state-to-state part of row r is computed once, when row r begins; then each
pixel needs only its own input-to-state window and one cell update.
"""
from __future__ import annotations

import torch
from torch import nn

from .masked import MaskedConv2d, PixelCache, pointwise
from .pixelrnn import PixelRNN, lstm_cell


class RowLSTMLayer(nn.Module):
    def __init__(self, h: int, channels: int, k: int = 3):
        super().__init__()
        p = k // 2
        self.input_to_state = MaskedConv2d(h, 4 * h, (1, p + 1), "B", channels, centre=(0, p), out_chunks=4)
        self.state_to_state = nn.Conv1d(h, 4 * h, k, padding=p)
        self.out = MaskedConv2d(h, h, (1, 1), "B", channels)

    def forward(self, x):
        n, h, _, width = x.shape
        gates = self.input_to_state(x)                                # every row at once: N×4h×H×W
        hid, cell = x.new_zeros(n, h, width), x.new_zeros(n, h, width)
        rows = []
        for g in gates.unbind(2):          # (unbind: one gradient tensor, not a zero map per row)
            hid, cell = lstm_cell(g + self.state_to_state(hid), cell)
            rows.append(hid)
        return x + self.out(torch.stack(rows, dim=2))

    # ---- cached ----
    def cache_start(self, n, height, width, like):
        h = self.out.weight.shape[0]
        return {"in": PixelCache(self.input_to_state, n, height, width, like), "out": pointwise(self.out),
                "hid": like.new_zeros(n, h, width), "cell": like.new_zeros(n, width, h), "prev_cell": None}

    def cache_row(self, st, r):
        # The state-to-state part of row r's gates, from hidden row r-1 (zeros for r = 0), becomes the
        # part of each pixel's input-to-state product known in advance.
        st["in"].above = self.state_to_state(st["hid"]).transpose(1, 2) + self.input_to_state.bias
        st["prev_cell"], st["cell"] = st["cell"], torch.zeros_like(st["cell"])
        st["hid"] = torch.zeros_like(st["hid"])

    def cache_step(self, st, x, r, c):
        st["in"].put(r, c, x)
        hid, cell = lstm_cell(st["in"].at(r, c), st["prev_cell"][:, c])
        st["hid"][:, :, c], st["cell"][:, c] = hid, cell
        b, w = st["out"]
        return x + torch.addmm(b, hid, w)


class RowLSTM(PixelRNN):
    name = "pixelrnn-row"
    Layer = RowLSTMLayer
