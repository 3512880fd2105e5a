"""Fréchet distance between Gaussians fitted to two sets of features (FID, Heusel et al. 2017) and the
kernel inception distance (KID, Bińkowski et al. 2018): unbiased MMD² with the kernel (x·y/d + 1)³,
averaged over random subsets, with its standard deviation over them. `fid_resampled` recomputes FID for
bootstrap resamples of the samples against one fixed reference (its square root taken once)."""
from __future__ import annotations

import torch

RESAMPLE_ELEMENTS = 2 ** 23      # features (float64: 64 MiB) gathered at once for bootstrap resamples


def gaussian_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    f = features.double()
    return f.mean(0), torch.cov(f.T)


def _sqrt_psd(m: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(m)
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
    """‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^½).

    Tr (Σ₁Σ₂)^½ = Tr (Σ₁^½ Σ₂ Σ₁^½)^½: the latter is symmetric positive semi-definite, so its eigenvalues
    are real and its square root exact, where a general sqrtm of Σ₁Σ₂ can return complex round-off."""
    mu1, mu2, cov1, cov2 = (t.double() for t in (mu1, mu2, cov1, cov2))
    s1 = _sqrt_psd(cov1)
    middle = s1 @ cov2 @ s1
    tr_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum()
    return float((mu1 - mu2).pow(2).sum() + cov1.trace() + cov2.trace() - 2 * tr_sqrt)


def fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    return frechet_distance(*gaussian_stats(real), *gaussian_stats(fake))


def fid_resampled(real: torch.Tensor, fake: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """FID of fake[indices[b]] against all of `real`, for each row b of `indices` (B×n): the reference's
    mean, covariance and Σ₁^½ are computed once, only the samples' Gaussian is refitted, a few resamples
    at a time (at most RESAMPLE_ELEMENTS features gathered at once) with one batched eigenvalue call."""
    mu1, cov1 = gaussian_stats(real)
    s1 = _sqrt_psd(cov1)
    f = fake.double()
    n, d = len(indices[0]) if len(indices) else 0, f.shape[1]
    step = max(1, RESAMPLE_ELEMENTS // max(1, n * d))
    out = []
    for start in range(0, len(indices), step):
        x = f[indices[start:start + step].to(f.device)]                     # b × n × d
        mu2 = x.mean(1)
        centred = x - mu2[:, None]
        cov2 = centred.transpose(1, 2) @ centred / max(n - 1, 1)
        middle = s1 @ cov2 @ s1
        tr_sqrt = torch.linalg.eigvalsh((middle + middle.transpose(1, 2)) / 2).clamp_min(0).sqrt().sum(1)
        out.append((mu1 - mu2).pow(2).sum(1) + cov1.trace() + cov2.diagonal(dim1=1, dim2=2).sum(1) - 2 * tr_sqrt)
    return torch.cat(out).cpu() if out else torch.empty(0, dtype=torch.float64)


def polynomial_mmd2(x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased MMD² between two equal-sized sets with k(a, b) = (a·b/d + 1)³."""
    x, y = x.double(), y.double()
    d, m = x.shape[1], len(x)
    kxx, kyy, kxy = ((a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
    off = lambda k: (k.sum() - k.diagonal().sum()) / (m * (m - 1))  # noqa: E731  (no i = j terms)
    return float(off(kxx) + off(kyy) - 2 * kxy.mean())


def kid(real: torch.Tensor, fake: torch.Tensor, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """Mean and standard deviation of the unbiased MMD² over `subsets` random subsets of each set (of at
    most half of the smaller set, so that subsets differ and the deviation means something)."""
    m = max(2, min(subset_size, len(real) // 2, len(fake) // 2))
    g = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        i = torch.randperm(len(real), generator=g)[:m].to(real.device)
        j = torch.randperm(len(fake), generator=g)[:m].to(fake.device)
        values.append(polynomial_mmd2(real[i], fake[j]))
    v = torch.tensor(values, dtype=torch.float64)
    return float(v.mean()), float(v.std()) if len(v) > 1 else 0.0
