"""Conditional VAE (Kingma et al. 2014, M2 with labels given; Sohn et al. 2015): the label enters
encoder and decoder, so the code is free to hold what the label does not — the style.

Sample a chosen class; or take one example's style and draw it as every class (`style`).
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from ...errors import UserError
from ..base import register
from .vae import VAE, VAEConfig


@register
class ConditionalVAE(VAE):
    name = "cvae"
    Config = VAEConfig
    needs_labels = True
    conditional = True      # its likelihood is log p(x | label): not comparable with unconditional models

    def cond_dim(self) -> int:
        return self.info.num_classes

    def cond(self, y: torch.Tensor | None) -> torch.Tensor:
        if y is None:
            raise UserError("the conditional VAE needs a class label for every image")
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

    @torch.no_grad()
    def style(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each example's style (its posterior mean) drawn as every class: N·K images, row by row."""
        mu, _ = self.encode(x, y)
        k = self.info.num_classes
        z = mu.repeat_interleave(k, 0)
        labels = torch.arange(k, device=mu.device).repeat(len(x))
        return self.decode(z, labels)
