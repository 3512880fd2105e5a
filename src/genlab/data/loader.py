"""Batches from preloaded tensors: no per-item Python work, binarised or dequantised on the fly."""
from __future__ import annotations

from typing import Iterator

import torch

from ..errors import UserError
from .base import DataInfo, ImageDataset
from .batch import Batch

BINARIZE = ("dynamic", "threshold", "none")     # and "palette:N": N colours fitted to the training split


def palette_size(binarize: str) -> int:
    """N of "palette:N", 0 for the other modes; an unknown mode is refused."""
    if binarize in BINARIZE:
        return 0
    kind, _, n = binarize.partition(":")
    if kind != "palette":
        raise UserError(f"--binarize must be one of {', '.join(BINARIZE)} or palette:N, not {binarize!r}")
    if not (n.isdigit() and 2 <= int(n) <= 256):
        raise UserError(f"--binarize palette:N needs N, the number of colours, from 2 to 256, not {binarize!r}")
    return int(n)


def make_info(ds: ImageDataset, binarize: str) -> DataInfo:
    n = palette_size(binarize)
    if n:
        from .palette import fit_palette
        palette = tuple(map(tuple, fit_palette(ds.train_x, n).tolist()))
        return DataInfo(shape=ds.shape, num_classes=ds.num_classes, pixels="palette",
                        class_names=ds.class_names, palette=palette)
    return DataInfo(shape=ds.shape, num_classes=ds.num_classes,
                    pixels="continuous" if binarize == "none" else "binary",
                    class_names=ds.class_names)


def epoch_seed(seed: int, epoch: int, salt: int = 0) -> int:
    """A distinct, reproducible seed per (run seed, epoch): resuming at an epoch replays it exactly."""
    return (seed * 1_000_003 + epoch * 7919 + salt * 104_729) % (2**63 - 1)


def transform(x_u8: torch.Tensor, binarize: str, generator: torch.Generator | None) -> torch.Tensor:
    """uint8 images to what models see: 0/1 floats (binarised), (k + u)/256 in [0, 1) (dequantised), or
    k/255 (palette: the images are in palette colours already, see palette.in_palette)."""
    x = x_u8.float()
    if binarize.startswith("palette"):
        return x / 255
    if binarize == "threshold":
        return (x >= 128).float()
    if binarize == "dynamic":
        u = torch.rand(x.shape, generator=generator, device=x.device)
        return (u < x / 255).float()
    # u < 1 - 2⁻¹²: in float32 a u within ~4e-6 of 1 would round (k + u)/256 up to (k + 1)/256.
    u = torch.rand(x.shape, generator=generator, device=x.device) * (1 - 2**-12)
    return (x + u) / 256


class Batches:
    """Batches of one split (condition: the class labels, None for unlabelled data). A new shuffle and binarisation per epoch."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None, *, binarize: str, batch_size: int,
                 shuffle: bool, seed: int = 0, device: str | torch.device = "cpu", drop_last: bool = False,
                 rank: int = 0, world_size: int = 1):
        if batch_size < 1:
            raise UserError(f"--batch-size must be at least 1, not {batch_size}")
        self.images = images.to(device)
        self.labels = labels.to(device) if labels is not None else None
        self.binarize, self.batch_size, self.shuffle = binarize, batch_size, shuffle
        self.seed, self.device, self.drop_last = seed, torch.device(device), drop_last
        self.rank, self.world_size = rank, world_size

    def _indices(self, epoch: int) -> torch.Tensor:
        n = len(self.images)
        if self.shuffle:
            g = torch.Generator().manual_seed(epoch_seed(self.seed, epoch, salt=1))
            idx = torch.randperm(n, generator=g)
        else:
            idx = torch.arange(n)
        return idx[self.rank::self.world_size]

    def __len__(self) -> int:
        n = len(range(self.rank, len(self.images), self.world_size))
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def num_images(self) -> int:
        return len(range(self.rank, len(self.images), self.world_size))

    def _fixed(self) -> torch.Tensor:
        # An evaluation split is binarised / dequantised once, whatever the batch size, so every
        # run and every evaluation of it sees the very same pixels.
        if getattr(self, "_fixed_x", None) is None:
            g = torch.Generator(device=self.device).manual_seed(epoch_seed(self.seed, 0, salt=2))
            self._fixed_x = transform(self.images, self.binarize, g)
        return self._fixed_x

    def epoch(self, epoch: int = 0) -> Iterator[Batch]:
        """The batches of one epoch. A shuffled (training) split varies with `epoch`; an unshuffled one never does."""
        idx = self._indices(epoch).to(self.device)
        stop = len(idx) - (len(idx) % self.batch_size if self.drop_last else 0)
        g = None
        if self.shuffle:
            g = torch.Generator(device=self.device).manual_seed(epoch_seed(self.seed, epoch, salt=2))
        for start in range(0, stop, self.batch_size):
            b = idx[start:start + self.batch_size]
            x = transform(self.images[b], self.binarize, g) if self.shuffle else self._fixed()[b]
            yield Batch(x, self.labels[b] if self.labels is not None else None)

    def __iter__(self):
        return self.epoch(0)

    def all(self, epoch: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The whole split as one batch (for small data, baselines and EM)."""
        xs, ys, _ = zip(*self.epoch(epoch))
        return torch.cat(xs), (torch.cat(ys) if ys[0] is not None else None)
