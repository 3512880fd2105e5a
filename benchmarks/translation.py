"""Benchmark: unpaired translation (cyclegan, discogan) against the ground truth, after a stated training time.

Two pairs of domains, each trained with the pairing thrown away (a batch of A and a batch of B are drawn
independently: modalities/image.py), then measured on the held-out images, where the truth is known:

  pokemon   normal ↔ shiny Pokémon sprites (pokemon and pokemon-shiny, both area-averaged to 20×20, or
            --size 40 as they are): image i of both data sets is one creature, so every
            held-out translation is compared with the true counterpart of the same creature:
              MAE       mean absolute error per pixel, 8-bit levels (0–255, every channel)
              within    share of pixels within 16 levels (Euclidean over RGB) of the counterpart's colour
            beside two baselines: the identity (the input itself, untranslated) and the best single
            global colour map fitted on the training pairs (each of 256 quantised colours to the median
            of its counterparts: evaluation/translation.py)
  digits    handwritten ↔ printed digits (mnist and printed-digits, 28×28): each translation is read by
            genlab's classifier of its target domain (trained once on that domain's own labelled
            training images, cached), and counts when it reads the input's digit:
              agreement          mnist → printed read by the printed-digit classifier (and back)
              identity           the same classifier reading the untranslated inputs
              source accuracy    the input domain's own classifier reading the inputs (the ceiling)

Every figure is `genlab eval`'s (also in each run's eval.json), with the round trip's error and the
colour-histogram distances beside it. Each run trains as `genlab train` does at the model's defaults, for its
own number of steps (cyclegan's learning rate decays over them, so the run's length is fixed from the start),
or for --epochs; the table gives the training time each took. A run already in --out resumes to its end.

    python benchmarks/translation.py                                  # both pairs, cyclegan, at its defaults
    python benchmarks/translation.py --pairs pokemon --models cyclegan discogan --out bench-tr
    python benchmarks/translation.py --epochs 1 --set features=8 --set blocks=1     # a quick check

The sprites are © The Pokémon Company: the runs' sample grids stay on this machine.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch
from budget import metrics, train_epochs, training_seconds

import genlab
from genlab.api import settings_from_pairs
from genlab.training.acceleration import describe_machine

PAIRS = {"pokemon": ("pokemon", "pokemon-shiny"), "digits": ("mnist", "printed-digits")}
# (heading, figure, width) of each pair's table; a figure is `genlab eval`'s DIRECTION_figure
COLUMNS = {"pokemon": [("MAE", "mae", 13), ("identity", "identity_mae", 8), ("colour map", "colour_map_mae", 10),
                       ("within", "within", 13), ("identity", "identity_within", 8),
                       ("colour map", "colour_map_within", 10), ("cycle", "cycle", 7)],
           "digits": [("agreement", "agreement", 13), ("identity", "identity_agreement", 8),
                      ("source acc.", "source_accuracy", 11), ("colour TV", "colour_tv", 9),
                      ("identity", "colour_tv_identity", 8), ("cycle", "cycle", 7)]}


def trained(model: str, pair: str, out: Path, args, settings: dict) -> Path:
    """A run of `model` on the two domains of `pair`, trained for --epochs or the model's own length."""
    a, b = PAIRS[pair]
    size = args.size if pair == "pokemon" and args.size != 40 else None
    return train_epochs(model, a, out / f"{model}-{pair}", args.epochs, data_b=b, size=size,
                        batch_size=args.batch_size, samples=36, seed=args.seed, threads=torch.get_num_threads(),
                        live=False, device=args.device, **settings)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    p.add_argument("--models", nargs="+", default=["cyclegan"], choices=["cyclegan", "discogan"])
    p.add_argument("--epochs", type=int, help="epochs per model and pair (default: the model's own length)")
    p.add_argument("--size", type=int, choices=(20, 40), default=20, help="sprite size: 20 (area-averaged) or 40")
    p.add_argument("--batch-size", type=int, help="default: the model's")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a model setting (all models)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--out", help="keep the runs here (default: a temporary folder)")
    args = p.parse_args()
    print(f"machine: {describe_machine()}", flush=True)      # beside every figure below
    if (args.epochs is not None and args.epochs < 1) or args.threads < 1:
        p.error("--epochs and --threads must be positive")
    fields = {m: _fields(m) for m in args.models}
    for item in args.set:
        key = item.split("=", 1)[0].strip()
        if not any(key in f for f in fields.values()):
            p.error(f"--set {item}: no setting {key!r} in {', '.join(args.models)}")
    torch.set_num_threads(args.threads)
    out = Path(args.out or tempfile.mkdtemp(prefix="genlab-bench-translation-"))
    out.mkdir(parents=True, exist_ok=True)

    results = []
    for pair in args.pairs:
        for model in args.models:
            settings = settings_from_pairs(model, [s for s in args.set if s.split("=", 1)[0].strip() in fields[model]])
            run = trained(model, pair, out, args, settings)
            [r] = genlab.evaluate([run], device=args.device, threads=args.threads, live=False)
            rows = metrics(run)
            r.update(pair=pair, epochs=len(rows), steps=rows[-1]["step"], minutes=training_seconds(run) / 60)
            results.append(r)
            print(json.dumps({k: v for k, v in r.items() if k != "run"}, default=str), file=sys.stderr, flush=True)

    print(f"\nthreads={args.threads}  device={args.device}  runs in {out}")
    for pair in args.pairs:
        a, b = PAIRS[pair]
        print(f"\n{pair}: A = {a}, B = {b}" + (f", both at {args.size}×{args.size}" if pair == "pokemon" else ""))
        columns = COLUMNS[pair]
        head = f"{'model':9s} {'dir':4s} {'train':>9s} {'epochs':>6s} " + " ".join(f"{h:>{w}s}" for h, _, w in columns)
        print(head + "\n" + "-" * len(head))
        for r in (r for r in results if r["pair"] == pair):
            for d, cycle in (("a2b", "cycle_a_mae"), ("b2a", "cycle_b_mae")):
                r[f"{d}_cycle"] = r.get(cycle)
                cells = " ".join(f"{_figure(r.get(f'{d}_{k}'), r.get(f'{d}_{k}_se')):>{w}s}" for _, k, w in columns)
                print(f"{r['model']:9s} {d:4s} {r['minutes']:5.1f} min {r['epochs']:6d} {cells}")
    print("\nMAE and cycle in 8-bit levels on the test split; within: share of pixels within 16 levels of the true "
          "counterpart's colour; ± standard error over the held-out images. Agreement: the target domain's "
          "classifier reads the input's digit in the translation; identity: it reads the untranslated input; "
          "source acc.: the input's own domain's classifier reads it. Colour TV: total variation between colour "
          "histograms of the translations and the target's test images (identity: of the inputs).")
    (out / "benchmark.json").write_text(json.dumps(results, indent=2, default=str))


def _figure(v, se=None) -> str:
    if not isinstance(v, (int, float)):
        return "—"
    return f"{v:.3f}" + (f"±{se:.3f}" if isinstance(se, float) else "")


def _fields(model: str) -> set[str]:
    import dataclasses

    from genlab.models import get_model_class
    return {f.name for f in dataclasses.fields(get_model_class(model).Config)}


if __name__ == "__main__":
    genlab.api.run_script(main)     # bad input: one line and status 2, as `genlab` itself answers it
