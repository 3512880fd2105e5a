"""Benchmark: WaveNet on the sound data sets, through `genlab.train`, and Fast WaveNet's generation speed.

For each data set: train wavenet (its default settings, or --set KEY=VALUE) for a stated training time
(--minutes, an epoch at a time: the run stops after the first epoch that reaches it), then print the exact
test likelihood, in nats per second and bits per sample, beside the two baselines fitted to the training
split (each sample on its own: a histogram of codes; linear prediction: an autoregressive Gaussian on the
waveform, discretised to the codes).

Then the speed of generating 1 s of audio (8,000 samples), --batch clips at a time:

  cached: Fast WaveNet (Paine et al. 2016), one column per layer per sample;
  window: naive, the whole network over the last receptive field + 1 samples, once per sample;
  full:   naive, the whole network over the clip so far, once per sample.

A naive step at position t costs what it costs whatever was drawn before, so by default the naive ways are
timed at --naive-steps positions spread evenly over the second and summed to the whole second (say
--naive-steps 0 to time them whole: minutes to hours). The three are checked to give the same samples
over the first --check samples.

    python benchmarks/wavenet.py                                   # both data sets, 30 min each, 1 thread
    python benchmarks/wavenet.py --data spoken-digits --minutes 10
    python benchmarks/wavenet.py --no-train                        # generation speed only, untrained weights
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from budget import metrics, train_for, training_seconds

import genlab
from genlab.api import settings_from_pairs
from genlab.data.containers.audio import RATE, AudioInfo
from genlab.models import get_model_class
from genlab.models.base import make_config
from genlab.training.acceleration import describe_machine


@torch.no_grad()
def generation_speed(model, batch: int, seconds: float, naive_steps: int, check: int) -> dict:
    """Seconds to generate `seconds` of audio, `batch` clips at once: cached, and naive (window, full)
    timed at `naive_steps` positions and summed (0: run whole); and whether all three agree."""
    t_len = int(seconds * model.info.rate)
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    condition = torch.arange(batch) % model.num_conditions if model.condition_kind == "class" else None
    same = all(torch.equal(model.sample(batch, condition=condition, generator=gen(), length=check),
                           model.sample(batch, condition=condition, generator=gen(), length=check, mode=mode))
               for mode in ("window", "full"))
    t = time.perf_counter()
    model.sample(batch, condition=condition, generator=gen(), length=t_len)
    out = {"cached_s": time.perf_counter() - t, "same": same}
    codes = torch.randint(0, 256, (batch, t_len))
    for mode in ("window", "full"):
        if naive_steps <= 0:
            t = time.perf_counter()
            model.sample(batch, condition=condition, generator=gen(), length=t_len, mode=mode)
            out[f"{mode}_s"] = time.perf_counter() - t
            continue
        positions = [int((k + 0.5) * t_len / naive_steps) for k in range(naive_steps)]
        spent = 0.0
        for i in positions:                                # one naive step: the network over the context
            lo = 0 if mode == "full" else max(0, i - model.receptive_field)
            t = time.perf_counter()
            model(codes[:, lo:i + 1], condition)[:, :, -1].softmax(-1).cumsum(-1)
            spent += time.perf_counter() - t
        out[f"{mode}_s"] = spent * t_len / naive_steps
    out.update(window_ratio=out["window_s"] / out["cached_s"], full_ratio=out["full_s"] / out["cached_s"],
               naive_estimated=naive_steps > 0)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", default=["spoken-digits", "notes"],
                   help="spoken-digits, notes and/or audio:PATH")
    p.add_argument("--minutes", type=float, default=30.0, help="training time per data set (default 30)")
    p.add_argument("--size", type=int, help="clip length in samples (default: the data's, 1 s)")
    p.add_argument("--batch-size", type=int, help="training batch (default: the model's)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a wavenet setting")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=1, help="clips generated at once for the speed figures")
    p.add_argument("--seconds", type=float, default=1.0, help="audio generated for the speed figures")
    p.add_argument("--naive-steps", type=int, default=32, help="positions naive generation is timed at (0: whole)")
    p.add_argument("--check", type=int, default=200, help="samples over which the three ways must agree")
    p.add_argument("--no-train", action="store_true", help="generation speed only, untrained weights")
    p.add_argument("--out", help="keep the runs here (default: a temporary folder); a run already there "
                                 "trains on to --minutes, and is evaluated and timed again")
    args = p.parse_args()
    print(f"machine: {describe_machine()}", flush=True)      # beside every figure below
    if not args.minutes > 0 or args.threads < 1 or args.batch < 1 or not args.seconds > 0:
        p.error("--minutes, --threads, --batch and --seconds must be positive")
    torch.set_num_threads(args.threads)
    settings = settings_from_pairs("wavenet", args.set)
    out = Path(args.out or tempfile.mkdtemp(prefix="genlab-bench-wavenet-"))
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for data in (["(untrained)"] if args.no_train else args.data):
        if args.no_train:
            cls = get_model_class("wavenet")
            torch.manual_seed(0)
            model = cls(make_config(cls.Config, settings), AudioInfo(length=args.size or RATE)).eval()
            r = {"data": data}
        else:
            run = train_for("wavenet", data, out / f"wavenet-{data.replace(':', '-').replace('/', '_')}",
                            args.minutes, size=args.size, batch_size=args.batch_size, samples=4,
                            threads=args.threads, live=False, **settings)
            [r] = genlab.evaluate([run], device="cpu", threads=args.threads, live=False)
            rows = metrics(run)
            r.update(data=data, epochs=len(rows), steps=rows[-1]["step"], train_minutes=training_seconds(run) / 60)
            model = genlab.load(run)
        r.update(generation_speed(model, args.batch, args.seconds, args.naive_steps, args.check),
                 params=sum(t.numel() for t in model.parameters()), receptive_field=model.receptive_field)
        results.append(r)
        print(json.dumps({k: v for k, v in r.items() if k != "run"}, default=str), file=sys.stderr, flush=True)

    cfg = make_config(get_model_class("wavenet").Config, settings)
    print(f"\nthreads={args.threads}  device=cpu  wavenet: " + " ".join(
        f"{k}={getattr(cfg, k)}" for k in ("residual_channels", "skip_channels", "head", "layers", "stacks", "crop"))
        + f"  runs in {out}")
    head = (f"{'data':14s} {'train':>9s} {'nats/s':>9s} {'bits/smp':>8s} {'hist':>6s} {'LPC':>6s}   "
            f"{'cached s':>8s} {'window s':>8s} {'full s':>9s} {'×window':>8s} {'×full':>7s} {'same':>4s}")
    print(head + "\n" + "-" * len(head))
    for r in results:
        lik = "".join(f"{r[k]:{w}.{d}f}" if k in r else f"{'—':>{w}s}" for k, w, d in (
            ("nll_nats_per_second", 9, 0), ("nll_bits_per_sample", 9, 3), ("histogram_bits_per_sample", 7, 3),
            ("linear_prediction_bits_per_sample", 7, 3)))
        train = f"{r['train_minutes']:5.1f} min" if "train_minutes" in r else f"{'—':>9s}"
        print(f"{r['data']:14s} {train}{lik}   {r['cached_s']:8.2f} {r['window_s']:8.1f} {r['full_s']:9.1f} "
              f"{r['window_ratio']:8.0f} {r['full_ratio']:7.0f} {'yes' if r['same'] else 'NO':>4s}")
    est = (f"naive timed at {args.naive_steps} positions and summed" if args.naive_steps > 0 else "naive timed whole")
    print(f"Likelihood: exact, on the test split (spoken-digits: unheard voices; notes: unheard instruments); bits per sample of 8-bit μ-law "
          f"codes (8 = uniform); hist: each sample on its own; LPC: linear prediction from the 16 samples before. "
          f"Generation: {args.seconds:g} s of audio ({int(args.seconds * RATE)} samples), {args.batch} clip(s) at "
          f"once, seconds of wall time; {est}; 'same': the three ways gave the same first {args.check} samples "
          f"for the same seed.")
    (out / "benchmark.json").write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    genlab.api.run_script(main)     # bad input: one line and status 2, as `genlab` itself answers it
