"""Benchmark: the evaluation protocol itself — how long all sample metrics take for 10,000 samples against
10,000 references, step by step — and one comparison table across trained runs of every family.

Speed: the held-out test images stand in for samples (sampling time belongs to each model and is
measured in its own benchmark), against a fixed subset of the training split; memorisation searches the
whole training split as `genlab eval` does, its set-up (the training set made ready, the test images'
distances) once per data set and shown apart. Printed per step (median of --repeats) and in total.

    python benchmarks/evaluation.py --data fashion-mnist --samples 10000
    python benchmarks/evaluation.py --data mnist --runs runs/vae runs/dcgan runs/pixelcnn   # + a table
    python benchmarks/evaluation.py --data mnist --train ae cvae gan --epochs 10 --out /tmp/cmp  # train first
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

import genlab
from genlab.data import load_dataset
from genlab.evaluation import fid as fidmod
from genlab.evaluation.classifier import cache_folder
from genlab.evaluation.features import builtin_network
from genlab.evaluation.memorisation import memorisation
from genlab.evaluation.modes import inception_score, mode_coverage
from genlab.evaluation.prdc import density_coverage, precision_recall
from genlab.evaluation.sample_quality import SampleJudge, parse_metrics, real_images
from genlab.training.acceleration import describe_machine


def timed(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def speed(data: str, n: int, repeats: int, device) -> None:
    ds = load_dataset(data)
    t = time.perf_counter()
    cached = any(cache_folder().glob(f"classifier-*-{ds.name}-{ds.content_hash()}.safetensors"))
    network = builtin_network(ds, device)
    first = time.perf_counter() - t
    print(f"feature network: {network.name}; {'loaded from cache' if cached else 'trained'} in {first:.1f} s")
    samples = real_images(ds.test_x, "none", n, device, seed=1)
    reference = real_images(ds.train_x, "none", n, device)
    freq = torch.bincount(ds.train_y, minlength=ds.num_classes).double()
    steps = [("features (both sets)", lambda: (network(samples), network(reference)))]
    (fs, ps), (fr, _) = steps[0][1]()
    steps += [("FID", lambda: fidmod.fid(fr, fs)),
              ("KID (100 subsets of 1,000)", lambda: fidmod.kid(fr, fs)),
              ("precision, recall (k=3)", lambda: precision_recall(fr, fs)),
              ("density, coverage (k=5)", lambda: density_coverage(fr, fs)),
              ("modes, IS", lambda: (mode_coverage(ps, freq / freq.sum()), inception_score(ps))),
              (f"memorisation (vs {len(ds.train_x):,} training images)",
               lambda: memorisation(pictures, train8_images, test8_images, train8=train8, d_test=d_test))]
    print(f"\n{data}: {len(samples):,} images against {len(reference):,} references, {torch.get_num_threads()} "
          f"thread(s), {device}; median of {repeats}")
    # As `genlab eval` does: memorisation compares 8-bit pictures, and SampleJudge.pictures (the training set
    # made ready for the integer search, the test images' distances to it) is computed once per data set and
    # shared by every run evaluated on it.
    pictures = (samples.clamp(0, 1) * 255).round() / 255
    s, (train8_images, test8_images, train8, d_test) = timed(
        lambda: SampleJudge(ds, "none", n, ["memorisation"], None, device).pictures(), repeats)
    print(f"  {'memorisation set-up, once per data set':42s} {s:8.2f} s   (not in the total: every run shares it)")
    total = 0.0
    for name, fn in steps:
        s, _ = timed(fn, repeats)
        total += s
        print(f"  {name:42s} {s:8.2f} s")
    print(f"  {'all metrics':42s} {total:8.2f} s")


def compare(runs: list[str], samples: int | None, threads: int) -> None:
    if samples is not None and not 0 <= samples <= 100_000:      # as `genlab eval --samples` takes it
        raise genlab.UserError(f"--samples must be from 0 to 100,000, not {samples}")
    print()
    results = genlab.evaluate(runs, parse_metrics("all"), iwae_k=100, samples=samples or None, threads=threads)
    print(genlab.format_results(results))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="fashion-mnist")
    p.add_argument("--samples", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--runs", nargs="*", default=[], help="run directories to compare in one table")
    p.add_argument("--train", nargs="*", default=[], help="models to train on --data first (into --out)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--out", default="runs/eval-bench")
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    print(f"machine: {describe_machine()}", flush=True)      # beside every figure below
    if args.train and args.epochs < 1:
        p.error(f"--epochs must be positive, not {args.epochs}")
    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not args.skip_speed:
        speed(args.data, args.samples, args.repeats, device)
    runs = list(args.runs)
    for model in args.train:
        run = Path(args.out) / f"{model}-{args.data}"
        if not run.exists():
            genlab.train(model, args.data, run, epochs=args.epochs, threads=args.threads)
        runs.append(str(run))
    if runs:
        compare(runs, args.samples if args.runs or args.train else None, args.threads)


if __name__ == "__main__":
    genlab.api.run_script(main)     # bad input: one line and status 2, as `genlab` itself answers it
