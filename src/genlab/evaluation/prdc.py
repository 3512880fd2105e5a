"""Precision and recall of a generative model's samples (Kynkäänniemi et al. 2019, k = 3) and density and
coverage (Naeem et al. 2020, k = 5), all from k-nearest-neighbour balls in a feature space.

- precision: the share of samples inside the real manifold (the union of the real points' k-NN balls);
- recall: the share of real points inside the samples' manifold;
- density: how many real balls hold each sample on average, divided by k (≈ 1 when samples are
  distributed like the real points; above 1 where they crowd dense regions);
- coverage: the share of real points whose own ball holds at least one sample."""
from __future__ import annotations

import torch

from .neighbours import balls_containing, kth_neighbour_distance, nearest

PR_K = 3
DC_K = 5


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
