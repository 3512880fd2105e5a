"""Exact resume, and checkpoints that survive a process killed while saving."""
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file

import genlab
from conftest import genlab as run_cli


def metrics(path):
    return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("model", ["vae", "gmm"])
def test_interrupted_and_resumed_run_logs_the_same_losses(tmp_path, model):
    argv = [model, "--data", "digits", "--seed", "3", "--samples", "4"]
    if model == "vae":
        argv += ["--hidden", "64", "--latent-dim", "3", "--batch-size", "128"]
    assert run_cli("train", *argv, "--epochs", "4", "--out", tmp_path / "whole") == 0
    assert run_cli("train", *argv, "--epochs", "2", "--out", tmp_path / "split") == 0
    assert run_cli("train", "--resume", tmp_path / "split", "--epochs", "4") == 0
    whole, split = metrics(tmp_path / "whole"), metrics(tmp_path / "split")
    assert [r["epoch"] for r in split] == [1, 2, 3, 4]
    drop = {"seconds", "images_per_s"}
    strip = lambda rows: [{k: v for k, v in r.items() if k not in drop} for r in rows]  # noqa: E731
    assert strip(whole) == strip(split)          # bit for bit: same RNG streams, same optimiser state
    a, b = (load_file(str(tmp_path / r / "model.safetensors")) for r in ("whole", "split"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_drops_metrics_logged_after_the_last_checkpoint(tmp_path):
    out = tmp_path / "run"
    assert run_cli("train", "vae", "--epochs", "2", "--hidden", "32", "--batch-size", "128", "--out", out,
                   "--samples", "0") == 0
    with open(out / "metrics.jsonl", "a") as f:           # as if killed between a metrics line and a checkpoint
        f.write(json.dumps({"epoch": 3, "loss": 1.0}) + "\n")
    assert run_cli("train", "--resume", out, "--epochs", "3") == 0
    assert [r["epoch"] for r in metrics(out)] == [1, 2, 3]
    assert metrics(out)[-1]["loss"] != 1.0
    steps = [json.loads(l)["step"] for l in (out / "steps.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 3 * 12 + 1))                 # 12 batches of 128 per epoch, none twice


KILL_WHILE_SAVING = textwrap.dedent("""
    import os, signal, sys, torch, safetensors.torch as st
    from genlab.runs import Run
    import genlab.runs as runs
    run = Run.open(sys.argv[1])
    model = run.build_model()
    run.load_weights(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)                                   # a different model, to be saved and then lost
    real = st.save_file
    def dying_save(state, path, metadata=None):
        real(state, path, metadata=metadata)
        with open(path, "r+b") as f:                      # half-written file on disk ...
            f.truncate(os.path.getsize(path) // 2)
        os.kill(os.getpid(), signal.SIGKILL)              # ... and the process dies mid-save
    runs.save_file = dying_save
    run.save_checkpoint(model, {"epoch": 99, "step": 0, "optimizers": {}})
""")


def test_a_process_killed_while_saving_leaves_the_last_checkpoint_loadable(tmp_path):
    out = tmp_path / "run"
    assert run_cli("train", "vae", "--epochs", "1", "--hidden", "32", "--out", out, "--samples", "0") == 0
    before = (out / "model.safetensors").read_bytes()
    proc = subprocess.run([sys.executable, "-c", KILL_WHILE_SAVING, str(out)], capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()
    # The half-written file lies under a temporary name; the checkpoint itself is the last good one.
    assert (out / "model.safetensors").read_bytes() == before
    model = genlab.load(out)
    assert model.sample(2).shape == (2, 1, 8, 8)
    assert run_cli("train", "--resume", out, "--epochs", "2") == 0
    assert [r["epoch"] for r in metrics(out)] == [1, 2]
    assert not [p for p in os.listdir(out) if p.endswith(".tmp") and not p.startswith(".model")]
