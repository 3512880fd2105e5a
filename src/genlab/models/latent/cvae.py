"""Conditional VAE (Kingma et al. 2014, M2 with labels given; Sohn et al. 2015): the label enters
encoder and decoder, so the code is free to hold what the label does not — the style.

Sample a chosen class; or take one example's style and draw it as every class (`style`).
"""
from __future__ import annotations

import torch

from ..base import ClassConditioned
from .vae import VAE, VAEConfig


class ConditionalVAE(ClassConditioned, VAE):
    # class-conditional: its likelihood is log p(x | label), not comparable with unconditional models
    name = "cvae"
    Config = VAEConfig
    abilities = ("encode", "decode", "style")

    @torch.no_grad()
    def style(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each example's style (its posterior mean) drawn as every class: N·K images, row by row."""
        mu, _ = self.encode(x, y)
        k = self.info.num_classes
        z = mu.repeat_interleave(k, 0)
        labels = torch.arange(k, device=mu.device).repeat(len(x))
        return self.decode(z, labels)
