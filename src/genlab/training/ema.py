"""An exponential moving average of a model's weights: often a better sampler than the last weights."""
from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn


class EMA:
    """shadow ← d·shadow + (1 − d)·weights after every training step, over the parameters (buffers, such
    as batch-norm statistics, are the live model's). The decay starts low, d = min(decay, (1 + n)/(10 + n))
    after n updates, so the average of a short run is not mostly its random initial weights."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay, self.updates = decay, 0
        self.shadow = {k: p.detach().clone() for k, p in model.named_parameters()}

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = self.current_decay()
        for k, p in model.named_parameters():
            self.shadow[k].mul_(d).add_(p.detach(), alpha=1 - d)

    @contextmanager
    def applied(self, model: nn.Module):
        """The model with the averaged weights inside the block, its own weights back after it."""
        params = dict(model.named_parameters())
        live = {k: p.detach().clone() for k, p in params.items()}
        with torch.no_grad():
            for k, p in params.items():
                p.copy_(self.shadow[k])
        try:
            yield model
        finally:
            with torch.no_grad():
                for k, p in params.items():
                    p.copy_(live[k])

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates,
                "shadow": {k: v.detach().cpu().clone() for k, v in self.shadow.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.updates = int(state["updates"])
        for k, v in state["shadow"].items():
            self.shadow[k].copy_(v)
