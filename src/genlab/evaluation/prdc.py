"""Precision and recall of a generative model's samples (Kynkäänniemi et al. 2019, k = 3) and density and
coverage (Naeem et al. 2020, k = 5), all from k-nearest-neighbour balls in a feature space.

- precision: the share of samples inside the real manifold (the union of the real points' k-NN balls);
- recall: the share of real points inside the samples' manifold;
- density: how many real balls hold each sample on average, divided by k (≈ 1 when samples are
  distributed like the real points; above 1 where they crowd dense regions);
- coverage: the share of real points whose own ball holds at least one sample.

`prdc_resampled` gives the four figures for bootstrap resamples of the samples. The real points' radii
stay fixed; every sample–real relation the figures need is found once (one pass over the distances), so a
resample costs O(n), not a new distance matrix. A sample drawn twice is one point of the resampled set:
the samples' own k-NN radii (for recall) are those among the distinct points drawn, read from each
sample's nearest RECALL_LIST neighbours."""
from __future__ import annotations

import torch

from .neighbours import balls_containing, distance_blocks, kth_neighbour_distance, nearest

PR_K = 3
DC_K = 5
RECALL_LIST = 24      # neighbours kept per sample: a resample draws ~63% of them, so k = 3 are almost surely among them


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = PR_K) -> tuple[float, float]:
    real_r, fake_r = kth_neighbour_distance(real, k), kth_neighbour_distance(fake, k)
    precision = (balls_containing(fake, real, real_r) > 0).double().mean()
    recall = (balls_containing(real, fake, fake_r) > 0).double().mean()
    return float(precision), float(recall)


def density_coverage(real: torch.Tensor, fake: torch.Tensor, k: int = DC_K) -> tuple[float, float]:
    real_r = kth_neighbour_distance(real, k)
    density = balls_containing(fake, real, real_r).double().sum() / (k * len(fake))
    nearest_fake, _ = nearest(real, fake)
    coverage = (nearest_fake <= real_r).double().mean()
    return float(density), float(coverage)


def prdc(real: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
    p, r = precision_recall(real, fake)
    d, c = density_coverage(real, fake)
    return {"precision": p, "recall": r, "density": d, "coverage": c}


def _neighbour_lists(fake: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each sample's `size` nearest other samples: distances and indices, nearest first."""
    size = min(size, len(fake) - 1)
    dist = torch.empty(len(fake), size, dtype=fake.dtype, device=fake.device)
    index = torch.empty(len(fake), size, dtype=torch.long, device=fake.device)
    for start, d in distance_blocks(fake, fake):
        rows = torch.arange(len(d), device=d.device)
        d[rows, start + rows] = float("inf")                 # never itself (a duplicate sample still counts)
        dist[start:start + len(d)], index[start:start + len(d)] = d.topk(size, dim=1, largest=False)
    return dist, index


def _pairs(a: torch.Tensor, b: torch.Tensor, radius_of_b: torch.Tensor):
    """All (i, j, distance) with ‖a_i − b_j‖ ≤ radius_of_b[j]: the few pairs a resample can use."""
    ai, bj, dd = [], [], []
    for start, d in distance_blocks(a, b):
        i, j = (d <= radius_of_b[None]).nonzero(as_tuple=True)
        ai.append(i + start)
        bj.append(j)
        dd.append(d[i, j])
    return torch.cat(ai), torch.cat(bj), torch.cat(dd)


def _any_by_group(groups: torch.Tensor, hit: torch.Tensor, n_groups: int) -> torch.Tensor:
    out = torch.zeros(n_groups, dtype=torch.bool, device=groups.device)
    out[groups[hit]] = True
    return out


def prdc_resampled(real: torch.Tensor, fake: torch.Tensor, indices: torch.Tensor) -> dict[str, torch.Tensor]:
    """Precision, recall, density and coverage of fake[indices[b]] against `real` for each row b of the
    B×n `indices`; each a tensor of B values."""
    n, m = len(fake), len(real)
    r_pr, r_dc = kth_neighbour_distance(real, PR_K), kth_neighbour_distance(real, DC_K)
    inside = torch.zeros(n, dtype=torch.bool, device=fake.device)
    balls = torch.zeros(n, dtype=torch.float64, device=fake.device)
    # Coverage: which samples each real point's k = 5 ball holds (a sparse list of pairs).
    cov_real, cov_fake = [], []
    for start, d in distance_blocks(fake, real):
        inside[start:start + len(d)] = (d <= r_pr[None]).any(1)
        held = d <= r_dc[None]
        balls[start:start + len(d)] = held.sum(1).double()
        j, i = held.nonzero(as_tuple=True)
        cov_fake.append(j + start)
        cov_real.append(i)
    cov_real, cov_fake = torch.cat(cov_real), torch.cat(cov_fake)
    # Recall: a resampled sample's radius is its k-th nearest distinct drawn neighbour, never beyond its
    # list's last; so only real points within that distance of a sample can ever fall in its ball.
    ndist, nidx = _neighbour_lists(fake, RECALL_LIST)
    rec_real, rec_fake, rec_d = _pairs(real, fake, ndist[:, -1])
    out = {k: torch.empty(len(indices), dtype=torch.float64) for k in ("precision", "recall", "density", "coverage")}
    for b, idx in enumerate(indices):
        idx = idx.to(fake.device)
        drawn = torch.zeros(n, dtype=torch.bool, device=fake.device)
        drawn[idx] = True
        out["precision"][b] = float(inside[idx].double().mean())
        out["density"][b] = float(balls[idx].sum() / (DC_K * len(idx)))
        out["coverage"][b] = float(_any_by_group(cov_real, drawn[cov_fake], m).double().mean())
        seen = drawn[nidx].cumsum(1)                        # drawn neighbours so far, nearest first
        kth = (seen >= PR_K).to(torch.int8).argmax(1, keepdim=True)
        radius = torch.where(seen[:, -1] >= PR_K, ndist.gather(1, kth).squeeze(1), ndist[:, -1])
        hit = drawn[rec_fake] & (rec_d <= radius[rec_fake])
        out["recall"][b] = float(_any_by_group(rec_real, hit, m).double().mean())
    return out
