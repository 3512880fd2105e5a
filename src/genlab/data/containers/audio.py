"""Sound: clips of mono audio held in memory, their μ-law codes, the data set and its batches.

Every clip is mono at RATE (8 kHz) and of one length (LENGTH samples, 1 s, unless told otherwise), kept as
16-bit integers. A model sees each sample as one of 256 μ-law codes (ITU-T G.711's companding with
μ = 255, as WaveNet does): quiet sounds keep fine steps, loud ones coarse. WAV files, a folder of them
(`audio:PATH`) and the pictures of clips are audio_files.py's.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Iterator

import numpy as np
import torch

from ...errors import UserError
from .batch import Batch
from .loader import Shares

RATE = 8000              # samples per second of every clip
LENGTH = 8000            # samples per clip unless told otherwise: 1 s
MU = 255                 # μ-law: 256 codes
LEVELS = MU + 1
PREFIX = "audio:"
MAX_LENGTH = 10 * RATE   # longer clips would make every training step minutes long

Progress = Callable[[int, int], None]        # (done, total): a data build's progress


# ---- μ-law ------------------------------------------------------------------------------------------

def mulaw_encode(x: torch.Tensor) -> torch.Tensor:
    """Waveform values in [-1, 1] (float) to μ-law codes 0 … 255 (long); silence is code 128."""
    x = x.clamp(-1, 1)
    y = torch.sign(x) * torch.log1p(MU * x.abs()) / math.log1p(MU)
    return torch.floor((y + 1) / 2 * MU + 0.5).long()


def mulaw_decode(codes: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """μ-law codes (long) to waveform values in [-1, 1]; mulaw_encode gives the codes back exactly."""
    y = codes.to(torch.float64) * (2 / MU) - 1
    return (torch.sign(y) * torch.expm1(y.abs() * math.log1p(MU)) / MU).to(dtype)


def to_float(pcm: torch.Tensor) -> torch.Tensor:
    """16-bit samples to floats in [-1, 1)."""
    return pcm.float() / 32768


def to_pcm(x: np.ndarray | torch.Tensor) -> np.ndarray:
    """Floats in [-1, 1] to 16-bit samples (clipped)."""
    x = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
    return np.clip(np.rint(x * 32767), -32768, 32767).astype(np.int16)


# ---- a clip's rate and length -------------------------------------------------------------------------

def resample(x: np.ndarray, rate_from: int, rate_to: int = RATE) -> np.ndarray:
    """x at rate_to, by polyphase filtering (scipy's resample_poly, its anti-aliasing filter)."""
    if rate_from == rate_to:
        return x
    from scipy.signal import resample_poly
    g = math.gcd(int(rate_from), int(rate_to))
    return resample_poly(x, rate_to // g, rate_from // g).astype(np.float32)


def fit_length(x: np.ndarray, length: int) -> tuple[np.ndarray, bool]:
    """x cut to `length` samples or padded with silence at its end; and whether it was cut."""
    if len(x) >= length:
        return x[:length], len(x) > length
    return np.concatenate([x, np.zeros(length - len(x), x.dtype)]), False


def check_length(length) -> int:
    if isinstance(length, bool) or not isinstance(length, int) or not 16 <= length <= MAX_LENGTH:
        raise UserError(f"the clip length (--size, in samples at {RATE} Hz) must be from 16 to {MAX_LENGTH:,}, "
                        f"not {length!r}")
    return length


# ---- what a model knows, and the data set -----------------------------------------------------------------

@dataclass(frozen=True)
class AudioInfo:
    """What a sound model needs to know of its data: the clips' length and rate, and the classes it may be
    conditioned on. Saved in config.json."""

    length: int                          # samples per clip
    rate: int = RATE
    num_classes: int = 0                 # 0: unlabelled
    class_names: tuple[str, ...] = ()
    label: str = ""                      # what the classes are: "word", "family", "pitch", "folder"
    levels: int = LEVELS                 # μ-law codes per sample
    kind: ClassVar[str] = "audio"
    scored: ClassVar[tuple[str, str]] = ("clip", "clips")     # likelihood figures per clip, of the codes
    dequantised: ClassVar[bool] = False
    per_line: ClassVar[bool] = False
    pixels: ClassVar[str] = "mulaw"      # discrete values: evaluation reports bits per dimension (per sample)

    @property
    def dims(self) -> int:
        return self.length

    @property
    def likelihood_dims(self) -> int:
        return self.length

    @property
    def seconds(self) -> float:
        return self.length / self.rate

    def to_json(self) -> dict:
        return {"kind": self.kind, "length": self.length, "rate": self.rate, "num_classes": self.num_classes,
                "class_names": list(self.class_names), "label": self.label, "levels": self.levels}

    @classmethod
    def from_json(cls, d: dict) -> "AudioInfo":
        length, rate, k = d["length"], d["rate"], d["num_classes"]
        for name, v, low, high in (("length", length, 1, MAX_LENGTH), ("rate", rate, 1, 192_000),
                                   ("num_classes", k, 0, 100_000)):
            if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
                raise ValueError(f"{name} must be a whole number from {low} to {high}, not {v!r}")
        if d.get("levels", LEVELS) != LEVELS:
            raise ValueError(f"levels must be {LEVELS}, not {d.get('levels')!r}")
        names = tuple(str(c) for c in d.get("class_names", ()))
        if len(names) != k:
            raise ValueError(f"{k} classes but {len(names)} class names")
        return cls(length=length, rate=rate, num_classes=k, class_names=names, label=str(d.get("label", "")))


@dataclass
class Labels:
    """One way of labelling the clips: a class index per clip of each split, and the class names."""

    train: torch.Tensor
    test: torch.Tensor
    names: tuple[str, ...]


@dataclass
class AudioDataset:
    """Clips as int16 N×T at `rate`, split once and for all. `labels` holds each labelling a model may be
    conditioned on (the first is the default); `groups` what the split keeps apart (voice, instrument), by
    name, for the description."""

    name: str
    train_x: torch.Tensor
    test_x: torch.Tensor
    labels: dict[str, Labels] = field(default_factory=dict)
    groups: tuple[str, list[str], list[str]] | None = None     # (what, train groups, test groups)
    rate: int = RATE
    source: str = ""
    licence: str = ""
    split: str = ""
    notes: dict = field(default_factory=dict)                 # what building or reading left out or cut
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        for t in (self.train_x, self.test_x):
            assert t.dtype == torch.int16 and t.dim() == 2, "clips must be int16 N×T"

    @property
    def length(self) -> int:
        return self.train_x.shape[1]

    def with_length(self, length: int) -> "AudioDataset":
        """The same clips cut to `length` samples, or padded with silence at their end."""
        if length == self.length:
            return self

        def fit(x):
            if length <= x.shape[1]:
                return x[:, :length].contiguous()
            return torch.cat([x, x.new_zeros(len(x), length - x.shape[1])], 1)
        return AudioDataset(**{**self.__dict__, "train_x": fit(self.train_x), "test_x": fit(self.test_x)})

    def codes(self, split: str) -> torch.Tensor:
        """μ-law codes (uint8 N×T) of a split."""
        return mulaw_encode(to_float(self.train_x if split == "train" else self.test_x)).to(torch.uint8)

    def content_hash(self) -> str:
        """A short hash of every sample and label, so numbers from different data never mix silently."""
        h = hashlib.sha256()
        for t in (self.train_x, self.test_x, *(t for lab in self.labels.values() for t in (lab.train, lab.test))):
            h.update(t.contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

    def describe(self) -> dict:
        out = {"name": self.name, "train": f"{len(self.train_x)} clips", "test": f"{len(self.test_x)} clips",
               "clips": f"{self.length} samples at {self.rate} Hz ({self.length / self.rate:g} s), mono, "
                        f"8-bit μ-law codes to a model"}
        for what, lab in self.labels.items():
            shown = ", ".join(f"{i} {n}" for i, n in enumerate(lab.names))
            out[what] = f"{len(lab.names)} classes: {shown}"
        if self.groups:
            what, tr, te = self.groups
            out[what] = f"{len(tr)} in training, {len(te)} others in test: {', '.join(te)}"
        out.update(split=self.split, source=self.source, licence=self.licence)
        if self.notes:
            out["remarks"] = ", ".join(f"{n} {what}" for what, n in self.notes.items())
        return out


def split_by_group(groups: list[str], test_groups: set[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, test) indices of the clips: a clip is a test clip when its group (voice, instrument) is."""
    test = [i for i, g in enumerate(groups) if g in test_groups]
    train = [i for i, g in enumerate(groups) if g not in test_groups]
    return torch.tensor(train, dtype=torch.long), torch.tensor(test, dtype=torch.long)


# ---- batches --------------------------------------------------------------------------------------------

class AudioBatches(Shares):
    """Batch(x, condition) of one split: x the μ-law codes (long N×T), condition the class labels or None.
    A new order every epoch when shuffled, reproducible from the seed; with `rank` and `world_size`, one
    process's share of each batch (see loader.Shares)."""

    def __init__(self, codes: torch.Tensor, labels: torch.Tensor | None, *, batch_size: int, shuffle: bool,
                 seed: int = 0, device: str | torch.device = "cpu", rank: int = 0, world_size: int = 1):
        if batch_size < 1:
            raise UserError(f"--batch-size must be at least 1, not {batch_size}")
        if len(codes) == 0:
            raise UserError("no clips to batch")
        self.codes = codes.to(device)
        self.labels = labels.to(device) if labels is not None else None
        self.batch_size, self.shuffle, self.seed, self.device = batch_size, shuffle, seed, torch.device(device)
        self.rank, self.world_size = rank, world_size

    def _count(self) -> int:                 # len() and num_images(), "examples", are the Shares'
        return len(self.codes)


    def epoch(self, epoch: int = 0) -> Iterator[Batch]:
        """The batches of one epoch. A shuffled (training) split varies with `epoch`; an unshuffled one never does."""
        for b in self._kept(epoch):
            b = b[self.rank::self.world_size].to(self.device)
            yield Batch(self.codes[b].long(), self.labels[b] if self.labels is not None else None)

    def __iter__(self):
        return self.epoch(0)
