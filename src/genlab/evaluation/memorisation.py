"""Does the model copy its training images? Judged against held-out images, never against a threshold of
distances alone: a blurred mean image is close to *every* image, seen or not, and copies nothing.

Three sets of real pictures, as the model saw them (binarised, palette, or 8-bit before dequantisation):
the training images T and two disjoint halves of the test split, H (compared with) and R (real images the
model never saw, which judge the judge: T is larger than H, so any image is likelier to find its nearest
neighbour there, and R, measured against the same sets, says how much likelier). For each sample, its
distance to its nearest image of T and of H:

- copies: the share of samples at most half as far from a training image as from anything held out
  (d_T ≤ ½ d_H), minus the same share of the real held-out images R, which the model never saw (in the
  manner of the authenticity of Alaa et al. 2022). Near 0 for a model that generalises, or blurs; positive
  for one that copies. ± from a bootstrap of the samples and R's binomial noise. A sample is flagged as
  a copier's when this excess passes max(0.01, 3 ±).
- C_T, the data-copying test of Meehan, Chaudhuri & Dasgupta (2020): T cut into cells by k-means; in each
  cell, the Mann–Whitney statistic (as a z-score) of the samples' distances to T against R's; averaged
  with R's share of each cell over the cells holding enough of both. Well below 0: samples sit closer to
  the training images than real new images do (copying, or images blurrier than the data: in pixel space
  a blur is close to everything, so C_T alone is no verdict); above 0: farther (underfitting).
- the memorisation ratio: the median of the samples' distances to the nearest of *all* training images over
  the same median for held-out images (below 1: closer than new images are; a blur shows this too).
"""
from __future__ import annotations

import math
from pathlib import Path

import torch

from .neighbours import EightBit, eight_bit, nearest

PAIRS = 10          # pairs in the picture
ALPHA = 0.5         # a copy: at most this share of its distance to the nearest held-out image from a training one
MIN_FLAG = 0.01     # an excess share of copies below this is not called copying, however precise
CELLS_PER = 50      # C_T: about this many reference images per k-means cell (3 to 20 cells)
MIN_IN_CELL = 10    # C_T: cells with fewer samples or fewer held-out images than this are left out


class HeldOut:
    """The real pictures every run of a data set is judged against, made ready once: the training reference
    T, the held-out halves H and R, and R's own figures (its distances to T and to H)."""

    def __init__(self, reference: torch.Tensor, held: torch.Tensor, real: torch.Tensor,
                 reference8: EightBit | None = None):
        self.reference, self.held, self.real = reference.flatten(1).float(), held.flatten(1).float(), real.flatten(1).float()
        self.reference8, self.held8 = reference8 or eight_bit(self.reference), eight_bit(self.held)
        self.real_to_t = nearest(self.real, self.reference, self.reference8)[0].double()
        self.real_to_h = nearest(self.real, self.held, self.held8)[0].double()
        self.real_share = float(copied(self.real_to_t, self.real_to_h).mean())
        self.cells = kmeans_cells(self.reference, max(3, min(20, len(self.reference) // CELLS_PER)))

    def distances(self, samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat = samples.flatten(1).float()
        return (nearest(flat, self.reference, self.reference8)[0].double(),
                nearest(flat, self.held, self.held8)[0].double())


def copied(d_t: torch.Tensor, d_h: torch.Tensor) -> torch.Tensor:
    """Which of the samples are copies: at most ALPHA as far from a training image as from anything held out."""
    return (d_t <= ALPHA * d_h).double()


def kmeans_cells(x: torch.Tensor, k: int, iters: int = 20, seed: int = 0) -> torch.Tensor:
    """k centres of x by Lloyd's algorithm from a k-means++ start (a fixed seed)."""
    g = torch.Generator().manual_seed(seed)
    x = x.double().cpu()
    centres = x[torch.randint(len(x), (1,), generator=g)]
    for _ in range(1, min(k, len(x))):
        d = torch.cdist(x, centres).min(1).values.pow(2)
        if not d.sum() > 0:                 # every point is a centre already: fewer cells
            break
        centres = torch.cat([centres, x[torch.multinomial(d / d.sum(), 1, generator=g)]])
    for _ in range(iters):
        label = torch.cdist(x, centres).argmin(1)
        centres = torch.stack([x[label == j].mean(0) if (label == j).any() else centres[j]
                               for j in range(len(centres))])
    return centres


def mann_whitney_z(a: torch.Tensor, b: torch.Tensor) -> float:
    """The Mann–Whitney U of a against b (pairs with a > b, ties half) as a z-score: below 0 when a's values
    are smaller than b's."""
    m, n = len(a), len(b)
    u = float(((a[:, None] > b[None]).double() + 0.5 * (a[:, None] == b[None]).double()).sum())
    return (u - m * n / 2) / math.sqrt(m * n * (m + n + 1) / 12)


def data_copying_ct(samples_flat: torch.Tensor, d_samples: torch.Tensor, held: HeldOut) -> float:
    """Meehan et al.'s C_T: per k-means cell of the reference, the z-score of the samples' distances to the
    training reference against the real held-out images', averaged with the held-out images' cell shares over
    the cells with at least MIN_IN_CELL of each (nan when no cell has)."""
    cell_s = torch.cdist(samples_flat.double().cpu(), held.cells).argmin(1)
    cell_r = torch.cdist(held.real.double().cpu(), held.cells).argmin(1)
    total, weight = 0.0, 0.0
    for c in range(len(held.cells)):
        s, r = d_samples.cpu()[cell_s == c], held.real_to_t.cpu()[cell_r == c]
        if len(s) >= MIN_IN_CELL and len(r) >= MIN_IN_CELL:
            share = len(r) / len(held.real)
            total, weight = total + share * mann_whitney_z(s, r), weight + share
    return total / weight if weight else math.nan


def memorisation(samples: torch.Tensor, train: torch.Tensor, test: torch.Tensor, *, held: HeldOut,
                 train8: EightBit | None = None, d_test: torch.Tensor | None = None,
                 resamples: torch.Tensor | None = None) -> dict:
    """samples, train (all training pictures), test (held-out pictures for the ratio): images in [0, 1].
    `held`: the real sets the copy tests compare with; `resamples`: bootstrap positions for the ±."""
    flat = samples.flatten(1).float()
    d_sample, idx = nearest(flat, train.flatten(1).float(), train8)
    if d_test is None:
        d_test, _ = nearest(test.flatten(1).float(), train.flatten(1).float(), train8)
    d_t, d_h = held.distances(samples)
    copies = copied(d_t, d_h)
    excess = float(copies.mean()) - held.real_share
    boot = [float(copies[i.cpu()].mean()) for i in resamples] if resamples is not None else []
    excess_std = math.hypot(float(torch.tensor(boot).std()) if len(boot) > 1 else 0.0,
                            math.sqrt(held.real_share * (1 - held.real_share) / len(held.real)))
    ct = data_copying_ct(flat, d_t, held)
    ct_boot = [data_copying_ct(flat[i], d_t[i.cpu()], held) for i in resamples[:20]] if resamples is not None else []
    ct_boot = [v for v in ct_boot if v == v]
    flagged = excess > max(MIN_FLAG, 3 * excess_std)
    verdict = (f"copies: {100 * float(copies.mean()):.1f}% of samples are at most half as far from a training "
               f"image as from any held-out one, against {100 * held.real_share:.1f}% of real held-out images"
               if flagged else
               f"no copying found: {100 * float(copies.mean()):.1f}% of samples are at most half as far from a "
               f"training image as from any held-out one, as {100 * held.real_share:.1f}% of real held-out images are")
    return {"memorisation_ratio": float(d_sample.double().median() / d_test.double().median().clamp_min(1e-12)),
            "nn_distance_samples": float(d_sample.double().median()),
            "nn_distance_test": float(d_test.double().median()),
            "copy_excess": excess, "copy_excess_std": excess_std, "copy_share": float(copies.mean()),
            "copy_share_real": held.real_share, "data_copying_ct": ct,
            "data_copying_ct_std": float(torch.tensor(ct_boot).std()) if len(ct_boot) > 1 else math.nan,
            "copies_found": flagged, "memorisation_verdict": verdict,
            "_nearest": (d_sample, idx), "_held_nearest": nearest(flat, held.held, held.held8)[1]}


def save_closest_pairs(samples: torch.Tensor, train: torch.Tensor, found: tuple, path: Path,
                       held: torch.Tensor | None = None, held_idx: torch.Tensor | None = None) -> Path:
    """The samples closest to the training set (top row) above their nearest training images (middle row)
    and their nearest held-out images (bottom row): a copy is far nearer the middle than the bottom."""
    from ..data.containers.images import save_grid
    d, idx = found
    order = d.argsort()[:PAIRS]
    rows = [samples[order].cpu(), train[idx[order]].cpu()]
    if held is not None and held_idx is not None:
        rows.append(held.view(len(held), *samples.shape[1:])[held_idx[order]].cpu())
    return save_grid(torch.cat(rows).clamp(0, 1), path, nrow=len(order))
