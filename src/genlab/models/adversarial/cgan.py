"""Conditional GAN (Mirza & Osindero 2014): the class label enters both G and D, so G learns one
distribution per class and `genlab sample RUN --class K` draws class K.

G sees [z, one-hot(y)]; D sees the image with the one-hot label beside it (extra inputs for the MLP,
constant extra image planes for the convolutional D). Fakes are drawn for the labels of the real batch.
The GAN losses and optimiser of `gan` / `dcgan`; nets chosen by size (conv for 16 px and up).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ...errors import UserError
from ..base import register
from .base import NetConfig
from .gan import GAN, g_loss_option


@dataclass
class CGANConfig(NetConfig):
    g_loss: str = g_loss_option()


@register
class ConditionalGAN(GAN):
    name = "cgan"
    Config = CGANConfig
    default_net = "auto"
    needs_labels = True
    conditional = True

    def cond_dim(self) -> int:
        return self.info.num_classes

    def cond(self, y):
        if y is None:
            raise UserError("the conditional GAN needs a class label for every image")
        if y.dim() == 1:
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.info.num_classes):
                raise UserError(f"class must be between 0 and {self.info.num_classes - 1}")
            return F.one_hot(y.long(), self.info.num_classes).float()
        return y.float()

    def _sampling_condition(self, n, condition):
        # No class asked for: cycle through the classes, so a grid shows each one in turn.
        if condition is None:
            return torch.arange(n, device=self.device) % self.info.num_classes
        if condition.dim() == 0:
            return condition.expand(n).to(self.device)
        return condition.to(self.device)
