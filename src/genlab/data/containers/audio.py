"""Sound: clips of mono audio held in memory, their μ-law codes, WAV files read and written, and pictures.

Every clip is mono at RATE (8 kHz) and of one length (LENGTH samples, 1 s, unless told otherwise), kept as
16-bit integers. A model sees each sample as one of 256 μ-law codes (ITU-T G.711's companding with
μ = 255, as WaveNet does): quiet sounds keep fine steps, loud ones coarse. WAV files are read and written
with Python's own `wave` module: 8, 16, 24 or 32-bit PCM, any rate (resampled), any number of channels
(averaged to mono).

`audio:PATH` is a folder of the user's WAV files, labelled by first-level sub-folder when it has them.
"""
from __future__ import annotations

import hashlib
import math
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar, Iterator

import numpy as np
import torch

from ...atomic import write_atomic
from ...errors import UserError
from ...printable import printable
from .batch import Batch
from .loader import Shares

RATE = 8000              # samples per second of every clip
LENGTH = 8000            # samples per clip unless told otherwise: 1 s
MU = 255                 # μ-law: 256 codes
LEVELS = MU + 1
PREFIX = "audio:"
SEED, TEST_FRACTION = 0, 0.1
MAX_LENGTH = 10 * RATE   # longer clips would make every training step minutes long
OTHER_SOUND = (".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".aif", ".aiff", ".wma", ".au")

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


# ---- WAV files ----------------------------------------------------------------------------------------

def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """(mono float32 samples in [-1, 1), rate) of a PCM WAV file; anything else is one line naming it."""
    shown = printable(path)
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate, frames = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            data = w.readframes(frames)
    except wave.Error as e:
        why = str(e)
        if why.startswith("unknown format"):
            why = f"{why} (genlab reads PCM WAV only: save it as 16-bit PCM)"
        raise UserError(f"cannot read {shown}: not a PCM WAV file ({why})") from None
    except (EOFError, OSError, ValueError, MemoryError) as e:
        raise UserError(f"cannot read {shown}: a damaged or truncated WAV file ({type(e).__name__}"
                        f"{': ' + printable(str(e))[:100] if str(e) else ''})") from None
    if width not in (1, 2, 3, 4) or channels < 1 or rate < 1:
        raise UserError(f"cannot read {shown}: {8 * width}-bit samples, {channels} channels at {rate} Hz is no PCM "
                        f"WAV genlab reads")
    if frames == 0 or not data:
        raise UserError(f"{shown} holds no samples")
    if len(data) != frames * channels * width:
        raise UserError(f"{shown} is truncated: its header promises {frames} frames, it holds "
                        f"{len(data) // (channels * width)}")
    if width == 1:                                     # 8-bit WAV is unsigned
        x = (np.frombuffer(data, np.uint8).astype(np.float32) - 128) / 128
    elif width == 3:                                   # 24-bit: three little-endian bytes, sign-extended
        b = np.frombuffer(data, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = (np.where(v >= 1 << 23, v - (1 << 24), v) / float(1 << 23)).astype(np.float32)
    else:
        kind = np.int16 if width == 2 else np.int32
        x = (np.frombuffer(data, kind).astype(np.float64) / float(1 << (8 * width - 1))).astype(np.float32)
    return x.reshape(-1, channels).mean(1), rate


def write_wav(path: str | Path, x, rate: int = RATE) -> Path:
    """Mono 16-bit PCM WAV of floats in [-1, 1], written whole or not at all."""
    pcm = to_pcm(x).reshape(-1)

    def write(p):
        with wave.open(str(p), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(int(rate))
            w.writeframes(pcm.astype("<i2").tobytes())
    write_atomic(Path(path), write)
    return Path(path)


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


# ---- audio:PATH -------------------------------------------------------------------------------------------

def _wav_files(root: Path) -> list[Path]:
    """WAV files under root, sorted by relative path (hidden ones skipped); a sound file of another format
    is refused, naming it, rather than silently left out."""
    found = []
    for p in sorted(root.rglob("*"), key=lambda p: p.relative_to(root).as_posix()):
        if any(part.startswith(".") for part in p.relative_to(root).parts) or not p.is_file():
            continue
        if p.suffix.lower() == ".wav":
            found.append(p)
        elif p.suffix.lower() in OTHER_SOUND:
            raise UserError(f"{printable(p)} is not a WAV file: genlab reads WAV only; convert it or move it out "
                            f"of the folder")
    return found


def load_folder(path: str, length: int = LENGTH, progress: Progress | None = None) -> AudioDataset:
    """`audio:PATH`: every WAV file under PATH, mixed to mono, resampled to 8 kHz, cut or padded to `length`
    samples; labelled by first-level sub-folder when every file is in one."""
    root = Path(path).expanduser()
    shown = printable(path)
    check_length(length)
    if not root.exists():
        raise UserError(f"folder {shown} does not exist")
    if not root.is_dir():
        raise UserError(f"{shown} is not a folder (audio:PATH takes a folder of WAV files)")
    try:
        files = _wav_files(root)
    except OSError as e:
        raise UserError(f"cannot list the files in folder {shown}: {e.strerror or e}") from None
    if len(files) < 2:
        raise UserError(f"folder {shown} holds {len(files)} WAV file{'s' if len(files) != 1 else ''}; genlab needs "
                        f"at least 2 (a tenth, at least one, is kept for testing)")
    parts = [f.relative_to(root).parts for f in files]
    nested = [len(p) > 1 for p in parts]
    if any(nested) and not all(nested):
        raise UserError(f"folder {shown} has WAV files both in sub-folders and at its top level (e.g. "
                        f"{printable(files[nested.index(False)].name)}); put every file in a class sub-folder, or "
                        f"use no sub-folders")
    folders = tuple(sorted({p[0] for p in parts})) if all(nested) else ()
    clips, cut = [], 0
    for i, f in enumerate(files):
        x, rate = read_wav(f)
        x, was_cut = fit_length(resample(x, rate), length)
        clips.append(to_pcm(x))
        cut += was_cut
        if progress is not None:
            progress(i + 1, len(files))
    x = torch.from_numpy(np.stack(clips))
    perm = torch.from_numpy(np.random.RandomState(SEED).permutation(len(files)))
    n_test = max(1, int(round(len(files) * TEST_FRACTION)))
    test, train = perm[:n_test], perm[n_test:]
    labels = {}
    if folders:
        y = torch.tensor([folders.index(p[0]) for p in parts], dtype=torch.long)
        labels["folder"] = Labels(y[train], y[test], tuple(printable(c) for c in folders))
    return AudioDataset(
        name=f"{PREFIX}{shown}", train_x=x[train], test_x=x[test], labels=labels,
        source=f"{len(files)} WAV files in {printable(root.resolve())}, "
               + (f"labelled by sub-folder ({len(folders)} classes)" if folders else "unlabelled"),
        licence="as the folder's owner licensed its sounds",
        split=f"{len(train)} train / {n_test} test, a fixed random permutation (seed {SEED}) of the files sorted by path",
        notes={"clips cut to length": cut} if cut else {})


# ---- pictures -------------------------------------------------------------------------------------------

def save_picture(clips, path: str | Path, rate: int = RATE, titles: list[str] | None = None) -> Path:
    """A PNG of each clip's waveform (left) and spectrogram (right), a row each."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.signal import spectrogram

    clips = [np.asarray(c.detach().cpu() if isinstance(c, torch.Tensor) else c, dtype=np.float64) for c in clips]
    fig, axes = plt.subplots(len(clips), 2, figsize=(10, 1.5 * len(clips) + 0.4), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1.2]})
    for i, x in enumerate(clips):
        t = np.arange(len(x)) / rate
        axes[i, 0].plot(t, x, linewidth=0.4, color="black")
        axes[i, 0].set_ylim(-1, 1)
        axes[i, 0].set_xlim(0, len(x) / rate)
        nper = min(256, len(x))
        f, st, s = spectrogram(x, fs=rate, nperseg=nper, noverlap=nper * 3 // 4)
        axes[i, 1].pcolormesh(st, f, 10 * np.log10(s + 1e-10), shading="auto", cmap="magma", vmin=-100, vmax=-20)
        if titles:
            axes[i, 0].set_title(titles[i], fontsize=8, loc="left")
        for ax in axes[i]:
            ax.tick_params(labelsize=6)
    axes[-1, 0].set_xlabel("seconds", fontsize=7)
    axes[-1, 1].set_xlabel("seconds (spectrogram, Hz)", fontsize=7)
    fig.tight_layout()
    write_atomic(Path(path), lambda p: fig.savefig(p, dpi=90, format="png"))
    plt.close(fig)
    return Path(path)


def join_with_pauses(clips, rate: int = RATE, pause: float = 0.5) -> np.ndarray:
    """The clips one after another, `pause` seconds of silence between them."""
    gap = np.zeros(int(rate * pause), np.float32)
    out = []
    for i, c in enumerate(clips):
        out += [gap] if i else []
        out.append(np.asarray(c.detach().cpu() if isinstance(c, torch.Tensor) else c, dtype=np.float32))
    return np.concatenate(out)
