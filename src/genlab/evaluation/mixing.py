"""How well a model that samples by a Markov chain (the `chain` ability: the gsn) mixes: along a few chains
of consecutive states, how often the classifier's label changes per 100 steps, how many classes each chain
visits, and how slowly the features forget (their autocorrelation at lags 1 and 10). A chain that stays in
one class says so: its samples are then not draws from the whole distribution, whatever they look like."""
from __future__ import annotations

import torch

CHAINS = 4              # chains, each from its own noise
LENGTH = 500            # consecutive states of each, after the model's own burn-in
VISITED_SHARE = 0.01    # a class counts as visited when it holds at least this share of a chain's states


def autocorrelation(feats: torch.Tensor, lag: int) -> float:
    """The mean over feature dimensions of the correlation between a chain's states t and t + lag (T×D)."""
    a, b = feats[:-lag].double(), feats[lag:].double()
    a, b = a - a.mean(0), b - b.mean(0)
    denom = (a.pow(2).sum(0) * b.pow(2).sum(0)).sqrt()
    keep = denom > 1e-12                      # dimensions that never move say nothing of mixing
    return float(((a * b).sum(0)[keep] / denom[keep]).mean()) if keep.any() else float("nan")


def label_statistics(labels: torch.Tensor, classes: int) -> tuple[float, int]:
    """(label changes per 100 steps, classes holding ≥ VISITED_SHARE of the states) along one chain."""
    changes = float((labels[1:] != labels[:-1]).double().mean()) * 100
    share = torch.bincount(labels, minlength=classes).double() / len(labels)
    return changes, int((share >= VISITED_SHARE).sum())


@torch.no_grad()
def chain_mixing(model, network, binary: bool, seed: int = 0, chains: int = CHAINS, length: int = LENGTH) -> dict:
    """The mixing figures of `chains` chains of `length` states, each ± its standard deviation over chains."""
    rows = []
    for c in range(chains):
        g = torch.Generator(device=model.device).manual_seed(seed + c)
        states = model.chain(length, generator=g).float().clamp(0, 1)
        if binary:
            states = torch.bernoulli(states, generator=g)
        feats, probs = network(states)
        row = {"mixing_autocorr_lag1": autocorrelation(feats, 1), "mixing_autocorr_lag10": autocorrelation(feats, 10)}
        if probs is not None:
            row["mixing_label_changes_per_100"], row["mixing_classes_visited"] = label_statistics(
                probs.argmax(1).cpu(), probs.shape[1])
        rows.append(row)
    out = {"mixing_chains": chains, "mixing_chain_length": length}
    for key in rows[0]:
        v = torch.tensor([r[key] for r in rows], dtype=torch.float64)
        out[key] = float(v.mean())
        out[f"{key}_std"] = float(v.std()) if len(v) > 1 else float("nan")
    if "mixing_classes_visited" in out and max(r["mixing_classes_visited"] for r in rows) <= 1:
        out["mixing_warning"] = (f"each of the {chains} chains stays in one class for {length} steps: they do not mix, "
                          f"so their samples cover one mode, not the distribution")
    return out
