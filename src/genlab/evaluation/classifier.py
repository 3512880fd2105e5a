"""The feature network for built-in and labelled data: a small convolutional classifier trained on the
data set's own labelled training split, with a fixed seed, and cached in the user's cache folder.

Inception weights cannot be downloaded here, and a network trained on the very data is what makes
features meaningful for 8×8 digits or 28×28 clothes. Half of its training batches are binarised
(dynamically), so binary samples and grey ones are judged by the same features."""
from __future__ import annotations

import math
import time

import torch
from torch import nn

from ..data.containers.base import ImageDataset
from ..data.containers.loader import transform
from ..errors import UserError
from . import feature_cache
from .feature_cache import cache_folder, fit  # noqa: F401  (cache_folder: where both networks are kept)

VERSION = 1           # bump when the network or its training changes: the cache key includes it
FEATURES = 128
IMAGES_SEEN = 150_000  # training length in images (2 to 30 epochs), about a minute on a CPU


class Classifier(nn.Module):
    def __init__(self, channels: int, size: int, num_classes: int):
        super().__init__()
        layers, c = [], channels
        pools = 2 if size >= 16 else 1 if size >= 8 else 0     # 28 px → 7, 8 px → 4
        for i, width in enumerate((16, 32, 64)):
            layers += [nn.Conv2d(c, width, 3, padding=1), nn.ReLU()]
            if i < pools:
                layers.append(nn.MaxPool2d(2))
            c = width
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4), nn.Flatten())
        # Standardised features (zero mean, unit variance over the training data): KID's kernel
        # (x·y/d + 1)³ assumes entries of order one, and no dimension dominates the distances.
        self.features = nn.Sequential(nn.Linear(64 * 16, FEATURES), nn.BatchNorm1d(FEATURES, affine=False))
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(0.3), nn.Linear(FEATURES, num_classes))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate layer, standardised, before its non-linearity: dense features."""
        return self.features(self.body(x))

    def forward(self, x):
        return self.head(self.embed(x))


def _cache_stem(ds: ImageDataset) -> str:
    return f"classifier-v{VERSION}-{ds.name.replace('/', '_')}-{ds.content_hash()}"


def _inputs(x_u8: torch.Tensor, g: torch.Generator, binarize: bool) -> torch.Tensor:
    return transform(x_u8, "dynamic" if binarize else "none", g)


def train_classifier(ds: ImageDataset, device, progress_factory=None) -> tuple[Classifier, dict]:
    if ds.train_y is None or ds.num_classes < 2:
        raise UserError(f"{ds.name} has no class labels to train a feature network on; "
                        "pass --features PATH (a feature network saved as TorchScript)")
    torch.manual_seed(0)
    c, h, _ = ds.shape
    net = Classifier(c, h, ds.num_classes).to(device)
    x_all, y_all = ds.train_x.to(device), ds.train_y.to(device)
    n, batch = len(x_all), 128
    epochs = min(30, max(2, math.ceil(IMAGES_SEEN / n)))
    steps = epochs * math.ceil(n / batch)
    g = torch.Generator(device=device).manual_seed(0)

    def batches():
        for epoch in range(epochs):
            order = torch.randperm(n, generator=torch.Generator().manual_seed(epoch)).to(device)
            for i, s in enumerate(range(0, n, batch)):
                idx = order[s:s + batch]
                x = _inputs(x_all[idx], g, binarize=bool(i % 2))
                yield nn.functional.cross_entropy(net(x), y_all[idx]), len(idx)

    start = time.perf_counter()
    fit(net, batches(), steps,
        progress=progress_factory(steps, f"feature network for {ds.name} (once, then cached)") if progress_factory else None)
    meta = {"data": ds.name, "data_hash": ds.content_hash(), "version": VERSION, "epochs": epochs,
            "features": FEATURES, "seconds": round(time.perf_counter() - start, 1),
            **test_accuracy(net, ds, device)}
    return net, meta


@torch.no_grad()
def test_accuracy(net: Classifier, ds: ImageDataset, device) -> dict:
    g = torch.Generator(device=device).manual_seed(0)
    out = {}
    for name, binarize in (("test_accuracy", False), ("test_accuracy_binarised", True)):
        correct = 0
        for s in range(0, len(ds.test_x), 512):
            x = _inputs(ds.test_x[s:s + 512].to(device), g, binarize)
            correct += int((net(x).argmax(1) == ds.test_y[s:s + 512].to(device)).sum())
        out[name] = round(correct / max(len(ds.test_x), 1), 4)
    return out


def load_or_train(ds: ImageDataset, device, progress_factory=None) -> tuple[Classifier, dict]:
    """The cached classifier of this exact data set, trained and cached first if need be."""
    c, h, _ = ds.shape
    return feature_cache.load_or_train(_cache_stem(ds), lambda: Classifier(c, h, ds.num_classes),
                                       lambda: train_classifier(ds, device, progress_factory), device)
