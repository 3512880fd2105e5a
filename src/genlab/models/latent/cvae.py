"""Conditional VAE (Kingma et al. 2014, M2 with labels given; Sohn et al. 2015): the label enters
encoder and decoder, so the code is free to hold what the label does not — the style.

Sample a chosen class; or take one example's style and draw it as every class (`style`).
"""
from __future__ import annotations

import torch

from ..base import one_hot_labels, sampling_labels
from .vae import VAE, VAEConfig


class ConditionalVAE(VAE):
    name = "cvae"
    Config = VAEConfig
    conditioning = "class"      # its likelihood is log p(x | label): not comparable with unconditional models
    abilities = ("encode", "decode", "style")

    def cond_dim(self) -> int:
        return self.info.num_classes

    def cond(self, y):
        return one_hot_labels(self, y)

    def _sampling_condition(self, n, condition):
        return sampling_labels(n, condition, self.info.num_classes, self.device)

    @torch.no_grad()
    def style(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each example's style (its posterior mean) drawn as every class: N·K images, row by row."""
        mu, _ = self.encode(x, y)
        k = self.info.num_classes
        z = mu.repeat_interleave(k, 0)
        labels = torch.arange(k, device=mu.device).repeat(len(x))
        return self.decode(z, labels)
