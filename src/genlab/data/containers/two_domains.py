"""Two unpaired domains of images, A and B (the translators' data: "A+B", `--data-a A --data-b B`): the
spec of a pair, the two data sets loaded and conformed to one shape, and batches drawing each domain
independently."""
from __future__ import annotations

import dataclasses

import torch
from torch.nn import functional as F

from ...errors import UserError
from .. import dataset_names, load_dataset
from .base import ImageDataset
from .batch import Batch
from .loader import Shares, epoch_seed, transform

FOLDER = "folder:"        # a folder of the user's images
PAIR = "+"              # "A+B": two unpaired domains, A's images and B's


def _one_spec(spec: str) -> bool:
    return (spec.startswith(FOLDER) and len(spec) > len(FOLDER)) or (spec in dataset_names() and spec != "folder:PATH")


def split_domains(spec: str) -> tuple[str, str] | None:
    """A spec of two domains ("A+B") as its two specs; None for any other spec. A folder's path may hold a
    "+": the spec is cut at the last "+" that leaves a data set's name or a folder on both sides."""
    cuts = [i for i, ch in enumerate(spec) if ch == PAIR]
    for i in reversed(cuts):
        if _one_spec(spec[:i]) and _one_spec(spec[i + 1:]):
            return spec[:i], spec[i + 1:]
    return None


def two_domains(a: str, b: str) -> str:
    """The spec of domains A and B (`--data-a A --data-b B`), each a built-in data set or folder:PATH."""
    for flag, part in (("--data-a", a), ("--data-b", b)):
        if not _one_spec(part):
            raise UserError(f"{flag} takes an image data set ({', '.join(n for n in dataset_names() if n != 'folder:PATH')}) "
                            f"or folder:PATH, not {part!r}")
    return f"{a}{PAIR}{b}"


@dataclasses.dataclass
class TwoDomains(ImageDataset):
    """Two unpaired domains: `a` and `b`, each a data set of its own (labels and extras kept), B's images
    resized to A's size and converted to its channels. As a data set it is A's images (its shape, what a
    model builds itself from), unlabelled: the translators use no labels."""
    a: ImageDataset | None = None
    b: ImageDataset | None = None

    def __len__(self) -> int:
        """Examples of each domain in one epoch: as many as the larger domain has."""
        return max(len(self.a.train_x), len(self.b.train_x))

    def content_hash(self) -> str:
        import hashlib
        return hashlib.sha256((self.a.content_hash() + self.b.content_hash()).encode()).hexdigest()[:16]

    def describe(self) -> dict:
        da, db = self.a.describe(), self.b.describe()
        return {"name": self.name, "train": f"{da['train']} (A) and {db['train']} (B), unpaired",
                "test": f"{da['test']} (A) and {db['test']} (B)", "shape": list(self.shape), "classes": [],
                "split": f"A: {da['split']}; B: {db['split']}", "source": f"A: {da['source']}; B: {db['source']}",
                "licence": f"A: {da['licence']}; B: {db['licence']}"}


def conform(ds: ImageDataset, shape: tuple[int, int, int]) -> ImageDataset:
    """A data set's images resized (area averaging down, bilinear up) and converted (grey ↔ colour, ITU-R
    601 luma) to `shape`; unchanged when they have it already."""
    def images(x: torch.Tensor) -> torch.Tensor:
        c, h, w = shape
        if x.shape[1] != c:
            x = x.expand(-1, 3, -1, -1) if c == 3 else \
                (x.double() * torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64)[:, None, None]).sum(1, True)
        if tuple(x.shape[2:]) != (h, w) and len(x):
            smaller = h <= x.shape[2] and w <= x.shape[3]
            x = F.interpolate(x.double(), size=(h, w), mode="area" if smaller else "bilinear",
                              **({} if smaller else {"align_corners": False}))
        return x.round().clamp(0, 255).to(torch.uint8).contiguous() if x.dtype != torch.uint8 else x.contiguous()
    if ds.shape == tuple(shape):
        return ds
    return dataclasses.replace(ds, train_x=images(ds.train_x), test_x=images(ds.test_x))


def load_two_domains(spec_a: str, spec_b: str, size: int | None = None) -> TwoDomains:
    """Domains A and B, each resized to `size`×`size` when given, B then conformed to A's shape."""
    a, b = load_dataset(spec_a, size=size), load_dataset(spec_b, size=size)
    if size is not None:
        a = conform(a, (a.shape[0], size, size))
    b = conform(b, a.shape)
    return TwoDomains(name=f"{a.name}{PAIR}{b.name}", train_x=a.train_x, test_x=a.test_x, a=a, b=b,
                      source=f"A: {a.source}; B: {b.source}", licence=f"A: {a.licence}; B: {b.licence}",
                      split=f"each domain its own: A {a.split}; B {b.split}")


class TwoDomainBatches(Shares):
    """Batches of two domains drawn independently: `x` from A, `condition` from B, as many of each.

    An epoch is as long as the larger domain: each domain is shuffled with a seed of its own (so images of
    equal index in two equally long domains, a true pair, meet in a batch no more often than any other two)
    and the smaller one's order repeated, reshuffled, until it is as long. No pairing is used: which image of
    B goes with which of A is chance, and changes every epoch. The test split is fixed (seed 0), the smaller
    domain taken again from its start."""

    SALTS = {"a": (11, 13), "b": (12, 14)}     # (order, dequantisation) streams of each domain

    def __init__(self, a: torch.Tensor, b: torch.Tensor, *, binarize: str, batch_size: int, shuffle: bool,
                 seed: int = 0, device="cpu"):
        if batch_size < 1:
            raise UserError(f"--batch-size must be at least 1, not {batch_size}")
        self.images = {"a": a.to(device), "b": b.to(device)}
        self.binarize, self.batch_size, self.shuffle = binarize, batch_size, shuffle
        self.seed, self.device = seed, torch.device(device)
        self._fixed_x: dict | None = None

    def _count(self) -> int:
        return max(len(v) for v in self.images.values())

    def _global_batches(self, epoch: int) -> list[torch.Tensor]:
        return list(torch.arange(self._count()).split(self.batch_size))

    def order(self, domain: str, epoch: int) -> torch.Tensor:
        """Which image of the domain fills each place of the epoch."""
        n, total = len(self.images[domain]), self._count()
        if not self.shuffle:
            return torch.arange(total) % n
        g = torch.Generator().manual_seed(epoch_seed(self.seed, epoch, salt=self.SALTS[domain][0]))
        return torch.cat([torch.randperm(n, generator=g) for _ in range(-(-total // n))])[:total]

    def _fixed(self, domain: str) -> torch.Tensor:
        if self._fixed_x is None:
            self._fixed_x = {}
            for d, images in self.images.items():
                g = torch.Generator(device=self.device).manual_seed(epoch_seed(self.seed, 0, salt=self.SALTS[d][1]))
                self._fixed_x[d] = transform(images, self.binarize, g)
        return self._fixed_x[domain]

    def epoch(self, epoch: int = 0):
        orders = {d: self.order(d, epoch).to(self.device) for d in self.images}
        gens = {d: torch.Generator(device=self.device).manual_seed(epoch_seed(self.seed, epoch, salt=self.SALTS[d][1]))
                for d in self.images} if self.shuffle else {}
        mine = slice(self.rank, None, self.world_size)
        for places in self._kept(epoch):
            places = places.to(self.device)
            x = {d: (transform(self.images[d][orders[d][places]], self.binarize, gens[d]) if self.shuffle
                     else self._fixed(d)[orders[d][places]]) for d in self.images}
            if self.world_size > 1:
                x = {d: v[mine] for d, v in x.items()}
            yield Batch(x["a"], x["b"])

    def __iter__(self):
        return self.epoch(0)
