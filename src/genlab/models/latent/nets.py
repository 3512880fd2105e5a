"""Encoder and decoder networks shared by the latent-variable models, sized from the data's shape.

Fully connected for small images, convolutional for 28×28 and larger ("auto"); either can be forced.
An optional condition vector (a one-hot label) is joined to the encoder's features and the decoder's code.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ..base import option
from ..nets import NetConfigBase, net_option


@dataclass
class NetConfig(NetConfigBase):
    """The settings every encoder/decoder model shares."""
    conv_from: ClassVar[int] = 28
    latent_dim: int = option(16, "size of the code z", low=1)
    hidden: int = option(512, "width of the fully connected layers", low=1)
    channels: int = option(32, "channels of the first convolution (doubling at each halving)", low=1)
    net: str = net_option(conv_from)


def conv_plan(shape: tuple[int, int, int], max_layers: int = 4) -> tuple[int, int, int]:
    """How many stride-2 halvings the image takes (each exact), and the final height and width."""
    _, h, w = shape
    n = 0
    while n < max_layers and h % 2 == 0 and w % 2 == 0 and min(h, w) >= 8:
        h, w, n = h // 2, w // 2, n + 1
    return n, h, w


def mlp(sizes: list[int], final_act: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or final_act:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    """Image (+ condition) → `out_dim` numbers (a code, or a mean and a log-variance side by side)."""

    def __init__(self, kind: str, shape: tuple[int, int, int], out_dim: int, hidden: int, cond_dim: int = 0,
                 channels: int = 32):
        super().__init__()
        c, h, w = shape
        if kind == "mlp":
            self.features = nn.Sequential(nn.Flatten(), mlp([c * h * w, hidden, hidden], final_act=True))
            feat = hidden
        else:
            n, fh, fw = conv_plan(shape)
            layers: list[nn.Module] = []
            ch_in = c
            for i in range(n):
                ch_out = channels * 2 ** i
                layers += [nn.Conv2d(ch_in, ch_out, 4, 2, 1), nn.ReLU()]
                ch_in = ch_out
            self.features = nn.Sequential(*layers, nn.Flatten())
            feat = ch_in * fh * fw
        self.head = mlp([feat + cond_dim, hidden, out_dim])

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        f = self.features(x)
        if cond is not None:
            f = torch.cat([f, cond], dim=1)
        return self.head(f)


class Decoder(nn.Module):
    """Code (+ condition) → per-pixel parameters N×C×H×W (logits or means before a squashing)."""

    def __init__(self, kind: str, shape: tuple[int, int, int], in_dim: int, hidden: int, cond_dim: int = 0,
                 channels: int = 32):
        super().__init__()
        self.shape = shape
        c, h, w = shape
        if kind == "mlp":
            self.net = mlp([in_dim + cond_dim, hidden, hidden, c * h * w])
            return
        n, fh, fw = conv_plan(shape)
        ch = channels * 2 ** max(n - 1, 0)
        layers: list[nn.Module] = [mlp([in_dim + cond_dim, hidden, ch * fh * fw], final_act=True),
                                   nn.Unflatten(1, (ch, fh, fw))]
        for i in reversed(range(n)):
            ch_out = c if i == 0 else channels * 2 ** (i - 1)
            layers.append(nn.ConvTranspose2d(ch, ch_out, 4, 2, 1))
            if i > 0:
                layers.append(nn.ReLU())
            ch = ch_out
        if n == 0:
            layers.append(nn.Conv2d(ch, c, 3, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if cond is not None:
            z = torch.cat([z, cond], dim=1)
        return self.net(z).view(-1, *self.shape)


LOG_2PI = math.log(2 * math.pi)


def pixel_log_likelihood(x: torch.Tensor, out: torch.Tensor, kind: str, log_sigma: torch.Tensor | None) -> torch.Tensor:
    """Per-image log p(x | z) in nats: Bernoulli on logits, or Gaussian with mean sigmoid(out)."""
    if kind == "bernoulli":
        ll = -nn.functional.binary_cross_entropy_with_logits(out, x, reduction="none")
    else:
        mean = torch.sigmoid(out)
        ll = -0.5 * (((x - mean) / log_sigma.exp()) ** 2 + 2 * log_sigma + LOG_2PI)
    return ll.flatten(1).sum(1)


def pixel_mean(out: torch.Tensor) -> torch.Tensor:
    """The decoder's mean image in [0, 1] (Bernoulli probabilities or Gaussian means)."""
    return torch.sigmoid(out)
