"""Mode coverage and a classifier-based Inception Score, from a classifier's probabilities on samples."""
from __future__ import annotations

import torch

# A class counts as covered when it holds at least this share of what the data's frequency predicts.
COVERED_SHARE = 0.1


def mode_coverage(probs: torch.Tensor, data_freq: torch.Tensor) -> dict:
    """The samples' class histogram (by the classifier's top class), its KL divergence to the data's class
    frequencies, KL(samples ‖ data) in nats, and how many classes are covered."""
    k = probs.shape[1]
    counts = torch.bincount(probs.argmax(1).cpu(), minlength=k).double()
    hist = counts / counts.sum()
    q = data_freq.double().cpu()
    nz = hist > 0
    kl = float((hist[nz] * (hist[nz] / q[nz]).log()).sum())
    covered = int((hist >= COVERED_SHARE * q).sum())
    return {"modes_covered": covered, "modes_total": k, "modes_kl": kl,
            "class_histogram": [round(float(h), 5) for h in hist]}


def inception_score(probs: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """exp E_x KL(p(y|x) ‖ p(y)), with p(y) the mean over each split; mean and std over the splits."""
    p = probs.double().clamp_min(1e-12)
    scores = []
    for part in p.chunk(min(splits, len(p))):
        marginal = part.mean(0, keepdim=True)
        scores.append(float((part * (part.log() - marginal.log())).sum(1).mean().exp()))
    s = torch.tensor(scores, dtype=torch.float64)
    return float(s.mean()), float(s.std()) if len(s) > 1 else 0.0
