"""The two baselines of sound's likelihood, fitted to a run's training split: each sample on its own (a
histogram of the μ-law codes), and linear prediction (an autoregressive Gaussian on the waveform, discretised
to the codes)."""
from __future__ import annotations

import numpy as np
import torch

from ..data.containers.audio import LEVELS, mulaw_decode

LPC_ORDER = 16                  # past samples the linear-prediction baseline looks at
LPC_FLOOR = 1e-6                # share of a uniform distribution in its discretised Gaussian: never log 0
CHUNK = 32                      # clips the baselines take at a time


def histogram_nll(train: torch.Tensor, test: torch.Tensor) -> torch.Tensor:
    """Nats per test clip of each sample drawn on its own from the training split's histogram of codes
    (add-one smoothed)."""
    counts = torch.bincount(train.flatten().long(), minlength=LEVELS).double() + 1
    logp = torch.log(counts / counts.sum())
    return -logp[test.long()].sum(1)


def _lags(values: np.ndarray, order: int) -> np.ndarray:
    """N×T×order: each sample's `order` predecessors (silence, 0, before the clip)."""
    n, t = values.shape
    padded = np.concatenate([np.zeros((n, order)), values], 1)
    return np.stack([padded[:, order - i:order - i + t] for i in range(1, order + 1)], -1)


def _bin_edges() -> tuple[np.ndarray, np.ndarray]:
    """The waveform values each μ-law code stands for: code k is every x that mulaw_encode maps to k."""
    half = mulaw_decode(torch.arange(LEVELS + 1, dtype=torch.float64) - 0.5, torch.float64).numpy()
    lo, hi = half[:-1].copy(), half[1:].copy()
    lo[0], hi[-1] = -np.inf, np.inf
    return lo, hi


def _prediction(values: np.ndarray, coef: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each sample's linear prediction from the samples before it, and their RMS."""
    lags = _lags(values, len(coef))
    return lags @ coef, np.sqrt((lags ** 2).mean(-1))


def _discretised_nll(codes: np.ndarray, mean: np.ndarray, rms: np.ndarray, scale: float, floor: float):
    """Nats per clip of codes under the predictions `mean`, of deviation scale · max(rms, floor)."""
    from scipy.special import ndtr
    sigma = scale * np.maximum(rms, floor)
    lo, hi = _bin_edges()
    a, b = (lo[codes] - mean) / sigma, (hi[codes] - mean) / sigma
    p = np.clip(np.where(a > 0, ndtr(-a) - ndtr(-b), ndtr(b) - ndtr(a)), 0, 1)    # the far tail, accurately
    return -np.log((1 - LPC_FLOOR) * p + LPC_FLOOR / LEVELS).sum(1)


def linear_prediction_nll(train: torch.Tensor, test: torch.Tensor, order: int = LPC_ORDER) -> torch.Tensor:
    """Nats per test clip of linear prediction: x_t = Σ a_i x_(t-i) + Gaussian noise on the waveform (the
    codes decoded), each sample's probability that of its μ-law code's interval (the end codes' reaching to
    ±∞), mixed with a uniform LPC_FLOOR so no code has probability zero. The noise's deviation follows the
    loudness of the `order` samples before (scale · their RMS, at least scale · floor), as an adaptive
    codec's step size does: silence is then predicted as silence. The coefficients by least squares on the
    training split (the covariance method); scale and floor those of a grid that give a fixed subset of
    the training clips the highest likelihood."""
    def wave(codes):
        return mulaw_decode(codes.long(), torch.float64).numpy()

    a, b = np.zeros((order, order)), np.zeros(order)
    for i in range(0, len(train), CHUNK):                # normal equations, a few clips at a time
        v = wave(train[i:i + CHUNK])
        x = _lags(v, order).reshape(-1, order)
        a += x.T @ x
        b += x.T @ v.reshape(-1)
    coef = np.linalg.solve(a + 1e-9 * np.eye(order), b)
    pick = torch.from_numpy(np.random.RandomState(0).permutation(len(train))[:CHUNK // 2])
    c, (mean, rms) = train[pick].numpy().astype(np.int64), _prediction(wave(train[pick]), coef)
    grid = [(s, f) for s in np.exp(np.linspace(np.log(0.03), np.log(3.0), 15)) for f in 10.0 ** np.arange(-6, 0)]
    scale, floor = min(grid, key=lambda sf: float(_discretised_nll(c, mean, rms, *sf).sum()))
    out = []
    for i in range(0, len(test), CHUNK):
        chunk = test[i:i + CHUNK]
        out.append(_discretised_nll(chunk.numpy().astype(np.int64), *_prediction(wave(chunk), coef), scale, floor))
    return torch.from_numpy(np.concatenate(out))
