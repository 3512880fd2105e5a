"""`genlab demo`: the latent-variable family on the built-in digits, end to end, in a few minutes.

Trains an autoencoder, a VAE and a conditional VAE (binarised pixels) and a Gaussian mixture by EM
(8-bit pixels), each through the same `genlab train`, then writes their sample grids, the VAE's latent
grid, the CVAE's classes and a comparison of test log-likelihoods and sample quality (FID, precision and
recall, mode coverage, memorisation) in one protocol."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import torch

from .data.images import save_grid

# (run name, model, options); the epoch counts are what the figures in the README were made with.
RUNS = [
    ("ae", "ae", ["--epochs", "60", "--batch-size", "64", "--latent-dim", "8"]),
    ("vae", "vae", ["--epochs", "60", "--batch-size", "64", "--latent-dim", "8"]),
    ("vae-2d", "vae", ["--epochs", "60", "--batch-size", "64", "--latent-dim", "2"]),
    ("cvae", "cvae", ["--epochs", "60", "--batch-size", "64", "--latent-dim", "8"]),
    ("gmm", "gmm", ["--epochs", "30", "--components", "10"]),
]


def _genlab(*argv: str) -> None:
    from .cli import main
    code = main(list(argv))
    if code:
        sys.exit(code)


def run_demo(out: Path, device: torch.device, epochs: int | None = None) -> None:
    from .commands import SampleQuality, evaluate_run, load_model
    from .evaluation.sample_quality import METRICS
    from .evaluation.table import format_table

    if out.exists():
        shutil.rmtree(out / "runs", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    dev = ["--device", str(device)]
    for name, model, options in RUNS:
        if epochs:
            options = [*options[:options.index("--epochs")], "--epochs", str(epochs),
                       *options[options.index("--epochs") + 2:]]
        _genlab("train", model, "--data", "digits", "--out", str(out / "runs" / name), *options, *dev)

    # Pictures: samples of each, AE beside VAE, the latent grids, the CVAE class by class.
    g = lambda: torch.Generator(device=device).manual_seed(0)  # noqa: E731
    models = {name: load_model(str(out / "runs" / name), device) for name, _, _ in RUNS}
    for name, m in models.items():
        save_grid(m.sample(64, generator=g()), out / f"samples-{name}.png", nrow=8)
    save_grid(torch.cat([models["ae"].sample(16, generator=g()), models["vae"].sample(16, generator=g())]),
              out / "ae-vs-vae.png", nrow=16)
    _genlab("explore", str(out / "runs" / "vae-2d"), "grid", "--dims", "0", "1", "--steps", "15",
            "-o", str(out / "latent-grid-vae-2d.png"), *dev)
    _genlab("explore", str(out / "runs" / "vae"), "grid", "--dims", "0", "1", "--steps", "11",
            "-o", str(out / "latent-grid-vae.png"), *dev)
    labels = torch.arange(10, device=device).repeat_interleave(10)
    save_grid(models["cvae"].sample(100, condition=labels, generator=g()), out / "cvae-by-class.png", nrow=10)

    quality = SampleQuality(METRICS, None, None, device)      # every metric: likelihood and samples alike
    results = [evaluate_run(str(out / "runs" / name), device, iwae_k=100, metrics=METRICS, quality=quality)
               for name, _, _ in RUNS]
    table = format_table(results)
    (out / "comparison.txt").write_text(table + "\n")
    (out / "comparison.json").write_text(json.dumps(results, indent=2) + "\n")
    print("\n" + table)
    print(f"\npictures and runs in {out}/: samples-*.png, ae-vs-vae.png (top: autoencoder decoding N(0, I) codes; "
          "bottom: VAE), latent-grid-vae-2d.png, cvae-by-class.png, comparison.txt; runs/*/memorisation.png")
