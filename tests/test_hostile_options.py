"""Hostile values on the command line: values that pass a type check and then would crash, hang or ask for
tens of GB, and options a resumed run would silently ignore. Each: one line, exit status 2, no traceback,
and the run directory byte-identical afterwards."""
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from conftest import genlab as run_cli
from test_bad_input import refused, snapshot

CASES = [
    (["sample", "{run}", "--seed", str(10**23)], ["--seed", "2**63"]),
    (["sample", "{run}", "--seed", "-1"], ["--seed"]),
    (["sample", "{run}", "-n", "10000000"], ["-n must be at most 100,000"]),
    (["sample", "{run}", "--nrow", str(10**9)], ["--nrow must be from 1 to 100,000"]),
    (["sample", "{run}", "--temperature", "1e-300"], ["--temperature does not apply to"]),
    (["sample", "{run}", "--temperature", "inf"], ["--temperature does not apply to"]),
    (["sample", "{run}", "--device", "cuda:0"], ["cuda:0", "no CUDA GPU"]),
    (["sample", "{run}", "--device", "tpu"], ["--device must be auto, cpu, cuda or cuda:N"]),
    (["explore", "{run}", "grid", "--steps", "100000"], ["--steps must be at most 200"]),
    (["explore", "{run}", "grid", "--span", "inf"], ["--span must be positive"]),
    (["explore", "{run}", "interpolate", "a.png", "b.png", "--steps", "0"], ["--steps must be positive"]),
    (["eval", "{run}", "--iwae-k", str(10**8)], ["--iwae-k must be at most 10,000"]),
    (["eval", "{run}", "--iwae-k", "-5"], ["--iwae-k must be 0 or more"]),
    (["eval", "{run}", "--metrics", "fid", "--samples", "-5"], ["--samples must be positive"]),
    (["train", "--resume", "{run}", "--lr", "0.5"], ["--lr cannot change when a run resumes"]),
    (["train", "--resume", "{run}", "--batch-size", "7"], ["--batch-size cannot change"]),
    (["train", "--resume", "{run}", "--set", "beta=4"], ["model settings cannot change"]),
    (["train", "--resume", "{run}", "--out", "elsewhere"], ["--out cannot change"]),
    (["train", "--resume", "{run}", "--ema", "0.9"], ["cannot change when a run resumes"]),
    (["train", "vae", "--set", "latent_dim=abc", "--out", "x"], ["latent_dim", "int", "'abc'"]),
    (["train", "vae", "--set", "latent_dim=3", "--latent-dim", "2", "--out", "x"], ["disagree"]),
    (["train", "vae", "--samples", "-5", "--out", "x"], ["--samples must be 0 or more"]),
    (["train", "vae", "--epochs", "0", "--out", "x"], ["--epochs must be positive"]),
    (["train", "vae", "--clip-grad", "-1", "--out", "x"], ["--clip-grad"]),
    (["train", "vae", "--lr-schedule", "exponential", "--out", "x"], ["--lr-schedule"]),
    (["train", "vae", "--ema", "1.5", "--out", "x"], ["--ema"]),
    (["train", "vae", "vae", "--out", "x"], ["unrecognized arguments"]),
    (["train", "--config", "nosuch.json", "--out", "x"], ["--config", "nosuch.json"]),
]


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("argv, words", CASES, ids=[" ".join(a[:1] + a[2:]) for a, _ in CASES])
def test_a_hostile_value_is_one_line(runs, tmp_path, capsys, argv, words):
    run = shutil.copytree(runs["vae"], tmp_path / "run")
    before, here = snapshot(run), snapshot(tmp_path)
    refused(capsys, [a.format(run=run) for a in argv], *words)
    assert snapshot(run) == before
    assert snapshot(tmp_path) == here                        # nothing written beside it either


def test_a_run_that_died_before_its_first_checkpoint_starts_again(tmp_path, capsys):
    """Killed inside its first epoch: --resume starts it again from its own seed, and the result is the run
    that was never interrupted."""
    whole, dead = tmp_path / "whole", tmp_path / "dead"
    argv = ["vae", "--epochs", "2", "--batch-size", "256", "--hidden", "32", "--samples", "0", "--threads", "1"]
    assert run_cli("train", *argv, "--out", whole) == 0
    assert run_cli("train", *argv, "--out", dead) == 0
    for name in ("model.safetensors", "trainer.pt", "metrics.jsonl"):
        (dead / name).unlink()
    (dead / "steps.jsonl").write_text((dead / "steps.jsonl").read_text().splitlines()[0] + "\n")
    assert run_cli("train", "--resume", dead, "--threads", "1") == 0
    a, b = load_file(dead / "model.safetensors"), load_file(whole / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    rows = [json.loads(line) for line in (dead / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
