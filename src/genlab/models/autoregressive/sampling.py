"""Drawing images pixel by pixel, naively or from a cache; both turn the same random numbers into the
same images.

Every (pixel, channel) gets one uniform number, drawn up front from the caller's generator, and its
value is the inverse CDF of the model's distribution at that number. So the two ways below consume
identical randomness and differ only in how they compute the logits:

  naive:  the whole network over the whole image, once per pixel and channel (what training computes);
  cached: the model's own `cache_start` / `cache_row` / `cache_step`, which keep every layer's
          activations and compute only what the new pixel changes (Ramachandran et al. 2017 for the
          convolutional models; the recurrent ones carry their state along the row).

Completion is the same loop with some pixels given: their values are kept instead of drawn.
`CachedHead` is the cached form of the output layers the convolutional and 2-D recurrent models share.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from ...errors import UserError
from ...progress import tick
from .masked import MaskedConv2d, pointwise


@torch.no_grad()
def autoregress(model, values: torch.Tensor, known: torch.Tensor, u: torch.Tensor, condition, cached: bool):
    """Fill `values` (N×channels×H×W long) in raster order, channel by channel, keeping it where `known`
    is true; u (shaped as values) holds the uniform numbers. Returns the images as `sample` does."""
    px = model.pixels
    n, channels, height, width = values.shape
    dtype = next(model.parameters()).dtype
    inp = px.scaled(values, dtype)                           # what the network sees, kept in step with values
    u = u.to(dtype)
    given = bool(known.any())
    state = model.cache_start(inp, condition) if cached else None
    for r in range(height):
        tick("drawing pixel rows", r + 1, height, "row")
        if cached:
            model.cache_row(state, inp, r)
        for c in range(width):
            if not cached and bool(known[:, :, r, c].all()):
                continue                                     # nothing to draw here; the cache must still see it
            for ch in range(channels):
                if cached:
                    logits = model.cache_step(state, inp, r, c, ch)
                else:
                    logits = model(inp, condition)[:, ch * px.k:(ch + 1) * px.k, r, c]
                v = px.draw(logits, u[:, ch, r, c])
                if given:
                    v = torch.where(known[:, ch, r, c], values[:, ch, r, c], v)
                values[:, ch, r, c] = v
                inp[:, :, r, c] = px.scaled(values[:, :, r, c], dtype)   # a palette index: all its features
    return px.image(values)


class CachedHead:
    """The output layers (ReLU, masked 1×1 `head`, ReLU, masked 1×1 `out`) at one pixel: the last hidden
    features there (N×h) to the logits of one channel (N×K). Only that channel's K outputs of `out` are
    computed: a pixel's channels are drawn one at a time, so the others are not wanted yet."""

    def __init__(self, head: MaskedConv2d, out: MaskedConv2d, k: int):
        self.head, self.out, self.k = pointwise(head), pointwise(out), k

    def logits(self, x: torch.Tensor, ch: int) -> torch.Tensor:
        (bh, wh), (bo, wo), k = self.head, self.out, self.k
        x = F.relu(torch.addmm(bh, F.relu(x), wh))
        return torch.addmm(bo[ch * k:(ch + 1) * k], x, wo[:, ch * k:(ch + 1) * k])


def uniforms(shape, generator: torch.Generator | None, device) -> torch.Tensor:
    """One uniform number per value (image, channel, row, column), drawn before any is used."""
    return torch.rand(shape, generator=generator, device=device)


def complete_binary(model, x: torch.Tensor, mask: torch.Tensor, generator, logits_of) -> torch.Tensor:
    """x (N×1×H×W, 0/1) with the pixels where `mask` is true (broadcast to x) drawn in raster order, pixel
    i on where its uniform number is below sigmoid(logits_of(the image so far, N×D)[:, i]): each given every
    earlier pixel, the covered ones as drawn. One uniform number per pixel, drawn up front, so a cover cut
    at any pixel draws the very values of the whole cover up to it (the explorer's frames)."""
    if x.dim() != 4 or tuple(x.shape[1:]) != tuple(model.info.shape):
        raise UserError(f"images to complete must be N×{'×'.join(map(str, model.info.shape))}, "
                        f"not {'×'.join(map(str, x.shape))}")
    out = (x.to(model.device) > 0.5).float().flatten(1)
    covered = torch.broadcast_to(mask.to(model.device, torch.bool), x.shape).flatten(1)
    u = torch.rand(out.shape, generator=generator, device=model.device)
    todo = covered.any(0).nonzero().squeeze(1).tolist()
    for k, i in enumerate(todo):
        tick("drawing covered pixels", k + 1, len(todo), "px")
        p = torch.sigmoid(logits_of(out)[:, i])
        out[:, i] = torch.where(covered[:, i], (u[:, i] < p).float(), out[:, i])
    return out.view_as(x)
