"""A Gaussian diffusion's noise schedule and the Gaussian mathematics of its bound, kept apart from the
network that predicts the noise.

Timesteps run 1..T as in Ho et al. 2020, with ᾱ_0 = 1 (no noise): q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I).
Images live in [−1, 1], K levels of a pixel at −1 + 2k/(K − 1) (K = 256 for 8-bit pixels, 2 for binary).
Everything here is computed in float64: the bound's terms at small t are tiny differences of large numbers.
"""
from __future__ import annotations

import math

import torch

SCHEDULES = ("linear", "cosine")
MAX_BETA = 0.999          # β_t past this would make ᾱ_t exactly 0 and the last steps undefined


def betas_for(kind: str, T: int) -> torch.Tensor:
    """β_1..β_T (float64). linear: Ho et al.'s 1e-4 to 0.02 at T = 1000, scaled by 1000/T for other T so
    that ᾱ_T stays near 0 (Nichol & Dhariwal 2021); cosine: Nichol & Dhariwal's ᾱ_t = f(t)/f(0),
    f(t) = cos²(π/2 · (t/T + s)/(1 + s)), s = 0.008."""
    if kind == "linear":
        scale = 1000 / T
        betas = torch.linspace(scale * 1e-4, scale * 0.02, T, dtype=torch.float64)
    elif kind == "cosine":
        s = 0.008
        steps = torch.arange(T + 1, dtype=torch.float64) / T
        f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        alpha_bar = f / f[0]
        betas = 1 - alpha_bar[1:] / alpha_bar[:-1]
    else:
        raise ValueError(f"unknown noise schedule {kind!r}")
    return betas.clamp(max=MAX_BETA)


class Schedule:
    """β_t, ᾱ_t and what follows from them: noising, the posterior q(x_{t-1} | x_t, x_0), the reverse
    model's fixed variance and DDIM's step. Index tensors `t` are long, 1..T (0 only as DDIM's last target)."""

    def __init__(self, kind: str, T: int):
        self.kind, self.T = kind, T
        betas = betas_for(kind, T)
        self.betas = torch.cat([torch.zeros(1, dtype=torch.float64), betas])        # β_0 = 0: index = t
        self.alpha_bars = torch.cumprod(1 - self.betas, 0)                           # ᾱ_0 = 1
        prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alpha_bars[:-1]])
        # β̃_t = β_t (1 − ᾱ_{t-1}) / (1 − ᾱ_t): 0 at t = 1, where the posterior is a point (x_0 itself).
        self.posterior_variances = torch.zeros_like(self.betas)
        self.posterior_variances[1:] = self.betas[1:] * (1 - prev[1:]) / (1 - self.alpha_bars[1:])

    def _at(self, table: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """table[t] shaped to broadcast over images like `like` (N×C×H×W)."""
        return table.to(like.device)[t].view(-1, *([1] * (like.dim() - 1)))

    def alpha_bar(self, t) -> float:
        return float(self.alpha_bars[t])

    def noised(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε: a draw of q(x_t | x_0) for the given noise."""
        a = self._at(self.alpha_bars, t, x0).to(x0.dtype)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def predicted_x0(self, xt: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """The x_0 that noise `eps` would have made x_t from, clipped to the data's range [−1, 1]."""
        a = self._at(self.alpha_bars, t, xt).to(xt.dtype)
        return ((xt - (1 - a).sqrt() * eps) / a.sqrt()).clamp(-1, 1)

    def posterior(self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of q(x_{t-1} | x_t, x_0), t ≥ 1 (Ho et al. eq. 7)."""
        a, a_prev = self._at(self.alpha_bars, t, x0), self._at(self.alpha_bars, t - 1, x0)
        beta = self._at(self.betas, t, x0)
        mean = (a_prev.sqrt() * beta / (1 - a)) * x0 + ((1 - beta).sqrt() * (1 - a_prev) / (1 - a)) * xt
        return mean, self._at(self.posterior_variances, t, x0).expand_as(mean)

    def model_variance(self, t: torch.Tensor) -> torch.Tensor:
        """σ_t² of the reverse model p(x_{t-1} | x_t): the posterior's β̃_t, so that ancestral sampling is
        DDIM with η = 1; at t = 1 (the decoder) β̃_2, as Ho et al. clip it, since β̃_1 = 0."""
        return self.posterior_variances.to(t.device)[torch.where(t == 1, torch.full_like(t, min(2, self.T)), t)]

    def timesteps(self, steps: int) -> list[int]:
        """The `steps` timesteps DDIM visits, T first, evenly spaced down to 1 (every one when steps = T)."""
        return torch.linspace(self.T, 1, steps, dtype=torch.float64).round().long().tolist()

    def ddim_step(self, xt: torch.Tensor, t: int, t_prev: int, eps: torch.Tensor, eta: float,
                  noise: torch.Tensor | None) -> torch.Tensor:
        """x_{t_prev} from x_t (Song et al. 2021, eq. 12): the clipped x_0 prediction, the noise direction
        recomputed from it, and fresh noise of size σ = η·√(β̃) between t and t_prev. η = 1 with
        t_prev = t − 1 is the ancestral step of DDPM with variance β̃_t; η = 0 is deterministic. `noise` may be None when
        σ = 0 (η = 0, or the last step)."""
        a, a_prev = self.alpha_bar(t), self.alpha_bar(t_prev)
        tt = torch.full((len(xt),), t, dtype=torch.long, device=xt.device)
        x0 = self.predicted_x0(xt, tt, eps)
        eps = (xt - math.sqrt(a) * x0) / math.sqrt(1 - a)
        sigma = self.ddim_sigma(t, t_prev, eta)
        out = math.sqrt(a_prev) * x0 + math.sqrt(max(1 - a_prev - sigma ** 2, 0.0)) * eps
        return out + sigma * noise if sigma > 0 else out

    def ddim_sigma(self, t: int, t_prev: int, eta: float) -> float:
        a, a_prev = self.alpha_bar(t), self.alpha_bar(t_prev)
        return eta * math.sqrt((1 - a_prev) / (1 - a) * (1 - a / a_prev))


# ---- Gaussians ------------------------------------------------------------------------------------

def gaussian_kl(mean1: torch.Tensor, var1: torch.Tensor, mean2: torch.Tensor, var2: torch.Tensor) -> torch.Tensor:
    """KL(N(mean1, var1) ‖ N(mean2, var2)) elementwise, in nats."""
    return 0.5 * (torch.log(var2 / var1) + (var1 + (mean1 - mean2) ** 2) / var2 - 1)


def discretised_gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, levels: int) -> torch.Tensor:
    """log P(x) elementwise for x one of `levels` values −1 + 2k/(levels − 1): the mass N(mean, std²) puts
    on x's bin, of half-width 1/(levels − 1), the first and last bins reaching to −∞ and +∞ (Ho et al.'s
    decoder L_0). The masses of the `levels` bins of a pixel sum to 1. Tails in log space (log Φ), so a
    bin far from the mean has a finite log-probability rather than log 0."""
    half = 1.0 / (levels - 1)
    upper, lower = (x - mean + half) / std, (x - mean - half) / std
    log_cdf_upper = torch.special.log_ndtr(upper)              # log Φ(upper)
    log_sf_lower = torch.special.log_ndtr(-lower)              # log (1 − Φ(lower))
    # A middle bin, Φ(upper) − Φ(lower), taken on the side of the mean where it is not a difference of two
    # numbers near 1.
    below = lower > 0                                          # the whole bin above the mean: use survival
    hi = torch.where(below, log_sf_lower, log_cdf_upper)
    lo = torch.where(below, torch.special.log_ndtr(-upper), torch.special.log_ndtr(lower))
    middle = hi + torch.log(-torch.expm1((lo - hi).clamp(max=0)))
    first, last = x < -1 + half / 2, x > 1 - half / 2
    return torch.where(first, log_cdf_upper, torch.where(last, log_sf_lower, middle))
