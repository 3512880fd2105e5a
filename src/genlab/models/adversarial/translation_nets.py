"""The networks of the image-to-image translators, sized from the data's shape.

CycleGAN's (Zhu et al. 2017, after Johnson et al. 2016): a generator of a 7×7 convolution, two strided
convolutions down, residual blocks, two transposed convolutions up and a 7×7 convolution to the image,
with instance norm, reflection padding and a tanh output; and the PatchGAN discriminator, which scores
overlapping patches of the image rather than the whole of it (C64-C128-C256-C512, 4×4 convolutions,
instance norm but on the first, LeakyReLU(0.2)), its last layer one score per patch. Both were made for
256×256 photographs, where two halvings leave a 64×64 bottleneck; here the generator halves only while the
bottleneck stays at least 16 pixels across, so that 20- to 40-pixel sprites and 28-pixel digits keep their
detail, and the discriminator keeps a grid of several patches.

DiscoGAN's (Kim et al. 2017): an encoder-decoder generator, strided 4×4 convolutions down with batch norm
and LeakyReLU, transposed ones up with batch norm and ReLU, tanh output (the discriminator is DCGAN's,
nets.ConvDiscriminator).

And the pool of past fakes (Shrivastava et al. 2017) that CycleGAN's discriminators learn from.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ...errors import UserError
from .nets import dcgan_init, dcgan_plan

MAX_HALVINGS = 2          # the generator's, as the paper's for 128 and 256 px
# The generator halves a side only while the half stays this large. With a 5×5 bottleneck, 20-pixel sprites
# came back from a round trip twice as far off in the same 8 epochs of normal ↔ shiny Pokémon (test error
# 24.4 against 11.4 levels, same seed and schedule), at about the same cost: the residual blocks' FLOPs
# do not change.
MIN_BOTTLENECK = 16
PATCH_TARGET = 5          # the discriminator halves while its map stays at least this many patches wide


def generator_halvings(shape: tuple[int, int, int]) -> int:
    """How many times the ResNet generator halves the image: while both sides are even and their halves at
    least MIN_BOTTLENECK, at most MAX_HALVINGS (128 → 32, 64 → 16, 40 → 20, 32 → 16; 28, 20, 8: none)."""
    _, h, w = shape
    k = 0
    while k < MAX_HALVINGS and h % 2 == 0 and w % 2 == 0 and min(h, w) // 2 >= MIN_BOTTLENECK:
        h, w, k = h // 2, w // 2, k + 1
    return k


def patch_halvings(shape: tuple[int, int, int]) -> int:
    """The PatchGAN's strided layers: 3 as the paper's from 40 px up, fewer for smaller images, at least 1.
    The map it scores is then side / 2^k − 2 patches across (40 → 3, 28 → 5, 20 → 3, 8 → 2)."""
    side = min(shape[1:])
    if side < 6:
        raise UserError(f"the translators need images of at least 6×6 pixels, not {shape[1]}×{shape[2]}: "
                        f"resize with --size")
    return max(1, min(3, math.floor(math.log2(side / PATCH_TARGET))))


def _pad_mode(side: int, pad: int) -> str:
    return "reflect" if side > pad else "zeros"      # reflection needs a side larger than the padding


class ResidualBlock(nn.Module):
    def __init__(self, width: int, side: int):
        super().__init__()
        mode = _pad_mode(side, 1)
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, padding_mode=mode), nn.InstanceNorm2d(width), nn.ReLU(True),
            nn.Conv2d(width, width, 3, padding=1, padding_mode=mode), nn.InstanceNorm2d(width))

    def forward(self, x):
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """Image → image of the same shape, in [-1, 1] on both sides: c7s1-F, d2F, d4F, R4F × blocks, u2F, uF,
    c7s1-C (the paper's names; fewer halvings for small images, see generator_halvings)."""

    def __init__(self, shape, features: int, blocks: int):
        super().__init__()
        c = shape[0]
        k = generator_halvings(shape)
        side = min(shape[1:])
        layers: list[nn.Module] = [nn.Conv2d(c, features, 7, padding=3, padding_mode=_pad_mode(side, 3)),
                                   nn.InstanceNorm2d(features), nn.ReLU(True)]
        width = features
        for _ in range(k):
            layers += [nn.Conv2d(width, width * 2, 3, stride=2, padding=1), nn.InstanceNorm2d(width * 2), nn.ReLU(True)]
            width, side = width * 2, side // 2
        layers += [ResidualBlock(width, side) for _ in range(blocks)]
        for _ in range(k):
            layers += [nn.ConvTranspose2d(width, width // 2, 3, stride=2, padding=1, output_padding=1),
                       nn.InstanceNorm2d(width // 2), nn.ReLU(True)]
            width //= 2
        layers += [nn.Conv2d(width, c, 7, padding=3, padding_mode=_pad_mode(min(shape[1:]), 3)), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)                      # N(0, 0.02), as the paper's code

    def forward(self, x):
        return self.net(x)


class PatchDiscriminator(nn.Module):
    """Image → a map of scores, one per overlapping patch (no sigmoid: least squares or logits)."""

    def __init__(self, shape, features: int):
        super().__init__()
        c = shape[0]
        k = patch_halvings(shape)
        widths = [c] + [features * min(2 ** i, 8) for i in range(k + 1)]
        layers: list[nn.Module] = []
        for i in range(k + 1):                 # k strided layers, then one of stride 1, as the paper's
            layers.append(nn.Conv2d(widths[i], widths[i + 1], 4, stride=2 if i < k else 1, padding=1))
            if i > 0:
                layers.append(nn.InstanceNorm2d(widths[i + 1]))
            layers.append(nn.LeakyReLU(0.2, True))
        layers.append(nn.Conv2d(widths[-1], 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, x):
        return self.net(x)


class EncoderDecoderGenerator(nn.Module):
    """DiscoGAN's generator: k strided 4×4 convolutions (DCGAN's halvings, dcgan_plan), LeakyReLU(0.2) and
    batch norm (none on the first), then k transposed ones back up with batch norm and ReLU; tanh output."""

    def __init__(self, shape, features: int):
        super().__init__()
        c = shape[0]
        k, _, _ = dcgan_plan(shape)
        widths = [c] + [features * 2 ** i for i in range(k)]
        layers: list[nn.Module] = []
        for i in range(k):
            layers.append(nn.Conv2d(widths[i], widths[i + 1], 4, 2, 1, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(widths[i + 1]))
            layers.append(nn.LeakyReLU(0.2, True))
        for i in range(k, 0, -1):
            last = i == 1
            layers.append(nn.ConvTranspose2d(widths[i], widths[i - 1], 4, 2, 1, bias=last))
            layers += [nn.Tanh()] if last else [nn.BatchNorm2d(widths[i - 1]), nn.ReLU(True)]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, x):
        return self.net(x)


class ImagePool(nn.Module):
    """The last `size` fakes a generator made; a discriminator learns from these rather than from the newest
    batch alone, so it does not chase the generator's latest move (CycleGAN §4, after Shrivastava et al.).

    Until it is full each fake joins it and is returned; then each fake is, with probability ½, returned
    as it is, or swapped for a random stored one, which is returned in its place. The images and their
    count are buffers, saved with the weights, so a resumed run draws from the pool it had; the draws come
    from torch's global generator, which the trainer seeds every epoch."""

    def __init__(self, size: int, shape):
        super().__init__()
        self.size = size
        self.register_buffer("images", torch.zeros(size, *shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def query(self, fakes: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return fakes
        out = []
        for fake in fakes:
            n = int(self.count)
            if n < self.size:
                self.images[n] = fake
                self.count += 1
                out.append(fake)
            elif float(torch.rand(())) < 0.5:
                i = int(torch.randint(self.size, ()))
                out.append(self.images[i].clone())
                self.images[i] = fake
            else:
                out.append(fake)
        return torch.stack(out)
