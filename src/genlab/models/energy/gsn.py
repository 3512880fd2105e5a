"""Generative stochastic network (Bengio, Laufer, Alain & Yosinski 2014, "Deep Generative Stochastic Networks
Trainable by Backprop"), in its generalised denoising autoencoder form (Bengio, Yao, Alain & Vincent 2013):
the model is a Markov chain, not a density. One step of the chain corrupts the state, X̃ ~ C(X̃ | X)
(salt-and-pepper on binary pixels, Gaussian on 8-bit ones), and draws the next state from a learnt
reconstruction, X ~ P_θ(X | X̃): a network of hidden layers with noise injected before and after each tanh,
ending in a Bernoulli per pixel (binary) or a discretised logistic over the 256 levels (8-bit). Its
stationary distribution is the model's distribution (consistent as the reconstruction learns P(X | X̃)).

Training is walkback: the chain is unrolled K steps from each training example, each step starting from a
sample of the one before, and the reconstruction loss of the *original* example is summed over the K steps,
so the network learns to pull the spurious states a chain wanders to back to the data.

Sampling is the chain: from noise, `burn_in` steps, then the state (or n consecutive states of one chain,
`chain`, every `thin` steps: the lecture's pictures of a chain walking from digit to digit).

Its likelihood is an estimate: the Conservative Sampling-based Likelihood of Bengio, Yao & Cho (2013),
log p̂(x) = log (1/S) Σ_s P_θ(x | X̃_s) over S corrupted states of chains run from noise: consistent as S
grows, low on average for a finite S (the log of an unbiased mean), so the NLL it gives errs high.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ...errors import UserError
from ...progress import tick
from ..base import GenerativeModel, option

CSL_SEED = 0          # the estimate's chains draw from a stream of their own: a function of the weights alone
CSL_CHAINS = 10       # chains the S states of the estimate are spread over (S / CSL_CHAINS consecutive each)
CSL_BURN_IN = 100


@dataclass
class GSNConfig:
    hidden: int = option(500, "tanh units of each hidden layer (the paper: 1,500)", low=1)
    layers: int = option(2, "hidden layers of the reconstruction network", low=1)
    walkback: int = option(4, "K: steps the chain is unrolled from each training example, the example's "
                              "reconstruction loss summed over them", low=1)
    salt_pepper: float = option(0.25, "binary pixels: the share of pixels the corruption sets to a random bit "
                                      "(the paper: 0.4)", low=0.0)
    gaussian: float = option(0.3, "8-bit pixels: the standard deviation of the corruption's Gaussian noise "
                                  "(pixels in [0, 1])", low=0.0)
    hidden_noise: float = option(0.5, "the standard deviation of the Gaussian noise added before and after "
                                      "each tanh (the paper: 2)", low=0.0)
    csl_samples: int = option(1000, "S: chain states the likelihood estimate (CSL) averages over", low=1)


@dataclass
class GSNSampling:
    burn_in: int | None = option(None, "chain steps from noise before the first state is kept (default 100)",
                                 low=0, high=100_000)
    thin: int = option(1, "with --chain: steps between kept states", low=1, high=10_000)
    chain: bool = option(False, "one chain's n consecutive states (every --thin steps) instead of n chains' "
                                "last states")
    mean: bool = option(False, "show each state's reconstruction probabilities (the papers' pictures) instead "
                               "of the drawn pixels")


def discretised_logistic_log_prob(levels: torch.Tensor, mu: torch.Tensor, log_s: torch.Tensor) -> torch.Tensor:
    """log P(level) for 8-bit levels 0…255 under a logistic of mean mu and scale e^log_s on [0, 1], each level
    the mass of its bin of width 1/255 (the end bins reaching to ±∞): per pixel, in nats."""
    x = levels.float() / 255
    inv = torch.exp(-log_s)
    upper = torch.where(levels >= 255, torch.full_like(x, math.inf), (x + 0.5 / 255 - mu) * inv)
    lower = torch.where(levels <= 0, torch.full_like(x, -math.inf), (x - 0.5 / 255 - mu) * inv)
    # log(σ(u) − σ(l)) computed stably: σ(u) − σ(l) = σ(u)(1 − σ(l)) (1 − e^(l − u))
    mid = F.logsigmoid(upper) + F.logsigmoid(-lower) + torch.log(-torch.expm1(lower - upper).clamp(max=-1e-12))
    return mid


class GSN(GenerativeModel):
    name = "gsn"
    Config = GSNConfig
    SampleSettings = GSNSampling
    family = "markov chain"
    abilities = ("chain",)
    likelihood_kind = "estimate"
    estimates = {"nll_csl": ("CSL estimate",
                             "the Conservative Sampling-based Likelihood (Bengio, Yao & Cho 2013): the log of the "
                             "mean of P(x | X̃) over the run's csl_samples corrupted states of chains run from "
                             "noise; consistent as they grow, low on average for few of them, so the NLL errs "
                             "high.")}
    discrete = True             # P(x | X̃) is of the pixels' own values (bits, or the 256 levels): no D·log 256
    default_binarize = "dynamic"
    default_batch_size = 64
    default_lr = 1e-3
    # At these defaults on digits (3,000 steps: 131 epochs of 23, a minute of training on one thread, the
    # per-epoch CSL estimate as long again): CSL 25.4 ± 0.2 nats against the independent pixels' 27.1, FID
    # 22.5 ± 1.1 against their samples' 30.7. The paper's salt-and-pepper 0.4 gave 26.2 and 27.0.
    default_steps = 3000

    def __init__(self, config: GSNConfig, info):
        super().__init__(config, info)
        if info.pixels not in ("binary", "continuous"):
            raise UserError(f"{self.name} models binary or 8-bit pixels: use --binarize dynamic, threshold or none")
        self.binary = info.pixels == "binary"
        d = info.dims
        sizes = [d] + [config.hidden] * config.layers
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
        self.out = nn.Linear(config.hidden, d if self.binary else 2 * d)

    # ---- one step of the chain ----
    def corrupt(self, x: torch.Tensor, generator=None) -> torch.Tensor:
        """X̃ ~ C(X̃ | X): salt-and-pepper (binary), Gaussian noise (8-bit)."""
        if self.binary:
            hit = torch.rand(x.shape, generator=generator, device=x.device) < self.config.salt_pepper
            bits = (torch.rand(x.shape, generator=generator, device=x.device) < 0.5).to(x.dtype)
            return torch.where(hit, bits, x)
        return x + self.config.gaussian * torch.randn(x.shape, generator=generator, device=x.device)

    def reconstruct(self, x_tilde: torch.Tensor, generator=None) -> torch.Tensor:
        """The parameters of P(X | X̃): N×D logits (binary), or N×2×D means and log-scales (8-bit); the
        hidden layers' noise drawn from `generator`."""
        h = x_tilde.flatten(1)
        s = self.config.hidden_noise
        for layer in self.hidden:
            a = layer(h)
            if s > 0:
                a = a + s * torch.randn(a.shape, generator=generator, device=a.device)
            h = torch.tanh(a)
            if s > 0:
                h = h + s * torch.randn(h.shape, generator=generator, device=h.device)
        out = self.out(h)
        return out if self.binary else out.view(len(out), 2, -1)

    def log_p(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """log P(x | X̃) per example, in nats, for images x (N×C×H×W) and reconstruction parameters."""
        flat = x.flatten(1)
        if self.binary:
            return -F.binary_cross_entropy_with_logits(params, flat, reduction="none").sum(1)
        levels = (flat * 256).floor().clamp(0, 255)
        mu, log_s = torch.sigmoid(params[:, 0]), params[:, 1].clamp(-7, 2)
        return discretised_logistic_log_prob(levels, mu, log_s).sum(1)

    def draw(self, params: torch.Tensor, generator=None) -> torch.Tensor:
        """A state X ~ P(X | X̃), as images in [0, 1]."""
        if self.binary:
            p = torch.sigmoid(params)
            x = (torch.rand(p.shape, generator=generator, device=p.device) < p).float()
        else:
            mu, log_s = torch.sigmoid(params[:, 0]), params[:, 1].clamp(-7, 2)
            u = torch.rand(mu.shape, generator=generator, device=mu.device).clamp(1e-6, 1 - 1e-6)
            x = ((mu + torch.exp(log_s) * (torch.log(u) - torch.log1p(-u))) * 255).round().clamp(0, 255) / 255
        return x.view(len(x), *self.info.shape)

    def mean_of(self, params: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(params) if self.binary else torch.sigmoid(params[:, 0])
        return p.view(len(p), *self.info.shape)

    def step(self, x: torch.Tensor, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of the chain from state x: (the reconstruction's parameters, the next state)."""
        params = self.reconstruct(self.corrupt(x, generator), generator)
        return params, self.draw(params, generator)

    # ---- training: walkback ----
    def walkback_losses(self, x0: torch.Tensor, generator=None) -> list[torch.Tensor]:
        """−log P(x0 | X̃_k) per example for k = 1 … K, the chain walking from x0, each step from a sample
        of the last (no gradient through the samples)."""
        x, losses = x0, []
        for _ in range(self.config.walkback):
            params, x = self.step(x, generator)
            losses.append(-self.log_p(x0, params))
            x = x.detach()
        return losses

    def loss(self, batch):
        losses = self.walkback_losses(batch.x)
        return torch.stack(losses).sum(0).mean(), {"recon_first": losses[0].mean().item(),
                                                   "recon_last": losses[-1].mean().item()}

    # ---- sampling: the chain ----
    @torch.no_grad()
    def run_chain(self, x: torch.Tensor, steps: int, generator=None, keep_every: int = 0, mean: bool = False):
        """`steps` steps from states x; the states every `keep_every` steps (0: the last only), as drawn or
        as their reconstruction probabilities (`mean`)."""
        kept, shown = [], x
        for t in range(1, steps + 1):
            tick("running the chain", t, steps)
            params, x = self.step(x, generator)
            shown = self.mean_of(params) if mean else x
            if keep_every and t % keep_every == 0:
                kept.append(shown)
        return torch.cat(kept) if keep_every else shown

    def noise(self, n: int, generator=None) -> torch.Tensor:
        """Where chains start: independent uniform pixels (binary: fair bits)."""
        u = torch.rand((n, *self.info.shape), generator=generator, device=self.device)
        return (u < 0.5).float() if self.binary else (u * 255).round() / 255

    @torch.no_grad()
    def sample(self, n, *, condition=None, generator=None, burn_in: int | None = None, thin: int = 1,
               chain: bool = False, mean: bool = False):
        """n chains from noise, each `burn_in` steps (default 100), their last states; or with `chain`, one
        chain's n states every `thin` steps after its burn-in."""
        self.check_condition(condition, n)
        if chain:
            return self.chain(n, generator=generator, burn_in=burn_in, thin=thin, mean=mean)
        burn_in = CSL_BURN_IN if burn_in is None else burn_in
        x = self.noise(n, generator)
        return self.run_chain(x, burn_in, generator, mean=mean) if burn_in else x

    @torch.no_grad()
    def chain(self, n: int, *, generator=None, burn_in: int | None = None, thin: int = 1, mean: bool = False):
        """One chain from noise: after `burn_in` steps (default 100), its n states every `thin` steps."""
        x = self.noise(1, generator)
        burn_in = CSL_BURN_IN if burn_in is None else burn_in
        if burn_in:
            x = self.run_chain(x, burn_in, generator)
        return self.run_chain(x, n * thin, generator, keep_every=thin, mean=mean)

    # ---- likelihood: CSL ----
    @torch.no_grad()
    def csl_states(self) -> torch.Tensor:
        """The parameters of P(X | X̃_s) for S corrupted chain states (CSL_CHAINS chains from noise, after
        CSL_BURN_IN steps), from a stream of their own."""
        # The same weights give the same states (their own seed): made once per weights, not per test batch.
        key = (str(self.device), *((p.data_ptr(), p._version) for p in self.parameters()))
        cached = self.__dict__.get("_csl_cache")
        if cached is not None and cached[0] == key:
            return cached[1]
        g = torch.Generator(device=self.device).manual_seed(CSL_SEED)
        per_chain = -(-self.config.csl_samples // CSL_CHAINS)
        x = self.run_chain(self.noise(CSL_CHAINS, g), CSL_BURN_IN, g)
        params = []
        for _ in range(per_chain):
            p, x = self.step(x, g)
            params.append(p)
        out = torch.cat(params)[: self.config.csl_samples]
        self.__dict__["_csl_cache"] = (key, out)
        return out

    @torch.no_grad()
    def csl_log_prob(self, x: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        """log p̂(x) = log mean_s P(x | X̃_s), per example."""
        params = self.csl_states() if params is None else params
        lp = torch.stack([self.log_p(x, params[s:s + 1].expand(len(x), *params.shape[1:]))
                          for s in range(len(params))], 1) if not self.binary else self._binary_log_p_all(x, params)
        return torch.logsumexp(lp, 1) - math.log(len(params))

    def _binary_log_p_all(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """log P(x_i | X̃_s) for every example i and state s at once: N×S (one matrix product)."""
        flat = x.flatten(1).float()
        return flat @ logits.t() - F.softplus(logits).sum(1)

    def log_prob(self, x, condition=None):
        """The CSL estimate of log p(x), per image (an unconditional model: a data set's labels are ignored)."""
        return self.csl_log_prob(x)

    @torch.no_grad()
    def eval_terms(self, x, condition=None, *, iwae_k=100, generator=None):
        return {"nll_csl": -self.log_prob(x, condition)}
