"""A Gaussian mixture over flattened pixels, fitted by EM: one EM iteration per training epoch."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ...data.containers.loader import summed, whole
from ...errors import UserError
from ..base import GenerativeModel, option

# EM runs in float64: full covariances of hundreds of correlated pixels are near-singular, and the
# uncentred sufficient statistics (E[xx^T] - mu mu^T) lose too many digits in float32.
DTYPE = torch.float64
INIT_CAP = 20_000     # images held at once for k-means initialisation (it needs every distance in memory)
LLOYD_ITERS = 100     # at most, as scikit-learn's k-means; it stops when no assignment changes


class GaussianMixture(GenerativeModel):
    name = "gmm"
    family = "latent"
    likelihood_kind = "exact"
    trains_by_epoch = True     # EM: one iteration over the whole split per epoch
    default_binarize = "none"     # a density over dequantised 8-bit pixels in [0, 1), not 0/1 pixels

    @dataclass
    class Config:
        components: int = option(10, "number of mixture components K", low=1)
        covariance: str = option("full", "covariance of each component: full D×D or diagonal",
                                 choices=("full", "diag"))
        reg_covar: float = option(1e-4, "added to every covariance diagonal (as scikit-learn's reg_covar): "
                                  "pixels constant within a component (image borders) would otherwise "
                                  "get zero variance and an infinite density", low=0.0)
        init: str = option("kmeans++", "initial clustering, refined by Lloyd's k-means, that the first "
                           "M-step starts from: k-means++ seeding or K random images as centres",
                           choices=("kmeans++", "random"))

    def __init__(self, config, info):
        super().__init__(config, info)
        k, d = config.components, info.dims
        self.register_buffer("weights", torch.full((k,), 1.0 / k, dtype=DTYPE))
        self.register_buffer("means", torch.zeros(k, d, dtype=DTYPE))
        if config.covariance == "full":   # upper-triangular U_k with precision U_k U_k^T, as scikit-learn
            self.register_buffer("prec_chol", torch.eye(d, dtype=DTYPE).repeat(k, 1, 1))
        else:
            self.register_buffer("variances", torch.ones(k, d, dtype=DTYPE))
        self.register_buffer("initialised", torch.tensor(False))

    # ---- densities --------------------------------------------------------------------------------

    def _log_joint(self, x: torch.Tensor) -> torch.Tensor:
        """log w_k + log N(x | mu_k, Sigma_k), N×K, for flattened float64 x."""
        d = x.shape[1]
        if self.config.covariance == "full":
            # ||U_k^T (x - mu_k)||^2 is the Mahalanobis distance; log|Sigma_k|^-1/2 = sum log diag U_k.
            logdet = torch.log(torch.diagonal(self.prec_chol, dim1=1, dim2=2)).sum(1)
            maha = torch.stack([((x - m) @ u).square().sum(1) for m, u in zip(self.means, self.prec_chol)], 1)
        else:
            prec = 1.0 / self.variances
            logdet = 0.5 * torch.log(prec).sum(1)
            maha = (x.square() @ prec.T - 2 * x @ (self.means * prec).T
                    + (self.means.square() * prec).sum(1))
        return torch.log(self.weights) + logdet - 0.5 * maha - 0.5 * d * math.log(2 * math.pi)

    def _flat(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(len(x), -1).to(device=self.means.device, dtype=DTYPE)

    @torch.no_grad()
    def log_prob(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        if not self.initialised:
            raise UserError("this gmm is not fitted yet: train it first (EM runs one iteration per epoch)")
        return torch.logsumexp(self._log_joint(self._flat(x)), 1).to(x.dtype)

    # ---- EM ---------------------------------------------------------------------------------------

    def configure_optimizers(self, lr: float) -> dict:
        return {}   # no gradients: EM updates the buffers in closed form

    def train_step(self, batch, optimizers):
        raise UserError("gmm is fitted by EM over whole epochs (train_epoch), not by gradient steps on batches")

    @torch.no_grad()
    def train_epoch(self, batches, epoch: int) -> dict[str, float]:
        """One EM iteration over the whole split, its sufficient statistics summed batch by batch (and over
        every process's share of it, when it is shared out)."""
        if not self.initialised:
            self._initialise(whole(batches), epoch)
        nk, sx, sxx = self._zero_stats()
        total, n = 0.0, 0
        for x, *_ in batches.epoch(epoch):
            x = self._flat(x)
            joint = self._log_joint(x)                                    # E-step, in log space
            lse = torch.logsumexp(joint, 1, keepdim=True)
            r = torch.exp(joint - lse)
            total, n = total + lse.sum().item(), n + len(x)
            self._accumulate(x, r, nk, sx, sxx)
        sums = torch.tensor([total, n], dtype=DTYPE, device=self.means.device)
        nk, sx, sxx, sums = summed(batches, nk, sx, sxx, sums)
        total, n = sums.tolist()
        self._m_step(nk, sx, sxx, n)
        return {"loglik": total / n}   # of the parameters this M-step started from, as EM reports

    def _zero_stats(self):
        """Sums of responsibilities, r x and r x x^T (only its diagonal for diag) per component."""
        k, d = self.means.shape
        z = lambda *shape: torch.zeros(*shape, dtype=DTYPE, device=self.means.device)  # noqa: E731
        return z(k), z(k, d), z(k, d, d) if self.config.covariance == "full" else z(k, d)

    def _accumulate(self, x, r, nk, sx, sxx):
        nk += r.sum(0)
        sx += r.T @ x
        if self.config.covariance == "full":
            sxx += torch.einsum("nk,nd,ne->kde", r, x, x)
        else:
            sxx += r.T @ x.square()

    def _m_step(self, nk, sx, sxx, n):
        nk = nk + 10 * torch.finfo(DTYPE).eps      # an empty component gets reg_covar * I, not NaN
        means = sx / nk[:, None]
        self.weights.copy_(nk / n)
        self.means.copy_(means)
        if self.config.covariance == "diag":
            self.variances.copy_(sxx / nk[:, None] - means.square() + self.config.reg_covar)
            return
        eye = torch.eye(means.shape[1], dtype=DTYPE, device=means.device)
        cov = sxx / nk[:, None, None] - means[:, :, None] * means[:, None, :] + self.config.reg_covar * eye
        chol, info = torch.linalg.cholesky_ex(cov)
        if info.any():
            raise UserError(f"a gmm covariance is not positive definite: raise reg_covar "
                            f"(now {self.config.reg_covar})")
        # Sigma = L L^T, so the precision's factor is U = L^{-T}: one triangular solve per fit.
        self.prec_chol.copy_(torch.linalg.solve_triangular(chol, eye, upper=False).transpose(1, 2))

    def _initialise(self, batches, epoch):
        """Hard k-means labels, then one M-step from them: scikit-learn's default init_params="kmeans"."""
        xs, n = [], 0
        for x, *_ in batches.epoch(epoch):
            xs.append(self._flat(x))
            n += len(x)
            if n >= INIT_CAP:
                break
        x = torch.cat(xs)[:INIT_CAP]
        k = self.config.components
        if len(x) < k:
            raise UserError(f"gmm needs at least {k} training images for {k} components, not {len(x)}")
        if self.config.init == "kmeans++":
            centres = self._kmeanspp(x, k)
        else:
            centres = x[torch.randperm(len(x))[:k].to(x.device)]
        labels = self._lloyd(x, centres)
        nk, sx, sxx = self._zero_stats()
        self._accumulate(x, torch.nn.functional.one_hot(labels, k).to(DTYPE), nk, sx, sxx)
        self._m_step(nk, sx, sxx, len(x))
        self.initialised.fill_(True)

    @staticmethod
    def _kmeanspp(x, k):
        """Greedy k-means++ (as scikit-learn): of 2 + log k candidates drawn by D^2, keep the best."""
        trials = 2 + int(math.log(k))
        centres = [x[torch.randint(len(x), (1,)).item()]]
        d2 = (x - centres[0]).square().sum(1)
        for _ in range(1, k):
            cand = torch.multinomial(d2 / d2.sum(), trials, replacement=True) if d2.sum() > 0 else \
                torch.randint(len(x), (trials,), device=x.device)
            cand_d2 = torch.minimum(d2, torch.cdist(x[cand], x).square())   # trials×N
            best = cand_d2.sum(1).argmin()
            centres.append(x[cand[best]])
            d2 = cand_d2[best]
        return torch.stack(centres)

    @staticmethod
    def _lloyd(x, centres):
        labels = None
        for _ in range(LLOYD_ITERS):
            new = torch.cdist(x, centres).argmin(1)
            if labels is not None and torch.equal(new, labels):
                break
            labels = new
            counts = torch.bincount(labels, minlength=len(centres)).to(DTYPE)
            sums = torch.zeros_like(centres).index_add_(0, labels, x)
            keep = counts == 0                            # an empty cluster keeps its old centre
            centres = torch.where(keep[:, None], centres, sums / counts.clamp(min=1)[:, None])
        return labels

    # ---- sampling ---------------------------------------------------------------------------------

    @torch.no_grad()
    def sample_raw(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draws from the mixture itself, unclamped, N×C×H×W."""
        dev = self.means.device
        g_dev = generator.device if generator is not None else dev   # draw where the generator lives
        comp = torch.multinomial(self.weights.to(g_dev), n, replacement=True, generator=generator).to(dev)
        z = torch.randn(n, self.means.shape[1], dtype=DTYPE, device=g_dev, generator=generator).to(dev)
        if self.config.covariance == "full":
            # x = mu + U^{-T} z has covariance U^{-T} U^{-1} = Sigma.
            eps = torch.empty_like(z)
            for k in comp.unique().tolist():       # per component: n copies of a D×D factor may not fit
                i = comp == k
                eps[i] = torch.linalg.solve_triangular(self.prec_chol[k].T, z[i].T, upper=False).T
        else:
            eps = z * self.variances[comp].sqrt()
        return (self.means[comp] + eps).float().reshape(n, *self.info.shape)

    @torch.no_grad()
    def sample(self, n: int, *, condition: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        self.check_condition(condition, n)
        # Clamped to the pixel range for display: a Gaussian's tails spill outside [0, 1].
        return self.sample_raw(n, generator=generator).clamp(0, 1)
