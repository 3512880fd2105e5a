"""Real NVP (Dinh, Sohl-Dickstein & Bengio 2017): affine coupling layers, y = x · exp(s(x_kept)) + t(x_kept),
whose Jacobian is triangular, so log p(x) is exact and costs one pass.

The multi-scale architecture of the paper: at each level three couplings with checkerboard masks
(alternating), a squeeze, three couplings with channel masks (alternating), then half the channels leave
as a code with an N(0, I) prior; at the last scale four checkerboard couplings. Each coupling's net is a
small ResNet. Inputs go through the paper's logit pre-processing (α = 0.05). Left out: the batch
normalisation of the paper (it makes one image's likelihood depend on the rest of its batch in training)
and weight normalisation; the log-scale is a tanh-bounded one (layers.LOG_SCALE_BOUND) instead of the
paper's learned scale times tanh.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..base import option
from .base import FlowConfig, FlowModel
from .layers import AffineCoupling, Split, Squeeze


@dataclass
class RealNVPConfig(FlowConfig):
    blocks: int = option(1, "residual blocks in each coupling's net (the paper's ResNet: 8 on CIFAR-10)", low=0)


class RealNVP(FlowModel):
    name = "realnvp"
    Config = RealNVPConfig
    # 1,000 steps of 64 (44 epochs of digits, 8 of mnist): on digits a test NLL of 211 nats against 313 for
    # a Gaussian per pixel (222 after 460 steps), one thread.
    default_batch_size = 64
    default_lr = 1e-3
    default_steps = 1000

    def build_steps(self, channels):
        cfg = self.config

        def couplings(c, mask, count):
            return [AffineCoupling(c, cfg.hidden, cfg.blocks, mask, parity=i % 2) for i in range(count)]

        steps, c = [], channels
        for _ in range(cfg.levels):
            steps += couplings(c, "checkerboard", 3)
            steps.append(Squeeze())
            c *= 4
            steps += couplings(c, "channel", 3)
            split = Split(c, learned_prior=False)
            steps.append(split)
            c -= split.out_channels
        return steps + couplings(c, "checkerboard", 4)
