"""Batches from preloaded tensors: no per-item Python work, binarised or dequantised on the fly."""
from __future__ import annotations

import copy
from typing import Iterator

import torch

from ...errors import UserError
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


class Shares:
    """What a training split is on many processes: the split is batched as one process batches it (the same
    shuffle on every process: a batch is what --batch-size says, over all processes), and process `rank` of
    `world_size` takes rows rank, rank + W, … of each batch. The gradients of the shares, averaged with the
    shares' sizes as weights, are then those of the whole batch. A batch with fewer examples than processes
    (a last, short one) is left out when there are many. A subclass gives `_global_batches(epoch)`, the
    index tensors of the batches of one process, and `_take(idx)`."""
    rank, world_size = 0, 1
    drop_last = False                  # a last, short batch left out (a subclass's setting)

    def share(self, rank: int, world_size: int):
        """This split as process `rank` of `world_size` sees it (the same tensors, not copied)."""
        out = copy.copy(self)
        out.rank, out.world_size = rank, world_size
        return out

    def whole(self):
        """This split as one process sees it, every process's share together."""
        return self.share(0, 1) if self.world_size > 1 else self

    def _global_batches(self, epoch: int) -> list[torch.Tensor]:
        """The batches of one epoch over all processes, as index tensors: the split in batch_size pieces,
        shuffled anew each epoch (from the run's seed and the epoch) when `shuffle`, else in order."""
        n = self._count()
        if self.shuffle:
            idx = torch.randperm(n, generator=torch.Generator().manual_seed(epoch_seed(self.seed, epoch, salt=1)))
        else:
            idx = torch.arange(n)
        return list(idx.split(self.batch_size))

    def _kept(self, epoch: int) -> list[torch.Tensor]:
        return [b for b in self._global_batches(epoch) if len(b) >= self.world_size]

    def _sizes(self) -> list[int]:
        """The sizes of the kept batches of one process, in no particular order."""
        n, b = self._count(), self.batch_size
        rem = 0 if self.drop_last else n % b
        return [b] * (n // b) + ([rem] if rem >= max(self.world_size, 1) else [])

    def totals(self, epoch: int = 0) -> list[int]:
        """The size of each batch of `epoch` over all processes, in order: a share's weight is its size over it."""
        return [len(b) for b in self._kept(epoch)]

    def __len__(self) -> int:
        return len(self._sizes())

    def num_images(self) -> int:                   # this process's examples in an epoch
        return sum(len(range(self.rank, m, self.world_size)) for m in self._sizes())


def whole(batches):
    """Every process's share of a split, for what must see all of it (an EM model's initialisation)."""
    return batches.whole() if isinstance(batches, Shares) else batches


def summed(batches, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Sums over the batches of a split (an EM model's statistics), each summed in place over every
    process's share when the split is shared out; unchanged in one process."""
    if isinstance(batches, Shares) and batches.world_size > 1:
        import torch.distributed as dist
        for t in tensors:
            dist.all_reduce(t)
    return tensors


class Batches(Shares):
    """Batches of one split (condition: the class labels, None for unlabelled data). A new shuffle and
    binarisation per epoch. With `rank` and `world_size`, one process's share of each batch (see Shares):
    the pixels are binarised or dequantised for the whole batch, so every process's share is what one
    process would have seen."""

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

    def _count(self) -> int:
        return len(self.images)

    def _global_batches(self, epoch: int) -> list[torch.Tensor]:
        batches = super()._global_batches(epoch)
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        return batches

    _fixed_x: torch.Tensor | None = None      # the evaluation split's pixels, made on first use

    def _fixed(self) -> torch.Tensor:
        # An evaluation split is binarised / dequantised once, whatever the batch size, so every
        # run and every evaluation of it sees the very same pixels.
        if self._fixed_x is None:
            g = torch.Generator(device=self.device).manual_seed(epoch_seed(self.seed, 0, salt=2))
            self._fixed_x = transform(self.images, self.binarize, g)
        return self._fixed_x

    def epoch(self, epoch: int = 0) -> Iterator[Batch]:
        """The batches of one epoch. A shuffled (training) split varies with `epoch`; an unshuffled one never does."""
        g = None
        if self.shuffle:
            g = torch.Generator(device=self.device).manual_seed(epoch_seed(self.seed, epoch, salt=2))
        mine = slice(self.rank, None, self.world_size)
        for b in self._kept(epoch):
            b = b.to(self.device)
            x = transform(self.images[b], self.binarize, g) if self.shuffle else self._fixed()[b]
            y = self.labels[b] if self.labels is not None else None
            if self.world_size > 1:
                x, y = x[mine], (y[mine] if y is not None else None)
            yield Batch(x, y)

    def __iter__(self):
        return self.epoch(0)

    def all(self, epoch: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The whole split as one batch (for small data, baselines and EM)."""
        xs, ys, _ = zip(*self.epoch(epoch))
        return torch.cat(xs), (torch.cat(ys) if ys[0] is not None else None)
