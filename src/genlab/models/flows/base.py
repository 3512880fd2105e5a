"""The model around a flow, which Real NVP and Glow share: the density of dequantised 8-bit images by the
change of variables, their codes, and sampling by running the steps backwards. A subclass builds its steps
from layers.py's pieces."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ...errors import UserError
from ..base import GenerativeModel, option
from .layers import Dequantiser, Logit, Split, Squeeze, standard_normal_logp


@dataclass
class FlowConfig:
    levels: int = option(2, "scales of the multi-scale architecture: the image is squeezed (its height and "
                            "width halved) once per level, so both must be divisible by 2^levels", low=0)
    hidden: int = option(32, "channels of each coupling's net", low=1)
    alpha: float = option(0.05, "α of the logit pre-processing logit(α + (1 − 2α)x), below 0.5 "
                                "(Real NVP's 0.05)", low=1e-6)
    dequantisation: str = option("uniform", "noise that makes 8-bit pixels continuous: uniform (an exact "
                                 "density, reported as nll) or variational (a learned q(u | x), Ho et al. "
                                 "2019: a bound, reported as nelbo)", choices=("uniform", "variational"))
    temperature: float = option(1.0, "sampling temperature: codes drawn from N(0, T²); below 1 gives cleaner, "
                                     "less varied images (Glow)", low=1e-3)


@dataclass
class FlowSampling:
    temperature: float | None = option(None, "scale the code's spread by this (below 1: likelier, plainer "
                                             "images; default: the run's temperature)", low=1e-3, high=1e3)


class FlowModel(GenerativeModel):
    """A normalising flow over dequantised 8-bit images: x in [0, 1]^D ─logit─▶ R^D ─steps─▶ codes, each
    code N(0, I). log p(x) is exact (change of variables); sampling and decoding run the steps backwards.

    A subclass builds `self.steps`: an nn.ModuleList of steps and Splits, applied in order. The code of an
    image (`encode`) is every Split's ε and the last activation, flattened into one vector of D numbers,
    coarsest first, so `decode(encode(x))` gives x back and the latent explorer sweeps the coarsest scale."""

    family = "flow"
    likelihood_kind = "exact"
    abilities = ("encode", "decode")
    SampleSettings = FlowSampling
    default_binarize = "none"
    min_levels = 0                  # Glow squeezes at least once: a one-channel image has no halves to couple

    def __init__(self, config, info):
        super().__init__(config, info)
        if info.pixels != "continuous":
            raise UserError(f"{self.name} is a density over 8-bit pixels: use --binarize none, not "
                            f"{'binarised' if info.pixels == 'binary' else info.pixels} pixels")
        if not config.alpha < 0.5:
            raise UserError(f"alpha must be below 0.5, not {config.alpha}")
        c, h, w = info.shape
        f = 2 ** config.levels
        if h % f or w % f:
            most = min((h & -h).bit_length(), (w & -w).bit_length()) - 1      # the factors 2 of H and W
            fewer = f"--levels {most} or fewer, or " if most >= self.min_levels else ""
            raise UserError(f"{self.name} halves the image {config.levels} times: {h}×{w} is not divisible by {f}; "
                            f"use {fewer}--size with a multiple of {f}")
        self.logit = Logit(config.alpha)
        self.steps = nn.ModuleList(self.build_steps(c))
        self.code_shapes = self._trace_code_shapes()
        self.dequantiser = Dequantiser(c, config.hidden) if config.dequantisation == "variational" else None
        if self.dequantiser is not None:
            self.likelihood_kind = "bound"      # this instance's figure bounds the likelihood
        self.register_buffer("trained_steps", torch.zeros((), dtype=torch.long))

    def build_steps(self, channels: int) -> list[nn.Module]:
        raise NotImplementedError

    @property
    def latent_dim(self) -> int:
        """The length of a code: one number per dimension of the data."""
        return self.info.dims

    def _trace_code_shapes(self) -> list[tuple[int, int, int]]:
        """The shape of each part of the code, coarsest first (the last activation, then the Splits' in
        reverse order)."""
        c, h, w = self.info.shape
        shapes = []
        for step in self.steps:
            if isinstance(step, Squeeze):
                c, h, w = 4 * c, h // 2, w // 2
            elif isinstance(step, Split):
                shapes.append((step.out_channels, h, w))
                c -= step.out_channels
        return [(c, h, w)] + shapes[::-1]

    # ---- the density ----
    def _codes(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The parts of x's code (coarsest first) and log p(x), the density of x in [0, 1]^D, in nats."""
        h, log_p = self.logit(x)
        codes = []
        for step in self.steps:
            if isinstance(step, Split):
                h, eps, lp = step(h)
                codes.append(eps)
            else:
                h, lp = step(h)
            log_p = log_p + lp
        codes.append(h)
        return codes[::-1], log_p + standard_normal_logp(h)

    def _image(self, codes: list[torch.Tensor]) -> torch.Tensor:
        """The image of a code's parts (coarsest first), unclamped."""
        codes = list(codes)
        h = codes.pop(0)
        for step in reversed(self.steps):
            h = step.inverse(h, codes.pop(0)) if isinstance(step, Split) else step.inverse(h)
        return self.logit.inverse(h)

    def _density_log_prob(self, x):
        return self._codes(x)[1]

    def _nll(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """−log p(x) with uniform dequantisation (the data come dequantised); with variational, its bound
        −log p(x') + log q(u | k), x' = (k + u)/256 for u drawn from q and k the 8-bit values of x."""
        if self.dequantiser is None:
            return -self._density_log_prob(x)
        k = torch.floor(x * 256).clamp(0, 255)
        x_q, log_q = self.dequantiser(k, generator)
        return log_q - self._density_log_prob(x_q)

    def log_prob(self, x, condition=None):
        """log p(x) in nats per image for dequantised x in [0, 1]^D (the evaluation adds D·log 256); its
        bound with variational dequantisation. (A data set's labels come with every batch; a flow leaves
        them aside.)"""
        return -self._nll(x.to(self.device))

    @torch.no_grad()
    def eval_terms(self, x, condition=None, *, iwae_k=100, generator=None):
        nll = self._nll(x.to(self.device), generator)
        return {"nll" if self.dequantiser is None else "nelbo": nll}

    def loss(self, batch):
        loss = self._nll(batch.x).mean()
        self.trained_steps += 1
        d = self.info.dims
        # the same figure in bits per dimension, as the evaluation reports it (D·log 256 added)
        return loss, {"bpd": (loss.item() + d * math.log(256)) / (d * math.log(2))}

    # ---- codes and samples ----
    def _split_code(self, z: torch.Tensor) -> list[torch.Tensor]:
        parts, start = [], 0
        for shape in self.code_shapes:
            size = shape[0] * shape[1] * shape[2]
            parts.append(z[:, start:start + size].reshape(len(z), *shape))
            start += size
        return parts

    def encode(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """The code of each image, N×D: N(0, I) under the model, coarsest scale first."""
        codes, _ = self._codes(x.to(self.device))
        return torch.cat([c.flatten(1) for c in codes], 1)

    def decode(self, z: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """The image of each code N×D, in [0, 1] (the flow's inverse, clamped: the logit's range reaches a
        little beyond)."""
        return self._image(self._split_code(z.to(self.device))).clamp(0, 1)

    @torch.no_grad()
    def sample(self, n, *, condition=None, generator=None, temperature: float | None = None):
        """n images: codes from N(0, T²) decoded, T the Config's temperature unless given."""
        self.check_condition(condition, n)
        t = self.config.temperature if temperature is None else temperature
        if not t > 0:
            raise UserError(f"temperature must be above 0, not {t}")
        z = torch.randn(n, self.info.dims, generator=generator, device=self.device) * t
        return self.decode(z)
