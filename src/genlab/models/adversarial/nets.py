"""Generator and discriminator networks shared by the adversarial models, sized from the data's shape.

Two kinds: fully connected ("mlp", Goodfellow et al. 2014; also the 2-D toys) and the DCGAN pair
("conv", Radford et al. 2015): strided (transposed) convolutions instead of pooling, batch norm,
ReLU in G, LeakyReLU(0.2) in D, tanh output, weights drawn from N(0, 0.02).

Images are in [-1, 1] on both sides. A condition (a one-hot label) joins G's code and D's input: as
extra numbers for the MLPs, as constant extra image planes for the convolutional D.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ...errors import UserError


def dcgan_plan(shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """(halvings, start height, start width): 64→4, 32→4, 28→7, 16→4, 8→2.

    Halve while the side stays even and above 4 (DCGAN starts at 4×4; MNIST's 28 stops at 7), and at
    least twice when the image is as small as 8×8, so G and D keep two strided layers."""
    def depth(s: int) -> int:
        k = 0
        while s % 2 == 0 and (s > 4 or (k < 2 and s > 2)):
            s, k = s // 2, k + 1
        return k
    _, h, w = shape
    k = min(depth(h), depth(w))
    if k == 0:
        raise UserError(f"the convolutional nets need an even image size (such as 28, 32 or 64), not {h}×{w}; "
                        f"resize with --size or use --net mlp")
    return k, h >> k, w >> k


def dcgan_init(module: nn.Module) -> None:
    """Radford et al.: every weight from N(0, 0.02); batch-norm scales from N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def _join(z: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
    return z if cond is None else torch.cat([z, cond], 1)


class MLPGenerator(nn.Module):
    """Code (+ condition) → image. Batch norm after each hidden layer, as in DCGAN's G: without it the
    fully connected G sat collapsed on the digits (samples 15% as spread as the data) for 30 epochs and
    more; with it the conditional GAN draws the asked-for digit 95% of the time after 40."""

    def __init__(self, shape, latent_dim: int, hidden: int, layers: int = 2, cond_dim: int = 0,
                 output: str = "tanh", norm: bool = True):
        super().__init__()
        self.shape = tuple(shape)
        sizes = [latent_dim + cond_dim] + [hidden] * layers
        body: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            body += [nn.Linear(a, b, bias=not norm), *([nn.BatchNorm1d(b)] if norm else []), nn.ReLU()]
        body.append(nn.Linear(hidden, math.prod(shape)))
        if output == "tanh":
            body.append(nn.Tanh())
        self.net = nn.Sequential(*body)

    def forward(self, z, cond=None):
        return self.net(_join(z, cond)).view(len(z), *self.shape)


class MLPDiscriminator(nn.Module):
    """Image (+ condition) → one score: a logit for GAN, a critic value for WGAN (no sigmoid either way)."""

    def __init__(self, shape, hidden: int, layers: int = 2, cond_dim: int = 0):
        super().__init__()
        sizes = [math.prod(shape) + cond_dim] + [hidden] * layers
        body: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            body += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*body, nn.Linear(hidden, 1))

    def forward(self, x, cond=None):
        return self.net(_join(x.flatten(1), cond)).squeeze(1)


class ConvGenerator(nn.Module):
    """DCGAN's G: the code projected to a start×start map of `features`·2^(k-1) channels, then k transposed
    convolutions (4×4, stride 2), each halving the channels and doubling the side; tanh at the end."""

    def __init__(self, shape, latent_dim: int, features: int, cond_dim: int = 0):
        super().__init__()
        c = shape[0]
        k, h0, w0 = dcgan_plan(shape)
        widths = [features * 2 ** (k - 1 - i) for i in range(k)] + [c]
        layers: list[nn.Module] = [nn.ConvTranspose2d(latent_dim + cond_dim, widths[0], (h0, w0), 1, 0, bias=False),
                                   nn.BatchNorm2d(widths[0]), nn.ReLU(True)]
        for i in range(k):
            last = i == k - 1
            layers.append(nn.ConvTranspose2d(widths[i], widths[i + 1], 4, 2, 1, bias=last))
            layers += [nn.Tanh()] if last else [nn.BatchNorm2d(widths[i + 1]), nn.ReLU(True)]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z, cond=None):
        z = _join(z, cond)
        return self.net(z.view(*z.shape, 1, 1))


class ConvDiscriminator(nn.Module):
    """DCGAN's D, G's mirror: k strided convolutions doubling the channels (no norm on the first, as in the
    paper), then one convolution over the whole start×start map to a single score.

    `norm=False` drops batch norm everywhere: WGAN-GP's penalty is per example, and batch norm would
    mix the examples of a batch."""

    def __init__(self, shape, features: int, cond_dim: int = 0, norm: bool = True):
        super().__init__()
        c = shape[0]
        k, h0, w0 = dcgan_plan(shape)
        widths = [c + cond_dim] + [features * 2 ** i for i in range(k)]
        layers: list[nn.Module] = []
        for i in range(k):
            layers.append(nn.Conv2d(widths[i], widths[i + 1], 4, 2, 1, bias=not (norm and i > 0)))
            if norm and i > 0:
                layers.append(nn.BatchNorm2d(widths[i + 1]))
            layers.append(nn.LeakyReLU(0.2))
        layers.append(nn.Conv2d(widths[-1], 1, (h0, w0), 1, 0))
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, x, cond=None):
        if cond is not None:   # the label as constant planes beside the image's channels
            x = torch.cat([x, cond[:, :, None, None].expand(-1, -1, *x.shape[2:])], 1)
        return self.net(x).flatten()
