"""WaveNet (van den Oord et al. 2016): raw audio one sample at a time, p(x) = Π_t p(x_t | x_<t), exact.

Each sample is one of 256 μ-law codes and its distribution a 256-way softmax. The network: the codes so far
embedded (one-hot times a matrix) and shifted one step, so position t sees x_<t only; a causal
convolution of width 2; then `stacks` stacks of `layers` dilated causal convolutions (width 2, dilations
1, 2, 4, … 2^(layers-1)), each with a gated unit tanh(W_f ∗ h) ⊙ σ(W_g ∗ h), a residual connection to the
next layer and a skip connection to the output; the summed skips through ReLU, 1×1, ReLU, 1×1 to the
logits. Global conditioning (`conditional=true`): a learnt vector per class (word, instrument family,
pitch: `label`) added inside every gate, as the paper's h-dependent biases V_f y and V_g y.

The prediction of x_t sees the `receptive_field` samples before it (2 + Σ dilations).

Generation, naive or cached, turns one uniform number per sample (drawn up front) into a code by the
inverse CDF of the softmax, so both give the same audio for the same generator:

  full:   the whole network over the clip so far, once per sample (what training computes);
  window: the whole network over the last receptive_field + 1 samples, once per sample (the naive
          generation Paine et al. 2016 compare with);
  cached: Fast WaveNet (Paine et al. 2016): every layer keeps a queue of its last `dilation` inputs, so
          one step computes one column per layer, from the new sample and the queued ones.

Training scores `crop` samples of each clip at a time (a random stretch per step, with the receptive
field before it as context, so every scored sample sees its true past); the likelihood is always of whole
clips.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ...data.containers.audio import LEVELS, mulaw_decode, mulaw_encode
from ...errors import UserError
from ...progress import tick
from ..base import GenerativeModel, option

MODES = ("cached", "window", "full")


@dataclass
class WaveNetConfig:
    residual_channels: int = option(32, "features of the residual stream and of each gate", low=1)
    skip_channels: int = option(64, "features of the skip connections", low=1)
    head: int = option(64, "features of the 1×1 layer before the softmax", low=1)
    layers: int = option(8, "dilated layers per stack: dilations 1, 2, 4, … 2^(layers-1)", low=1)
    stacks: int = option(2, "stacks of dilated layers", low=1)
    crop: int = option(2000, "samples scored per clip in a training step (0: the whole clip)", low=0)
    conditional: bool = option(False, "condition on the class label (labelled data only); then "
                                      "`genlab sample RUN --class K` draws class K")
    label: str = option("auto", "the label a conditional model is conditioned on: word (spoken-digits), family "
                                "or pitch (notes), folder (audio:PATH); auto: the data's first",
                        choices=("auto", "word", "family", "pitch", "folder"))


class ResidualLayer(nn.Module):
    def __init__(self, channels: int, skip: int, dilation: int, last: bool):
        super().__init__()
        self.dilation, self.channels, self.last = dilation, channels, last
        self.conv = nn.Conv1d(channels, 2 * channels, 2, dilation=dilation)
        # The last layer's residual output would feed nothing: it has the skip part only.
        self.out = nn.Conv1d(channels, skip if last else channels + skip, 1)

    def forward(self, h, bias):
        z = self.conv(F.pad(h, (self.dilation, 0))) + bias
        g = gate(z)
        out = self.out(g)
        if self.last:
            return h, out
        return h + out[:, :self.channels], out[:, self.channels:]


def gate(z: torch.Tensor) -> torch.Tensor:
    """tanh of the first half of the features times the sigmoid of the second (dim 1)."""
    f, g = z.chunk(2, dim=1)
    return torch.tanh(f) * torch.sigmoid(g)


class WaveNet(GenerativeModel):
    name = "wavenet"
    family = "autoregressive"
    modality = "audio"
    conditioning = "class"
    optional_conditioning = True
    likelihood_kind = "exact"
    abilities = ("complete",)
    discrete = True
    Config = WaveNetConfig
    default_batch_size = 16
    default_lr = 1e-3
    default_steps = 600
    default_epoch_range = (1, 200)
    default_train = {"clip_grad": 1.0}

    @classmethod
    def data_request(cls, config):
        return {"label": config.label, "conditional": config.conditional}     # which labels become its classes

    def __init__(self, config: WaveNetConfig, info):
        super().__init__(config, info)
        r, s = config.residual_channels, config.skip_channels
        self.embed = nn.Embedding(LEVELS, r)
        self.causal = nn.Conv1d(r, r, 2)
        dilations = [2 ** i for _ in range(config.stacks) for i in range(config.layers)]
        self.blocks = nn.ModuleList(ResidualLayer(r, s, d, i == len(dilations) - 1) for i, d in enumerate(dilations))
        self.head = nn.Conv1d(s, config.head, 1)
        self.out = nn.Conv1d(config.head, LEVELS, 1)
        k = self.num_conditions
        self.condition_embed = nn.Embedding(k, len(dilations) * 2 * r) if k else None
        self.receptive_field = 2 + sum(dilations)

    # ---- the network ----
    def _labels(self, condition, n):
        """The class of each clip (N), or None for an unconditional model, which ignores the labels its
        batches carry (`sample` refuses a condition given to it)."""
        if self.condition_kind == "none":
            return None
        if condition is None:
            raise UserError(f"this {self.name} is conditional: it needs a class label for every clip")
        y = condition.to(self.device).long()
        self.check_condition(y, n)
        return y.expand(n) if y.dim() == 0 else y

    def _biases(self, y, n):
        """Each layer's gate bias from the class (N×2R, or 0 for an unconditional model)."""
        if y is None:
            return [0] * len(self.blocks)
        return list(self.condition_embed(y).chunk(len(self.blocks), dim=1))

    def forward(self, x: torch.Tensor, condition=None) -> torch.Tensor:
        """Logits N×256×T for codes x (long N×T): position t's from x_<t only."""
        return self.network(self.embed(x).transpose(1, 2), condition)

    def network(self, e: torch.Tensor, condition=None) -> torch.Tensor:
        """Logits N×256×T from the embedded codes e (N×R×T): position t's from e's positions before t."""
        y = self._labels(condition, len(e))
        e = F.pad(e, (1, -1))                                      # shifted: position t holds x_(t-1)
        h = self.causal(F.pad(e, (1, 0)))
        skip = 0
        for block, b in zip(self.blocks, self._biases(y, len(e))):
            h, s = block(h, b[:, :, None] if torch.is_tensor(b) else b)
            skip = skip + s
        return self.out(F.relu(self.head(F.relu(skip))))

    @staticmethod
    def codes(x: torch.Tensor) -> torch.Tensor:
        """Codes (long) as they are, or a waveform in [-1, 1] (float) as its μ-law codes."""
        return x.long() if not x.is_floating_point() else mulaw_encode(x)

    def log_prob(self, x, condition=None):
        """Exact log p(x) in nats per clip, of its μ-law codes (x: codes N×T, or a waveform in [-1, 1])."""
        c = self.codes(x.to(self.device))
        return self.forward(c, condition).log_softmax(1).gather(1, c.unsqueeze(1)).flatten(1).sum(1)

    def loss(self, batch):
        x, y = batch.x.to(self.device), batch.condition
        t = x.shape[1]
        crop = self.config.crop
        if 0 < crop < t:            # a random stretch, with its receptive field before it as context
            start = int(torch.randint(0, t - crop + 1, ()))
            lo = max(0, start - self.receptive_field)
            window = x[:, lo:start + crop]
            lp = self.forward(window, y).log_softmax(1).gather(1, window.unsqueeze(1))[:, 0, start - lo:]
        else:
            lp = self.forward(x, y).log_softmax(1).gather(1, x.unsqueeze(1))[:, 0]
        return -lp.mean(), {}       # nats per sample

    # ---- generation ----
    def sampling_condition(self, n, condition):
        if self.condition_kind == "class" and condition is None:    # none asked for: the classes in turn
            return torch.arange(n, device=self.device) % self.num_conditions
        return condition

    @torch.no_grad()
    def sample(self, n, *, condition=None, generator=None, cached: bool = True, mode: str | None = None,
               length: int | None = None):
        """n clips (N×T waveforms in [-1, 1], μ-law values) drawn sample by sample. mode: cached (Fast
        WaveNet, the default), window or full (naive: see the module's note); all three give the same clips
        for the same generator. `cached=False` is mode full."""
        self.check_condition(condition, n)
        t = length or self.info.length
        codes = torch.zeros(n, t, dtype=torch.long, device=self.device)
        known = torch.zeros(n, t, dtype=torch.bool, device=self.device)
        u = torch.rand(n, t, generator=generator, device=self.device)
        return self.generate(codes, known, u, self.sampling_condition(n, condition),
                             mode or ("cached" if cached else "full"))

    @torch.no_grad()
    def complete(self, x, mask, *, condition=None, generator=None, cached: bool = True):
        """x (N×T, codes or a waveform) with the samples where `mask` (broadcast to x) is true drawn by the
        model given every earlier sample; the others kept. Cover the end: a causal model cannot look ahead."""
        if x.dim() != 2:
            raise UserError(f"clips to complete must be N×T, not {'×'.join(map(str, x.shape))}")
        codes = self.codes(x.to(self.device)).clone()
        covered = torch.broadcast_to(mask.to(self.device, torch.bool), codes.shape)
        u = torch.rand(codes.shape, generator=generator, device=self.device)
        return self.generate(codes, ~covered, u, self.sampling_condition(len(codes), condition),
                             "cached" if cached else "full")

    @torch.no_grad()
    def generate(self, codes: torch.Tensor, known: torch.Tensor, u: torch.Tensor, condition, mode: str = "cached"):
        """Fill `codes` (long N×T) in time order, keeping it where `known` is true; u (N×T) the uniform
        numbers. Returns the waveforms (N×T in [-1, 1])."""
        if mode not in MODES:
            raise UserError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        n, t = codes.shape
        y = self._labels(condition, n)
        dtype = next(self.parameters()).dtype
        u = u.to(dtype)
        state = self._cache_start(n, y, dtype) if mode == "cached" else None
        for i in range(t):
            tick("drawing sound samples", i + 1, t, "sample")
            skip = bool(known[:, i].all())
            if mode == "cached":
                logits = self._cache_step(state, codes[:, i - 1] if i else None, need=not skip)
            elif skip:
                continue
            else:
                lo = 0 if mode == "full" else max(0, i - self.receptive_field)
                logits = self.forward(codes[:, lo:i + 1], y)[:, :, -1]
            if skip:
                continue
            cdf = logits.softmax(-1).cumsum(-1)
            drawn = (cdf < u[:, i, None]).sum(-1).clamp(max=LEVELS - 1)
            codes[:, i] = torch.where(known[:, i], codes[:, i], drawn)
        return mulaw_decode(codes, dtype)

    def _cache_start(self, n, y, dtype) -> dict:
        """Fast WaveNet's state: each layer's queue of its last `dilation` inputs (zeros: the padding before
        the clip), the last embedded input, and each layer's weights as matrices for one column: the filter
        and gate halves of its dilated convolution over [past, present], its residual part, and every
        layer's skip part stacked, applied once per step to all the layers' gates together."""
        r = self.config.residual_channels
        zeros = torch.zeros(n, r, dtype=dtype, device=self.device)
        cw = self.causal.weight
        layers, skip_w, skip_b = [], [], 0
        for block, b in zip(self.blocks, self._biases(y, n)):
            w = torch.cat([block.conv.weight[:, :, 0], block.conv.weight[:, :, 1]], 1).t()    # 2R (past, now) × 2R
            bias = block.conv.bias + b
            ow, ob = block.out.weight[:, :, 0].t(), block.out.bias
            split = 0 if block.last else r
            layers.append({"queue": [zeros] * block.dilation, "dilation": block.dilation,
                           "wf": w[:, :r], "wg": w[:, r:], "bf": bias[..., :r], "bg": bias[..., r:],
                           "wr": ow[:, :split] if split else None, "br": ob[:split] if split else None})
            skip_w.append(ow[:, split:])
            skip_b = skip_b + ob[split:]
        return {"t": 0, "e": zeros, "layers": layers, "causal": (self.causal.bias, cw[:, :, 0].t(), cw[:, :, 1].t()),
                "skip": (skip_b, torch.cat(skip_w, 0)), "head": (self.head.bias, self.head.weight[:, :, 0].t()),
                "out": (self.out.bias, self.out.weight[:, :, 0].t())}

    def _cache_step(self, st, previous, need: bool = True):
        """The logits (N×256) of the next sample, given the one before it (None at the start); every
        layer's queue moves on by one. need=False: the queues move, the output layers are skipped."""
        t = st["t"]
        e = self.embed(previous) if previous is not None else torch.zeros_like(st["e"])
        b, w_past, w_now = st["causal"]
        h = torch.addmm(b, st["e"], w_past).addmm_(e, w_now)
        st["e"] = e
        gates = []
        for layer in st["layers"]:
            q, slot = layer["queue"], t % layer["dilation"]
            both = torch.cat([q[slot], h], 1)             # h_(t-d) and h_t; h_t queued in its place
            q[slot] = h
            g = torch.tanh(torch.addmm(layer["bf"], both, layer["wf"])).mul_(
                torch.sigmoid(torch.addmm(layer["bg"], both, layer["wg"])))
            gates.append(g)
            if layer["wr"] is not None:
                h = torch.addmm(layer["br"], g, layer["wr"]).add_(h)
        st["t"] = t + 1
        if not need:
            return None
        (sb, sw), (hb, hw), (ob, ow) = st["skip"], st["head"], st["out"]
        skip = torch.addmm(sb, torch.cat(gates, 1), sw)
        return torch.addmm(ob, F.relu(torch.addmm(hb, F.relu(skip), hw)), ow)
