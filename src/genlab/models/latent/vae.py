"""Variational autoencoder (Kingma & Welling 2014): a Gaussian code, a Bernoulli or Gaussian decoder.

The encoder gives a mean and a log-variance; the code is mean + exp(log-variance / 2) · ε; the loss is
the reconstruction term plus β times the KL divergence to N(0, I), with an optional linear KL warm-up.
`log_prob` is the ELBO (a lower bound); `eval_terms` adds the tighter IWAE bound (Burda et al. 2016).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ...errors import UserError
from ..base import GenerativeModel, option
from .gaussian import gaussian_kl, iwae_nll, reparameterise
from .nets import Decoder, Encoder, NetConfig, pixel_log_likelihood, pixel_mean


@dataclass
class VAEConfig(NetConfig):
    likelihood: str = option("auto", "decoder likelihood: bernoulli (binarised data), gaussian (continuous), "
                             "or auto (from the data)", choices=("auto", "bernoulli", "gaussian"))
    beta: float = option(1.0, "weight of the KL term (β-VAE); 1 gives the true ELBO", low=0.0)
    kl_warmup: int = option(0, "training steps over which the KL weight rises linearly from 0 to beta", low=0)


class VAE(GenerativeModel):
    name = "vae"
    Config = VAEConfig
    family = "latent"
    likelihood_kind = "bound"
    has_iwae = True
    abilities = ("encode", "decode")
    # 1,000 steps of 64: 44 epochs of digits, 8 of mnist, 2 of fashion-mnist. 120 steps (10 epochs of 128 on
    # digits) left the code unused, the −ELBO at the independent-pixel baseline.
    default_batch_size = 64
    default_steps = 1000

    def __init__(self, config: VAEConfig, info):
        super().__init__(config, info)
        lik = config.likelihood
        if lik == "auto":
            lik = "bernoulli" if info.pixels == "binary" else "gaussian"
        if lik == "bernoulli" and info.pixels != "binary":
            raise UserError("likelihood=bernoulli needs binarised data: use --binarize dynamic or threshold")
        self.likelihood = lik
        kind = config.net_kind(info.shape)
        cond = self.cond_dim()
        self.encoder = Encoder(kind, info.shape, 2 * config.latent_dim, config.hidden, cond, config.channels)
        self.decoder = Decoder(kind, info.shape, config.latent_dim, config.hidden, cond, config.channels)
        # Gaussian decoder: one learned noise level per pixel (a stable choice; per-code variances diverge).
        self.log_sigma = nn.Parameter(torch.full(info.shape, math.log(0.1))) if lik == "gaussian" else None
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    # -- conditioning hooks (the conditional VAE fills them in) --
    def cond_dim(self) -> int:
        return 0

    def cond(self, y: torch.Tensor | None) -> torch.Tensor | None:
        return None

    # -- the model --
    def _log_sigma(self):
        # Floor at the spread of the dequantisation noise (1/256/√12): below it the density is meaningless.
        return None if self.log_sigma is None else self.log_sigma.clamp(min=math.log(1 / 256 / math.sqrt(12)))

    def encode(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The posterior q(z|x): its mean and log-variance."""
        mu, logvar = self.encoder(x, self.cond(condition)).chunk(2, dim=1)
        return mu, logvar.clamp(-20, 10)

    def decode(self, z: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """The decoder's mean image in [0, 1] for each code."""
        return pixel_mean(self.decoder(z, self.cond(condition)))

    def _terms(self, x, y, mu, logvar, generator=None):
        if generator is None:
            z = reparameterise(mu, logvar)
        else:                                       # the ELBO's own stream (eval_terms)
            z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=generator, device=mu.device,
                                                           dtype=mu.dtype)
        recon = -pixel_log_likelihood(x, self.decoder(z, self.cond(y)), self.likelihood, self._log_sigma())
        return recon, gaussian_kl(mu, logvar)

    def loss(self, batch):
        x, y = batch.x, batch.condition
        recon, kl = self._terms(x, y, *self.encode(x, y))
        warm = 1.0 if self.config.kl_warmup == 0 else min(1.0, (self.steps.item() + 1) / self.config.kl_warmup)
        self.steps += 1
        return (recon + self.config.beta * warm * kl).mean(), {"recon": recon.mean().item(), "kl": kl.mean().item()}

    @torch.no_grad()
    def sample(self, n, *, condition=None, generator=None):
        self.check_condition(condition, n)
        z = torch.randn(n, self.config.latent_dim, generator=generator, device=self.device)
        return self.decode(z, self._sampling_condition(n, condition))

    def _sampling_condition(self, n, condition):
        return condition

    def log_prob(self, x, condition=None):
        """The ELBO, a lower bound on log p(x), in nats per image (one code sample)."""
        recon, kl = self._terms(x, condition, *self.encode(x, condition))
        return -(recon + kl)

    def iwae_nll(self, x: torch.Tensor, condition: torch.Tensor | None = None, k: int = 100,
                 chunk: int = 25) -> torch.Tensor:
        """−log of the k-sample importance-weighted bound: an upper bound on −log p(x) that tightens with k."""
        mu, logvar = self.encode(x, condition)
        c = self.cond(condition)

        def log_likelihood(z):                     # z: m codes for each image, draw by draw
            m = len(z) // len(x)
            out = self.decoder(z, None if c is None else c.repeat(m, 1))
            return pixel_log_likelihood(x.repeat(m, 1, 1, 1), out, self.likelihood, self._log_sigma())

        return iwae_nll(mu, logvar, log_likelihood, k, chunk)

    @torch.no_grad()
    def eval_terms(self, x, condition=None, *, iwae_k=100, generator=None):
        """−ELBO (one code per image, from `generator` when given) and its parts; the IWAE bound with
        iwae_k > 0, from samples of its own."""
        recon, kl = self._terms(x, condition, *self.encode(x, condition), generator=generator)
        terms = {"nelbo": recon + kl, "recon": recon, "kl": kl}
        if iwae_k > 0:
            terms["iwae"] = self.iwae_nll(x, condition, k=iwae_k)
        return terms
