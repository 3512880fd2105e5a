"""The adversarial losses, on raw scores (D's logits or the critic's values; no sigmoid anywhere).

GAN (Goodfellow et al. 2014): D maximises log D(x) + log(1 − D(G(z))); G minimises log(1 − D(G(z)))
("minimax", which saturates while D easily rejects the fakes, early on) or maximises log D(G(z))
("non-saturating", the paper's practical fix). With D = sigmoid(l): −log D = softplus(−l) and
−log(1 − D) = softplus(l), computed stably.

WGAN (Arjovsky et al. 2017): the critic maximises E C(x) − E C(G(z)), an estimate of the Wasserstein-1
distance while C stays 1-Lipschitz; G minimises −E C(G(z)). WGAN-GP (Gulrajani et al. 2017) keeps C
near 1-Lipschitz with the penalty below instead of clipping.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss(fake_logits: torch.Tensor, kind: str = "non-saturating") -> torch.Tensor:
    if kind == "minimax":
        return -F.softplus(fake_logits).mean()          # log(1 − D(G(z))), to be minimised
    return F.softplus(-fake_logits).mean()              # −log D(G(z))


def wasserstein_estimate(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """E C(x) − E C(G(z)): what the critic maximises; it falls as the fakes approach the data."""
    return real_scores.mean() - fake_scores.mean()


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, cond: torch.Tensor | None = None,
                     eps: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over the batch of (‖∇C(x̂)‖₂ − 1)², x̂ = ε·x + (1 − ε)·G(z) with ε ~ U[0, 1] per example.

    The graph is kept (create_graph) so that the penalty's own gradient reaches the critic's weights."""
    if eps is None:
        eps = torch.rand(len(real), *[1] * (real.dim() - 1), device=real.device)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat, cond).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()
