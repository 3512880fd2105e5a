"""One batch, its parts named: what every split yields and every model's `train_step` receives."""
from __future__ import annotations

from typing import NamedTuple

import torch


class Batch(NamedTuple):
    x: torch.Tensor                              # the data: images N×C×H×W, token ids N×T, ...
    condition: torch.Tensor | None = None        # what the model is conditioned on (class labels N), if anything
    lengths: torch.Tensor | None = None          # sequences: each row's length (padding after it)

    def __len__(self) -> int:                    # examples in the batch, not the tuple's three parts
        return len(self.x)
