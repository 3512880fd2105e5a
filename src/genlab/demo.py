"""`genlab demo`: the latent-variable family on the built-in digits, end to end, in a few minutes.

Trains an autoencoder, a VAE and a conditional VAE (binarised pixels) and a Gaussian mixture by EM
(8-bit pixels), each through the same `genlab train`, then writes their sample grids, the VAE's latent
grid, the CVAE's classes and a comparison of test log-likelihoods and sample quality (FID, precision and
recall, mode coverage, memorisation) in one protocol, and ends with all of it on one page (report.html)."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from . import api
from .data.containers.images import save_grid
from .errors import UserError
from .explore import latent
from .web.report import write_report

# (run name, model, settings); the epoch counts are what the figures in the README were made with.
RUNS = [
    ("ae", "ae", dict(epochs=60, batch_size=64, latent_dim=8)),
    ("vae", "vae", dict(epochs=60, batch_size=64, latent_dim=8)),
    ("vae-2d", "vae", dict(epochs=60, batch_size=64, latent_dim=2)),
    ("cvae", "cvae", dict(epochs=60, batch_size=64, latent_dim=8)),
    ("gmm", "gmm", dict(epochs=30, components=10)),
]


def run_demo(out: Path, device: torch.device, epochs: int | None = None) -> None:
    # Nothing the user had is touched: an output folder that already holds files is refused, not emptied.
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} already exists and is not empty: give the demo a new --out folder")
    out.mkdir(parents=True, exist_ok=True)
    for name, model, settings in RUNS:
        settings = {**settings, **({"epochs": epochs} if epochs else {})}
        api.train(model, "digits", out / "runs" / name, device=device, **settings)

    # Pictures: samples of each, AE beside VAE, the latent grids, the CVAE class by class.
    g = lambda: torch.Generator(device=device).manual_seed(0)  # noqa: E731
    models = {name: api.load(out / "runs" / name, device) for name, _, _ in RUNS}
    for name, m in models.items():
        save_grid(m.sample(64, generator=g()), out / f"samples-{name}.png", nrow=8)
    save_grid(torch.cat([models["ae"].sample(16, generator=g()), models["vae"].sample(16, generator=g())]),
              out / "ae-vs-vae.png", nrow=16)
    save_grid(latent.grid(models["vae-2d"], (0, 1), 15, 3.0), out / "latent-grid-vae-2d.png", nrow=15)
    save_grid(latent.grid(models["vae"], (0, 1), 11, 3.0), out / "latent-grid-vae.png", nrow=11)
    labels = torch.arange(10, device=device).repeat_interleave(10)
    save_grid(models["cvae"].sample(100, condition=labels, generator=g()), out / "cvae-by-class.png", nrow=10)

    # Every metric, likelihood and samples alike, in one protocol.
    results = api.evaluate([out / "runs" / name for name, _, _ in RUNS], ["all"], iwae_k=100, device=device)
    table = api.format_results(results)
    (out / "comparison.txt").write_text(table + "\n")
    (out / "comparison.json").write_text(json.dumps(results, indent=2) + "\n")
    print("\n" + table)
    # One page of it all: every run's curves, samples and views, and the table (web/report.py).
    report = write_report([out / "runs" / name for name, _, _ in RUNS], out / "report.html", device=device,
                          quiet=True)
    print(f"\npictures and runs in {out}/: samples-*.png, ae-vs-vae.png (top: autoencoder decoding N(0, I) codes; "
          "bottom: VAE), latent-grid-vae-2d.png, cvae-by-class.png, comparison.txt; runs/*/memorisation.png")
    print(f"all of it on one page, to open in a browser (offline): {report}")
