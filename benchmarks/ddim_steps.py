"""Benchmark: DDIM's sample quality against its number of steps, and the time each takes.

One trained ddpm run (given with --run, or trained here at its defaults on --data) draws the same number
of images at each step count from the same initial noise, and each set is scored by FID against the
training images (genlab's classifier of the data as the feature network, the reference and protocol of
`genlab eval --metrics fid`; ± a bootstrap standard deviation). Printed: the FID and the seconds of
sampling per step count, beside the FID of held-out test images (what a perfect model would score).

    python benchmarks/ddim_steps.py                                   # train ddpm on digits, then 10 … 1000 steps
    python benchmarks/ddim_steps.py --run runs/ddpm-digits-001 --steps 10 20 50 --eta 1
    python benchmarks/ddim_steps.py --epochs 1 --set channels=8 mults=1 timesteps=50 bound_timesteps=2 \\
        --steps 5 10 --samples 64                                     # a check that it runs, seconds
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

import genlab
from genlab import modalities
from genlab.errors import UserError
from genlab.evaluation.features import builtin_network
from genlab.evaluation.sample_quality import SAMPLE_BATCH, SampleJudge, default_samples
from genlab.runs import Run
from genlab.training.acceleration import describe_machine

STEPS = [10, 20, 50, 100, 1000]


def draw(model, n: int, steps: int, eta: float, seed: int) -> torch.Tensor:
    """n images by DDIM in `steps` steps, in batches, from the same initial noise whatever the steps."""
    g = torch.Generator(device=model.device).manual_seed(seed)
    out = []
    for start in range(0, n, SAMPLE_BATCH):
        m = min(SAMPLE_BATCH, n - start)
        x_T = torch.randn(m, *model.info.shape, generator=g, device=model.device)
        out.append(model.ddim(x_T, steps, eta=eta, generator=g))
    return torch.cat(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", help="a trained ddpm run (default: train one here)")
    p.add_argument("--data", default="digits", help="data to train on without --run (default digits)")
    p.add_argument("--epochs", type=int, help="epochs to train without --run (default: the model's own)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="ddpm settings without --run")
    p.add_argument("--steps", type=int, nargs="+", default=STEPS, help=f"DDIM step counts (default {STEPS})")
    p.add_argument("--eta", type=float, default=0.0, help="DDIM's η (0: deterministic, the default; 1: ancestral)")
    p.add_argument("--samples", type=int, help="images per step count (default: half the training split, "
                                               "at most 10,000, as genlab eval)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="where to train and write benchmark.json (default: a temporary folder)")
    args = p.parse_args()
    print(f"machine: {describe_machine()}", flush=True)      # beside every figure below
    if args.threads < 1 or (args.samples is not None and args.samples < 2) or args.eta < 0:
        p.error("--threads must be positive, --samples at least 2 and --eta at least 0")
    if args.epochs is not None and args.epochs < 1:
        p.error("--epochs must be positive")
    torch.set_num_threads(args.threads)
    out = Path(args.out or tempfile.mkdtemp(prefix="genlab-bench-ddim-"))

    t = time.perf_counter()
    if args.run:
        run_path = Path(args.run)
    else:
        run_path = out / f"ddpm-{args.data}"
        settings = genlab.api.settings_from_pairs("ddpm", args.set)
        genlab.train("ddpm", args.data, run_path, epochs=args.epochs, threads=args.threads, samples=0,
                     quiet=True, device="cpu", **settings)
    train_seconds = time.perf_counter() - t
    model = genlab.load(run_path, device="cpu")
    if model.name != "ddpm":
        raise UserError(f"{run_path} is a {model.name} run; this benchmark samples a ddpm run")
    too_many = [s for s in args.steps if not 1 <= s <= model.config.timesteps]
    if too_many:
        raise UserError(f"--steps must be from 1 to {model.config.timesteps} (the run's timesteps), not {too_many[0]}")

    run = Run.open(run_path)
    modality = modalities.get(model.modality)
    ds = modality.reload(run)
    n = args.samples or default_samples(ds)
    judge = SampleJudge(ds, run.config["data"]["binarize"], n, ["fid"], builtin_network(ds, "cpu"), "cpu")
    data_row = judge.data_row()

    rows = []
    for steps in args.steps:
        t = time.perf_counter()
        images = draw(model, n, steps, args.eta, args.seed)
        seconds = time.perf_counter() - t
        r = judge.judge(images)
        rows.append({"steps": steps, "fid": r["fid"], "fid_std": r["fid_std"], "seconds": seconds,
                     "ms_per_image": 1000 * seconds / n})
        print(json.dumps(rows[-1]), flush=True)

    print(f"\nddpm run {run_path} (timesteps {model.config.timesteps}, {model.config.schedule} schedule), "
          f"{n} samples per row, η = {args.eta:g}, threads={args.threads}, device=cpu"
          + (f", trained here in {train_seconds:.0f} s" if not args.run else ""))
    head = f"{'steps':>6s} {'FID':>8s} {'± sd':>6s} {'sampling s':>11s} {'ms/image':>9s}"
    print(head + "\n" + "-" * len(head))
    for r in rows:
        print(f"{r['steps']:6d} {r['fid']:8.2f} {r['fid_std']:6.2f} {r['seconds']:11.1f} {r['ms_per_image']:9.2f}")
    print(f"{'test':>6s} {data_row['fid']:8.2f} {data_row['fid_std']:6.2f}   (held-out test images: the floor)")
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmark.json").write_text(json.dumps({"run": str(run_path), "eta": args.eta, "samples": n,
                                                    "rows": rows, "test_fid": data_row["fid"]}, indent=2))


if __name__ == "__main__":
    genlab.api.run_script(main)     # bad input: one line and status 2, as `genlab` itself answers it
