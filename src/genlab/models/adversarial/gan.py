"""GAN (Goodfellow et al. 2014): fully connected G and D trained in turns on the minimax game.

D learns to tell real images from G's; G learns to fool it. The generator's loss is the minimax one,
log(1 − D(G(z))), or the non-saturating −log D(G(z)) that the paper recommends in practice (the
default): early on D rejects the fakes easily and the minimax gradient vanishes. Adam(lr, β₁ = 0.5)
as DCGAN found stable, rather than the paper's SGD with momentum.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..base import option
from . import losses
from .base import AdversarialModel, hidden_option, latent_dim_option
from .indicators import accuracy

G_LOSSES = ("non-saturating", "minimax")


def g_loss_option():
    return option("non-saturating", "generator loss: non-saturating (−log D(G(z))) or minimax "
                  "(log(1 − D(G(z))))", choices=G_LOSSES)


@dataclass
class GANConfig:
    latent_dim: int = latent_dim_option()
    hidden: int = hidden_option()
    g_loss: str = g_loss_option()


class GAN(AdversarialModel):
    name = "gan"
    Config = GANConfig
    default_net = "mlp"

    def discriminator_loss(self, real_out, fake_out, real, fake, c):
        loss = losses.discriminator_loss(real_out, fake_out)
        return loss, {"d_loss": loss.item(), **accuracy(real_out, fake_out)}

    def generator_loss(self, fake_out):
        return losses.generator_loss(fake_out, self.config.g_loss)
