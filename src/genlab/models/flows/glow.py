"""Glow (Kingma & Dhariwal 2018): at each level a squeeze, then `depth` steps of flow, each an actnorm (an
affine map per channel, set from the first batch), an invertible 1×1 convolution (LU-decomposed: it
permutes and mixes the channels at the cost of a C×C matrix) and an affine coupling over the channels;
between levels half the channels leave as a code whose Gaussian prior is predicted from the other half.

As in the paper: zero-initialised last layers (each coupling and prior starts as the identity), sampling at
a temperature (codes from N(0, T²)). Unlike the paper's code, which shifts pixels to [−½, ½], inputs go
through Real NVP's logit pre-processing, so the two flows share one density of x in [0, 1]^D; the
coupling's log-scale is tanh-bounded (layers.LOG_SCALE_BOUND) rather than sigmoid(raw + 2).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..base import option
from .base import FlowConfig, FlowModel
from .layers import ActNorm, AffineCoupling, InvConv1x1, Split, Squeeze


@dataclass
class GlowConfig(FlowConfig):
    levels: int = option(2, "levels L of the multi-scale architecture: the image is squeezed (its height and "
                            "width halved) at the start of each, so both must be divisible by 2^levels", low=1)
    depth: int = option(4, "steps of flow K at each level (actnorm, 1×1 convolution, coupling)", low=1)
    coupling: str = option("affine", "affine (scale and shift) or additive (shift only, volume-preserving)",
                           choices=("affine", "additive"))


class Glow(FlowModel):
    name = "glow"
    Config = GlowConfig
    min_levels = 1
    # 1,000 steps of 64 (44 epochs of digits, 8 of mnist): on digits a test NLL of 230 nats against 313 for
    # a Gaussian per pixel, one thread.
    default_batch_size = 64
    default_lr = 1e-3
    default_steps = 1000

    def build_steps(self, channels):
        cfg = self.config
        steps, c = [], channels
        for level in range(cfg.levels):
            steps.append(Squeeze())
            c *= 4
            for _ in range(cfg.depth):
                steps += [ActNorm(c), InvConv1x1(c),
                          AffineCoupling(c, cfg.hidden, 0, "channel", parity=0, additive=cfg.coupling == "additive")]
            if level < cfg.levels - 1:
                split = Split(c, learned_prior=True)
                steps.append(split)
                c -= split.out_channels
        return steps
