"""Autoencoder: encoder → code → decoder, trained to reconstruct.

It has no likelihood. `sample` decodes codes drawn from N(0, I), as the lecture does: nothing made its
codes look like N(0, I), so most such codes decode to poor images — the gap the VAE closes.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ..base import GenerativeModel
from .nets import Decoder, Encoder, NetConfig, pixel_mean


@dataclass
class AutoencoderConfig(NetConfig):
    """The autoencoder needs nothing beyond its networks' settings."""


class Autoencoder(GenerativeModel):
    name = "ae"
    Config = AutoencoderConfig
    family = "latent"
    abilities = ("encode", "decode")
    default_batch_size = 64
    default_steps = 1000         # as the VAE's: 44 epochs of digits, 8 of mnist, 2 of fashion-mnist

    def __init__(self, config: AutoencoderConfig, info):
        super().__init__(config, info)
        kind = config.net_kind(info.shape)
        self.encoder = Encoder(kind, info.shape, config.latent_dim, config.hidden, 0, config.channels)
        self.decoder = Decoder(kind, info.shape, config.latent_dim, config.hidden, 0, config.channels)

    def encode(self, x: torch.Tensor, condition=None) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: torch.Tensor, condition=None) -> torch.Tensor:
        return pixel_mean(self.decoder(z))

    def _recon(self, x: torch.Tensor) -> torch.Tensor:
        """Per-image reconstruction loss: cross-entropy for binary pixels, squared error otherwise."""
        out = self.decoder(self.encoder(x))
        if self.info.pixels == "binary":
            loss = F.binary_cross_entropy_with_logits(out, x, reduction="none")
        else:
            loss = (pixel_mean(out) - x) ** 2
        return loss.flatten(1).sum(1)

    def loss(self, batch):
        return self._recon(batch.x).mean(), {}

    @torch.no_grad()
    def sample(self, n, *, condition=None, generator=None):
        self.check_condition(condition, n)
        z = torch.randn(n, self.config.latent_dim, generator=generator, device=self.device)
        return self.decode(z)

    @torch.no_grad()
    def eval_terms(self, x, condition=None, *, iwae_k=100, generator=None):
        return {"recon_loss": self._recon(x)}   # not a likelihood: no unit of nats
