"""Benchmark: autoregressive models on palette pixels (--binarize palette:N), through `genlab.train`.

Prints the exact test NLL in nats per image and bits per pixel (one palette index per pixel) beside the
independent-pixel baseline (an N-way histogram per pixel over the same palette).

Data:
  tinted-digits   the 1,797 8×8 digits as colour images: each drawn in one of 4 inks on one of 2 papers
                  (a fixed seed), written as PNGs and read back as folder:PATH (1,617 train / 180 test)
  fashion-mnist   the built-in 28×28 grey images (60,000 / 10,000)

    python benchmarks/palette.py                                            # tinted digits, ~3 min
    python benchmarks/palette.py --data fashion-mnist --model pixelcnn --colours 8 --epochs 1 \\
        --batch-size 64 --set channels=32 blocks=4 head=32 kernel=7         # ~3 min, 1 thread

Measured with these two commands (one thread of a 2-core CPU shared with other work):

    data           model            colours  epochs  train s   NLL nats  bits/px  hist. nats  hist. bits/px
    tinted-digits  gated-pixelcnn        16      30      121      39.03    0.880      120.25          2.711
    fashion-mnist  pixelcnn               8       1      159     442.67    0.815     1062.85          1.956
"""
from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import genlab
from genlab.data import load_dataset
from genlab.training.acceleration import describe_machine

INKS = [(220, 40, 40), (40, 160, 60), (40, 70, 220), (240, 200, 30)]
PAPERS = [(250, 245, 230), (30, 30, 40)]


def tinted_digits(root: Path) -> Path:
    """Every digit (train, then test) as an RGB PNG: paper·(1 - g) + ink·g for its intensity g."""
    if root.is_dir() and len(list(root.glob("*.png"))) == 1797:
        return root
    root.mkdir(parents=True, exist_ok=True)
    ds = load_dataset("digits")
    rng = np.random.RandomState(0)
    for i, g in enumerate(np.concatenate([ds.train_x.numpy(), ds.test_x.numpy()])[:, 0] / 255.0):
        ink, paper = np.array(INKS[rng.randint(4)], float), np.array(PAPERS[rng.randint(2)], float)
        rgb = paper * (1 - g[..., None]) + ink * g[..., None]
        Image.fromarray(np.rint(rgb).astype(np.uint8)).save(root / f"{i:04d}.png")
    return root




def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="tinted-digits", help="tinted-digits, or any genlab data spec")
    p.add_argument("--model", default="gated-pixelcnn")
    p.add_argument("--colours", type=int, default=16, help="N of palette:N")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="model settings")
    p.add_argument("--out", help="keep the run here (default: a temporary folder)")
    args = p.parse_args()
    print(f"machine: {describe_machine()}", flush=True)      # beside every figure below
    if args.epochs < 1 or args.batch_size < 1 or not args.lr > 0:
        p.error(f"--epochs, --batch-size and --lr must be positive, not {args.epochs}, {args.batch_size} and {args.lr}")
    model_settings = genlab.api.settings_from_pairs(args.model, args.set)
    torch.set_num_threads(args.threads)
    out = Path(args.out or tempfile.mkdtemp(prefix="genlab-bench-palette-"))
    data = f"folder:{tinted_digits(out / 'tinted-digits')}" if args.data == "tinted-digits" else args.data
    run = out / f"{args.model}-{args.data}-palette{args.colours}"
    genlab.train(args.model, data, run, binarize=f"palette:{args.colours}", epochs=args.epochs,
                 batch_size=args.batch_size, lr=args.lr, threads=args.threads, **model_settings)
    [r] = genlab.evaluate([run], iwae_k=0, device="cpu", live=False)
    config = json.loads((run / "config.json").read_text())
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    _, h, w = config["info"]["shape"]
    bits = lambda nats: nats / (h * w * math.log(2))   # noqa: E731  (per pixel: one index each)
    print(f"\n{'data':14s} {'model':15s} {'colours':>7s} {'epochs':>6s} {'train s':>7s} {'NLL nats':>9s} "
          f"{'bits/px':>7s} {'hist. nats':>10s} {'hist. bits/px':>13s}")
    print(f"{args.data:14s} {args.model:15s} {len(config['info']['palette']):7d} {len(rows):6d} "
          f"{sum(row['seconds'] for row in rows):7.0f} {r['nll_nats']:9.2f} {r['nll_bpd']:7.3f} "
          f"{r['baseline_nll_nats']:10.2f} {bits(r['baseline_nll_nats']):13.3f}")
    print("Exact test NLL of the palette indices; bits per pixel = bits per dimension, a dimension being one "
          f"pixel's index. hist.: an N-way histogram per pixel, fitted on the training split. Run: {run}")


if __name__ == "__main__":
    genlab.api.run_script(main)     # bad input: one line and status 2, as `genlab` itself answers it
