"""Batches of token ids, the text counterpart of containers.loader.Batches: `.epoch(i)` yields Batch(x, lengths=...).

x is N×T int64, each row a line's token ids and its end token, padded with <pad> (id 0) to the longest
row of the batch; lengths (N) counts each row's tokens, the end token included. Lines of like length
share a batch (sorted within pools of POOL batches, the batches then shuffled), so little is padding.
"""
from __future__ import annotations

from typing import Iterator

import torch

from ...errors import UserError
from ..containers.batch import Batch
from ..containers.loader import Shares, epoch_seed
from .vocab import PAD, TextInfo

POOL = 50          # batches whose lines are sorted by length together: a new mix every epoch all the same


def encode_lines(info: TextInfo, lines: list[str]) -> tuple[list[list[int]], int]:
    """Token ids of each line no longer than info.max_len tokens; also how many longer lines were left out."""
    ids = [info.encode(line) for line in lines]
    kept = [s for s in ids if len(s) - 1 <= info.max_len]
    return kept, len(ids) - len(kept)


def pad(seqs: list[list[int]], device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    x = torch.full((len(seqs), int(lengths.max())), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        x[i, :len(s)] = torch.tensor(s, dtype=torch.long)
    return x.to(device), lengths.to(device)


class TextBatches(Shares):
    """Batch(x, lengths=...) batches of one split; a new order every epoch when shuffled, reproducible from the seed.
    With `rank` and `world_size`, one process's share of each batch (see containers.loader.Shares)."""

    def __init__(self, seqs: list[list[int]], *, batch_size: int, shuffle: bool, seed: int = 0,
                 device: str | torch.device = "cpu", rank: int = 0, world_size: int = 1):
        if batch_size < 1:
            raise UserError(f"--batch-size must be at least 1, not {batch_size}")
        if not seqs:
            raise UserError("no lines to batch: every line is longer than max_len tokens; raise --max-len")
        self.x, self.lengths = pad(seqs, device)
        self._lengths = self.lengths.cpu()
        self.batch_size, self.shuffle, self.seed, self.device = batch_size, shuffle, seed, torch.device(device)
        self.rank, self.world_size = rank, world_size

    def _count(self) -> int:                 # len() and num_images(), "examples", are the Shares'
        return len(self.x)

    def num_tokens(self) -> int:
        return int(self.lengths.sum())

    def _by_length(self, idx: torch.Tensor) -> torch.Tensor:
        return idx[torch.argsort(self._lengths[idx], stable=True)]

    def _global_batches(self, epoch: int) -> list[torch.Tensor]:
        n = len(self.x)
        if self.shuffle:
            g = torch.Generator().manual_seed(epoch_seed(self.seed, epoch, salt=1))
            pools = torch.randperm(n, generator=g).split(self.batch_size * POOL)
            batches = [b for pool in pools for b in self._by_length(pool).split(self.batch_size)]
            return [batches[i] for i in torch.randperm(len(batches), generator=g)]
        return list(self._by_length(torch.arange(n)).split(self.batch_size))

    def epoch(self, epoch: int = 0) -> Iterator[Batch]:
        """The batches of one epoch. A shuffled (training) split varies with `epoch`; an unshuffled one never does."""
        for b in self._kept(epoch):
            b = b[self.rank::self.world_size].to(self.device)     # lines of like length: shares alike
            lengths = self.lengths[b]
            yield Batch(self.x[b, :int(lengths.max())], lengths=lengths)      # trimmed to this batch's longest line

    def __iter__(self):
        return self.epoch(0)
