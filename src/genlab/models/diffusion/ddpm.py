"""DDPM (Ho, Jain & Abbeel 2020): a Gaussian diffusion that adds noise to an image over T steps, and a
U-Net trained to predict that noise (the ε-prediction loss, "L_simple"); sampled by DDIM (Song, Meng &
Ermon 2021) in any number of steps, and scored by the variational bound of Ho et al.

The bound on −log P(x) of the 8-bit (or binary) values, in nats, with x_0 the image in [−1, 1]:

    L = L_T + Σ_{t=2..T} L_{t-1} + L_0
    L_T     = KL(q(x_T | x_0) ‖ N(0, I))                                   the prior term, in closed form
    L_{t-1} = KL(q(x_{t-1} | x_t, x_0) ‖ p(x_{t-1} | x_t)),  x_t ~ q(x_t | x_0)   Gaussians, in closed form
    L_0     = −log p(x_0 | x_1): a Gaussian discretised over the pixel's 256 (or 2) bins

The reverse model p(x_{t-1} | x_t) = N(μ̃(x_t, x̂_0), β̃_t I), its mean the posterior's with the clipped
prediction x̂_0 in place of x_0 and its variance the posterior's (β̃_2 for the decoder, as Ho et al.):
exactly what DDIM with η = 1 at steps = T draws, so the bound is of the sampler's own model.

Cost. Every term is a pass of the U-Net, so the exact bound takes T passes per image (T = 1000: minutes
for the digits' test split on one CPU thread, far more at 28×28), and the trainer computes the test figures
after every epoch. So by default (`bound_timesteps` K = 20) the sum over t = 2..T is estimated from at most
K timesteps per image, one drawn uniformly in each of K geometrically spaced strata of 2..T and weighted
by its stratum's size (`bound_timestep_draws`): an unbiased estimate of the same bound, whose sampling
noise is part of the reported standard error (on digits about 7 nats per image, against a spread of 20
between images). `--set bound_timesteps=0` sums every term, in batches of timesteps: the exact bound.

8-bit pixels are read back to their values k = ⌊256 x⌋ (x is (k + u)/256 after dequantisation) and
modelled at −1 + 2k/255. log_prob is the bound on log P(k) plus D·log 256: a density of x on [0, 1]^D,
constant over each value's bin, which the evaluation's D·log 256 turns back into the bound on −log P(k).
Binary pixels (--binarize dynamic or threshold) are modelled at ±1 with a decoder over two bins.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ...errors import UserError
from ...progress import tick
from ..base import GenerativeModel, option
from .schedule import SCHEDULES, Schedule, discretised_gaussian_log_prob, gaussian_kl
from .unet import UNet

MAX_TIMESTEPS = 10_000
BOUND_CHUNK = 512          # images the U-Net takes at once while computing the bound


def per_row(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """One value per image (N) shaped to broadcast over images like `like` (N×C×H×W)."""
    return values.view(-1, *([1] * (like.dim() - 1)))


def chunked(fn, *rows: torch.Tensor) -> torch.Tensor:
    """fn over the rows of its arguments, BOUND_CHUNK at a time: what the U-Net holds at once stays small."""
    n = len(rows[0])
    return torch.cat([fn(*(r[i:i + BOUND_CHUNK] for r in rows)) for i in range(0, n, BOUND_CHUNK)])


@dataclass
class DDPMConfig:
    channels: int = option(32, "channels of the U-Net's first level", low=1)
    mults: tuple[int, ...] = option((1, 2, 2), "channel multiplier of each level (each level halves the size)")
    blocks: int = option(1, "residual blocks per level", low=1)
    attention: bool = option(True, "self-attention at the coarsest level")
    dropout: float = option(0.0, "dropout inside the residual blocks", low=0.0)
    timesteps: int = option(1000, "T, the diffusion's steps", low=2)
    schedule: str = option("linear", "noise schedule: linear (Ho et al.) or cosine (Nichol & Dhariwal)",
                           choices=SCHEDULES)
    sample_steps: int = option(50, "DDIM steps when sampling without --steps (timesteps, when more)", low=1)
    eta: float = option(0.0, "DDIM's η, 0 to 1: 0 deterministic given the first noise, 1 ancestral (DDPM "
                             "at steps = timesteps)", low=0.0)
    bound_timesteps: int = option(20, "timesteps per image the bound is estimated from, unbiased "
                                      "(0: every one, the exact bound; T passes per image)", low=0)


@dataclass
class DDPMSampling:
    steps: int | None = option(None, "DDIM sampling steps, 1 to the model's timesteps (default: the run's "
                                     "sample_steps)", low=1, high=1000)


class DDPM(GenerativeModel):
    name = "ddpm"
    Config = DDPMConfig
    family = "diffusion"
    likelihood_kind = "bound"
    abilities = ("trajectory",)
    SampleSettings = DDPMSampling
    default_binarize = "none"
    default_lr = 1e-3
    default_batch_size = 128
    # At these defaults on digits (2000 steps: 167 epochs of 12; EMA 0.999, clipping at 1) the bound is
    # 206 ± 1 nats (4.65 bits/dim) against the Gaussian per pixel's 313; below it from step ~60 on, 226 at
    # step 500. Ho et al.'s decoder alone costs ~75 of those nats: the 256-way histogram (118) stays ahead.
    default_steps = 2000
    default_train = {"ema": 0.999, "clip_grad": 1.0}

    def __init__(self, config: DDPMConfig, info):
        super().__init__(config, info)
        if info.pixels not in ("continuous", "binary"):
            raise UserError(f"{self.name} models 8-bit or binary pixels: use --binarize none (its default), "
                            f"dynamic or threshold")
        if config.timesteps > MAX_TIMESTEPS:
            raise UserError(f"timesteps must be at most {MAX_TIMESTEPS:,}, not {config.timesteps}")
        if not config.mults or min(config.mults) < 1:
            raise UserError(f"mults must be one or more positive multipliers, not {config.mults!r}")
        if config.eta > 1 or config.dropout >= 1:
            raise UserError(f"eta must be from 0 to 1 and dropout below 1, not {config.eta} and {config.dropout}")
        self.levels = 256 if info.pixels == "continuous" else 2
        self.schedule = Schedule(config.schedule, config.timesteps)
        self.net = UNet(info.shape[0], config.channels, tuple(config.mults), config.blocks, config.attention,
                        config.dropout)

    # ---- the data in [−1, 1] ----
    def to_model(self, x: torch.Tensor) -> torch.Tensor:
        """Images as the data set gives them to the values the diffusion starts from: −1 + 2k/(levels − 1)."""
        x = x.to(self.device).float()
        if self.levels == 2:
            return x.round() * 2 - 1
        k = torch.floor(x * 256).clamp(0, 255)
        return k / 127.5 - 1

    def eps(self, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.net(xt, t)

    # ---- training ----
    def loss(self, batch):
        """L_simple: the squared error of the predicted noise at a timestep drawn uniformly from 1..T."""
        x0 = self.to_model(batch.x)
        t = torch.randint(1, self.config.timesteps + 1, (len(x0),), device=x0.device)
        noise = torch.randn_like(x0)
        return F.mse_loss(self.eps(self.schedule.noised(x0, t, noise), t), noise), {}

    # ---- the bound ----
    def kl_terms(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """L_{t-1} per row for rows of x_0 (float64, in [−1, 1]), their timesteps t ≥ 2 and noise: the KL
        between the posterior and the reverse model at x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) noise, in nats."""
        xt = self.schedule.noised(x0, t, noise)
        eps = self.eps(xt.float(), t).double()
        mean, var = self.schedule.posterior(x0, xt, t)
        model_mean, _ = self.schedule.posterior(self.schedule.predicted_x0(xt, t, eps), xt, t)
        model_var = per_row(self.schedule.model_variance(t), x0)
        return gaussian_kl(mean, var, model_mean, model_var).flatten(1).sum(1)

    def decoder_nll(self, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """L_0 per row: −log p(x_0 | x_1) of the discrete values, x_1 made from x_0 with this noise."""
        t = torch.ones(len(x0), dtype=torch.long, device=x0.device)
        x1 = self.schedule.noised(x0, t, noise)
        mean = self.schedule.predicted_x0(x1, t, self.eps(x1.float(), t).double())   # μ̃ at t = 1 is x̂_0
        std = per_row(self.schedule.model_variance(t), x0).sqrt()
        return -discretised_gaussian_log_prob(x0, mean, std, self.levels).flatten(1).sum(1)

    def prior_kl(self, x0: torch.Tensor) -> torch.Tensor:
        """L_T per row: KL(q(x_T | x_0) ‖ N(0, I)), no sampling."""
        a = self.schedule.alpha_bar(self.config.timesteps)
        mean, var = math.sqrt(a) * x0, torch.full_like(x0, 1 - a)
        return gaussian_kl(mean, var, torch.zeros_like(x0), torch.ones_like(x0)).flatten(1).sum(1)

    def bound_timestep_draws(self, n: int, k: int, generator, device) -> tuple[torch.Tensor, torch.Tensor]:
        """The timesteps (N×S, each 2..T) whose terms make the bound's sum over t = 2..T, and their weights:
        all of them with weight 1 (k = 0 or k ≥ T − 1), or one drawn uniformly in each of at most k strata,
        weighted by its stratum's size: an unbiased estimate of the sum.

        The strata are spaced geometrically, 2·((T + 1)/2)^(j/k), since the terms fall off with t, each span
        of t a constant factor long carrying a like share of the sum: the first strata are single timesteps,
        summed exactly. (On digits, k = 20: a per-image standard deviation of the estimate 30 times smaller
        than with equal strata.)"""
        T = self.config.timesteps
        if k == 0 or k >= T - 1:
            return (torch.arange(2, T + 1, device=device).expand(n, T - 1),
                    torch.ones(n, T - 1, dtype=torch.float64, device=device))
        ratio = torch.arange(k + 1, dtype=torch.float64) / k
        edges = (2 * ((T + 1) / 2) ** ratio).round().long().unique().to(device)      # 2 ... T + 1, sorted
        low, size = edges[:-1], edges[1:] - edges[:-1]
        k = len(low)
        u = torch.rand(n, k, generator=generator, device=device, dtype=torch.float64)
        t = low + torch.minimum((u * size).floor().long(), size - 1)
        return t, size.double().expand(n, k)

    def bound_terms(self, x: torch.Tensor, generator: torch.Generator | None = None,
                    timesteps: int | None = None) -> dict[str, torch.Tensor]:
        """The bound's parts per image, in nats of the discrete values (float64): "decoder" L_0, "prior" L_T
        and "diffusion" Σ_{t=2..T} L_{t-1}, exact or estimated from `timesteps` (default bound_timesteps)
        stratified timesteps per image (`bound_timestep_draws`).

        Draws, in order, from `generator` (the global one when None): the timesteps (an estimate only),
        the noise that makes x_1 for the decoder (N×C×H×W, float64), then one such noise tensor for each
        column of timesteps in turn (exact: t = 2, 3, ..., T)."""
        x0 = self.to_model(x).double()
        n, dev = len(x0), x0.device
        k = self.config.bound_timesteps if timesteps is None else timesteps
        t, weight = self.bound_timestep_draws(n, k, generator, dev)

        def noise():
            return torch.randn(x0.shape, generator=generator, device=dev, dtype=torch.float64)

        decoder = chunked(self.decoder_nll, x0, noise())
        per_call = max(1, BOUND_CHUNK // max(n, 1))         # columns of timesteps per pass of the U-Net
        diffusion = torch.zeros(n, dtype=torch.float64, device=dev)
        for j in range(0, t.shape[1], per_call):
            cols = t[:, j:j + per_call]
            m = cols.shape[1]
            eps = torch.stack([noise() for _ in range(m)], 1).flatten(0, 1)                # row i·m + c
            rows = x0.repeat_interleave(m, 0)
            kl = chunked(self.kl_terms, rows, cols.reshape(-1), eps).view(n, m)
            diffusion += (kl * weight[:, j:j + per_call]).sum(1)
        return {"decoder": decoder, "prior": self.prior_kl(x0), "diffusion": diffusion}

    def _density_shift(self) -> float:
        """log P of the 8-bit values as a density of x on [0, 1]^D: each value's bin has width 1/256."""
        return self.info.dims * math.log(256) if self.levels == 256 else 0.0

    @torch.no_grad()
    def log_prob(self, x, condition=None):
        """The bound on log p(x) in nats per image, as a density for 8-bit pixels (an unbiased estimate of
        it with bound_timesteps > 0; its noise from the global generator)."""
        terms = self.bound_terms(x)
        return (-(terms["decoder"] + terms["prior"] + terms["diffusion"]) + self._density_shift()).float()

    @torch.no_grad()
    def eval_terms(self, x, condition=None, *, iwae_k=100, generator=None):
        """−bound ("nelbo"), its decoder term L_0 ("recon") and the sum of its KL terms L_T + Σ L_{t-1}
        ("kl"), in the model's nats (a density for 8-bit pixels, as the evaluation expects)."""
        terms = self.bound_terms(x, generator)
        recon = terms["decoder"] - self._density_shift()
        kl = terms["prior"] + terms["diffusion"]
        return {"nelbo": recon + kl, "recon": recon, "kl": kl}

    # ---- sampling ----
    @torch.no_grad()
    def sample(self, n, *, condition=None, generator=None, steps: int | None = None):
        """n images in [0, 1] by DDIM in `steps` steps (default sample_steps) with the Config's η, from
        noise drawn from `generator`."""
        self.check_condition(condition, n)
        noise = torch.randn(n, *self.info.shape, generator=generator, device=self.device)
        return self.ddim(noise, steps, generator=generator)

    @torch.no_grad()
    def trajectory(self, n, frames: int = 8, *, generator=None, steps: int | None = None) -> torch.Tensor:
        """`frames` states of n samples on their way from noise to image (frames × N × C × H × W in [0, 1]):
        x_T, the states after evenly spaced DDIM steps, and the sample itself, which is `sample`'s for the
        same generator and steps."""
        noise = torch.randn(n, *self.info.shape, generator=generator, device=self.device)
        kept = []
        self.ddim(noise, steps, generator=generator, kept=kept)
        pick = torch.linspace(0, len(kept) - 1, max(2, min(frames, len(kept)))).round().long().unique()
        return torch.stack([kept[i] for i in pick.tolist()])

    @torch.no_grad()
    def ddim(self, x_T: torch.Tensor, steps: int | None = None, eta: float | None = None,
             generator: torch.Generator | None = None, kept: list | None = None) -> torch.Tensor:
        """Images in [0, 1] denoised from x_T by DDIM: `steps` timesteps from T down to 1, then x̂_0. η = 0
        is deterministic given x_T; η = 1 and steps = T is DDPM's ancestral sampling. `kept`, when given,
        receives x_T and every state after it, in [0, 1]."""
        steps = min(self.config.sample_steps, self.config.timesteps) if steps is None else steps
        eta = self.config.eta if eta is None else eta
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= self.config.timesteps:
            raise UserError(f"--steps must be from 1 to {self.config.timesteps} (this model's timesteps), "
                            f"not {steps!r}")
        x = x_T.to(self.device).float()
        if kept is not None:
            kept.append(((x + 1) / 2).clamp(0, 1))
        ts = self.schedule.timesteps(steps)
        for i, (t, t_prev) in enumerate(zip(ts, ts[1:] + [0]), 1):
            tick("denoising (DDIM steps)", i, len(ts))
            eps = self.eps(x, torch.full((len(x),), t, dtype=torch.long, device=x.device))
            sigma = self.schedule.ddim_sigma(t, t_prev, eta)
            noise = torch.randn(x.shape, generator=generator, device=x.device) if sigma > 0 else None
            x = self.schedule.ddim_step(x, t, t_prev, eps, eta, noise)
            if kept is not None:
                kept.append(((x + 1) / 2).clamp(0, 1))
        return ((x + 1) / 2).clamp(0, 1)
