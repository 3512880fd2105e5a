"""The feature network of sound: a small convolutional classifier of log-mel spectrograms, trained on the data
set's own labelled training split (the word of spoken-digits, the instrument family of notes: the data's first
labelling) with a fixed seed, and cached like the image classifier (feature_cache: version + data hash).

No audio network can be downloaded here (VGGish, as the Fréchet Audio Distance uses, neither), and one trained
on the very clips is what makes features meaningful for 1-second words at 8 kHz.

A clip is seen as its log-mel spectrogram, a picture in [0, 1]: MELS mel bands (low frequencies in the bottom
row) × one column per HOP samples, each value its band's power in dB between DB_LOW (silence, and the hiss of
the quietest μ-law steps) and DB_HIGH. The same pictures are what the memorisation test compares and what the
spectrogram grids show. Every real clip is taken through the μ-law codes first, as the models see it."""
from __future__ import annotations

import math
import time

import torch
from torch import nn

from ..data.containers.audio import LEVELS, AudioDataset, mulaw_decode
from ..errors import UserError
from . import feature_cache
from .feature_cache import fit
from .features import FeatureNetwork

VERSION = 1             # bump when the spectrogram, the network or its training changes: the cache key includes it
N_FFT, HOP, MELS = 256, 128, 40      # 32 ms windows every 16 ms at 8 kHz
DB_LOW, DB_HIGH = -60.0, 10.0        # the picture's black and white, in dB of a band's mean power per bin
FEATURES = 128
WIDTHS = (8, 16, 32)     # channels of the convolutions, each followed by halving
CLIPS_SEEN = 24_000     # training length in clips: 15 epochs of spoken-digits, under a minute on a CPU
BATCH = 64


def mel_filterbank(n_fft: int, rate: int, mels: int) -> torch.Tensor:
    """mels × (n_fft/2 + 1) triangular filters evenly spaced on the mel scale (HTK's 2595·log10(1 + f/700))
    from 0 Hz to rate/2, each summing to one: a band's power is the mean power of its bins, in their units."""
    mel = lambda f: 2595 * math.log10(1 + f / 700)  # noqa: E731
    edges_mel = torch.linspace(0, mel(rate / 2), mels + 2, dtype=torch.float64)
    edges = 700 * (10 ** (edges_mel / 2595) - 1)
    freqs = torch.linspace(0, rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    tri = torch.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)).clamp_min(0)
    # A band narrower than a bin catches none at low resolution: it takes its centre's nearest bin.
    empty = tri.sum(1) == 0
    tri[empty, ((mid[empty, 0] / (rate / 2)) * (n_fft // 2)).round().long()] = 1
    return (tri / tri.sum(1, keepdim=True)).float()


def log_mel(waves: torch.Tensor, rate: int) -> torch.Tensor:
    """Waveforms N×T in [-1, 1] as log-mel pictures N×1×MELS×(1 + T/HOP) in [0, 1]."""
    waves = waves.float()
    window = torch.hann_window(N_FFT, device=waves.device)
    if waves.shape[1] < N_FFT:              # a clip shorter than one window: silence after it
        waves = nn.functional.pad(waves, (0, N_FFT - waves.shape[1]))
    spec = torch.stft(waves, N_FFT, HOP, window=window, return_complex=True).abs().pow(2) / window.pow(2).sum()
    power = mel_filterbank(N_FFT, rate, MELS).to(waves.device) @ spec
    db = 10 * torch.log10(power.clamp_min(1e-12))
    return ((db - DB_LOW) / (DB_HIGH - DB_LOW)).clamp(0, 1).flip(1).unsqueeze(1)


def labelling(ds: AudioDataset) -> str:
    """The labels the classifier learns: the data's first labelling (word, family, folder)."""
    name = next(iter(ds.labels), "")
    if not name or len(ds.labels[name].names) < 2:
        raise UserError(f"{ds.name} has no class labels to train a sound feature network on: the sample figures "
                        f"of sound need a labelled data set (spoken-digits, notes, or a folder with sub-folders)")
    return name


def clips(ds: AudioDataset, split: str) -> torch.Tensor:
    """A split's clips as the models see them: their μ-law codes, decoded (N×T in [-1, 1])."""
    return mulaw_decode(torch.arange(LEVELS))[ds.codes(split).long()]      # a table of the 256 values


def pictures(waves: torch.Tensor, rate: int, batch: int = 256) -> torch.Tensor:
    return torch.cat([log_mel(waves[s:s + batch], rate) for s in range(0, len(waves), batch)])


class SoundClassifier(nn.Module):
    def __init__(self, num_classes: int):
        super().__init__()
        layers, c = [], 1
        for width in WIDTHS:
            # ceil_mode: a clip of a few columns (--size 400: 4) keeps one after every halving
            layers += [nn.Conv2d(c, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                       nn.MaxPool2d(2, ceil_mode=True)]
            c = width
        self.body = nn.Sequential(*layers, nn.Conv2d(c, c, 3, padding=1), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d((2, 4)), nn.Flatten())
        # Standardised features, as the image classifier's: KID's cubic kernel wants entries of order one.
        self.features = nn.Sequential(nn.Linear(c * 8, FEATURES), nn.BatchNorm1d(FEATURES, affine=False))
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(0.3), nn.Linear(FEATURES, num_classes))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.body(x))

    def forward(self, x):
        return self.head(self.embed(x))


def _cache_stem(ds: AudioDataset) -> str:
    name = ds.name.replace("/", "_").replace(":", "_")
    return f"sound-classifier-v{VERSION}-{CLIPS_SEEN}clips-{name}-{ds.content_hash()}"


def train_sound_classifier(ds: AudioDataset, device, progress_factory=None,
                           clips_seen: int | None = None) -> tuple[SoundClassifier, dict]:
    label = labelling(ds)
    clips_seen = clips_seen or CLIPS_SEEN
    labels = ds.labels[label]
    torch.manual_seed(0)
    net = SoundClassifier(len(labels.names)).to(device)
    x_all, y_all = pictures(clips(ds, "train"), ds.rate).to(device), labels.train.to(device)
    n = len(x_all)
    epochs = max(1, math.ceil(clips_seen / n))
    steps = epochs * math.ceil(n / BATCH)

    def batches():
        for epoch in range(epochs):
            order = torch.randperm(n, generator=torch.Generator().manual_seed(epoch)).to(device)
            for s in range(0, n, BATCH):
                idx = order[s:s + BATCH]
                yield nn.functional.cross_entropy(net(x_all[idx]), y_all[idx]), len(idx)

    start = time.perf_counter()
    fit(net, batches(), steps, weight_decay=1e-4,
        progress=progress_factory(steps, f"sound feature network for {ds.name} (once, then cached)")
        if progress_factory else None)
    meta = {"data": ds.name, "data_hash": ds.content_hash(), "version": VERSION, "label": label,
            "classes": len(labels.names), "epochs": epochs, "features": FEATURES,
            "seconds": round(time.perf_counter() - start, 1),
            "test_accuracy": accuracy(net, pictures(clips(ds, "test"), ds.rate), labels.test, device)}
    return net, meta


@torch.no_grad()
def accuracy(net: SoundClassifier, x: torch.Tensor, y: torch.Tensor, device) -> float:
    correct = sum(int((net(x[s:s + 256].to(device)).argmax(1) == y[s:s + 256].to(device)).sum())
                  for s in range(0, len(x), 256))
    return round(correct / max(len(x), 1), 4)


def load_or_train(ds: AudioDataset, device, progress_factory=None) -> tuple[SoundClassifier, dict]:
    """The cached classifier of this exact data set (its clips, length and labels), trained and cached first
    if need be, in any grad mode of the caller's."""
    k = len(ds.labels[labelling(ds)].names)
    return feature_cache.load_or_train(_cache_stem(ds), lambda: SoundClassifier(k),
                                       lambda: train_sound_classifier(ds, device, progress_factory), device)


def sound_network(ds: AudioDataset, device, progress_factory=None) -> tuple[FeatureNetwork, dict]:
    """The feature network of a sound data set: log-mel pictures N×1×MELS×F → (features N×D, class
    probabilities N×K); and its record (the labelling it reads, its test accuracy)."""
    net, meta = load_or_train(ds, device, progress_factory)
    net = net.to(device)
    name = (f"genlab sound classifier v{meta['version']} of {ds.name} by {meta['label']} ({meta['features']}-d "
            f"features of log-mel spectrograms, test accuracy {100 * meta['test_accuracy']:.1f}% over "
            f"{meta['classes']} classes)")
    return FeatureNetwork(name, lambda x: (net.embed(x), torch.softmax(net(x), 1)), torch.device(device)), meta
