"""Training on many processes (torchrun, gloo on the CPU): two processes, each its share of every batch,
end where one process on the whole batches ends, and a two-process checkpoint resumes in one and in three.

A model of each family trains a few steps on two real processes started here. A model whose step draws
nothing (made) or whose EM sums its statistics (gmm) must match one process to float rounding. A model that
draws noise inside its step (gan, sentence-vae) draws it on each process's own stream (and normalises its
batches per process), so it cannot: the trainer itself checks after every epoch that the processes hold
the same weights (a run that finishes passed that check; one whose gradients are not averaged fails it,
below), and its weights must stay near the one-process ones.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import genlab
from genlab.data.containers.loader import Batches
from genlab.data.text.batches import TextBatches
from genlab.runs import Run

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.skipif(not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
                                 reason="this torch has no torch.distributed with gloo")]

LINES = [f"the {a} {v} to the {p}" for a in ("cat", "dog", "fox", "owl") for v in ("ran", "went", "flew")
         for p in ("hill", "sea", "wood", "town", "barn", "mill")]          # 72 lines
MADE = dict(hidden=32, batch_size=128, samples=4)                            # 12 steps an epoch of digits
RUNS = {   # name: (model, data, settings); every one trained by one process and by two
    "made": ("made", "digits", dict(MADE, epochs=2, trainer={"checkpoint_every": 5})),
    "gan": ("gan", "digits", dict(hidden=32, latent_dim=8, batch_size=128, epochs=1, samples=4)),
    "gmm": ("gmm", "digits", dict(components=3, covariance="diag", epochs=2, samples=4)),
    # 65 training lines in batches of 13: shares of 7 and 6, weighted unequally.
    "sentence-vae": ("sentence-vae", "TEXT", dict(embed_dim=8, hidden=16, latent_dim=4, max_len=8, batch_size=13,
                                                   epochs=1, samples=2)),
}
HALF = ("made-half", ("made", "digits", dict(MADE, epochs=1)))        # to be resumed by one and by three

SCRIPT = """
import json, os, sys
import genlab
from genlab.training import distributed
out, runs = sys.argv[1], json.loads(sys.argv[2])
for name, (model, data, kw) in runs.items():
    genlab.train(model, data, f"{out}/{name}", device="cpu", threads=1, quiet=True, **kw)
# Broken on purpose: each process steps on its own share's gradients. The trainer must refuse to go on.
distributed.Processes.average_gradients = lambda self, params: None
try:
    genlab.train("made", "digits", f"{out}/unaveraged", device="cpu", threads=1, quiet=True, **runs["made-half"][2])
except genlab.UserError as e:
    open(f"{out}/refused-{os.environ['RANK']}.txt", "w").write(str(e))
"""


def torchrun(n: int, *argv, cwd: Path) -> subprocess.CompletedProcess:
    with socket.socket() as s:                    # a free port for the processes to meet on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node",
                           str(n), "--master_addr", "127.0.0.1", "--master_port", str(port), *map(str, argv)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def weights(path: Path) -> dict:
    return {k: v.double() for k, v in load_file(str(path / "model.safetensors")).items() if v.is_floating_point()}


def distance(a: dict, b: dict) -> float:
    return sum(float((a[k] - b[k]).square().sum()) for k in a) ** 0.5


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(one process's runs, two processes' runs): the same runs, the same seeds."""
    root = tmp_path_factory.mktemp("distributed")
    (root / "lines.txt").write_text("\n".join(LINES) + "\n", encoding="utf-8")
    text = f"text:{root / 'lines.txt'}"
    runs = {name: (m, text if d == "TEXT" else d, kw) for name, (m, d, kw) in [*RUNS.items(), HALF]}
    (root / "run.py").write_text(SCRIPT)
    two = torchrun(2, root / "run.py", root / "two", json.dumps(runs), cwd=root)
    assert two.returncode == 0, two.stderr[-3000:]
    for name, (model, data, kw) in runs.items():
        if name in RUNS:
            genlab.train(model, data, root / "one" / name, device="cpu", threads=1, quiet=True, **kw)
    return root / "one", root / "two"


@pytest.mark.parametrize("name", ["made", "gmm"])
def test_two_processes_end_as_one_on_the_whole_batches(trained, name):
    one, two = (d / name for d in trained)
    a, b = weights(one), weights(two)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=1e-5, atol=1e-6), (k, float((a[k] - b[k]).abs().max()))
    # The logs are the whole batch's too: each step's loss, each epoch's test figures, from process 0 alone.
    steps = [[json.loads(line) for line in (d / "steps.jsonl").read_text().splitlines()] for d in (one, two)]
    assert [s["step"] for s in steps[0]] == [s["step"] for s in steps[1]]
    for s1, s2 in zip(*steps):
        for k in s1:
            if k not in ("seconds", "step", "epoch"):
                assert s2[k] == pytest.approx(s1[k], rel=1e-5), (k, s1, s2)
    rows = [[json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()] for d in (one, two)]
    assert [r["epoch"] for r in rows[1]] == [r["epoch"] for r in rows[0]]
    for r1, r2 in zip(*rows):
        assert r2["test_nll_nats"] == pytest.approx(r1["test_nll_nats"], rel=1e-6)
    assert sorted(p.name for p in (two / "samples").iterdir()) == sorted(p.name for p in (one / "samples").iterdir())


@pytest.mark.parametrize("name", ["gan", "sentence-vae"])
def test_two_processes_drawing_noise_stay_near_one(trained, name):
    one, two = (d / name for d in trained)
    a, b = weights(one), weights(two)
    # Where the weights started: the same seed builds the same model in any process.
    cfg = json.loads((one / "config.json").read_text())
    torch.manual_seed(cfg["seed"])
    start = Run.open(one).build_model()
    w0 = {k: v.detach().double() for k, v in start.state_dict().items() if k in a}
    moved = distance(a, w0)
    assert moved > 0 and distance(b, w0) > 0.5 * moved
    assert distance(a, b) < 0.75 * moved, (distance(a, b), moved)
    assert sorted(p.name for p in (two / "samples").iterdir()) == sorted(p.name for p in (one / "samples").iterdir())


def test_processes_whose_weights_come_apart_are_stopped(trained):
    for rank in (0, 1):                                       # every process refuses, none waits for ever
        said = (trained[1] / f"refused-{rank}.txt").read_text()
        assert said.startswith("the weights of process 1 and process 0 differ after epoch 1"), said
    assert not (trained[1] / "unaveraged" / "model.safetensors").exists()     # nothing saved of it


def test_a_two_process_checkpoint_resumes_in_one_process_and_in_three(trained):
    one, two = trained
    half = two / "made-half"
    assert json.loads((half / "metrics.jsonl").read_text().splitlines()[-1])["epoch"] == 1
    shutil.copytree(half, two / "resumed-by-one")
    shutil.copytree(half, two / "resumed-by-three")
    genlab.resume(two / "resumed-by-one", epochs=2, device="cpu", threads=1, quiet=True)
    three = torchrun(3, "-m", "genlab", "train", "--resume", two / "resumed-by-three", "--epochs", "2",
                     "--device", "cpu", "--threads", "1", cwd=two)
    assert three.returncode == 0, three.stderr[-3000:]
    assert "× 3 processes" in three.stderr
    reference = weights(one / "made")                        # one process, never interrupted
    for run in ("resumed-by-one", "resumed-by-three", "made"):
        got = weights(two / run)
        for k in reference:
            assert torch.allclose(got[k], reference[k], rtol=1e-5, atol=1e-6), (run, k)
        rows = [json.loads(line) for line in (two / run / "metrics.jsonl").read_text().splitlines()]
        assert [r["epoch"] for r in rows] == [1, 2]


# ---- the shares themselves, in one process ------------------------------------------------------------

@pytest.mark.parametrize("world", [2, 3])
def test_the_shares_of_a_batch_are_that_batch_with_the_same_pixels(world):
    images = torch.randint(0, 256, (50, 1, 4, 4), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    whole = Batches(images, torch.arange(50), binarize="dynamic", batch_size=8, shuffle=True, seed=5)
    shares = [whole.share(r, world) for r in range(world)]
    kept = 7 if world == 2 else 6              # 6 batches of 8 and one of 2: too short to share among 3
    assert len(whole) == 7 and all(len(s) == kept for s in shares) and len(shares[0].totals(1)) == kept
    assert sum(s.num_images() for s in shares) == 8 * 6 + (2 if world == 2 else 0)
    for batch, total, *parts in zip(whole.epoch(1), whole.totals(1), *(s.epoch(1) for s in shares)):
        rows = dict(zip(batch.condition.tolist(), batch.x))
        assert sum(len(p) for p in parts) == total == len(batch)
        assert sorted(i for p in parts for i in p.condition.tolist()) == sorted(rows)
        assert all(torch.equal(x, rows[i]) for p in parts for i, x in zip(p.condition.tolist(), p.x))


def test_the_shares_of_a_text_batch_are_that_batch():
    g = torch.Generator().manual_seed(1)
    seqs = [[3 + i % 7] * int(torch.randint(1, 9, (1,), generator=g)) + [2, 100 + i] for i in range(41)]
    whole = TextBatches(seqs, batch_size=6, shuffle=True, seed=2)
    shares = [whole.share(r, 2) for r in range(2)]

    def lines(b):
        return sorted(tuple(row[:n].tolist()) for row, n in zip(b.x, b.lengths.tolist()))
    for batch, *parts in zip(whole.epoch(3), *(s.epoch(3) for s in shares)):
        assert lines(batch) == sorted(line for p in parts for line in lines(p))
