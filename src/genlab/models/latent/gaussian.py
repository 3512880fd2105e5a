"""What the models with a Gaussian code share (vae, cvae, sentence-vae): q(z | x) = N(mu, diag(exp logvar))
against the prior p(z) = N(0, I). Every function draws its noise from the global generator, in the
order the models always drew it, so seeded figures stay the same.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """One code per row, mu + σ·ε: differentiable in mu and logvar."""
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z | x) ‖ N(0, I)) per row, in nats, in closed form."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)


def iwae_nll(mu: torch.Tensor, logvar: torch.Tensor, log_likelihood: Callable[[torch.Tensor], torch.Tensor],
             k: int, chunk: int) -> torch.Tensor:
    """−log of the k-sample importance-weighted bound (Burda et al. 2016) per example: an upper bound on
    −log p(x) that tightens as k grows (k = 1: a one-sample −ELBO).

    log_likelihood(z) gives log p(x | z) for m·N codes (m ≤ chunk draws for each of the N examples, draw
    by draw: row j·N + i is example i), as m·N numbers; chunk bounds what the decoder holds at once."""
    std = torch.exp(0.5 * logvar)
    log_w = []
    for start in range(0, k, chunk):
        m = min(chunk, k - start)
        eps = torch.randn(m, *mu.shape, device=mu.device)
        z = mu + std * eps                                                    # m×N×L
        ll = log_likelihood(z.flatten(0, 1)).view(m, -1)
        log_pz = (-0.5 * z.pow(2) - HALF_LOG_2PI).sum(-1)
        log_qz = (-0.5 * eps.pow(2) - torch.log(std) - HALF_LOG_2PI).sum(-1)
        log_w.append(ll + log_pz - log_qz)
    return -(torch.logsumexp(torch.cat(log_w), 0) - math.log(k))
