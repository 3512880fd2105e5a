"""Figures that tell whether adversarial training is going well: D's accuracy and sample diversity.

GAN losses alone say little (both nets move the goal posts), so every step logs how often D tells real
from fake, and every epoch compares the spread of a fixed set of samples with the data's own spread:
a generator that collapses onto a few images shows it there long before anyone looks at a grid.
"""
from __future__ import annotations

import torch

COLLAPSE_RATIO = 0.5     # samples less than half as spread out as the data: warn


def accuracy(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> dict[str, float]:
    """Fraction of real images D calls real (D > 1/2, logit > 0), and of fakes it calls fake."""
    return {"d_real_acc": (real_logits > 0).float().mean().item(),
            "d_fake_acc": (fake_logits < 0).float().mean().item()}


def critic_accuracy(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> dict[str, float]:
    """A critic's scores have no fixed zero (adding a constant changes nothing), so its decision line is
    the midpoint between the mean real and mean fake scores."""
    mid = (real_scores.mean() + fake_scores.mean()) / 2
    return {"d_real_acc": (real_scores > mid).float().mean().item(),
            "d_fake_acc": (fake_scores < mid).float().mean().item()}


def mean_pairwise_distance(x: torch.Tensor) -> float:
    """Mean over all pairs i ≠ j of the root-mean-square pixel difference (images in [0, 1])."""
    flat = x.flatten(1).double()
    n = len(flat)
    d = torch.cdist(flat, flat) / flat.shape[1] ** 0.5
    return float(d.sum() / (n * (n - 1)))


def diversity_report(samples: torch.Tensor, data_diversity: float) -> dict:
    div = mean_pairwise_distance(samples)
    ratio = div / data_diversity if data_diversity > 0 else float("nan")
    report: dict = {"diversity": div, "data_diversity": data_diversity, "diversity_ratio": ratio}
    if ratio < COLLAPSE_RATIO:
        report["warning"] = (f"sample diversity {div:.3f} is {ratio:.0%} of the data's {data_diversity:.3f}: "
                             f"the generator may be collapsing onto a few images")
    return report
