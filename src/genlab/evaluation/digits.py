"""Where the digits of a binary frame are, and which drawn digit is which true one (Moving MNIST: two digits
of a known size moving in each frame).

A digit is the on pixels of one or more connected blobs (8-connected) that lie close together (a thin
stroke binarised may break a digit in pieces, a pixel or two apart) and fit together in one digit's box.
A blob wider or taller than a digit's box is two digits that touch or overlap: it is cut in two by 2-means
on its pixels' places. The `count` digits with the most pixels are kept (specks of a few pixels never count
as a digit). A digit's place is its centroid; its crop is its own pixels in a box of a digit's side
centred there, as MNIST centres its digits by their centre of mass.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

EIGHT = np.ones((3, 3), dtype=bool)      # diagonal neighbours join a blob: strokes binarised thin touch so


@dataclass
class Found:
    centres: np.ndarray      # D×2 (row, column), the digits with the most pixels first; D ≤ count
    crops: np.ndarray        # D×side×side float32: each digit's own pixels around its centre


def least_pixels(side: int) -> int:
    """Fewer on pixels than this are a speck, not a digit (a halved MNIST digit has some 40, a full one 150)."""
    return max(3, side * side // 40)


def find_digits(frame: np.ndarray, side: int, count: int = 2) -> Found:
    """The digits of a frame (H×W, on where > 0.5), at most `count`."""
    labels, n = ndimage.label(np.asarray(frame) > 0.5, structure=EIGHT)
    if n == 0:
        return Found(np.zeros((0, 2)), np.zeros((0, side, side), np.float32))
    ys, xs = np.nonzero(labels)
    order = np.argsort(labels[ys, xs], kind="stable")
    pts = np.stack([ys, xs], 1)[order]
    pieces = []
    for blob in np.split(pts, np.cumsum(np.bincount(labels[ys, xs], minlength=n + 1)[1:])[:-1]):
        pieces += _split(blob) if np.ptp(blob, 0).max() >= side else [blob]
    groups: list[list] = []                         # [pixels, low corner, high corner]
    for p in sorted(pieces, key=len, reverse=True):
        low, high = p.min(0), p.max(0)
        for g in groups:
            lo, hi = np.minimum(g[1], low), np.maximum(g[2], high)
            # A piece of this digit: near its other pieces (a stroke's break), in one digit's box with them.
            if (hi - lo).max() < side and _gap(g[0], p) <= side / 5:
                g[0].append(p)
                g[1], g[2] = lo, hi
                break
        else:
            groups.append([[p], low, high])
    digits = sorted((np.concatenate(g[0]) for g in groups), key=len, reverse=True)
    digits = [d for d in digits if len(d) >= least_pixels(side)][:count]
    if 0 < len(digits) < count and len(digits[0]) >= 2 * least_pixels(side):
        # Fewer blobs than digits: the largest is digits overlapping, cut in two.
        digits = sorted(_split(digits[0]) + digits[1:], key=len, reverse=True)[:count]
    centres = np.array([d.mean(0) for d in digits], dtype=np.float64).reshape(-1, 2)
    crops = np.stack([_crop(d, c, side) for d, c in zip(digits, centres)]) if digits else \
        np.zeros((0, side, side), np.float32)
    return Found(centres, crops)


def _split(pts: np.ndarray, steps: int = 20) -> list[np.ndarray]:
    """A blob larger than a digit's box cut in two by 2-means on its pixels' places, started from its two
    ends along its longer side."""
    axis = int(np.argmax(np.ptp(pts, 0)))
    centres = pts[[np.argmin(pts[:, axis]), np.argmax(pts[:, axis])]].astype(np.float64)
    near = np.zeros(len(pts), dtype=int)
    for _ in range(steps):
        near = ((pts[:, None, :] - centres[None]) ** 2).sum(2).argmin(1)
        if near.min() == near.max():
            return [pts]
        moved = np.stack([pts[near == k].mean(0) for k in range(2)])
        if np.allclose(moved, centres):
            break
        centres = moved
    return [pts[near == 0], pts[near == 1]]


def _gap(pieces: list[np.ndarray], p: np.ndarray) -> float:
    """The least distance between a pixel of `p` and one of `pieces`."""
    return min(float(np.sqrt(((q[:, None] - p[None]) ** 2).sum(2).min())) for q in pieces)


def _crop(pts: np.ndarray, centre: np.ndarray, side: int) -> np.ndarray:
    """The pixels `pts` in a side×side box centred on `centre` (what falls outside is dropped)."""
    out = np.zeros((side, side), np.float32)
    top = np.rint(centre - (side - 1) / 2).astype(int)
    rel = pts - top
    keep = ((rel >= 0) & (rel < side)).all(1)
    out[rel[keep, 0], rel[keep, 1]] = 1
    return out


def match(truth: np.ndarray, drawn: np.ndarray) -> np.ndarray:
    """For each true digit (T×2 centres), the drawn digit (D×2) that is it: the one-to-one pairing of least
    total distance where there are enough drawn digits, else each to its nearest (one drawn blob may hold two
    true digits that overlap); -1 where nothing is drawn."""
    t, d = len(truth), len(drawn)
    if d == 0:
        return np.full(t, -1)
    dist = np.linalg.norm(truth[:, None] - drawn[None], axis=2)
    if d < t:
        return dist.argmin(1)
    best = min(itertools.permutations(range(d), t), key=lambda p: dist[np.arange(t), list(p)].sum())
    return np.array(best, dtype=int)
