"""A new user's walk through the commands, with output to a file as in a job or CI: lines keep coming while
each command works (progress every GENLAB_PROGRESS_SECONDS, here 1 s: no stage may be silent for long),
and every picture written for a person is at least 256 px on its short side."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

SILENCE = 10.0          # the longest a command may go without a line once it has begun (the default's promise)
START = 30.0            # its first line, after Python, torch and the data are loaded on a busy machine
ENV = {**os.environ, "GENLAB_PROGRESS_SECONDS": "1", "PYTHONUNBUFFERED": "1"}


def timed_lines(*argv, cwd) -> tuple[int, list[float], str]:
    """Runs `genlab ARGV` with its output to a pipe (not a terminal); returns its status, the moments its lines
    arrived (from the start, the end last) and its output."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "genlab.cli", *map(str, argv), "--threads", "1"], cwd=cwd,
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    moments, text = [0.0], []

    def read():
        for line in proc.stdout:
            moments.append(time.perf_counter() - start)
            text.append(line)
    reader = threading.Thread(target=read)
    reader.start()
    code = proc.wait(timeout=600)
    reader.join()
    moments.append(time.perf_counter() - start)
    return code, moments, "".join(text)


def longest_silence(moments: list[float]) -> float:
    """The longest wait between two lines, from the first line to the end."""
    return max((b - a for a, b in zip(moments[1:], moments[2:])), default=0.0)


WALK = [
    ["train", "ddpm", "--data", "digits", "--epochs", "2", "--channels", "8", "--out", "dd"],
    ["sample", "dd", "--steps", "1000", "-n", "16", "-o", "ddpm.png"],
    ["eval", "dd", "--metrics", "likelihood,fid,prdc,memorisation", "--samples", "300"],
    ["train", "vae", "--data", "digits", "--epochs", "3", "--out", "vae"],
    ["sample", "vae", "-o", "vae.png"],
    ["explore", "vae", "grid", "-o", "grid.png"],
    ["explore", "vae", "interpolate", "a.png", "b.png", "--steps", "10", "-o", "interpolate.png"],
    ["train", "pixelcnn", "--data", "digits", "--epochs", "1", "--out", "pcnn"],
    ["complete", "pcnn", "--image", "a.png", "--cover", "bottom-half", "-n", "8", "-o", "complete.png"],
    ["report", "vae", "dd", "-o", "report.html"],
]


@pytest.mark.parametrize("step", range(len(WALK)), ids=[" ".join(w[:2]) for w in WALK])
def test_each_command_keeps_talking(step, walk_folder):
    code, moments, text = timed_lines(*WALK[step], cwd=walk_folder)
    assert code == 0, text
    assert moments[1] <= START and longest_silence(moments) <= SILENCE, (moments[1], longest_silence(moments), text)


@pytest.fixture(scope="module")
def walk_folder(tmp_path_factory):
    """The user's folder, with two digits of their own (8×8 PNGs) to interpolate between and complete."""
    from genlab.data import load_dataset
    folder = tmp_path_factory.mktemp("walk")
    digits = load_dataset("digits").test_x
    for name, i in (("a", 0), ("b", 1)):
        Image.fromarray(digits[i, 0].numpy()).save(folder / f"{name}.png")
    return folder


def test_every_picture_a_person_opens_is_at_least_256_px(walk_folder):
    pictures = [p for p in Path(walk_folder).rglob("*.png") if p.name not in ("a.png", "b.png")]
    assert len(pictures) >= 8, pictures
    small = {str(p.relative_to(walk_folder)): Image.open(p).size for p in pictures if min(Image.open(p).size) < 256}
    assert not small, small
