"""Gradient clipping and a learning-rate schedule for any model: models call `opt.step()` themselves inside
`train_step`, so the trainer hands them optimisers whose `step()` does both (and, on many processes,
first averages the gradients over them: distributed.py)."""
from __future__ import annotations

import math
from typing import Callable

import torch


def lr_factor(schedule: str, step: int, total: int, warmup: int = 0) -> float:
    """The share of the base learning rate at (0-based) `step` of a run of `total` steps: a linear warm-up
    over `warmup` steps, then constant, or a cosine or linear decay that reaches 0 at step `total`;
    "hold-linear" holds the rate for the first half and decays it linearly over the second (CycleGAN's)."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    p = min(max((step - warmup) / max(total - warmup, 1), 0.0), 1.0)
    if schedule == "hold-linear":
        return min(1.0, 2.0 * (1.0 - p))
    return 0.5 * (1 + math.cos(math.pi * p)) if schedule == "cosine" else 1.0 - p


def fuse(optimizer: torch.optim.Optimizer) -> bool:
    """Switch an Adam or AdamW to PyTorch's fused kernel (one pass over all its parameters, on CPUs and
    GPUs) where every parameter can take it: the same update to float round-off, and on a CPU the VAE's
    step 1.4× faster (its Adam was a third of the step). Whether it did."""
    params = [p for g in optimizer.param_groups for p in g["params"]]
    if type(optimizer) not in (torch.optim.Adam, torch.optim.AdamW) or not params or any(
            g.get("differentiable") for g in optimizer.param_groups) or any(
            not p.is_floating_point() or p.device.type not in ("cpu", "cuda") for p in params):
        return False
    for g in optimizer.param_groups:
        g["fused"], g["foreach"] = True, False
    optimizer.defaults.update(fused=True, foreach=False)
    return True


class ManagedOptimizer:
    """An optimiser whose `step()` first hands the gradients of its own parameters to `average` (many
    processes: their mean over all), clips them to `clip` (0: off) and sets each group's learning rate to
    its base rate times `factor()`. An Adam is switched to its fused kernel (`fuse`).

    The factor is read from the trainer's step count, not counted per optimiser, so a WGAN whose
    generator steps once every five critic steps follows the same schedule as its critic."""

    def __init__(self, optimizer: torch.optim.Optimizer, clip: float = 0.0,
                 factor: Callable[[], float] | None = None, average: Callable[[list], None] | None = None):
        self.optimizer, self.clip, self.factor, self.average = optimizer, clip, factor, average
        fuse(optimizer)
        self.base_lrs = [g["lr"] for g in optimizer.param_groups]
        self._apply_schedule()

    def _params(self):
        return [p for g in self.optimizer.param_groups for p in g["params"]]

    def _apply_schedule(self) -> None:
        if self.factor is not None:
            f = self.factor()
            for g, base in zip(self.optimizer.param_groups, self.base_lrs):
                g["lr"] = base * f

    def step(self, closure=None):
        if self.average is not None:
            self.average(self._params())
        if self.clip > 0:
            torch.nn.utils.clip_grad_norm_(self._params(), self.clip)
        self._apply_schedule()
        return self.optimizer.step(closure)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    @property
    def param_groups(self):
        return self.optimizer.param_groups

    @property
    def state(self):
        return self.optimizer.state

    def state_dict(self) -> dict:
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state)

    # The schedule's own state: the base rates its factor multiplies (the groups hold the scheduled rate).
    def schedule_state(self) -> dict:
        return {"base_lrs": list(self.base_lrs)}

    def load_schedule_state(self, state: dict) -> None:
        self.base_lrs = [float(x) for x in state["base_lrs"]]
        self._apply_schedule()

    def __getattr__(self, name):           # anything else a model asks of its optimiser
        if name == "optimizer":
            raise AttributeError(name)
        return getattr(self.optimizer, name)
