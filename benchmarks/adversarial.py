"""Benchmark: dcgan, wgan and wgan-gp on mnist (and fashion-mnist), through `genlab.train`.

Prints one table per data set:
  train img/s   real images per second through `train_step`, batches of 64: one critic step per batch, each
                on its own batch, and one G step every n_critic batches (1 for dcgan, 5 for the WGANs, as in
                the papers' Algorithm 1);
                the median of timed steps after a warm-up, measured apart from the training run
  epochs, G steps, minutes   the training run itself (minutes include the trainer's per-epoch work)
  W first→last  the critic's Wasserstein estimate, mean of the first and of the last epoch (WGANs)
  diversity     mean pairwise distance of 256 fixed samples / the same on real images (1 = as spread)
  confident     share of 1000 samples that a small classifier, trained here on the real training images,
                labels with probability > 0.9 (real test images score about 0.9: "looks like a digit")
  classes       entropy of the classifier's labels over the samples, in bits (log2 10 = 3.32: every class
                equally often; low values mean mode collapse)
The sample grid of the last epoch is written to OUT/MODEL-DATA/samples/epoch-NNNN.png and the training
curves (every logged figure against training time) to OUT/MODEL-DATA/curves.png.

    python benchmarks/adversarial.py --threads 1 --out bench-gan     # mnist, 20 epochs each: ~30 min on a CPU
    python benchmarks/adversarial.py --data mnist fashion-mnist --epochs dcgan=10 wgan=20 --out bench-gan

The nets are half the models' default width (--features 32): on a CPU that halves the time, and 20
epochs of it already give digit-like samples from all three.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

import genlab
from genlab.data import Batches, load_dataset, make_info
from genlab.models import get_model_class
from genlab.models.base import make_config
from genlab.training.acceleration import describe_machine

EPOCHS = {"dcgan": 20, "wgan": 20, "wgan-gp": 20}   # digit-like samples on mnist by then (grids looked at)
BATCH = 64


def train_rate(model_name: str, data, overrides: dict[str, str], steps: int = 8, warmup: int = 3) -> float:
    """Images per second through train_step alone, batches of 64 of the real (dequantised) images."""
    cls = get_model_class(model_name)
    model = cls(make_config(cls.Config, overrides), make_info(data, cls.default_binarize))
    opts = model.configure_optimizers(cls.default_lr)
    batches = Batches(data.train_x, data.train_y, binarize=cls.default_binarize, batch_size=BATCH, shuffle=True)
    times = []
    for i, batch in enumerate(batches.epoch(0)):
        t = time.perf_counter()
        model.train_step(batch, opts)
        if i >= warmup:
            times.append(time.perf_counter() - t)
        if len(times) == steps:
            break
    return BATCH / statistics.median(times)


class Classifier(nn.Module):
    """A small MLP on the real training images: the judge of whether samples look like the data."""

    def __init__(self, shape, classes):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(shape), 256), nn.ReLU(), nn.Linear(256, classes))

    def forward(self, x):
        return self.net(x * 2 - 1)


def train_classifier(data, epochs: int = 10) -> tuple[Classifier, float]:
    torch.manual_seed(0)
    clf = Classifier(data.shape, len(data.class_names))
    opt = torch.optim.Adam(clf.parameters(), 1e-3)
    x, y = data.train_x.float() / 255, data.train_y
    for _ in range(epochs):
        for idx in torch.randperm(len(x)).split(128):
            loss = F.cross_entropy(clf(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        real_confident = (F.softmax(clf(data.test_x.float() / 255), 1).max(1).values > 0.9).float().mean().item()
    return clf, real_confident


@torch.no_grad()
def judge(clf: Classifier, samples: torch.Tensor) -> tuple[float, float]:
    p = F.softmax(clf(samples), 1)
    confident = (p.max(1).values > 0.9).float().mean().item()
    share = torch.bincount(p.argmax(1), minlength=p.shape[1]).float() / len(p)
    entropy = -(share[share > 0] * share[share > 0].log2()).sum().item()
    return confident, entropy


def bench(data_name: str, data, model_name: str, epochs: int, features: int, out: Path, clf: Classifier) -> dict:
    rate = train_rate(model_name, data, {"features": str(features)})
    run = out / f"{model_name}-{data_name}"
    t = time.perf_counter()
    genlab.train(model_name, data_name, run, epochs=epochs, batch_size=BATCH, features=features)
    minutes = (time.perf_counter() - t) / 60
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    model = genlab.load(run)
    confident, entropy = judge(clf, model.sample(1000, generator=torch.Generator().manual_seed(1)))
    w = f"{rows[0]['wasserstein']:.3f}→{rows[-1]['wasserstein']:.3f}" if "wasserstein" in rows[0] else "—"
    return {"model": model_name, "img_s": rate, "epochs": epochs, "g_steps": rows[-1]["step"] // model.n_critic,
            "minutes": minutes, "w": w, "diversity": rows[-1]["diversity_ratio"], "confident": confident,
            "classes": entropy, "grid": str(run / "samples" / f"epoch-{epochs:04d}.png")}


def print_table(data_name: str, results: list[dict], real_confident: float, features: int) -> None:
    print(f"\n{data_name}: batches of {BATCH}, --features {features}, {torch.get_num_threads()} CPU thread(s); "
          f"real test images: confident {real_confident:.2f}, classes 3.32 bits")
    head = f"{'model':10s} {'train img/s':>11s} {'epochs':>6s} {'G steps':>7s} {'minutes':>7s} " \
           f"{'W first→last':>14s} {'diversity':>9s} {'confident':>9s} {'classes':>7s}  grid"
    print(head)
    print("-" * len(head))
    for r in results:
        print(f"{r['model']:10s} {r['img_s']:11.0f} {r['epochs']:6d} {r['g_steps']:7d} {r['minutes']:7.1f} "
              f"{r['w']:>14s} {r['diversity']:9.2f} {r['confident']:9.2f} {r['classes']:7.2f}  {r['grid']}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", default=["mnist"])
    p.add_argument("--models", nargs="+", default=list(EPOCHS))
    p.add_argument("--epochs", nargs="*", default=[], metavar="MODEL=N", help="epochs per model")
    p.add_argument("--features", type=int, default=32,
                   help="the nets' width (default 32, half the models' own 64, to fit a CPU)")
    p.add_argument("--threads", type=int, help="torch CPU threads (1 is fastest on a shared machine)")
    p.add_argument("--out", help="keep the runs here (default: a temporary folder)")
    args = p.parse_args()
    print(f"machine: {describe_machine()}", flush=True)      # beside every figure below
    if args.threads:
        torch.set_num_threads(args.threads)
    epochs = {**EPOCHS, **{k: int(v) for k, v in (e.split("=") for e in args.epochs)}}
    for m in args.models:
        if epochs.get(m, 1) < 1:
            p.error(f"--epochs {m}={epochs[m]}: epochs must be positive")
    out = Path(args.out or tempfile.mkdtemp(prefix="genlab-bench-gan-"))
    for data_name in args.data:
        data = load_dataset(data_name)
        clf, real_confident = train_classifier(data)
        results = [bench(data_name, data, m, epochs[m], args.features, out, clf) for m in args.models]
        print_table(data_name, results, real_confident, args.features)


if __name__ == "__main__":
    genlab.api.run_script(main)     # bad input: one line and status 2, as `genlab` itself answers it
