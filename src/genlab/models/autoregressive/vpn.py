"""Video Pixel Network (Kalchbrenner et al. 2016, "Video Pixel Networks"), component by component, on clips
of binary frames: p(x) = Π_t Π_i p(x_t,i | x_<t, x_t,<i), exact, frame by frame and pixel by pixel.

  encoder:  each frame on its own through resolution-preserving convolutions: a 3×3 convolution, then
            residual blocks of dilated 3×3 convolutions (dilations 1, 2, 4, …), as the paper's dilated
            residual stack, with plain ReLU blocks in place of its multiplicative units;
  the past: a convolutional LSTM over time (Shi et al. 2015). At step t it reads the encoding of frame
            t-1 (of nothing, zeros, at step 0), so its state before frame t sums up frames < t;
  decoder:  a gated PixelCNN per frame (van den Oord et al. 2016: no blind spot), the LSTM's state at each
            pixel added inside every gate of both stacks (a 1×1 convolution of it, as gated_pixelcnn.py adds
            a class's bias), so a pixel of frame t sees every earlier frame through the state, and the
            pixels before it in frame t through the masked stacks.

The first frame comes from the decoder given the LSTM's first state: an image model, learnt with the
rest. `log_prob` is of the frames after the data's context (info.context: the last 10 of Moving MNIST's
20) given the context frames, the figure the paper reports; training maximises the likelihood of every
frame, the first ones too, so that clips can also be drawn from nothing.

Generation, frame by frame: one uniform number per pixel drawn up front and turned into a pixel by the
inverse CDF, cached (the gated PixelCNN's row cache: its vertical stack once per row, then a window per
layer per pixel) or naive (the whole decoder over the frame for each pixel); both give the same clips for
the same generator.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ...errors import UserError
from ...progress import tick
from ..base import GenerativeModel, option
from .gated_pixelcnn import GatedLayer, gate
from .masked import MaskedConv2d, PixelCache, pointwise
from .sampling import CachedHead, uniforms


@dataclass
class VPNConfig:
    encoder_channels: int = option(16, "features of the frame encoder", low=1)
    encoder_blocks: int = option(2, "residual blocks of the frame encoder (3×3, dilations 1, 2, 4, …)", low=0)
    lstm_channels: int = option(16, "features of the convolutional LSTM's state (the past at each pixel)", low=1)
    lstm_kernel: int = option(3, "kernel of the convolutional LSTM (odd)", low=1)
    decoder_channels: int = option(16, "features per stack of the decoder, a gated PixelCNN", low=1)
    decoder_layers: int = option(3, "gated layers of the decoder", low=1)
    first_kernel: int = option(5, "kernel of the decoder's first layer (odd, at least 3)", low=3)
    kernel: int = option(3, "kernel of the decoder's later layers (odd)", low=1)
    head: int = option(32, "features of the decoder's 1×1 output layer", low=1)


class EncoderBlock(nn.Module):
    """x + 1×1(ReLU(dilated 3×3(ReLU(x)))): the frame's size kept, the field widened by 2·dilation."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.mix = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        return x + self.mix(F.relu(self.conv(F.relu(x))))


class ConvLSTM(nn.Module):
    """An LSTM whose gates are convolutions over the input and the state maps (Shi et al. 2015)."""

    def __init__(self, cin: int, hidden: int, kernel: int):
        super().__init__()
        self.hidden = hidden
        self.conv = nn.Conv2d(cin + hidden, 4 * hidden, kernel, padding=kernel // 2)
        with torch.no_grad():
            self.conv.bias[hidden:2 * hidden].fill_(1.0)        # forget gates open at first: remember

    def forward(self, x, state):
        h, c = state
        i, f, o, g = self.conv(torch.cat([x, h], 1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class DecoderLayer(GatedLayer):
    """A gated layer whose gates, in both stacks, get the past at each pixel (a 1×1 convolution of the
    LSTM's state) where gated_pixelcnn.py's get a class's bias."""

    def __init__(self, cin: int, h: int, k: int, first: bool, past: int):
        super().__init__(cin, h, k, first, channels=1, classes=0)
        self.past = nn.Conv2d(past, 4 * h, 1)

    def cond(self, state):
        return self.past(state).chunk(2, dim=1)


class VPN(GenerativeModel):
    name = "vpn"
    family = "autoregressive"
    modality = "video"
    likelihood_kind = "exact"
    discrete = True
    Config = VPNConfig
    default_batch_size = 16
    default_lr = 1e-3
    default_steps = 2000          # 16 epochs of moving-mnist-32's 2,000 clips
    default_epoch_range = (1, 200)
    default_train = {"clip_grad": 1.0}

    def __init__(self, config: VPNConfig, info):
        super().__init__(config, info)
        for name in ("lstm_kernel", "first_kernel", "kernel"):
            if getattr(config, name) % 2 == 0:
                raise UserError(f"{name} must be odd, not {getattr(config, name)}")
        e, s, h = config.encoder_channels, config.lstm_channels, config.decoder_channels
        self.encode_in = nn.Conv2d(1, e, 3, padding=1)
        self.encoder = nn.ModuleList(EncoderBlock(e, 2 ** i) for i in range(config.encoder_blocks))
        self.lstm = ConvLSTM(e, s, config.lstm_kernel)
        self.layers = nn.ModuleList(
            DecoderLayer(1 if i == 0 else h, h, config.first_kernel if i == 0 else config.kernel, i == 0, s)
            for i in range(config.decoder_layers))
        self.head = MaskedConv2d(h, config.head, (1, 1), "B", 1)
        self.out = MaskedConv2d(config.head, 1, (1, 1), "B", 1)

    # ---- the network ----
    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames N×H×W (pixels as ±1; zeros: no frame) to features N×E×H×W."""
        x = self.encode_in(frames.unsqueeze(1))
        for block in self.encoder:
            x = block(x)
        return x

    def start(self, n: int, dtype=None):
        """The LSTM's state before anything is seen: zeros."""
        zeros = torch.zeros(n, self.config.lstm_channels, self.info.height, self.info.width,
                            dtype=dtype or next(self.parameters()).dtype, device=self.device)
        return zeros, zeros

    def pasts(self, inp: torch.Tensor) -> torch.Tensor:
        """The LSTM's state before each frame, N×T×S×H×W, from the frames inp N×T×H×W (pixels as ±1)."""
        n, t, height, width = inp.shape
        before = torch.cat([torch.zeros_like(inp[:, :1]), inp[:, :-1]], 1)    # step t reads frame t-1
        e = self.encode(before.reshape(n * t, height, width)).view(n, t, -1, height, width)
        state, out = self.start(n, inp.dtype), []
        for i in range(t):
            state = self.lstm(e[:, i], state)
            out.append(state[0])
        return torch.stack(out, 1)

    def decode(self, inp: torch.Tensor, past: torch.Tensor) -> torch.Tensor:
        """Logits N×H×W of frames inp (N×1×H×W, pixels as ±1) given the past at each pixel (N×S×H×W):
        pixel (r, c)'s from the past and the frame's pixels before (r, c) only."""
        v = h = inp
        for layer in self.layers:
            v, h = layer(v, h, past)
        return self.out(F.relu(self.head(F.relu(h))))[:, 0]

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        """Logits N×T×H×W of the clips inp (N×T×H×W, pixels as ±1)."""
        n, t, height, width = inp.shape
        past = self.pasts(inp)
        logits = self.decode(inp.reshape(n * t, 1, height, width), past.reshape(n * t, -1, height, width))
        return logits.view(n, t, height, width)

    # ---- likelihood and training ----
    def _clips(self, x: torch.Tensor) -> torch.Tensor:
        info = self.info
        if x.dim() != 4 or tuple(x.shape[2:]) != (info.height, info.width):
            raise UserError(f"clips must be N×T×{info.height}×{info.width}, not {'×'.join(map(str, x.shape))}")
        return (x.to(self.device) > 0.5).to(next(self.parameters()).dtype)

    def frame_log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """log p(frame t | frames < t) in nats, N×T, of clips x (N×T×H×W, 0/1)."""
        x = self._clips(x)
        logits = self.forward(x * 2 - 1)
        return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((2, 3))

    def log_prob(self, x, condition=None, context: int | None = None):
        """Exact log p(frames context… | frames < context) in nats per clip (context: the data's, by default)."""
        self.check_condition(condition)
        k = self.info.context if context is None else context
        return self.frame_log_probs(x)[:, k:].sum(1)

    def loss(self, batch):
        return -self.frame_log_probs(batch.x).mean(), {}      # nats per frame, over every frame

    # ---- generation ----
    @torch.no_grad()
    def sample(self, n, *, condition=None, generator=None, frames: int | None = None, cached: bool = True):
        """n clips (N×T×H×W, 0/1) drawn from nothing: the first frame from the decoder alone, each later one
        given all before it. frames: T (default the data's)."""
        self.check_condition(condition, n)
        empty = torch.zeros(n, 0, self.info.height, self.info.width, device=self.device)
        return self.continue_clips(empty, frames or self.info.frames, generator=generator, cached=cached)

    @torch.no_grad()
    def continue_clips(self, given: torch.Tensor, frames: int, *, generator=None, cached: bool = True):
        """The clips `given` (N×K×H×W, 0/1; K may be 0) followed by `frames` frames drawn by the model, each
        given every frame before it: N×(K+frames)×H×W, the given frames as they were."""
        if frames < 1:
            raise UserError(f"the frames to draw must be at least 1, not {frames}")
        given = self._clips(given)
        n, k = given.shape[:2]
        u = uniforms((n, frames, self.info.height, self.info.width), generator, self.device).to(given.dtype)
        state = self.start(n, given.dtype)
        before = torch.zeros_like(given[:, 0]) if k else given.new_zeros(n, self.info.height, self.info.width)
        clip = []
        for t in range(k + frames):
            state = self.lstm(self.encode(before), state)          # the past before frame t
            frame = given[:, t] if t < k else self.draw_frame(state[0], u[:, t - k], cached)
            clip.append(frame)
            before = frame * 2 - 1
        return torch.stack(clip, 1)

    @torch.no_grad()
    def draw_frame(self, past: torch.Tensor, u: torch.Tensor, cached: bool = True) -> torch.Tensor:
        """One frame (N×H×W, 0/1) given the past at each pixel (N×S×H×W), pixel by pixel in raster order,
        pixel (r, c) on where u[:, r, c] < its probability of being on."""
        n, _, height, width = past.shape
        inp = torch.full((n, 1, height, width), -1.0, dtype=past.dtype, device=past.device)
        st = self._cache_start(inp, past) if cached else None
        for r in range(height):
            tick("drawing a frame's pixel rows", r + 1, height, "row")
            if cached:
                self._cache_row(st, inp, r)
            for c in range(width):
                logit = self._cache_step(st, inp, r, c)[:, 0] if cached else self.decode(inp, past)[:, r, c]
                inp[:, 0, r, c] = (u[:, r, c] < torch.sigmoid(logit)).to(inp.dtype) * 2 - 1
        return (inp[:, 0] + 1) / 2

    # ---- the decoder's cache: gated_pixelcnn.py's, with the past's row in place of a class's bias ----
    def _cache_start(self, inp, past) -> dict:
        n, _, height, width = inp.shape
        vin = [inp.new_zeros(n, layer.vconv.weight.shape[1], height + layer.v_pad[2],
                             width + layer.v_pad[0] + layer.v_pad[1]) for layer in self.layers]
        return {"past": [layer.past(past) for layer in self.layers], "vin": vin,
                "h": [PixelCache(layer.hconv, n, height, width, inp) for layer in self.layers],
                "hout": [pointwise(layer.hout) for layer in self.layers],
                "head": CachedHead(self.head, self.out, 1)}

    def _cache_row(self, st, inp, r):
        """The vertical stack for row r (it needs rows < r and the past only) and its link into the
        horizontal stack, the part of each horizontal pre-activation known before the row's pixels."""
        width = inp.shape[3]
        if r > 0:
            first = self.layers[0]
            st["vin"][0][:, :, r - 1 + first.v_pad[2], first.v_pad[0]:first.v_pad[0] + width] = inp[:, :, r - 1]
        for i, layer in enumerate(self.layers):
            cv, ch = st["past"][i][:, :, r:r + 1].chunk(2, dim=1)
            vpre = layer.vconv(st["vin"][i][:, :, r:r + layer.v_rows]) + cv              # N×2h×1×W
            st["h"][i].above = (layer.link(vpre) + ch)[:, :, 0].transpose(1, 2) + layer.hconv.bias
            if i + 1 < len(self.layers):
                nxt = self.layers[i + 1]
                st["vin"][i + 1][:, :, r + nxt.v_pad[2], nxt.v_pad[0]:nxt.v_pad[0] + width] = gate(vpre)[:, :, 0]

    def _cache_step(self, st, inp, r, c):
        st["h"][0].put_row(r, inp[:, :, r])                # this row so far
        h = None
        for i, (hc, (bo, wo)) in enumerate(zip(st["h"], st["hout"])):
            if i > 0:
                hc.put(r, c, h)
            hnew = torch.addmm(bo, gate(hc.at(r, c)), wo)
            h = hnew if i == 0 else h + hnew
        return st["head"].logits(h, 0)
