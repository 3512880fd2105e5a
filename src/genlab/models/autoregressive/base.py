"""What every autoregressive model shares: p(x) = Π_i p(x_i | x_<i), exact, in raster order and channel
by channel; trained by maximum likelihood; sampled and completed pixel by pixel (sampling.py).

A model supplies its network as `forward(inp, condition)` -> logits N×(C·K)×H×W, where inp is the
image as `Pixels.encode` gives it and the logits at (pixel i, channel c) depend only on earlier pixels and
earlier channels of pixel i; and the cached step of that same network (`cache_start`, `cache_row`,
`cache_step`), which must give the same logits.

Trained with Adam (the trainer's default rate, 0.001), not the RMSProp with hand-set schedules of
van den Oord et al. 2016: the usual choice of their re-implementations, with no schedule to tune per data set.
"""
from __future__ import annotations

import torch

from ...errors import UserError
from ..base import GenerativeModel
from .pixels import Pixels
from .sampling import autoregress, uniforms


class AutoregressiveModel(GenerativeModel):
    family = "autoregressive"
    likelihood_kind = "exact"
    abilities = ("complete",)
    default_binarize = "dynamic"
    discrete = True              # log_prob is the probability of the discrete pixel values themselves
    palette_pixels = True        # pixels="palette": one N-way softmax per pixel (pixels.py)
    default_batch_size = 64
    default_steps = 1000         # 44 epochs of digits, 8 of mnist, 2 of fashion-mnist

    def __init__(self, config, info):
        super().__init__(config, info)
        self.pixels = Pixels(info)

    # ---- likelihood and training ----
    def logits(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        return self(self.pixels.encode(x.to(self.device), next(self.parameters()).dtype), condition)

    def log_prob(self, x, condition=None):
        """Exact log p(x) in nats per image (of the 0/1 or 8-bit values, or the palette indices)."""
        return self.pixels.log_prob(self.logits(x, condition), x)

    def loss(self, batch):
        return -self.log_prob(batch.x, batch.condition).mean(), {}

    # ---- sampling and completion ----
    def sampling_condition(self, n: int, condition):
        return None

    @torch.no_grad()
    def sample(self, n, *, condition=None, generator=None, cached: bool = True):
        """n images drawn pixel by pixel: 0/1 (binary), k/255 (8-bit) or palette colours. cached=False
        recomputes the whole network for every pixel (slow; the same images for the same generator)."""
        self.check_condition(condition, n)
        shape = (n, self.pixels.channels, *self.info.shape[1:])
        values = torch.zeros(shape, dtype=torch.long, device=self.device)
        known = torch.zeros(shape, dtype=torch.bool, device=self.device)
        u = uniforms(shape, generator, self.device)
        return autoregress(self, values, known, u, self.sampling_condition(n, condition), cached)

    @torch.no_grad()
    def complete(self, x: torch.Tensor, mask: torch.Tensor, *, condition=None, generator=None,
                 cached: bool = True) -> torch.Tensor:
        """x (N×C×H×W, as the data set gives it) with the pixels where `mask` is true (broadcast to x)
        drawn by the model given every earlier pixel. Only pixels before a covered one inform it: a
        model of raster order cannot look ahead, so cover the end (bottom, right) for best results."""
        if x.dim() != 4 or tuple(x.shape[1:]) != tuple(self.info.shape):
            raise UserError(f"images to complete must be N×{'×'.join(map(str, self.info.shape))}, "
                            f"not {'×'.join(map(str, x.shape))}")
        x = x.to(self.device)
        values = self.pixels.values(x)
        covered = torch.broadcast_to(mask.to(self.device, torch.bool), x.shape)
        if values.shape != x.shape:                  # palette: one value per pixel, covered if any channel is
            covered = covered.any(1, keepdim=True)
        u = uniforms(values.shape, generator, self.device)
        return autoregress(self, values, ~covered, u, self.sampling_condition(len(x), condition), cached)

    # ---- the cached network, per model ----
    def cache_start(self, inp: torch.Tensor, condition) -> dict:
        raise NotImplementedError

    def cache_row(self, state: dict, inp: torch.Tensor, r: int) -> None:
        pass

    def cache_step(self, state: dict, inp: torch.Tensor, r: int, c: int, ch: int) -> torch.Tensor:
        """Logits (N×K) of channel ch at (r, c); inp holds every earlier value."""
        raise NotImplementedError
