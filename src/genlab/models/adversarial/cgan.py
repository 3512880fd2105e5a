"""Conditional GAN (Mirza & Osindero 2014): the class label enters both G and D, so G learns one
distribution per class and `genlab sample RUN --class K` draws class K.

G sees [z, one-hot(y)]; D sees the image with the one-hot label beside it (extra inputs for the MLP,
constant extra image planes for the convolutional D). Fakes are drawn for the labels of the real batch.
The GAN losses and optimiser of `gan` / `dcgan`; nets chosen by size (conv for 16 px and up).
"""
from __future__ import annotations

from dataclasses import dataclass


from ..base import ClassConditioned
from .base import NetConfig
from .gan import GAN, g_loss_option


@dataclass
class CGANConfig(NetConfig):
    g_loss: str = g_loss_option()


class ConditionalGAN(ClassConditioned, GAN):
    name = "cgan"
    Config = CGANConfig
