"""Shared fixtures: tiny runs trained once per test session through the real command line."""
from __future__ import annotations

import os

import pytest
import torch

from genlab.cli import main

os.environ.setdefault("GENLAB_CACHE", os.path.join(os.path.dirname(__file__), "..", ".cache-test"))
torch.set_num_threads(2)

# The fast subset, `pytest -m "not slow"` (under a minute on 2 cores): the architecture, declarations, units,
# parsing, bad input and small reference checks. Every other module trains models for more than a moment,
# drives a browser or starts processes, and is marked slow here; a slow test inside a fast module carries
# @pytest.mark.slow itself. CI runs everything.
FAST_MODULES = {"test_architecture", "test_data_sets", "test_captions",
                "test_text_bad_input", "test_text_data", "test_audio_data", "test_vae", "test_sample_metrics",
                "test_pixel_lstm_cached", "test_printed_digits", "test_video_data", "test_completion_agreement",
                "test_shared_pieces", "test_gmm", "test_made", "test_parzen", "test_quality_floor"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.module.__name__ not in FAST_MODULES:
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def one_thread():
    """Tiny nets gain nothing from threads, and lose much when other processes share the cores.
    A test module opts in with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def genlab(*argv) -> int:
    return main([str(a) for a in argv])


def refused(capsys, argv, *words) -> str:
    """Runs `genlab ARGV` and asserts it was refused in one line naming each of `words`, with status 2 and no
    traceback; returns the line."""
    try:
        code = genlab(*argv)
    except SystemExit as e:                   # argparse's usage errors exit from inside main(), as --help does
        code = e.code
    out, err = capsys.readouterr()
    assert code == 2 and "Traceback" not in out + err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genlab: error: "), err
    for w in words:
        assert str(w) in lines[0], f"{w!r} not named in: {lines[0]}"
    return lines[0]


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """Trained runs on digits: name -> path. Small but real: each learns within a few seconds."""
    root = tmp_path_factory.mktemp("runs")
    specs = {
        "vae": ["vae", "--epochs", "30", "--batch-size", "32", "--lr", "2e-3", "--latent-dim", "4", "--hidden", "256"],
        "ae": ["ae", "--epochs", "12", "--batch-size", "32", "--lr", "2e-3", "--latent-dim", "4", "--hidden", "256"],
        "cvae": ["cvae", "--epochs", "30", "--batch-size", "32", "--lr", "2e-3", "--latent-dim", "4", "--hidden", "256"],
        "gmm": ["gmm", "--epochs", "10", "--components", "10"],
    }
    out = {}
    for name, argv in specs.items():
        path = root / name
        assert genlab("train", *argv, "--data", "digits", "--out", path, "--samples", "16") == 0
        out[name] = path
    return out
