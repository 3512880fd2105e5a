"""Nearest-neighbour distances in chunks: never an n×m matrix larger than CHUNK_ELEMENTS at once.

Euclidean distances, computed as ‖a‖² + ‖b‖² − 2 a·b (one matrix product per chunk, on whatever device
the inputs are on), clamped at 0 against rounding."""
from __future__ import annotations

import torch

CHUNK_ELEMENTS = 2 ** 24     # 16M distances (64 MiB in float32) per block


def _rows_per_chunk(m: int) -> int:
    return max(1, CHUNK_ELEMENTS // max(m, 1))


def distance_blocks(a: torch.Tensor, b: torch.Tensor):
    """Yield (start, distances of a[start:start+r] to every b), r rows at a time."""
    a, b = a.flatten(1), b.flatten(1)
    b_sq = b.pow(2).sum(1)
    step = _rows_per_chunk(len(b))
    for start in range(0, len(a), step):
        block = a[start:start + step]
        d2 = block.pow(2).sum(1, keepdim=True) + b_sq[None] - 2 * block @ b.T
        yield start, d2.clamp_min_(0).sqrt_()


def kth_neighbour_distance(x: torch.Tensor, k: int) -> torch.Tensor:
    """Each point's distance to its k-th nearest other point of the same set (the radius of its k-NN ball)."""
    if len(x) <= k:
        raise ValueError(f"need more than k={k} points, have {len(x)}")
    out = torch.empty(len(x), dtype=x.dtype, device=x.device)
    for start, d in distance_blocks(x, x):
        # The point itself is at distance 0 and comes first: the (k+1)-th smallest is the k-th other.
        out[start:start + len(d)] = d.topk(k + 1, dim=1, largest=False).values[:, k]
    return out


def nearest(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row of a: the distance to its nearest row of b, and that row's index."""
    dist = torch.empty(len(a), dtype=a.dtype, device=a.device)
    index = torch.empty(len(a), dtype=torch.long, device=a.device)
    for start, d in distance_blocks(a, b):
        dist[start:start + len(d)], index[start:start + len(d)] = d.min(1)
    return dist, index


def balls_containing(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """For each point: how many balls B(centre_i, radius_i) contain it (distance ≤ radius)."""
    count = torch.empty(len(points), dtype=torch.long, device=points.device)
    for start, d in distance_blocks(points, centres):
        count[start:start + len(d)] = (d <= radii[None]).sum(1)
    return count
