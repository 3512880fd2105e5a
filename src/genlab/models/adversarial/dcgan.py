"""DCGAN (Radford et al. 2015): the GAN game with convolutional nets sized from the data's shape.

G projects z to a small map (4×4 for 32 and 64 px, 7×7 for 28 px, 2×2 for 8 px) and doubles it with
transposed convolutions; D mirrors it with strided convolutions. Batch norm in both (not on G's output
nor D's input), ReLU in G, LeakyReLU(0.2) in D, tanh output, N(0, 0.02) weights, Adam(0.0002, β₁ = 0.5).
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import features_option, latent_dim_option
from .gan import GAN, g_loss_option


@dataclass
class DCGANConfig:
    latent_dim: int = latent_dim_option()
    features: int = features_option()
    g_loss: str = g_loss_option()


class DCGAN(GAN):
    name = "dcgan"
    Config = DCGANConfig
    default_net = "conv"
