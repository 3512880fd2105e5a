"""Sound files: WAV files read and written, a folder of them (`audio:PATH`), and pictures of clips.

WAV files are read and written with Python's own `wave` module: 8, 16, 24 or 32-bit PCM, any rate
(resampled), any number of channels (averaged to mono). `audio:PATH` is a folder of the user's WAV files,
labelled by first-level sub-folder when it has them.
"""
from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import torch

from ...atomic import write_atomic
from ...errors import UserError
from ...printable import printable
from .audio import (LENGTH, PREFIX, RATE, AudioDataset, Labels, Progress, check_length, fit_length, resample,
                    to_pcm)

SEED, TEST_FRACTION = 0, 0.1
OTHER_SOUND = (".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".aif", ".aiff", ".wma", ".au")


# ---- WAV files ----------------------------------------------------------------------------------------

def read_wav(path) -> tuple[np.ndarray, int]:
    """(mono float32 samples in [-1, 1), rate) of a PCM WAV file (a path, or a file object opened for reading
    bytes); anything else is one line naming it."""
    shown = printable(path)
    try:
        with wave.open(str(path) if isinstance(path, (str, Path)) else path, "rb") as w:
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
        # The file opened first: a wave writer whose own open failed complains again when it is collected.
        with open(p, "wb") as f, wave.open(f, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(int(rate))
            w.writeframes(pcm.astype("<i2").tobytes())
    write_atomic(Path(path), write)
    return Path(path)


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

def save_picture(clips, path: str | Path, rate: int = RATE, titles: list[str] | None = None,
                 mark: float | None = None) -> Path:
    """A PNG of each clip's waveform (left) and spectrogram (right), a row each; `mark`: a time (seconds)
    drawn as a dashed line across them (where a completion starts)."""
    fig = _picture(clips, rate, titles, mark)
    write_atomic(Path(path), lambda p: fig.savefig(p, dpi=90, format="png"))
    return Path(path)


def picture_png(clips, rate: int = RATE, titles: list[str] | None = None, mark: float | None = None) -> bytes:
    """save_picture's picture as the bytes of a PNG file."""
    out = io.BytesIO()
    _picture(clips, rate, titles, mark).savefig(out, dpi=90, format="png")
    return out.getvalue()


def _picture(clips, rate, titles, mark):
    # A figure of its own, never pyplot's: the explorer draws pictures on several threads at once.
    from matplotlib.figure import Figure
    from scipy.signal import spectrogram

    clips = [np.asarray(c.detach().cpu() if isinstance(c, torch.Tensor) else c, dtype=np.float64) for c in clips]
    fig = Figure(figsize=(10, 1.5 * len(clips) + 0.4))
    axes = fig.subplots(len(clips), 2, squeeze=False, gridspec_kw={"width_ratios": [1, 1.2]})
    for i, x in enumerate(clips):
        t = np.arange(len(x)) / rate
        axes[i, 0].plot(t, x, linewidth=0.4, color="black")
        axes[i, 0].set_ylim(-1, 1)
        axes[i, 0].set_xlim(0, len(x) / rate)
        nper = min(256, max(16, len(x) // 8), len(x))       # a few columns even for a short clip
        f, st, s = spectrogram(x, fs=rate, nperseg=nper, noverlap=nper * 3 // 4)
        axes[i, 1].pcolormesh(st, f, 10 * np.log10(s + 1e-10), shading="auto", cmap="magma", vmin=-100, vmax=-20)
        axes[i, 1].set_xlim(0, len(x) / rate)
        if titles:
            axes[i, 0].set_title(titles[i], fontsize=8, loc="left")
        for ax in axes[i]:
            ax.tick_params(labelsize=6)
            if mark is not None:
                ax.axvline(mark, color="#2a7de1", linestyle="--", linewidth=0.8)
    axes[-1, 0].set_xlabel("seconds", fontsize=7)
    axes[-1, 1].set_xlabel("seconds (spectrogram, Hz)", fontsize=7)
    fig.tight_layout()
    return fig


def join_with_pauses(clips, rate: int = RATE, pause: float = 0.5) -> np.ndarray:
    """The clips one after another, `pause` seconds of silence between them."""
    gap = np.zeros(int(rate * pause), np.float32)
    out = []
    for i, c in enumerate(clips):
        out += [gap] if i else []
        out.append(np.asarray(c.detach().cpu() if isinstance(c, torch.Tensor) else c, dtype=np.float32))
    return np.concatenate(out)
