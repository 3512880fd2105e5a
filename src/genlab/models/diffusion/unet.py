"""A small U-Net that predicts the noise in x_t given t (Ho et al. 2020, after PixelCNN++'s): residual
blocks that each add the timestep's embedding, strided convolutions down and nearest-neighbour
upsampling back, skip connections between the two paths, self-attention at the coarsest resolution.

Any image size: each level halves it, rounding up (8 → 4 → 2, 28 → 14 → 7), and the way back up returns
to the size of the skip it meets."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def groups_for(channels: int, most: int = 8) -> int:
    """GroupNorm's groups: the largest divisor of `channels` up to `most`."""
    return max(g for g in range(1, most + 1) if channels % g == 0)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of the timesteps t (N), as a Transformer embeds positions: N×dim."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32, device=t.device) / max(half, 1))
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.sin(args), torch.cos(args)], 1)
    return F.pad(emb, (0, dim - 2 * half))


def zeroed(module: nn.Module) -> nn.Module:
    """A layer that starts at 0: each residual branch and the output begin as the identity / nothing."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, emb_dim: int, dropout: float):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(groups_for(c_in), c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(emb_dim, c_out)
        self.norm2, self.dropout = nn.GroupNorm(groups_for(c_out), c_out), nn.Dropout(dropout)
        self.conv2 = zeroed(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class Attention(nn.Module):
    """Self-attention over the pixels, one head, as a residual branch."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups_for(channels), channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = zeroed(nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).flatten(2).transpose(1, 2).chunk(3, dim=2)     # N×HW×C each
        a = F.scaled_dot_product_attention(q, k, v)
        return x + self.out(a.transpose(1, 2).reshape(n, c, h, w))


class UNet(nn.Module):
    """ε̂(x_t, t): images N×C×H×W and timesteps N (1..T) to a prediction of the noise, N×C×H×W."""

    def __init__(self, image_channels: int, channels: int, mults: tuple[int, ...], blocks: int,
                 attention: bool, dropout: float):
        super().__init__()
        self.channels, emb_dim = channels, 4 * channels
        self.embed = nn.Sequential(nn.Linear(channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.inp = nn.Conv2d(image_channels, channels, 3, padding=1)
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        skips, c = [channels], channels
        for i, m in enumerate(mults):
            level = nn.ModuleList()
            for _ in range(blocks):
                level.append(ResBlock(c, channels * m, emb_dim, dropout))
                c = channels * m
                skips.append(c)
            self.down.append(level)
            if i < len(mults) - 1:
                self.downsample.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                skips.append(c)
        self.mid1 = ResBlock(c, c, emb_dim, dropout)
        self.attention = Attention(c) if attention else nn.Identity()
        self.mid2 = ResBlock(c, c, emb_dim, dropout)
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for i, m in reversed(list(enumerate(mults))):
            level = nn.ModuleList()
            for _ in range(blocks + 1):                  # one more: it also takes the skip of the level's input
                level.append(ResBlock(c + skips.pop(), channels * m, emb_dim, dropout))
                c = channels * m
            self.up.append(level)
            if i > 0:
                self.upsample.append(nn.Conv2d(c, c, 3, padding=1))
        self.out = nn.Sequential(nn.GroupNorm(groups_for(c), c), nn.SiLU(),
                                 zeroed(nn.Conv2d(c, image_channels, 3, padding=1)))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb = self.embed(timestep_embedding(t, self.channels))
        h = self.inp(x)
        skips = [h]
        for i, level in enumerate(self.down):
            for block in level:
                h = block(h, emb)
                skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
                skips.append(h)
        h = self.mid2(self.attention(self.mid1(h, emb)), emb)
        for i, level in enumerate(self.up):
            for block in level:
                h = block(torch.cat([h, skips.pop()], 1), emb)
            if i < len(self.upsample):                   # back up to the size of the next skip
                h = self.upsample[i](F.interpolate(h, size=skips[-1].shape[-2:], mode="nearest"))
        return self.out(h)
