"""MADE (Germain, Gregor, Murray & Larochelle 2015): an autoencoder whose weights are masked so that output
d sees only the inputs before d in some ordering — a fully connected autoregressive model of binary
pixels, evaluated in one pass.

Order-agnostic training: `masks` different orderings and hidden connectivities, the network trained on
each in turn (one per step), share every weight. At test time the orderings are ensembled as a uniform
mixture, log p(x) = log (1/M) Σ_m p_m(x): an exact likelihood of its own, at least as good on average as
one ordering alone. Sampling draws an ordering per image, then the pixels in that order.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import UserError
from ...progress import tick
from ..base import GenerativeModel, option
from .sampling import complete_binary


@dataclass
class MADEConfig:
    hidden: int = option(500, "units in each hidden layer", low=1)
    layers: int = option(2, "hidden layers", low=1)
    masks: int = option(8, "orderings and connectivities trained in turn and ensembled at test time "
                           "(1: the natural raster order only)", low=1)


class MaskedLinear(nn.Linear):
    def __init__(self, n_in: int, n_out: int, masks: int):
        super().__init__(n_in, n_out)
        self.register_buffer("masks", torch.ones(masks, n_out, n_in))

    def forward(self, x: torch.Tensor, m: int) -> torch.Tensor:
        return F.linear(x, self.weight * self.masks[m], self.bias)


class MADE(GenerativeModel):
    name = "made"
    Config = MADEConfig
    family = "autoregressive"
    likelihood_kind = "exact"
    abilities = ("complete",)
    default_binarize = "dynamic"
    default_batch_size = 64
    default_steps = 2000         # its steps are cheap (one masked MLP): 87 epochs of digits, 16 of mnist

    def __init__(self, config: MADEConfig, info):
        super().__init__(config, info)
        if info.pixels != "binary":
            raise UserError(f"{self.name} models binary pixels: use --binarize dynamic or threshold")
        d, h = info.dims, config.hidden
        sizes = [d] + [h] * config.layers
        self.hidden_layers = nn.ModuleList(MaskedLinear(a, b, config.masks) for a, b in zip(sizes, sizes[1:]))
        self.out = MaskedLinear(h, d, config.masks)
        self.register_buffer("orders", torch.zeros(config.masks, d, dtype=torch.long))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self._make_masks()

    def _make_masks(self) -> None:
        """Mask 0 is the raster order; the others a random ordering and connectivity each, from a fixed seed
        (they are buffers too, so a saved model keeps its own)."""
        d = self.info.dims
        g = torch.Generator().manual_seed(0)
        for m in range(self.config.masks):
            order = torch.arange(d) if m == 0 else torch.randperm(d, generator=g)
            self.orders[m] = order
            degree_in = order + 1                              # input d is the (order[d] + 1)-th pixel drawn
            prev = degree_in
            for layer in self.hidden_layers:
                low = int(prev.min())
                degree = torch.randint(low, d, (layer.out_features,), generator=g) if d > 1 else \
                    torch.ones(layer.out_features, dtype=torch.long)
                layer.masks[m] = (degree[:, None] >= prev[None, :]).float()
                prev = degree
            self.out.masks[m] = (degree_in[:, None] > prev[None, :]).float()

    def logits(self, x: torch.Tensor, m: int) -> torch.Tensor:
        h = x.flatten(1)
        for layer in self.hidden_layers:
            h = torch.relu(layer(h, m))
        return self.out(h, m)

    def _log_prob_one(self, x: torch.Tensor, m: int) -> torch.Tensor:
        return -F.binary_cross_entropy_with_logits(self.logits(x, m), x.flatten(1), reduction="none").sum(1)

    def log_prob(self, x, condition=None):
        """Exact log p(x) in nats: the uniform mixture over the trained orderings. (The data's labels, when
        it has some, come along with every batch; an unconditional model leaves them aside.)"""
        per_mask = torch.stack([self._log_prob_one(x, m) for m in range(self.config.masks)])
        return torch.logsumexp(per_mask, 0) - math.log(self.config.masks)

    def loss(self, batch):
        m = int(self.steps) % self.config.masks                # each ordering in turn: resumes exactly
        self.steps += 1
        return -self._log_prob_one(batch.x, m).mean(), {}

    @torch.no_grad()
    def sample(self, n, *, condition=None, generator=None):
        """n images, each drawn pixel by pixel in an ordering picked at random among the trained ones."""
        self.check_condition(condition, n)
        d = self.info.dims
        pick = torch.randint(self.config.masks, (n,), generator=generator, device=self.device)
        x = torch.zeros(n, d, device=self.device)
        u = torch.rand(n, d, generator=generator, device=self.device)
        for m in pick.unique().tolist():
            rows = (pick == m).nonzero().squeeze(1)
            xm = x[rows]
            for i in range(d):
                tick("drawing pixels", i + 1, d, "px")
                pixel = self.orders[m].eq(i).nonzero()[0, 0]   # the pixel drawn i-th in this ordering
                p = torch.sigmoid(self.logits(xm, m)[:, pixel])
                xm[:, pixel] = (u[rows, pixel] < p).float()
            x[rows] = xm
        return x.view(n, *self.info.shape)

    @torch.no_grad()
    def complete(self, x, mask, *, condition=None, generator=None):
        """x (N×1×H×W, 0/1) with the pixels where `mask` is true drawn in raster order, each from the raster
        ordering's conditional (mask 0) given every earlier pixel: cover the end (bottom, right) for the most
        context. (A class label, when the data has some, is not used.)"""
        return complete_binary(self, x, mask, generator, lambda x: self.logits(x, 0))
