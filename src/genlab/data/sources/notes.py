"""`notes`: single notes of General MIDI instruments, in the manner of NSynth (Engel et al. 2017), rendered
with Debian's fluidsynth from the FluidR3 General MIDI SoundFont (package fluid-soundfont-gm: recorded
instrument samples, looped and enveloped by the synthesiser).

Fifteen of General MIDI's sixteen instrument families (the sound-effects family, with no pitch, is left
out), all eight instruments of each, every third semitone from C2 to C6 (MIDI 36 … 84):

    15 families × 8 instruments × 17 pitches = 2,040 notes

Each note is held for 0.75 s at velocity 100 and kept for 1 s from its onset (its release included), at
8 kHz mono, peak scaled to PEAK, reverb and chorus off. A note the SoundFont renders as (near) silence is
left out and counted. Labelled by instrument family and by pitch (either may condition a model); split by
instrument: one instrument of each family, drawn with a fixed seed, is a test instrument, never heard in
training. Built on the user's request (`genlab data fetch notes`, or the first use) into the cache, once.
"""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

from ...errors import UserError
from ..containers.audio import LENGTH, RATE, AudioDataset, Labels, Progress, split_by_group, to_pcm
from ..containers.audio_files import read_wav
from .mnist import cache_dir, writable_cache

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
FAMILIES = ("piano", "chromatic percussion", "organ", "guitar", "bass", "strings", "ensemble", "brass", "reed",
            "pipe", "synth lead", "synth pad", "synth effects", "ethnic", "percussive")
INSTRUMENTS = ("Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano",
               "Electric Piano 1", "Electric Piano 2", "Harpsichord", "Clavinet", "Celesta", "Glockenspiel",
               "Music Box", "Vibraphone", "Marimba", "Xylophone", "Tubular Bells", "Dulcimer", "Drawbar Organ",
               "Percussive Organ", "Rock Organ", "Church Organ", "Reed Organ", "Accordion", "Harmonica",
               "Tango Accordion", "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)", "Electric Guitar (jazz)",
               "Electric Guitar (clean)", "Electric Guitar (muted)", "Overdriven Guitar", "Distortion Guitar",
               "Guitar Harmonics", "Acoustic Bass", "Electric Bass (finger)", "Electric Bass (pick)",
               "Fretless Bass", "Slap Bass 1", "Slap Bass 2", "Synth Bass 1", "Synth Bass 2", "Violin", "Viola",
               "Cello", "Contrabass", "Tremolo Strings", "Pizzicato Strings", "Orchestral Harp", "Timpani",
               "String Ensemble 1", "String Ensemble 2", "Synth Strings 1", "Synth Strings 2", "Choir Aahs",
               "Voice Oohs", "Synth Voice", "Orchestra Hit", "Trumpet", "Trombone", "Tuba", "Muted Trumpet",
               "French Horn", "Brass Section", "Synth Brass 1", "Synth Brass 2", "Soprano Sax", "Alto Sax",
               "Tenor Sax", "Baritone Sax", "Oboe", "English Horn", "Bassoon", "Clarinet", "Piccolo", "Flute",
               "Recorder", "Pan Flute", "Blown Bottle", "Shakuhachi", "Whistle", "Ocarina", "Lead 1 (square)",
               "Lead 2 (sawtooth)", "Lead 3 (calliope)", "Lead 4 (chiff)", "Lead 5 (charang)", "Lead 6 (voice)",
               "Lead 7 (fifths)", "Lead 8 (bass + lead)", "Pad 1 (new age)", "Pad 2 (warm)", "Pad 3 (polysynth)",
               "Pad 4 (choir)", "Pad 5 (bowed)", "Pad 6 (metallic)", "Pad 7 (halo)", "Pad 8 (sweep)",
               "FX 1 (rain)", "FX 2 (soundtrack)", "FX 3 (crystal)", "FX 4 (atmosphere)", "FX 5 (brightness)",
               "FX 6 (goblins)", "FX 7 (echoes)", "FX 8 (sci-fi)", "Sitar", "Banjo", "Shamisen", "Koto", "Kalimba",
               "Bagpipe", "Fiddle", "Shanai", "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock", "Taiko Drum",
               "Melodic Tom", "Synth Drum", "Reverse Cymbal")          # General MIDI programs 0 … 119
PITCHES = tuple(range(36, 85, 3))
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
HOLD, SPACING, SILENCE_OFF = 0.75, 2.0, 1.9        # seconds: note held; note to note; all sound off
VELOCITY, PEAK, QUIET = 100, 0.7, 1e-3
SEED = 0
FORMAT = 1
SOURCE = "General MIDI notes rendered by fluidsynth from the FluidR3 GM SoundFont (Debian: fluid-soundfont-gm)"
LICENCE = "MIT (FluidR3 GM SoundFont, Frank Wen); the clips are fluidsynth's rendering of it"


def pitch_name(midi: int) -> str:
    return f"{NOTE_NAMES[midi % 12]}{midi // 12 - 1}"


def cache_path() -> Path:
    return cache_dir() / f"notes-fluidr3-f{FORMAT}.npz"


def available() -> tuple[bool, str]:
    if cache_path().is_file():
        return True, f"cached in {cache_path()}"
    missing = ([] if shutil.which("fluidsynth") else ["fluidsynth"]) + ([] if SOUNDFONT.is_file() else
                                                                       ["fluid-soundfont-gm"])
    if missing:
        return False, f"install {' and '.join(missing)} (apt-get install {' '.join(missing)}), then genlab data fetch notes"
    return True, "built on first use (or genlab data fetch notes) with fluidsynth, about a minute"


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def midi_file(notes: list[tuple[int, int]]) -> bytes:
    """A standard MIDI file (format 0, 120 bpm: 960 ticks a second) playing each (program, pitch) on
    channel 1, one every SPACING seconds, every sound stopped before the next."""
    tps = 960
    events = []
    for k, (program, pitch) in enumerate(notes):
        start = k * SPACING
        events += [(start, bytes([0xC0, program])), (start, bytes([0x90, pitch, VELOCITY])),
                   (start + HOLD, bytes([0x80, pitch, 0])), (start + SILENCE_OFF, bytes([0xB0, 120, 0]))]
    track, last = b"", 0
    for seconds, data in events:                      # already in time order
        tick = int(round(seconds * tps))
        track += _vlq(tick - last) + data
        last = tick
    track += _vlq(int(0.1 * tps)) + b"\xff\x2f\x00"
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480) + b"MTrk" + struct.pack(">I", len(track)) + track


def render(notes: list[tuple[int, int]], folder: Path) -> list[np.ndarray]:
    """Each (program, pitch) as 1 s at 8 kHz from its onset, peak scaled to PEAK (a silent one: zeros)."""
    mid, wav = folder / "notes.mid", folder / "notes.wav"
    mid.write_bytes(midi_file(notes))
    try:
        r = subprocess.run(["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.5", "-r", str(RATE), "-T", "wav",
                            "-O", "s16", "-F", str(wav), str(SOUNDFONT), str(mid)],
                           capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as e:
        raise UserError(f"fluidsynth failed: {e}") from None
    if r.returncode != 0 or not wav.is_file():
        lines = [ln for ln in (r.stderr + r.stdout).splitlines() if ln.strip()]
        raise UserError(f"fluidsynth failed (exit {r.returncode}): {lines[-1] if lines else 'no output'}")
    x, rate = read_wav(wav)
    if rate != RATE:
        raise UserError(f"fluidsynth rendered at {rate} Hz, not {RATE}")
    out = []
    for k in range(len(notes)):
        seg = x[int(k * SPACING * RATE):int((k + 1) * SPACING * RATE)]
        peak = np.abs(seg).max() if len(seg) else 0.0
        if peak < QUIET:
            out.append(np.zeros(LENGTH, np.float32))
            continue
        onset = max(0, int(np.flatnonzero(np.abs(seg) > 0.02 * peak)[0]) - RATE // 100)
        clip = seg[onset:onset + LENGTH]
        clip = np.concatenate([clip, np.zeros(LENGTH - len(clip), np.float32)])
        out.append(clip * (PEAK / np.abs(clip).max()))
    return out


def fetch(progress: Progress | None = None) -> Path:
    """Render every note, a family at a time, into the cache; returns its path."""
    writable_cache()                  # before minutes of rendering
    if shutil.which("fluidsynth") is None or not SOUNDFONT.is_file():
        raise UserError("notes needs fluidsynth and the FluidR3 SoundFont: apt-get install fluidsynth "
                        "fluid-soundfont-gm")
    clips, program, pitch = [], [], []
    with tempfile.TemporaryDirectory(prefix="genlab-notes-") as tmp:
        for f in range(len(FAMILIES)):
            notes = [(p, m) for p in range(8 * f, 8 * f + 8) for m in PITCHES]
            for (p, m), clip in zip(notes, render(notes, Path(tmp))):
                clips.append(to_pcm(clip))
                program.append(p)
                pitch.append(m)
            if progress is not None:
                progress(len(clips), len(FAMILIES) * 8 * len(PITCHES))
    path = cache_path()
    tmp_file = path.parent / f".{path.name}.{os.getpid()}.tmp"
    try:
        with open(tmp_file, "wb") as fh:
            np.savez_compressed(fh, x=np.stack(clips), program=np.array(program), pitch=np.array(pitch))
        os.replace(tmp_file, path)
    finally:
        tmp_file.unlink(missing_ok=True)
    return path


def test_instruments() -> list[int]:
    """One program of each family, drawn with a fixed seed."""
    rng = np.random.RandomState(SEED)
    return [8 * f + int(rng.randint(8)) for f in range(len(FAMILIES))]


def load(progress: Progress | None = None) -> AudioDataset:
    path = cache_path()
    if not path.is_file():
        fetch(progress)
    try:
        with np.load(path) as z:
            x, program, pitch = z["x"], z["program"], z["pitch"]
    except (OSError, KeyError, ValueError, EOFError) as e:
        raise UserError(f"the notes cache {path} is damaged ({type(e).__name__}); delete it or run "
                        f"`genlab data fetch notes`") from None
    audible = np.abs(x).max(1) > 0
    silent = int((~audible).sum())
    x, program, pitch = x[audible], program[audible], pitch[audible]
    names = [INSTRUMENTS[p] for p in program]
    tests = test_instruments()
    train, test = split_by_group(names, {INSTRUMENTS[p] for p in tests})
    family = torch.from_numpy(program // 8).long()
    pitch_class = torch.from_numpy(np.searchsorted(PITCHES, pitch)).long()
    xt = torch.from_numpy(x)
    return AudioDataset(
        name="notes", train_x=xt[train], test_x=xt[test],
        labels={"family": Labels(family[train], family[test], FAMILIES),
                "pitch": Labels(pitch_class[train], pitch_class[test], tuple(pitch_name(m) for m in PITCHES))},
        groups=("instruments", [INSTRUMENTS[p] for p in range(8 * len(FAMILIES)) if p not in tests],
                [INSTRUMENTS[p] for p in tests]),
        rate=RATE, source=SOURCE, licence=LICENCE,
        split=f"{len(train)} train / {len(test)} test notes, by instrument: one instrument of each family "
              f"(seed {SEED}) is never heard in training",
        notes={"silent notes left out": silent} if silent else {}, extra={"cache": str(path)})
