"""The Parzen-window estimate of the likelihood, as the GAN and GSN papers reported it (Breuleux, Bengio &
Vincent 2011; Goodfellow et al. 2014): a kernel density on a model's samples, its bandwidth chosen on held-out
images, then the mean log-density of other held-out images. Offered for every model that samples, so its
flaw can be seen beside exact likelihoods: Theis, van den Oord & Bethge (2016) showed it can rank k-means
centres above real data, and it falls far short of the true likelihood in high dimensions.

Kernels: a Gaussian on 8-bit pixels in [0, 1] (a density: + D·log 256 to compare with genlab's 8-bit figures,
the discrete NLL it bounds), and on binarised pixels a product of Bernoullis that keeps each pixel of a
sample with 1 − ε and flips it with ε (a proper distribution over binary images, in the same nats as an
exact NLL). The squared distances (Hamming distances, for bits) are computed once; each bandwidth is then
a log-sum-exp over the samples.
"""
from __future__ import annotations

import math

import torch

GAUSSIAN_SIGMAS = torch.logspace(math.log10(0.02), 0, 25).tolist()     # on pixels in [0, 1]
BERNOULLI_FLIPS = torch.logspace(-4, math.log10(0.45), 25).tolist()
CHUNK = 1024


def squared_distances(x: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
    """‖x_i − s_j‖² for every held-out image i and sample j (N×S, float64), in chunks of x; for binary images
    it is the Hamming distance."""
    x, s = x.flatten(1).double(), samples.flatten(1).double()
    s2 = (s * s).sum(1)
    out = [((c * c).sum(1, keepdim=True) - 2 * c @ s.t() + s2).clamp_min(0) for c in x.split(CHUNK)]
    return torch.cat(out)


def log_density(d2: torch.Tensor, dims: int, bandwidth: float, binary: bool) -> torch.Tensor:
    """Per held-out image, log (1/S) Σ_j k(x, s_j) for the kernel of `bandwidth` (a Gaussian's σ, or the
    Bernoulli kernel's flip probability ε), given its distances to the S samples."""
    if binary:
        eps = bandwidth
        logk = d2 * math.log(eps) + (dims - d2) * math.log1p(-eps)
    else:
        logk = -d2 / (2 * bandwidth ** 2) - dims / 2 * math.log(2 * math.pi * bandwidth ** 2)
    return torch.logsumexp(logk, 1) - math.log(d2.shape[1])


def parzen(samples: torch.Tensor, valid: torch.Tensor, test: torch.Tensor, binary: bool) -> dict:
    """The estimate: the bandwidth that gives `valid` the highest mean log-density, then the NLL of `test`
    in nats per image (8-bit: + D·log 256), with its standard error over the test images."""
    dims = samples[0].numel()
    grid = BERNOULLI_FLIPS if binary else GAUSSIAN_SIGMAS
    d_valid = squared_distances(valid, samples)
    scores = [float(log_density(d_valid, dims, b, binary).mean()) for b in grid]
    best = grid[max(range(len(grid)), key=scores.__getitem__)]
    nll = -log_density(squared_distances(test, samples), dims, best, binary)
    if not binary:
        nll = nll + dims * math.log(256)
    return {"parzen_nats": float(nll.mean()),
            "parzen_nats_std": float(nll.std(unbiased=True)) / math.sqrt(len(nll)) if len(nll) > 1 else math.nan,
            "parzen_bandwidth": best, "parzen_kernel": "bernoulli" if binary else "gaussian",
            "parzen_at_grid_edge": best in (grid[0], grid[-1])}
