"""Masked convolutions: the building block that keeps a convolutional network autoregressive.

Pixels come in raster order and, within a pixel, channels in turn (R, then G given R, then B given R
and G). A layer's features are split into C groups, one per image channel; the feature of group g at a
pixel may see every channel of earlier pixels, and at the pixel itself only

    mask A (first layer):  image channels  < g     (it must not see the value it predicts)
    mask B (later layers): feature groups <= g     (group g already holds only what channel g may see)

(van den Oord et al. 2016). With one channel, mask A simply hides the centre and mask B keeps it.

`PixelCache` applies a layer one pixel at a time from a padded map of its input: the cache that makes
sampling cost a small window per layer per pixel, not a whole image.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def groups(n: int, channels: int, chunks: int = 1) -> torch.Tensor:
    """Group id (image channel) of each of n features: n/chunks features per chunk (e.g. the gates of an
    LSTM or the two halves of a gated unit), each chunk split into `channels` contiguous groups."""
    per = n // chunks
    if per * chunks != n or per < channels:
        raise ValueError(f"{n} features do not split into {chunks} chunks of {channels} groups")
    return (torch.arange(per) * channels // per).repeat(chunks)


def centre_mask(out_groups: torch.Tensor, in_groups: torch.Tensor, kind: str) -> torch.Tensor:
    """out×in: which input feature an output feature may see at its own pixel."""
    if kind == "A":
        return out_groups[:, None] > in_groups[None, :]
    if kind == "B":
        return out_groups[:, None] >= in_groups[None, :]
    raise ValueError(f"mask kind must be A or B, not {kind!r}")


class MaskedConv2d(nn.Module):
    """A kh×kw convolution whose output at pixel (r, c) sits at kernel position (cy, cx) and sees only
    kernel positions before it in raster order, plus the centre through the channel-group mask.

    (kh, kw) = (k, k), centre in the middle: the PixelCNN convolution. (1, k): a masked convolution along
    the row. (1, p+1), centre on the right: the horizontal stack of the gated PixelCNN. (1, 1): a 1×1
    convolution that keeps channel groups apart.
    """

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int], kind: str, channels: int,
                 centre: tuple[int, int] | None = None, in_chunks: int = 1, out_chunks: int = 1):
        super().__init__()
        kh, kw = kernel
        cy, cx = centre if centre is not None else (kh // 2, kw // 2)
        self.kernel, self.centre = (kh, kw), (cy, cx)
        self.pad = (cx, kw - 1 - cx, cy, kh - 1 - cy)           # F.pad order: left, right, top, bottom
        self.weight = nn.Parameter(torch.empty(cout, cin, kh, kw))
        self.bias = nn.Parameter(torch.zeros(cout))
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)        # nn.Conv2d's default
        ys, xs = torch.meshgrid(torch.arange(kh), torch.arange(kw), indexing="ij")
        past = (ys < cy) | ((ys == cy) & (xs < cx))
        mask = past.expand(cout, cin, kh, kw).clone().float()
        mask[:, :, cy, cx] = centre_mask(groups(cout, channels, out_chunks), groups(cin, channels, in_chunks), kind)
        self.register_buffer("mask", mask, persistent=False)  # rebuilt from the config, never stored

    def masked_weight(self) -> torch.Tensor:
        return self.weight * self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left, right, top, bottom = self.pad
        if left == right and top == bottom:     # the convolution pads itself: no padded copy of x (18% of a
            return F.conv2d(x, self.masked_weight(), self.bias, padding=(top, left))   # PixelCNN step)
        return F.conv2d(F.pad(x, self.pad), self.masked_weight(), self.bias)


class PixelCache:
    """A masked convolution applied one pixel at a time, for cached sampling.

    Its input is kept as a padded, channels-last map. When a row begins, the part of the kernel over the
    rows above is applied to the whole row at once (those rows are final); each pixel then needs only the
    centre row's window (pixels c-cx … c) — one small matrix product on a view, no copy.
    Inputs not yet written are zeros and meet zero weights, so they change nothing.
    """

    def __init__(self, conv: MaskedConv2d, n: int, height: int, width: int, like: torch.Tensor):
        l, r, t, b = conv.pad
        cy, cx = conv.centre
        w = conv.masked_weight()
        cout, cin = w.shape[:2]
        self.conv, self.t, self.l, self.cy, self.cx = conv, t, l, cy, cx
        self.buf = like.new_zeros(n, height + t + b, width + l + r, cin)
        self.w_above = w[:, :, :cy]                                                  # cout×cin×cy×kw
        self.w_row = w[:, :, cy, :cx + 1].permute(2, 1, 0).reshape(-1, cout).contiguous()   # (cx+1)·cin×cout
        self.above = conv.bias.expand(n, width, cout)

    def put(self, r: int, c: int, value: torch.Tensor) -> None:
        """The input at (r, c), N×cin."""
        self.buf[:, r + self.t, c + self.l] = value

    def put_row(self, r: int, values: torch.Tensor) -> None:
        """The input along row r, N×cin×W."""
        self.buf[:, r + self.t, self.l:self.l + values.shape[2]] = values.transpose(1, 2)

    def row(self, r: int) -> None:
        """Start row r: apply the kernel's rows above the centre to the whole row."""
        if self.cy:
            slab = self.buf[:, r + self.t - self.cy:r + self.t].permute(0, 3, 1, 2)
            self.above = F.conv2d(slab, self.w_above, self.conv.bias)[:, :, 0].transpose(1, 2)   # N×W×cout

    def at(self, r: int, c: int) -> torch.Tensor:
        """The output at (r, c), N×cout; the inputs up to (r, c) must be in place."""
        window = self.buf[:, r + self.t, c + self.l - self.cx:c + self.l + 1].flatten(1)
        return torch.addmm(self.above[:, c], window, self.w_row)


def pointwise(conv: MaskedConv2d) -> tuple[torch.Tensor, torch.Tensor]:
    """(bias, weightᵀ) of a 1×1 masked convolution, for torch.addmm(bias, x, weightᵀ) on N×cin vectors."""
    return conv.bias, conv.masked_weight().flatten(1).t().contiguous()
