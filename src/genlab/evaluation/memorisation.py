"""Does the model copy its training images? For each sample, the distance (in pixels) to its nearest
training image, against the same distance for held-out test images, which the model never saw:
a median ratio well below 1 means samples sit closer to the training set than new real images do."""
from __future__ import annotations

from pathlib import Path

import torch

from .neighbours import EightBit, nearest

PAIRS = 10        # pairs in the picture
NEAR_QUANTILE = 0.01


def memorisation(samples: torch.Tensor, train: torch.Tensor, test: torch.Tensor, *, train8: EightBit | None = None,
                 d_test: torch.Tensor | None = None) -> dict:
    """samples, train, test: images in [0, 1] on one device. Distances are Euclidean over all pixels.
    `train8` (the training images made ready for the search) and `d_test` (the test images' distances to
    them) are what every run of the data shares: given, they are not computed again."""
    d_sample, idx = nearest(samples.flatten(1).float(), train.flatten(1).float(), train8)
    if d_test is None:
        d_test, _ = nearest(test.flatten(1).float(), train.flatten(1).float(), train8)
    # "Near copies": samples closer to a training image than all but 1% of real test images are.
    threshold = torch.quantile(d_test.double(), NEAR_QUANTILE)
    return {"memorisation_ratio": float(d_sample.double().median() / d_test.double().median().clamp_min(1e-12)),
            "nn_distance_samples": float(d_sample.double().median()),
            "nn_distance_test": float(d_test.double().median()),
            "near_copies": float((d_sample.double() < threshold).double().mean()),
            "_nearest": (d_sample, idx)}


def save_closest_pairs(samples: torch.Tensor, train: torch.Tensor, found: tuple, path: Path) -> Path:
    """The samples closest to the training set (top row) above their nearest training images (bottom row)."""
    from ..data.images import save_grid
    d, idx = found
    order = d.argsort()[:PAIRS]
    top, bottom = samples[order].cpu(), train[idx[order]].cpu()
    return save_grid(torch.cat([top, bottom]).clamp(0, 1), path, nrow=len(order))
