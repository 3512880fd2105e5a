"""The feature network for data without labels: a small convolutional encoder trained on the data set's own
training images by contrastive learning (SimCLR, Chen et al. 2020: two augmented views of each image,
the NT-Xent loss pulling a view towards its twin and away from the batch's other images), with a fixed
seed and a fixed number of steps, and cached in the user's cache folder like the classifier.

The augmentations keep what a sample must get right and vary what it may: a small random zoom (a crop,
or a margin), rotation and shift; brightness and contrast; pixel noise; and, for half the views, a
dynamic binarisation, so binary samples and grey ones are judged by the same features (the classifier
binarises half its batches for the same reason). No mirror images: a mirrored digit or letter is a
defect a sample-quality figure must see. The same augmentations work from 8×8 digits to 40×40 colour
sprites; the encoder's pooling adapts to the size and its first layer to 1 or 3 channels.

The projection head is used only in training: features are the encoder's output, standardised (zero
mean, unit variance over the training data) as the classifier's are."""
from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from ..data.containers.base import ImageDataset
from ..data.containers.loader import transform
from ..errors import UserError
from . import feature_cache
from .feature_cache import cache_folder, fit  # noqa: F401  (cache_folder: where both networks are kept)

VERSION = 1            # bump when the network, its augmentations or its training change: the cache key has it
FEATURES = 128
PROJECTION = 64
WIDTHS = (16, 32, 64)   # the classifier's: the network is trained once per data set, on a CPU
STEPS = 600            # training steps of BATCH images, two views each: 154k views, the classifier's budget of
                       # 150k images, so about as long (a minute or two on a CPU at 28×28)
BATCH = 128
TEMPERATURE = 0.2
MIN_TRAIN_IMAGES = 100  # below this, contrastive features say little and FID's covariance is mostly noise
CHECK_IMAGES = 1000     # test images used for the figures named beside the network


class Encoder(nn.Module):
    """Conv blocks halving the size while it stays at least 4 px (8 px → 4, 28 → 7, 40 → 5), then average
    pooling to 4×4, so any size from 8 px up gives the same feature layer."""

    def __init__(self, channels: int, size: int):
        super().__init__()
        layers, c = [], channels
        pools = max(0, min(3, int(math.log2(max(size, 1) / 4))))
        for i, width in enumerate(WIDTHS):
            layers += [nn.Conv2d(c, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
            if i < pools:
                layers.append(nn.MaxPool2d(2))
            c = width
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.features = nn.Sequential(nn.Linear(WIDTHS[-1] * 16, FEATURES), nn.BatchNorm1d(FEATURES, affine=False))
        self.projection = nn.Sequential(nn.Linear(FEATURES, FEATURES), nn.ReLU(), nn.Linear(FEATURES, PROJECTION))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The features used for every metric: the encoder's output, standardised, before the projection."""
        return self.features(self.body(x))

    def forward(self, x):
        return self.projection(self.embed(x))


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """One random view of each image N×C×H×W in [0, 1]."""
    n, dev = len(x), x.device

    def uniform(*shape, low=0.0, high=1.0):
        return low + (high - low) * torch.rand(*shape, generator=g, device=dev)

    # Zoom (above 1: a crop of about 75% of the side; below 1: a margin), rotation and shift in one warp.
    # The border is repeated rather than set to black: sprites on a white ground keep it.
    zoom, angle = uniform(n, low=0.85, high=1.3), uniform(n, low=-1, high=1) * math.radians(12)
    shift = uniform(n, 2, low=-0.15, high=0.15)            # in [-1, 1] coordinates: ±7.5% of the side
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    # Brightness and contrast about each image's mean.
    mean = x.mean((1, 2, 3), keepdim=True)
    x = ((x - mean) * uniform(n, 1, 1, 1, low=0.6, high=1.4) + mean + uniform(n, 1, 1, 1, low=-0.15, high=0.15))
    x = x.clamp(0, 1)
    # Half the views binarised (each pixel on with its intensity), the others with a little Gaussian noise.
    binary = torch.bernoulli(x, generator=g)
    noisy = (x + torch.randn(x.shape, generator=g, device=dev) * uniform(n, 1, 1, 1, high=0.06)).clamp(0, 1)
    return torch.where(uniform(n, 1, 1, 1) < 0.5, binary, noisy)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = TEMPERATURE) -> torch.Tensor:
    """The normalised-temperature cross-entropy: each of the 2N views must pick its twin among the 2N − 1
    others by cosine similarity."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / temperature
    sim.fill_diagonal_(float("-inf"))
    n = len(z1)
    twin = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(sim, twin)


def _cache_stem(ds: ImageDataset, steps: int) -> str:
    """Keyed by the images themselves (the same folder copied elsewhere shares it); the name's last part only
    tells a reader whose it is."""
    short = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(ds.name.split(":", 1)[-1]).name)[:40]
    return f"selfsup-v{VERSION}-{steps}steps-{short}-{ds.content_hash()}"


def check_enough(ds: ImageDataset) -> None:
    if len(ds.train_x) < MIN_TRAIN_IMAGES:
        raise UserError(f"{ds.name} holds {len(ds.train_x)} training images; genlab's self-supervised feature network "
                        f"needs at least {MIN_TRAIN_IMAGES} to learn from: pass --features PATH (a TorchScript "
                        "network), or --metrics memorisation")


def train_selfsup(ds: ImageDataset, device, progress_factory=None, steps: int | None = None) -> tuple[Encoder, dict]:
    check_enough(ds)
    steps = STEPS if steps is None else steps
    torch.manual_seed(0)
    c, h, _ = ds.shape
    net = Encoder(c, h).to(device)
    x_all = ds.train_x.to(device)
    n, batch = len(x_all), min(BATCH, len(x_all))
    g = torch.Generator(device=device).manual_seed(0)
    order_g = torch.Generator().manual_seed(0)

    def batches():
        order, at = torch.randperm(n, generator=order_g), 0
        while True:
            if at + batch > n:                              # a new shuffle each pass over the data
                order, at = torch.randperm(n, generator=order_g), 0
            x = transform(x_all[order[at:at + batch].to(device)], "none", g)
            at += batch
            yield nt_xent(net(augment(x, g)), net(augment(x, g))), len(x)

    start = time.perf_counter()
    fit(net, batches(), steps, weight_decay=1e-6,
        progress=(progress_factory(steps, f"self-supervised feature network for {ds.name} (once, then cached)")
                  if progress_factory else None))
    meta = {"data": ds.name, "data_hash": ds.content_hash(), "version": VERSION, "steps": steps, "batch": batch,
            "features": FEATURES, "seconds": round(time.perf_counter() - start, 1), **check_figures(net, ds, device)}
    return net, meta


@torch.no_grad()
def embed(net: Encoder, images: torch.Tensor) -> torch.Tensor:
    return torch.cat([net.embed(images[s:s + 500]) for s in range(0, len(images), 500)])


@torch.no_grad()
def check_figures(net: Encoder, ds: ImageDataset, device) -> dict:
    """What says the features mean something, named beside the network: `view_retrieval`, the share of test
    images whose nearest clean test image, from one augmented view of it, is itself (chance: 1/n); and
    where the data have labels (never used in training), `knn_accuracy`, the test images' 5-nearest-neighbour
    class vote among the training images' features."""
    g = torch.Generator(device=device).manual_seed(1)
    test = transform(ds.test_x[:CHECK_IMAGES].to(device), "none", g)
    clean, views = embed(net, test), embed(net, augment(test, g))
    out = {"view_retrieval": round(float((torch.cdist(views, clean).argmin(1) == torch.arange(len(test), device=device))
                                         .double().mean()), 4), "check_images": len(test)}
    if ds.train_y is not None and ds.test_y is not None and ds.num_classes >= 2:
        train = embed(net, transform(ds.train_x[:10_000].to(device), "none", g))
        near = torch.cdist(clean, train).topk(5, largest=False).indices
        votes = ds.train_y[:10_000].to(device)[near]
        predicted = torch.mode(votes, 1).values
        out["knn_accuracy"] = round(float((predicted == ds.test_y[:CHECK_IMAGES].to(device)).double().mean()), 4)
    return out


def load_or_train(ds: ImageDataset, device, progress_factory=None, steps: int | None = None) -> tuple[Encoder, dict]:
    """The cached network of this exact data set, trained and cached first if need be."""
    steps = STEPS if steps is None else steps
    c, h, _ = ds.shape
    return feature_cache.load_or_train(_cache_stem(ds, steps), lambda: Encoder(c, h),
                                       lambda: train_selfsup(ds, device, progress_factory, steps), device)


def describe(ds: ImageDataset, meta: dict) -> str:
    """The network's name in every table."""
    knn = f", 5-NN class accuracy {100 * meta['knn_accuracy']:.1f}%" if "knn_accuracy" in meta else ""
    return (f"genlab self-supervised (SimCLR) v{meta['version']} on {ds.name} ({meta['features']}-d, "
            f"{meta['steps']} steps, augmented-view retrieval {100 * meta['view_retrieval']:.1f}%{knn})")
