"""A restricted Boltzmann machine of binary pixels and binary hidden units (Smolensky 1986; Hinton 2002):
E(v, h) = −b·v − c·h − hᵀWv, and p(v) = exp(−F(v)) / Z with the free energy

    F(v) = −b·v − Σ_j softplus(c_j + W_j·v).

Trained by contrastive divergence (CD-k: chains started at the data, k Gibbs sweeps; Hinton 2002) or
persistent CD (PCD: chains carried on from step to step; Tieleman 2008). The gradient of
mean F(data) − mean F(chains) is the negative log-likelihood's, with the chains standing in for the model.

Its likelihood is an estimate: F(x) is exact, Z is not. log Z comes from annealed importance sampling
(ais.py; Salakhutdinov & Murray 2008) from independent pixels at the training data's marginals, once per
set of weights (cached: every test batch and every binarisation of one evaluation shares it), from its
own seeded generator, so the same weights always give the same figure. Samples come from Gibbs chains
started at those independent pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import UserError
from ..base import GenerativeModel, option
from .ais import ais_log_z, bernoulli, exact_log_z

AIS_SEED = 0          # AIS's own random numbers: the estimate is a function of the weights alone
EXACT_LIMIT = 24      # exact_log_z sums 2^min(H, D) terms: beyond this, too many


@dataclass
class RBMConfig:
    hidden: int = option(500, "binary hidden units", low=1)
    persistent: bool = option(False, "persistent contrastive divergence (PCD: the negative chains carry on "
                                     "from step to step); false: CD-k (chains start at the batch)")
    cd_k: int = option(1, "Gibbs sweeps of the negative chains per training step (the k of CD-k)", low=1)
    chains: int = option(100, "persistent chains (PCD only)", low=1)
    gibbs_steps: int = option(1000, "Gibbs sweeps for each sample, from independent pixels at the data's "
                                    "marginals", low=1)
    ais_temperatures: int = option(1000, "annealing steps of AIS for log Z: distributions from independent "
                                         "pixels (β=0) to the RBM (β=1)", low=1)
    ais_chains: int = option(100, "AIS runs whose importance weights are averaged for log Z (and give its "
                                  "standard error)", low=2)


class RBM(GenerativeModel):
    name = "rbm"
    Config = RBMConfig
    family = "energy"
    likelihood_kind = "estimate"
    estimates = {"nll_ais": ("AIS estimate",
                             "each image's free energy plus one estimate of log Z by annealed importance sampling "
                             "(the run's ais_temperatures and ais_chains; Salakhutdinov & Murray 2008), its ± "
                             "holding that estimate's standard error too (ais_log_z_se in eval.json); an estimate, "
                             "not a bound: log Z errs low on average, and the NLL with it.")}
    default_binarize = "dynamic"
    loss_name = "free_energy_gap"      # the loss is no likelihood: its gradient is CD's update
    # CD-1, 500 hidden units, Adam at 1e-3 in batches of 20 for 5,000 steps: 70 epochs of digits, AIS NLL
    # 24.7 nats against the independent pixels' 27.1; 13 epochs of mnist, about 125 nats (Salakhutdinov &
    # Murray's CD-1 RBM of 500 units: 125.5) against 204. Adam at 1e-2 reaches 24.4 on digits sooner but on
    # mnist its likelihood peaks after one epoch (133) and then falls apart (360 after 69 epochs: CD's bias
    # lets log Z run away at that rate). Each epoch's test figure runs AIS afresh.
    default_batch_size = 20
    default_lr = 1e-3
    default_steps = 5000

    def __init__(self, config: RBMConfig, info):
        super().__init__(config, info)
        if info.pixels != "binary":
            raise UserError(f"{self.name} models binary pixels: use --binarize dynamic or threshold")
        d, h = info.dims, config.hidden
        self.weight = nn.Parameter(0.01 * torch.randn(h, d))      # small, as Hinton's practical guide
        self.visible_bias = nn.Parameter(torch.zeros(d))
        self.hidden_bias = nn.Parameter(torch.zeros(h))
        # The training pixels' running mean: the visible biases start at its log-odds on the first batch;
        # AIS anneals from, and sampling starts at, independent pixels with these marginals.
        self.register_buffer("marginals", torch.full((d,), 0.5))
        self.register_buffer("seen", torch.zeros((), dtype=torch.long))
        if config.persistent:
            self.register_buffer("chains", torch.zeros(config.chains, d))
        self._log_z = None        # (the weights it was computed for, log Ẑ, its standard error)

    # ---- energies ----
    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) per image: −log Σ_h exp(−E(v, h))."""
        v = v.flatten(1)
        return -(v @ self.visible_bias) - F.softplus(F.linear(v, self.weight, self.hidden_bias)).sum(1)

    def base_logits(self) -> torch.Tensor:
        """Log-odds of the independent pixels AIS and sampling start from: the marginals seen in training,
        add-one smoothed so that a pixel never on still can be."""
        n = self.seen.to(self.marginals.dtype)
        p = (self.marginals * n + 1) / (n + 2)
        return torch.log(p) - torch.log1p(-p)

    def gibbs(self, v: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One sweep: h ~ p(h | v), then v ~ p(v | h)."""
        h = bernoulli(torch.sigmoid(F.linear(v, self.weight, self.hidden_bias)), generator)
        return bernoulli(torch.sigmoid(h @ self.weight + self.visible_bias), generator)

    # ---- training ----
    @torch.no_grad()
    def _see(self, v: torch.Tensor) -> None:
        """Count the batch into the marginals; on the first, start the visible biases at its log-odds and
        the persistent chains at its independent pixels."""
        first = int(self.seen) == 0
        n = len(v)
        self.marginals += (v.mean(0) - self.marginals) * (n / (int(self.seen) + n))
        self.seen += n
        if first:
            self.visible_bias.copy_(self.base_logits())
            if self.config.persistent:
                self.chains.copy_(bernoulli(torch.sigmoid(self.base_logits()).expand_as(self.chains)))

    def loss(self, batch):
        """The free-energy gap between the data and the negative phase's samples (CD-k's, or PCD's)."""
        v = batch.x.flatten(1)
        self._see(v)
        with torch.no_grad():
            neg = self.chains if self.config.persistent else v
            for _ in range(self.config.cd_k):
                neg = self.gibbs(neg)
            if self.config.persistent:
                self.chains.copy_(neg)
            recon = torch.sigmoid(torch.sigmoid(F.linear(v, self.weight, self.hidden_bias)) @ self.weight
                                  + self.visible_bias)
        gap = self.free_energy(v).mean() - self.free_energy(neg).mean()
        return gap, {"recon_error": float(((v - recon) ** 2).sum(1).mean())}

    # ---- sampling ----
    @torch.no_grad()
    def sample(self, n, *, condition=None, generator=None):
        """n binary images: Gibbs chains of `gibbs_steps` sweeps from independent pixels."""
        self.check_condition(condition, n)
        v = bernoulli(torch.sigmoid(self.base_logits()).expand(n, -1), generator)
        for _ in range(self.config.gibbs_steps):
            v = self.gibbs(v, generator)
        return v.view(n, *self.info.shape)

    # ---- likelihood ----
    def _weights(self) -> tuple[torch.Tensor, ...]:
        return (self.weight, self.visible_bias, self.hidden_bias, self.base_logits())

    @torch.no_grad()
    def log_z(self) -> tuple[float, float]:
        """(log Ẑ, its standard error) by AIS for the weights as they are now: computed once and kept until
        any weight or the marginals change (a training step, loaded or averaged weights)."""
        now = self._weights()
        if self._log_z is not None and all(a.device == b.device and torch.equal(a, b)
                                                for a, b in zip(self._log_z[0], now)):
            return self._log_z[1], self._log_z[2]
        g = torch.Generator(device=self.device).manual_seed(AIS_SEED)
        value, se = ais_log_z(*now, steps=self.config.ais_temperatures, chains=self.config.ais_chains,
                              generator=g)
        self._log_z = (tuple(t.detach().clone() for t in now), value, se)
        return value, se

    @torch.no_grad()
    def exact_log_z(self) -> float:
        """log Z summed exactly over every state of the smaller layer: for RBMs of up to 2^24 such states."""
        if min(self.weight.shape) > EXACT_LIMIT:
            raise UserError(f"log Z is summed exactly only over at most 2^{EXACT_LIMIT} states, not "
                            f"2^{min(self.weight.shape)}; the AIS estimate is log_z()")
        return exact_log_z(self.weight, self.visible_bias, self.hidden_bias)

    def log_prob(self, x, condition=None):
        """log p(x) in nats, an estimate: −F(x) exact, log Z by AIS. (An unconditional model leaves the
        data's labels aside.)"""
        return -self.free_energy(x) - self.log_z()[0]

    @torch.no_grad()
    def eval_terms(self, x, condition=None, *, iwae_k=100, generator=None):
        """"nll_ais": F(x) + log Ẑ per image; and, the same for every image, log Ẑ and its standard error
        ("shared_…": evaluation/likelihood.py adds that error to the spread over the test images)."""
        value, se = self.log_z()
        n = len(x)
        nll = self.free_energy(x).double() + value
        return {"nll_ais": nll, "shared_ais_log_z": nll.new_full((n,), value),
                "shared_ais_log_z_se": nll.new_full((n,), se)}
