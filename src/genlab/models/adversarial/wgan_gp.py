"""WGAN-GP (Gulrajani et al. 2017): WGAN with a gradient penalty instead of weight clipping.

The critic's loss is E C(G(z)) − E C(x) + λ·E (‖∇C(x̂)‖₂ − 1)², x̂ drawn uniformly on the lines between
real and fake pairs; λ = 10. No batch norm in the critic (the penalty is per example, batch norm would
mix them). As the paper: Adam(0.0001, β = (0, 0.9)), n_critic = 5 critic steps per generator step, each
on a fresh batch (Algorithm 1; an epoch is one critic pass over the data, so len(train) / 5 generator
steps). "wasserstein" is logged every step, on that step's batch before the critic's update.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..base import option
from . import losses
from .base import AdversarialModel, NetConfig
from .indicators import critic_accuracy


@dataclass
class WGANGPConfig(NetConfig):
    gp_weight: float = option(10.0, "λ, the weight of the gradient penalty", low=0.0)
    n_critic: int = option(5, "critic steps per generator step, each on its own batch", low=1)


class WGANGP(AdversarialModel):
    name = "wgan-gp"
    Config = WGANGPConfig
    default_lr = 1e-4
    default_steps = 4000       # critic steps: 800 generator steps at n_critic = 5 (174 epochs of digits, 32 of mnist)
    critic_norm = False

    @property
    def n_critic(self) -> int:
        return self.config.n_critic

    def configure_optimizers(self, lr):
        return {"generator": torch.optim.Adam(self.generator.parameters(), lr=lr, betas=(0.0, 0.9)),
                "discriminator": torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=(0.0, 0.9))}

    def penalty(self, real, fake, c=None, eps=None):
        return losses.gradient_penalty(self.discriminator, real, fake, c, eps)

    def discriminator_loss(self, real_out, fake_out, real, fake, c):
        w = losses.wasserstein_estimate(real_out, fake_out)
        gp = self.penalty(real, fake, c)
        loss = -w + self.config.gp_weight * gp
        return loss, {"d_loss": loss.item(), "wasserstein": w.item(), "gradient_penalty": gp.item(),
                      **critic_accuracy(real_out, fake_out)}

    def generator_loss(self, fake_out):
        return -fake_out.mean()
