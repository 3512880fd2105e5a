"""The pieces Real NVP and Glow are built from, each an invertible map with its log-determinant (the model
around them is base.py's FlowModel).

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

import torch
import torch.nn.functional as F
from torch import nn

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
