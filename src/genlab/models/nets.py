"""What the families that build either a fully connected or a convolutional net share: the `net` setting
and the rule behind "auto" (convolutions from a side of `conv_from` pixels up, an MLP below).

Each family sets its own `conv_from`: the latent models keep their MLPs up to 28×28 (cheaper, as good
on the small digits), the GANs take DCGAN's nets from 16 px. Their other settings differ in default or
meaning (a VAE's code is 16 wide, a GAN's 100; `hidden` is every fully connected layer of a VAE but
only the MLP of a GAN), so each family declares those itself, in the order `--help` lists them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .base import option

NET_KINDS = ("auto", "mlp", "conv")


def choose_net(kind: str, shape: tuple[int, int, int], *, conv_from: int) -> str:
    """The kind asked for; for "auto", "conv" when the image's shorter side is at least `conv_from`."""
    if kind != "auto":
        return kind
    return "conv" if min(shape[1:]) >= conv_from else "mlp"


def net_option(conv_from: int, conv: str = "conv"):
    """The `net` setting of a family whose "auto" turns convolutional at `conv_from` pixels."""
    return option("auto", f"network kind: mlp, {conv}, or auto (conv for {conv_from}×{conv_from} and larger)",
                  choices=NET_KINDS)


@dataclass
class NetConfigBase:
    """Base of a family's `NetConfig`: its subclass declares `net` (with `net_option(conv_from)`) among its
    own fields and sets `conv_from`; `net_kind` then applies the one rule."""
    conv_from: ClassVar[int]

    def net_kind(self, shape: tuple[int, int, int]) -> str:
        return choose_net(self.net, shape, conv_from=self.conv_from)
