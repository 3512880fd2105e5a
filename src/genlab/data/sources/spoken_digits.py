"""`spoken-digits`: the ten digits and four short words, spoken by Debian's espeak-ng speech synthesiser.

This is synthesised speech, not recordings of people: espeak-ng's English accents (British, American,
Scottish, Lancastrian, Received Pronunciation, West Midlands, Caribbean, New York) each with voice
variants of its own (espeak-ng's male, female, whispering, croaking, robotic, ... variants), each voice
speaking every word at three (speed, pitch) settings drawn for it from a seeded generator. Built on the
user's request (`genlab data fetch spoken-digits`, or the first use) into the cache, once.

    48 voices (8 accents × 6 variants) × 14 words × 3 settings = 2,016 clips

Each clip: 8 kHz mono, leading silence trimmed, peak scaled to PEAK, cut or padded with silence to 1 s.
Labelled by word (what a model may be conditioned on) and by voice. Split by voice: the 10 test voices
are never heard in training.
"""
from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from ...errors import UserError
from ..containers.audio import (LENGTH, RATE, AudioDataset, Labels, Progress, fit_length, resample, split_by_group,
                                to_pcm)
from .mnist import cache_dir, writable_cache

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "yes", "no", "up", "down")
ACCENTS = ("en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029",
           "en-us-nyc")
VARIANTS_PER_ACCENT = 6
TEST_VOICES = 10
SETTINGS = 3                   # (speed, pitch) pairs per voice
SPEEDS, PITCHES = (130, 210), (25, 75)     # words per minute; espeak-ng's pitch, 0 … 99
PEAK = 0.7
SEED = 0
FORMAT = 1                     # of the cache file: a new build recipe gets a new number
SOURCE = "synthesised speech from espeak-ng (Debian package espeak-ng) and its English voices and variants"
LICENCE = "GPL-3.0-or-later (espeak-ng and its voice data); the clips are its output"


def espeak() -> str | None:
    return shutil.which("espeak-ng")


def version() -> str:
    try:
        out = subprocess.run([espeak(), "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError, TypeError) as e:
        raise UserError(f"espeak-ng --version failed: {e}") from None
    m = re.search(r"text-to-speech:\s*(\S+)", out)
    return m.group(1) if m else "unknown"


def cache_path() -> Path | None:
    """The cache of this espeak-ng version's build, or None when espeak-ng is missing and none is cached."""
    if espeak() is not None:
        return cache_dir() / f"spoken-digits-espeak-ng-{version()}-f{FORMAT}.npz"
    cached = sorted(cache_dir().glob(f"spoken-digits-espeak-ng-*-f{FORMAT}.npz"))
    return cached[-1] if cached else None


def available() -> tuple[bool, str]:
    path = cache_path()
    if path is not None and path.is_file():
        return True, f"cached in {path}"
    if espeak() is None:
        return False, "install espeak-ng (apt-get install espeak-ng), then genlab data fetch spoken-digits"
    return True, "built on first use (or genlab data fetch spoken-digits) from espeak-ng's voices, about a minute"


def _variants() -> list[str]:
    """espeak-ng's voice variants (the files of its voices/!v folder), sorted."""
    out = subprocess.run([espeak(), "--version"], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"Data at:\s*(.+)", out)
    folder = Path(m.group(1).strip()) / "voices" / "!v" if m else None
    if folder is None or not folder.is_dir():
        raise UserError("cannot find espeak-ng's voice variants (its data folder's voices/!v); is espeak-ng "
                        "installed whole?")
    names = sorted(p.name for p in folder.iterdir() if p.is_file() and re.fullmatch(r"[A-Za-z0-9_-]+", p.name))
    if len(names) < len(ACCENTS) * VARIANTS_PER_ACCENT:
        raise UserError(f"espeak-ng has {len(names)} voice variants; spoken-digits needs "
                        f"{len(ACCENTS) * VARIANTS_PER_ACCENT}")
    return names


def voices() -> list[str]:
    """The 48 voices, accent+variant, in a fixed random order: the last TEST_VOICES are the test voices."""
    chosen = np.random.RandomState(SEED).permutation(_variants())[:len(ACCENTS) * VARIANTS_PER_ACCENT]
    return [f"{ACCENTS[k % len(ACCENTS)]}+{v}" for k, v in enumerate(chosen)]


def speak(voice: str, word: str, speed: int, pitch: int) -> np.ndarray:
    """One word by espeak-ng, at 8 kHz, leading silence trimmed (10 ms kept), peak scaled to PEAK."""
    try:
        r = subprocess.run([espeak(), "-v", voice, "-s", str(speed), "-p", str(pitch), "-z", "--stdout", word],
                           capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        raise UserError(f"espeak-ng failed on {word!r} in voice {voice}: {e}") from None
    if r.returncode != 0 or len(r.stdout) < 44:
        msg = r.stderr.decode(errors="replace").strip().splitlines()
        raise UserError(f"espeak-ng failed on {word!r} in voice {voice} (exit {r.returncode}): "
                        f"{msg[-1] if msg else 'no sound'}")
    data = r.stdout
    with wave.open(io.BytesIO(data)) as w:          # --stdout may not know the length: read the header only
        rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
    pcm = np.frombuffer(data[44:len(data) - (len(data) - 44) % (width * channels)], np.int16)
    x = resample(pcm.reshape(-1, channels).mean(1).astype(np.float32) / 32768, rate, RATE)
    loud = np.flatnonzero(np.abs(x) > 0.02 * max(np.abs(x).max(), 1e-9))
    if len(loud) == 0:
        raise UserError(f"espeak-ng said nothing for {word!r} in voice {voice}")
    x = x[max(0, loud[0] - RATE // 100):]
    return x * (PEAK / np.abs(x).max())


def fetch(progress: Progress | None = None) -> Path:
    """Speak every clip and store them in the cache; returns its path."""
    writable_cache()                  # before minutes of rendering
    if espeak() is None:
        raise UserError("spoken-digits needs espeak-ng: apt-get install espeak-ng")
    vs = voices()
    rng = np.random.RandomState(SEED)
    settings = [[(int(rng.randint(SPEEDS[0], SPEEDS[1] + 1)), int(rng.randint(PITCHES[0], PITCHES[1] + 1)))
                 for _ in range(SETTINGS)] for _ in vs]
    jobs = [(v, w, s, p) for v in range(len(vs)) for w in range(len(WORDS)) for s, p in settings[v]]
    clips, cut = [], 0
    # espeak-ng runs as a process per clip: a few at once keep the cores busy while each starts up.
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        for x in pool.map(lambda job: speak(vs[job[0]], WORDS[job[1]], job[2], job[3]), jobs):
            x, was_cut = fit_length(x, LENGTH)
            clips.append(to_pcm(x))
            cut += was_cut
            if progress is not None:
                progress(len(clips), len(jobs))
    voice, word, speed, pitch = (np.array(column) for column in zip(*jobs))
    path = cache_path()
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, x=np.stack(clips), word=word, voice=voice, speed=speed, pitch=pitch,
                                voices=np.array(vs), words=np.array(WORDS), cut=np.array(cut),
                                version=np.array(version()))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load(progress: Progress | None = None) -> AudioDataset:
    path = cache_path()
    if path is None or not path.is_file():
        path = fetch(progress)
    try:
        with np.load(path) as z:
            x, word, voice = z["x"], z["word"], z["voice"]
            vs, words, cut, ver = [str(v) for v in z["voices"]], [str(w) for w in z["words"]], int(z["cut"]), str(z["version"])
    except (OSError, KeyError, ValueError, EOFError) as e:
        raise UserError(f"the spoken-digits cache {path} is damaged ({type(e).__name__}); delete it or run "
                        f"`genlab data fetch spoken-digits`") from None
    groups = [vs[v] for v in voice]
    test_voices = vs[-TEST_VOICES:]
    train, test = split_by_group(groups, set(test_voices))
    xt, yt = torch.from_numpy(x), torch.from_numpy(word).long()
    return AudioDataset(
        name="spoken-digits", train_x=xt[train], test_x=xt[test],
        labels={"word": Labels(yt[train], yt[test], tuple(words))},
        groups=("voices", vs[:-TEST_VOICES], test_voices), rate=RATE,
        source=f"{SOURCE}, version {ver}: synthesised speech, not recordings",
        licence=LICENCE,
        split=f"{len(train)} train / {len(test)} test clips, by voice: the {TEST_VOICES} test voices of "
              f"{len(vs)} are never heard in training",
        notes={"clips cut to 1 s": cut} if cut else {}, extra={"cache": str(path)})
