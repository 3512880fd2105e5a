"""Annealed importance sampling (Neal 2001) for the partition function of a binary RBM, as Salakhutdinov &
Murray (2008): from a base distribution of independent pixels (its Z known) to the RBM through K
distributions in between,

    p*_β(v) = exp((1 − β) a·v + β b·v) Π_j (1 + exp(β (c_j + W_j·v))),   β_0 = 0 < β_1 < … < β_K = 1,

each chain drawn exactly from the base, moved by one Gibbs sweep at each β_k, its log weight the sum of
log p*_k(v_k) − log p*_{k-1}(v_k). The mean of the weights estimates Z_K / Z_0 without bias; log Ẑ is an
estimate, not a bound: by Jensen's inequality it errs low on average (by about se²/2 when the weights are
well behaved; more when a rare chain would carry a large weight). Its standard error is the delta
method's: sd(w) / (√M · mean(w)) for M chains.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def bernoulli(p: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """0/1 draws with probabilities p: uniform numbers below p (several times faster than torch.bernoulli)."""
    return (torch.rand(p.shape, generator=generator, device=p.device, dtype=p.dtype) < p).to(p.dtype)


def beta_schedule(steps: int) -> torch.Tensor:
    """β_0 = 0 … β_K = 1 (K = steps), float64: Salakhutdinov & Murray's spacing scaled to K — 1/29 of the
    steps from 0 to 0.5, 8/29 from 0.5 to 0.9 and 20/29 from 0.9 to 1 (their 500, 4,000 and 10,000), where
    the distributions change fastest; evenly spaced when K is too small to split."""
    first, second = round(steps / 29), round(steps * 8 / 29)
    third = steps - first - second
    if min(first, second, third) < 1:
        return torch.linspace(0, 1, steps + 1, dtype=torch.float64)
    parts = [torch.linspace(0.0, 0.5, first + 1, dtype=torch.float64)[:-1],
             torch.linspace(0.5, 0.9, second + 1, dtype=torch.float64)[:-1],
             torch.linspace(0.9, 1.0, third + 1, dtype=torch.float64)]
    return torch.cat(parts)


@torch.no_grad()
def ais_log_z(weight: torch.Tensor, visible_bias: torch.Tensor, hidden_bias: torch.Tensor,
              base_logits: torch.Tensor, *, steps: int, chains: int,
              generator: torch.Generator | None = None) -> tuple[float, float]:
    """(log Ẑ, its standard error) for the RBM with `weight` H×D and these biases, annealed from independent
    pixels with log-odds `base_logits` in `steps` steps, averaged over `chains` runs."""
    W, b, c, a = weight, visible_bias, hidden_bias, base_logits
    betas = beta_schedule(steps).tolist()
    hidden = W.shape[0]
    # Z_0: the base's pixels, and 2 for each hidden unit (β = 0 leaves it free).
    log_z0 = float(F.softplus(a.double()).sum()) + hidden * math.log(2)
    v = bernoulli(torch.sigmoid(a).expand(chains, -1), generator)
    log_w = torch.zeros(chains, dtype=torch.float64, device=W.device)
    tilt = b - a
    for k in range(1, len(betas)):
        lo, hi = betas[k - 1], betas[k]
        act = F.linear(v, W, c)
        scaled = hi * act
        # Each step's change in the model's float (rounding ~1e-7 of it, far below the estimate's own
        # noise), accumulated in float64 over the steps.
        step = (hi - lo) * (v @ tilt) + (F.softplus(scaled) - F.softplus(lo * act)).sum(1)
        log_w += step.double()
        if k < len(betas) - 1:                          # one Gibbs sweep that leaves p*_k unchanged
            h = bernoulli(torch.sigmoid(scaled), generator)
            v = bernoulli(torch.sigmoid(torch.addmm((1 - hi) * a + hi * b, h, W, alpha=hi)), generator)
    log_mean = float(torch.logsumexp(log_w, 0)) - math.log(chains)
    w = torch.exp(log_w - log_w.max())                 # scaled: the ratio below does not change
    se = float(w.std(unbiased=True) / (w.mean() * math.sqrt(chains))) if chains > 1 else math.inf
    return log_z0 + log_mean, se


def exact_log_z(weight: torch.Tensor, visible_bias: torch.Tensor, hidden_bias: torch.Tensor,
                chunk: int = 4096) -> float:
    """log Z summed exactly, in float64, over every state of the smaller layer with the other one
    marginalised analytically: 2^min(H, D) terms."""
    W, b, c = weight.double(), visible_bias.double(), hidden_bias.double()
    if W.shape[0] > W.shape[1]:                         # fewer visible units: sum over them instead
        W, b, c = W.t(), c, b
    n = W.shape[0]
    terms = []
    for start in range(0, 2 ** n, chunk):
        codes = torch.arange(start, min(start + chunk, 2 ** n), device=W.device)
        h = ((codes[:, None] >> torch.arange(n, device=W.device)) & 1).double()
        terms.append(h @ c + F.softplus(h @ W + b).sum(1))
    return float(torch.logsumexp(torch.cat(terms), 0))
