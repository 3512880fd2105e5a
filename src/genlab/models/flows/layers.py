"""The pieces Real NVP and Glow are built from, each an invertible map with its log-determinant, and the
model around a flow that both share.

Every step has `forward(x) -> (y, logdet)` (data towards code; logdet per example, in nats) and
`inverse(y) -> x`. `Split` is the one exception: it factors out half the channels as a code with a prior.

    Logit          x in [0, 1] to logit(α + (1 − 2α)x) (Real NVP's pre-processing), log-det included
    Squeeze        C×H×W to 4C×H/2×W/2, each 2×2 block into the channels
    ActNorm        an affine map per channel, initialised from the first batch (Glow)
    InvConv1x1     an invertible 1×1 convolution, LU-decomposed (Glow)
    AffineCoupling half the units scaled and shifted by a net of the other half: checkerboard or channel mask
    Split          half the channels leave as a code: N(0, I) (Real NVP) or a Gaussian predicted from the rest
    Dequantiser    variational dequantisation (Ho et al. 2019): a learned q(u | the 8-bit values)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import UserError
from ..base import GenerativeModel, option

LOG_2PI = math.log(2 * math.pi)
# A coupling's log-scale is bound·tanh(raw / bound): the identity near 0 (where the zero-initialised net
# starts) and never beyond ±bound, so one coupling cannot blow an activation up by more than e³.
LOG_SCALE_BOUND = 3.0


def per_example(t: torch.Tensor) -> torch.Tensor:
    """The sum over everything but the batch dimension."""
    return t.flatten(1).sum(1)


def standard_normal_logp(z: torch.Tensor) -> torch.Tensor:
    return -0.5 * per_example(z.square() + LOG_2PI)


def zero_conv(c_in: int, c_out: int) -> nn.Conv2d:
    """A 3×3 convolution starting at zero: each coupling (and each learned prior) begins as the identity
    (the standard normal), as in Glow."""
    conv = nn.Conv2d(c_in, c_out, 3, padding=1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class ResidualBlock(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.a = nn.Conv2d(hidden, hidden, 3, padding=1)
        self.b = nn.Conv2d(hidden, hidden, 3, padding=1)

    def forward(self, h):
        return h + self.b(torch.relu(self.a(torch.relu(h))))


def coupling_net(c_in: int, c_out: int, hidden: int, blocks: int) -> nn.Sequential:
    """The net of a coupling: conv 3×3 → ReLU → `blocks` residual blocks (Real NVP's ResNet) → conv 1×1 →
    ReLU → zero-initialised conv 3×3 (Glow's net when blocks = 0)."""
    return nn.Sequential(nn.Conv2d(c_in, hidden, 3, padding=1), nn.ReLU(),
                         *[ResidualBlock(hidden) for _ in range(blocks)],
                         nn.Conv2d(hidden, hidden, 1), nn.ReLU(), zero_conv(hidden, c_out))


# ---- the steps -------------------------------------------------------------------------------------

class Logit(nn.Module):
    """x in [0, 1] to y = logit(α + (1 − 2α)x), so the flow works on all of R and the density stays the
    density of x (its log-determinant is included). α keeps 0 and 1 (dequantised pixels reach 0) finite."""

    def __init__(self, alpha: float):
        super().__init__()
        self.alpha = alpha

    def forward(self, x):
        s = self.alpha + (1 - 2 * self.alpha) * x
        y = torch.log(s) - torch.log1p(-s)
        # dy/dx = (1 − 2α) / (s (1 − s)), and −log s(1 − s) = softplus(y) + softplus(−y)
        logdet = per_example(F.softplus(y) + F.softplus(-y)) + x[0].numel() * math.log(1 - 2 * self.alpha)
        return y, logdet

    def inverse(self, y):
        return (torch.sigmoid(y) - self.alpha) / (1 - 2 * self.alpha)


class Squeeze(nn.Module):
    """C×H×W to 4C×H/2×W/2: each 2×2 block of pixels becomes four channels (a permutation: log-det 0)."""

    def forward(self, x):
        n, c, h, w = x.shape
        x = x.view(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
        return x.reshape(n, 4 * c, h // 2, w // 2), x.new_zeros(n)

    def inverse(self, y):
        n, c, h, w = y.shape
        y = y.view(n, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
        return y.reshape(n, c // 4, 2 * h, 2 * w)


class ActNorm(nn.Module):
    """y = (x + loc) · exp(log_scale) per channel (Glow). Before the first training step the first batch
    sets loc and log_scale so that its output has zero mean and unit variance per channel; the
    `initialised` buffer records it, so a saved, loaded or resumed model never initialises again."""

    def __init__(self, channels: int):
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("initialised", torch.tensor(False))

    @torch.no_grad()
    def _initialise(self, x):
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        std = x.std(dim=(0, 2, 3), keepdim=True, unbiased=False)
        self.loc.copy_(-mean)
        self.log_scale.copy_(-torch.log(std.clamp(min=1e-3)))    # a constant channel is not scaled up 10⁶×
        self.initialised.fill_(True)

    def forward(self, x):
        if self.training and not bool(self.initialised):
            self._initialise(x)
        hw = x.shape[2] * x.shape[3]
        return (x + self.loc) * torch.exp(self.log_scale), hw * self.log_scale.sum().expand(len(x))

    def inverse(self, y):
        return y * torch.exp(-self.log_scale) - self.loc


class InvConv1x1(nn.Module):
    """An invertible 1×1 convolution, W = P·L·(U + diag(sign · exp(log_s))) (Glow's LU form): the
    log-determinant is H·W·Σ log_s, no C×C determinant needed. Starts as a random rotation."""

    def __init__(self, channels: int):
        super().__init__()
        w = torch.linalg.qr(torch.randn(channels, channels))[0]
        p, lower, upper = torch.linalg.lu(w)
        s = torch.diagonal(upper)
        self.register_buffer("p", p)
        self.register_buffer("sign_s", torch.sign(s))
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        self.register_buffer("eye", torch.eye(channels))
        self.lower = nn.Parameter(lower)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(s.abs()))

    def weight(self) -> torch.Tensor:
        lower = self.lower * self.lower_mask + self.eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
        return self.p @ lower @ upper

    def forward(self, x):
        w = self.weight()
        y = F.conv2d(x, w.view(*w.shape, 1, 1))
        return y, (x.shape[2] * x.shape[3] * self.log_s.sum()).expand(len(x))

    def inverse(self, y):
        w = self.weight()
        w_inv = torch.linalg.inv(w.double()).to(w.dtype)      # in double: a near-singular W loses little
        return F.conv2d(y, w_inv.view(*w_inv.shape, 1, 1))


def checkerboard(h: int, w: int, parity: int, like: torch.Tensor) -> torch.Tensor:
    """1×1×H×W: 1 on the squares of one colour (parity 0: those with i + j even), the units left as they are."""
    i = torch.arange(h, device=like.device)[:, None]
    j = torch.arange(w, device=like.device)[None, :]
    return ((i + j) % 2 == parity).to(like.dtype).view(1, 1, h, w)


class AffineCoupling(nn.Module):
    """Real NVP's coupling: the units the mask keeps pass unchanged and, through a net, set the scale and
    shift of the others, y = x · exp(log_s) + t. `mask` "checkerboard" keeps alternate pixels (the net sees
    the kept pixels and the mask itself); "channel" keeps one half of the channels (`parity` 0 the first
    half, 1 the second). `additive`: no scale (NICE, and Glow's additive variant), log-det 0."""

    def __init__(self, channels: int, hidden: int, blocks: int, mask: str, parity: int, additive: bool = False):
        super().__init__()
        if mask not in ("checkerboard", "channel"):
            raise ValueError(mask)
        self.mask, self.parity, self.additive = mask, parity, additive
        if mask == "checkerboard":
            c_in, self.c_out = channels + 1, channels
        else:
            kept = channels // 2 if parity == 0 else channels - channels // 2
            c_in, self.c_out = kept, channels - kept
        self.net = coupling_net(c_in, 2 * self.c_out, hidden, blocks)

    def _halves(self, x):
        k = x.shape[1] // 2
        return (x[:, :k], x[:, k:]) if self.parity == 0 else (x[:, k:], x[:, :k])

    def _join(self, kept, changed):
        return torch.cat([kept, changed] if self.parity == 0 else [changed, kept], 1)

    def _scale_shift(self, given):
        raw, t = self.net(given).chunk(2, 1)
        log_s = torch.zeros_like(raw) if self.additive else LOG_SCALE_BOUND * torch.tanh(raw / LOG_SCALE_BOUND)
        return log_s, t

    def forward(self, x):
        if self.mask == "checkerboard":
            b = checkerboard(x.shape[2], x.shape[3], self.parity, x)
            log_s, t = self._scale_shift(torch.cat([x * b, b.expand(len(x), 1, -1, -1)], 1))
            log_s, t = log_s * (1 - b), t * (1 - b)
            return x * b + (1 - b) * (x * torch.exp(log_s) + t), per_example(log_s)
        kept, other = self._halves(x)
        log_s, t = self._scale_shift(kept)
        return self._join(kept, other * torch.exp(log_s) + t), per_example(log_s)

    def inverse(self, y):
        if self.mask == "checkerboard":
            b = checkerboard(y.shape[2], y.shape[3], self.parity, y)
            log_s, t = self._scale_shift(torch.cat([y * b, b.expand(len(y), 1, -1, -1)], 1))
            return y * b + (1 - b) * ((y - t) * torch.exp(-log_s))
        kept, other = self._halves(y)
        log_s, t = self._scale_shift(kept)
        return self._join(kept, (other - t) * torch.exp(-log_s))


class Split(nn.Module):
    """The multi-scale architecture's exit: the last C//2 channels leave as a code, the rest flow on.
    Their prior is N(0, I) (Real NVP) or, with `learned_prior`, a Gaussian whose mean and log-sd a
    zero-initialised net predicts from the channels that stay (Glow). The code handed out is the
    standardised ε = (z − mean) / sd, N(0, I) under the model either way."""

    def __init__(self, channels: int, learned_prior: bool):
        super().__init__()
        self.out_channels = channels // 2
        self.prior = zero_conv(channels - self.out_channels, 2 * self.out_channels) if learned_prior else None

    def _mean_log_sd(self, kept):
        if self.prior is None:
            return 0.0, torch.zeros((), device=kept.device, dtype=kept.dtype)
        return self.prior(kept).chunk(2, 1)

    def forward(self, x):
        """(the channels that stay, the code ε, log p(z | the channels that stay))."""
        kept, z = x[:, :x.shape[1] - self.out_channels], x[:, x.shape[1] - self.out_channels:]
        mean, log_sd = self._mean_log_sd(kept)
        eps = (z - mean) * torch.exp(-log_sd)
        return kept, eps, standard_normal_logp(eps) - per_example(log_sd.expand_as(z))

    def inverse(self, kept, eps):
        mean, log_sd = self._mean_log_sd(kept)
        return torch.cat([kept, mean + torch.exp(log_sd) * eps], 1)


class Dequantiser(nn.Module):
    """Variational dequantisation (Ho et al. 2019, Flow++): the noise u in x = (k + u)/256 drawn from a
    learned q(u | k) instead of the uniform. q is a logistic per pixel squashed into (0, 1),
    u = sigmoid(μ + σ·ε) with ε standard logistic, μ and log σ from a small zero-initialised net of the
    8-bit values k (Flow++ uses a conditional flow; this is its simplest member). At μ = 0, σ = 1, where
    training starts, u is exactly uniform. −log p(x) + log q(u | k) bounds the discrete NLL as the uniform
    case does."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(channels, hidden, 3, padding=1), nn.ReLU(),
                                 zero_conv(hidden, 2 * channels))

    def forward(self, k: torch.Tensor, generator: torch.Generator | None = None):
        """(x = (k + u)/256, log q(u | k) per example) for 8-bit values k (floats 0..255), u drawn from q."""
        v = torch.rand(k.shape, generator=generator, device=k.device, dtype=k.dtype).clamp(1e-6, 1 - 1e-6)
        return self.transform(k, torch.log(v) - torch.log1p(-v))

    def transform(self, k: torch.Tensor, eps: torch.Tensor):
        """(x, log q(u | k)) for the standard logistic noise ε given."""
        mu, log_sigma = self.net(k / 255 - 0.5).chunk(2, 1)
        log_sigma = LOG_SCALE_BOUND * torch.tanh(log_sigma / LOG_SCALE_BOUND)
        h = mu + torch.exp(log_sigma) * eps
        # log q(u) = log logistic(ε) − log σ − log sigmoid'(h), and log logistic(ε) = log sigmoid'(ε) =
        # −softplus(ε) − softplus(−ε)
        log_q = per_example(F.softplus(h) + F.softplus(-h) - F.softplus(eps) - F.softplus(-eps) - log_sigma)
        return (k + torch.sigmoid(h)) / 256, log_q


# ---- the model around a flow -----------------------------------------------------------------------

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
