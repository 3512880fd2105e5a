"""Factor analysis: the linear-Gaussian latent variable model, the VAE's ancestor with a linear decoder and
an exact likelihood (Ghahramani & Hinton 1996; Bishop, PRML §12.2.4):

    z ~ N(0, I_q),   x = W z + μ + ε,   ε ~ N(0, Ψ), Ψ diagonal   ⇒   x ~ N(μ, W Wᵀ + Ψ).

Each pixel's own noise Ψ makes it at least as good as a Gaussian per pixel (W = 0); its q factors carry
what pixels vary by together (strokes, thickness, slant). Fitted by EM, as the lecture's Gaussian mixture:
each epoch sums the split's covariance S once (dequantised afresh, over every process's share), then runs
EM iterations on S alone (Ghahramani & Hinton's updates), each O(D²q). The likelihood never forms the
D×D covariance: Woodbury's identity and the matrix determinant lemma leave a q×q Cholesky factor. The
posterior of z given x is Gaussian too, so it encodes and decodes exactly: the explorer's sliders move
its factors.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ...data.containers.loader import summed
from ...errors import UserError
from ..base import GenerativeModel, option

DTYPE = torch.float64            # S of hundreds of correlated pixels: float32 loses the small factors
LEVEL = 1 / 256                  # one 8-bit level, in pixel values of [0, 1)


@dataclass
class FAConfig:
    latent_dim: int = option(32, "q: the factors (the code's size)", low=1, high=4096)
    # Measured on mnist's test split (4 epochs): floor 1/(256·√12), the dequantisation noise's own spread, gives
    # 3275 ± 129 nats (a test image inking a pixel no training image inked costs hundreds); one level, 3195 ± 20;
    # 0.01, 3300 ± 11 (against 3361 for a Gaussian per pixel).
    min_std: float = option(LEVEL, "floor on each pixel's noise deviation √Ψ (default one 8-bit level): pixels the "
                            "training split never varies would otherwise make a test image that differs there "
                            "cost hundreds of nats", low=1e-6, high=1.0)
    em_steps: int = option(50, "EM iterations on each epoch's covariance (one pass over the data an epoch)",
                           low=1, high=100_000)


@dataclass
class FASampling:
    temperature: float = option(1.0, "the codes' standard deviation: 0 draws the mean image, below 1 nearer it",
                                low=0.0, high=10.0)
    noise: bool = option(False, "add each pixel's own noise Ψ to the drawn images (without: W z + μ, what "
                                "the factors draw; with it: a true draw from the model, speckled)")


class FactorAnalysis(GenerativeModel):
    name = "fa"
    family = "latent"
    likelihood_kind = "exact"
    abilities = ("encode", "decode")
    trains_by_epoch = True     # EM on the split's covariance: one pass over the data per epoch
    Config = FAConfig
    SampleSettings = FASampling
    default_binarize = "none"      # a density over dequantised 8-bit pixels in [0, 1)
    default_epochs = 4             # each runs em_steps iterations: 200 in all

    def __init__(self, config, info):
        super().__init__(config, info)
        if info.pixels != "continuous":
            raise UserError(f"{self.name} is a density over 8-bit pixels, not {info.pixels} ones: train it with "
                            f"--binarize none (its default)")
        d, q = info.dims, config.latent_dim
        self.register_buffer("mean", torch.full((d,), 0.5, dtype=DTYPE))
        # Small random factors break EM's symmetry; Ψ starts at the first epoch's pixel variances.
        self.register_buffer("weight", torch.randn(d, q, dtype=DTYPE) * 1e-3)
        self.register_buffer("noise_var", torch.full((d,), 0.0625, dtype=DTYPE))
        self.register_buffer("fitted", torch.tensor(False))

    def configure_optimizers(self, lr: float) -> dict:
        return {}      # no gradients: EM sets every parameter in closed form

    # ---- the Gaussian ----
    def _posterior(self):
        """(Ψ⁻¹W, the Cholesky factor of M = I + WᵀΨ⁻¹W): M⁻¹ is the posterior covariance of z."""
        a = self.weight / self.noise_var[:, None]
        m = torch.eye(self.weight.shape[1], dtype=DTYPE, device=a.device) + self.weight.T @ a
        return a, torch.linalg.cholesky(m)

    @torch.no_grad()
    def log_prob(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """Exact log N(x | μ, W Wᵀ + Ψ) in nats per image, of pixels in [0, 1] (a class label is not used)."""
        e = x.flatten(1).to(self.mean) - self.mean
        a, chol = self._posterior()
        b = e @ a                                            # Wᵀ Ψ⁻¹ e, N×q
        solved = torch.cholesky_solve(b.T, chol).T           # M⁻¹ Wᵀ Ψ⁻¹ e
        maha = (e.square() / self.noise_var).sum(1) - (b * solved).sum(1)          # Woodbury
        logdet = torch.log(self.noise_var).sum() + 2 * torch.log(torch.diagonal(chol)).sum()
        return (-0.5 * (maha + logdet + e.shape[1] * math.log(2 * math.pi))).to(x.dtype)

    # ---- EM ----
    @torch.no_grad()
    def train_epoch(self, batches, epoch: int) -> dict[str, float]:
        """The split's mean and covariance S summed batch by batch, then em_steps EM iterations on S."""
        d = self.mean.numel()
        n, sx, sxx = (torch.zeros((), dtype=DTYPE, device=self.mean.device),
                      torch.zeros(d, dtype=DTYPE, device=self.mean.device),
                      torch.zeros(d, d, dtype=DTYPE, device=self.mean.device))
        for x, *_ in batches.epoch(epoch):
            x = x.flatten(1).to(self.mean)
            n += len(x)
            sx += x.sum(0)
            sxx += x.T @ x
        n, sx, sxx = summed(batches, n, sx, sxx)
        mean = sx / n
        cov = sxx / n - torch.outer(mean, mean)
        self.mean.copy_(mean)
        if not self.fitted:
            self.noise_var.copy_(cov.diagonal().clamp(min=self.config.min_std ** 2))
            self.fitted.fill_(True)
        for _ in range(self.config.em_steps):
            self._em_step(cov)
        # The average log-likelihood of the split under the fitted model, from S alone.
        a, chol = self._posterior()
        b = cov @ a
        maha = (cov.diagonal() / self.noise_var).sum() - torch.cholesky_solve(a.T @ b, chol).diagonal().sum()
        logdet = torch.log(self.noise_var).sum() + 2 * torch.log(torch.diagonal(chol)).sum()
        return {"loglik": float(-0.5 * (maha + logdet + d * math.log(2 * math.pi)))}

    def _em_step(self, cov: torch.Tensor) -> None:
        """One EM iteration (Ghahramani & Hinton 1996): β = M⁻¹WᵀΨ⁻¹, E[zzᵀ] = I − βW + βSβᵀ,
        W ← Sβᵀ E[zzᵀ]⁻¹, Ψ ← diag(S − W β S), floored at min_std²."""
        a, chol = self._posterior()
        beta = torch.cholesky_solve(a.T, chol)                       # q×D
        s_beta = cov @ beta.T                                         # D×q
        ezz = torch.eye(beta.shape[0], dtype=DTYPE, device=cov.device) - beta @ self.weight + beta @ s_beta
        weight = torch.linalg.solve(ezz, s_beta.T).T                  # Sβᵀ E[zzᵀ]⁻¹ (E[zzᵀ] symmetric)
        self.noise_var.copy_((cov.diagonal() - (weight * s_beta).sum(1)).clamp(min=self.config.min_std ** 2))
        self.weight.copy_(weight)

    # ---- its code ----
    def encode(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The exact posterior p(z|x) = N(M⁻¹WᵀΨ⁻¹(x − μ), M⁻¹): its mean, and the log of its variances."""
        a, chol = self._posterior()
        e = x.flatten(1).to(self.mean) - self.mean
        mean = torch.cholesky_solve((e @ a).T, chol).T
        var = torch.cholesky_inverse(chol).diagonal()
        return mean.to(x.dtype), var.log().to(x.dtype).expand_as(mean)

    def decode(self, z: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """The image each code makes, W z + μ, in [0, 1]."""
        x = z.to(self.weight) @ self.weight.T + self.mean
        return x.clamp(0, 1).view(len(z), *self.info.shape).to(z.dtype if z.is_floating_point() else torch.float32)

    @torch.no_grad()
    def sample(self, n, *, condition=None, generator=None, temperature: float = 1.0, noise: bool = False):
        """n images: codes from N(0, T²) decoded, with each pixel's noise added when `noise`."""
        self.check_condition(condition, n)
        z = torch.randn(n, self.config.latent_dim, generator=generator, device=self.device) * temperature
        x = z.to(self.weight) @ self.weight.T + self.mean
        if noise:
            x = x + self.noise_var.sqrt() * torch.randn(x.shape, generator=generator, device=self.device).to(x)
        return x.clamp(0, 1).view(n, *self.info.shape).float()
