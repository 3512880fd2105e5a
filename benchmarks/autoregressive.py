"""Benchmark: the autoregressive family on binarised mnist (and fashion-mnist), through `genlab.train`.

Prints one table per run: exact test NLL (nats per image, on the dynamically binarised test split that
`genlab eval` uses) beside the independent-pixel baseline, training images/s (median over epochs), and
sampling images/s at 28×28, batch 16: naive (the whole network once per pixel), cached (each layer's
activations kept, only what the new pixel changes computed) and their ratio.

Naive sampling costs one whole forward pass per pixel whatever the pixel, so by default it is timed on the
first --naive-rows rows (through `complete`, the rows below given) and scaled to the whole image;
--naive-rows 28 times it whole (about 10 minutes for the five models). The same rows drawn with the cache
are checked to be the same images.

    python benchmarks/autoregressive.py                           # mnist, 3 epochs each: ~15 min, 1 thread
    python benchmarks/autoregressive.py --data fashion-mnist --epochs 1          # ~35 min
    python benchmarks/autoregressive.py --no-train                # sampling speed only, untrained weights

(genlab's mnist has 8,000 training images, fashion-mnist 60,000: one fashion-mnist epoch costs as much
as 7.5 mnist epochs.)
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

import genlab
from genlab.data.containers.base import DataInfo
from genlab.models import get_model_class
from genlab.models.base import make_config
from genlab.training.acceleration import describe_machine

# Small enough for a CPU (a few minutes per model and epoch at most), the papers' shapes otherwise.
# Threads: one, measured: these nets are small, and on two shared cores a second thread mostly waits.
MODELS = {
    "pixelcnn": {"channels": "32", "blocks": "4", "head": "32", "kernel": "7"},
    "gated-pixelcnn": {"channels": "32", "layers": "5", "head": "32", "first_kernel": "7"},
    "pixelrnn-row": {"channels": "32", "layers": "2", "head": "32", "first_kernel": "7"},
    "pixelrnn-diag": {"channels": "16", "layers": "2", "head": "32", "first_kernel": "7"},
    "pixel-lstm": {"hidden": "64", "layers": "1", "embed": "16"},
}


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


@torch.no_grad()
def sampling_rates(model, batch: int, naive_rows: int, repeats: int) -> dict:
    """Images/s of cached and naive sampling, and whether both draw the same images."""
    c, h, w = model.info.shape
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    x, mask = torch.zeros(batch, c, h, w), torch.zeros(h, w, dtype=torch.bool)
    model.sample(batch, generator=gen())                                     # warm-up, both paths: the
    model(x)                                                                 # first calls set kernels up
    cached = timed(lambda: model.sample(batch, generator=gen()), repeats)
    # Naive: only the covered rows are drawn, one whole forward pass per pixel; scaled to all h rows.
    mask[:naive_rows] = True
    t = time.perf_counter()
    naive_images = model.complete(x, mask, generator=gen(), cached=False)
    naive = (time.perf_counter() - t) * h / naive_rows
    same = torch.equal(naive_images, model.complete(x, mask, generator=gen()))
    return {"naive_img_s": batch / naive, "cached_img_s": batch / cached, "ratio": naive / cached, "same": same}


def train_and_eval(data: str, name: str, epochs: int, lr: float, out: Path) -> tuple[dict, object]:
    run = out / f"{name}-{data}"
    if not (run / "model.safetensors").is_file():            # (already there: measured again, not retrained)
        genlab.train(name, data, run, epochs=epochs, batch_size=32, lr=lr, samples=16,
                     threads=torch.get_num_threads(), **MODELS[name])
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    [r] = genlab.evaluate([run], iwae_k=0, device="cpu", live=False)
    r["train_img_s"] = statistics.median(row["images_per_s"] for row in rows)
    r["nll_by_epoch"] = [row["test_nll_nats"] for row in rows]
    return r, genlab.load(run)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", default=["mnist"], help="mnist and/or fashion-mnist (binarised)")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=16, help="images per sampling call")
    p.add_argument("--naive-rows", type=int, default=2, help="rows over which naive sampling is timed")
    p.add_argument("--repeats", type=int, default=3, help="cached sampling timings (the median is kept)")
    p.add_argument("--no-train", action="store_true", help="sampling speed only, untrained weights at 28×28")
    p.add_argument("--out", help="keep the runs here (default: a temporary folder); runs already there are "
                                 "evaluated and timed again, not retrained")
    args = p.parse_args()
    print(f"machine: {describe_machine()}", flush=True)      # beside every figure below
    if not args.no_train and (args.epochs < 1 or not args.lr > 0):
        p.error(f"--epochs and --lr must be positive, not {args.epochs} and {args.lr}")
    torch.set_num_threads(args.threads)
    out = Path(args.out or tempfile.mkdtemp(prefix="genlab-bench-ar-"))
    out.mkdir(parents=True, exist_ok=True)          # (--no-train makes no run there to create it)
    results = []
    for data in (["(untrained)"] if args.no_train else args.data):
        for name in args.models:
            if args.no_train:
                cls = get_model_class(name)
                torch.manual_seed(0)
                model = cls(make_config(cls.Config, MODELS[name]), DataInfo((1, 28, 28), 10, "binary")).eval()
                r = {"model": name}
            else:
                r, model = train_and_eval(data, name, args.epochs, args.lr, out)
            r.update(sampling_rates(model, args.batch, args.naive_rows, args.repeats), data=data,
                     params=sum(t.numel() for t in model.parameters()))
            results.append(r)
            print(json.dumps({k: v for k, v in r.items() if k != "run"}), file=sys.stderr, flush=True)

    print(f"\nthreads={args.threads}  device=cpu  epochs={0 if args.no_train else args.epochs}  "
          f"batch 32, lr {args.lr}  sampling: 28×28, batch {args.batch}  runs in {out}")
    head = (f"{'data':13s} {'model':15s} {'params':>7s} {'test NLL':>9s} {'base':>7s} {'train img/s':>11s} "
            f"{'naive img/s':>11s} {'cached img/s':>12s} {'ratio':>6s} {'same':>5s}")
    print(head + "\n" + "-" * len(head))
    for r in results:
        nll = f"{r['nll_nats']:9.2f}" if "nll_nats" in r else f"{'—':>9s}"
        base = f"{r['baseline_nll_nats']:7.2f}" if "baseline_nll_nats" in r else f"{'—':>7s}"
        train = f"{r['train_img_s']:11,.0f}" if "train_img_s" in r else f"{'—':>11s}"
        print(f"{r['data']:13s} {r['model']:15s} {r['params']:7,d} {nll} {base} {train} {r['naive_img_s']:11.3f} "
              f"{r['cached_img_s']:12.1f} {r['ratio']:6.0f} {'yes' if r['same'] else 'NO':>5s}")
    print("NLL: exact, nats per image, dynamically binarised pixels; base: independent Bernoulli pixels. "
          f"Naive sampling timed on {args.naive_rows} of 28 rows and scaled. Settings: "
          + "; ".join(f"{m} " + " ".join(f"{k}={v}" for k, v in MODELS[m].items()) for m in args.models))
    (out / "benchmark.json").write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    genlab.api.run_script(main)     # bad input: one line and status 2, as `genlab` itself answers it
