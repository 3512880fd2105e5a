"""`genlab demo pokemon`: the lecture's line-up on the Pokémon sprites, end to end on a CPU.

On `pokemon-20` (the 20×20 sprites, 665 train / 68 held-out) it trains, each through the same
`genlab train`:

  gated-pixelcnn  palette pixels (--binarize palette:167): one 167-way softmax per pixel, an exact likelihood,
                  and completion of covered sprites
  vae             latent_dim=2, 8-bit pixels (a Gaussian decoder): a code small enough to draw as a grid
  dcgan           8-bit pixels

then writes one page, report.html: the real held-out sprites above their 167-colour versions, samples of
each model beside real sprites, completions of covered held-out sprites (bottom half and 75%), the VAE's
code grid, each model's nearest-training-sprite picture (a VAE may just memorise), and the evaluation
table (likelihoods, FID / KID / precision / recall / memorisation in the self-supervised features, the
held-out sprites as the reference row, and the completion agreement), with every run's own section.

Time: the epochs below are chosen to fit about 15 minutes in all with one thread (--threads 1). Measured
on a 2-core CPU shared with other work (so slower than on a CPU of its own: 5.7 minutes of CPU time):
16 minutes, of which the gated PixelCNN's 30 epochs 13, the VAE's 150 epochs 1.2, the DCGAN's 100 epochs
1.7, and the evaluation and pictures a few seconds. The first evaluation of the sprites also trains the
self-supervised feature networks (once, then cached; a few minutes). `--epochs N` trains every model N
epochs instead.

The sprites are © The Pokémon Company: the page and pictures stay on this machine (`genlab data fetch
pokemon` builds them here; nothing is shipped)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from . import api, modalities
from .data.containers.images import save_grid
from .data.containers.palette import info_palette, palette_colours, palette_index, quantisation_error
from .data.sources import pokemon
from .errors import UserError
from .evaluation.completion import completion_agreement, format_agreement
from .explore import latent
from .explore.completion import completions
from .runs import Run
from .web.report import write_report

DATA = "pokemon-20"
PALETTE = "palette:167"
# (run name, model, settings): the epochs are the time budget of each (see the docstring).
RUNS = [
    ("gated-pixelcnn", "gated-pixelcnn", dict(epochs=30, binarize=PALETTE)),
    ("vae-2d", "vae", dict(epochs=150, latent_dim=2, binarize="none")),
    ("dcgan", "dcgan", dict(epochs=100, binarize="none")),
]
METRICS = ("likelihood", "fid", "kid", "prdc", "memorisation")   # no classes: no mode coverage, no IS
COVERS = ("bottom-half", "75%")
SHOW = 16             # sprites in a row of the pictures
COMPLETED = 8         # held-out sprites completed in the pictures, each drawn COMPLETIONS times
COMPLETIONS = 6
MISSING = "the Pokémon sprites are not on this machine yet: run `genlab data fetch pokemon` first (it needs npm)"


def held_out(run_path: Path, device) -> tuple[object, torch.Tensor]:
    """A run's model and its held-out images as the model sees them (palette colours, or 8-bit values
    dequantised with the evaluation's fixed seed)."""
    run = Run.open(run_path)
    modality = modalities.of_run(run)
    ds = modality.reload(run, warn=False)
    test = modality.test_batches(ds, run.config["data"]["binarize"], device)
    return api.load(run_path, device), torch.cat([b.x for b in test.epoch(0)])


def run_pokemon_demo(out: Path, device: torch.device, epochs: int | None = None, *, data: str = DATA,
                     features: str | None = None) -> Path:
    """Train the line-up on `data` (default pokemon-20; any image data spec, e.g. folder:PATH), write the
    pictures and report.html into `out` (a new or empty folder); returns the page's path. `features`: a
    TorchScript feature network instead of the self-supervised one."""
    if data in pokemon.DATA_SETS and not pokemon.cache_path().is_file():
        raise UserError(MISSING)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} already exists and is not empty: give the demo a new --out folder")
    out.mkdir(parents=True, exist_ok=True)
    seconds = {}
    paths = {name: out / "runs" / name for name, _, _ in RUNS}
    for name, model, settings in RUNS:
        settings = {**settings, **({"epochs": epochs} if epochs else {})}
        t = time.perf_counter()
        api.train(model, data, paths[name], device=device, samples=32, **settings)
        seconds[name] = round(time.perf_counter() - t, 1)
        print(f"{name}: trained {settings['epochs']} epochs in {seconds[name]:.0f} s", flush=True)

    t = time.perf_counter()
    results = api.evaluate(list(paths.values()), METRICS, iwae_k=100, features=features, device=device)
    table = api.format_results(results)
    completing = [name for name, _, _ in RUNS if "complete" in api.load(paths[name], device).abilities]
    agreement = {name: completion_agreement(*held_out(paths[name], device), COVERS, seed=0) for name in completing}
    text = table + "\n\n" + format_agreement(list(agreement.items()))
    seconds["evaluation"] = round(time.perf_counter() - t, 1)
    (out / "comparison.txt").write_text(text + "\n")
    (out / "comparison.json").write_text(json.dumps({"runs": results, "completion_agreement": agreement,
                                                     "seconds": seconds}, indent=2) + "\n")
    print("\n" + text)

    t = time.perf_counter()
    extra = pictures(out, paths, completing, device)
    extra.append(("Evaluation", out / "comparison.txt",
                  "every run on the held-out sprites: likelihoods, then sample quality with the held-out sprites "
                  "themselves as the reference row (test images) and the real-versus-real floor (training "
                  "images), then how well each autoregressive model completes covered held-out sprites"))
    report = write_report(list(paths.values()), out / "report.html", device=device, quiet=True, extra=extra)
    seconds["pictures"] = round(time.perf_counter() - t, 1)
    (out / "comparison.json").write_text(json.dumps({"runs": results, "completion_agreement": agreement,
                                                     "seconds": seconds}, indent=2) + "\n")
    print(f"\ntime: {', '.join(f'{k} {v:.0f} s' for k, v in seconds.items())}; {sum(seconds.values()) / 60:.1f} "
          "minutes in all")
    print(f"pictures and runs in {out}/: real-vs-palette.png, samples.png, completions-*.png, code-grid-vae-2d.png, "
          "comparison.txt; runs/*/memorisation.png (each model's samples above their nearest training sprites)")
    print(f"all of it on one page, to open in a browser (offline): {report}")
    if data in pokemon.DATA_SETS:
        print(pokemon.NOTE)
    return report


@torch.no_grad()
def pictures(out: Path, paths: dict, completing: list[str], device) -> list[tuple[str, Path, str]]:
    """The demo's own pictures, as (title, file, caption) sections of the page."""
    models = {name: api.load(path, device) for name, path in paths.items()}
    g = lambda: torch.Generator(device=device).manual_seed(0)  # noqa: E731
    run = Run.open(next(iter(paths.values())))
    ds = modalities.of_run(run).load(run.config["data"]["spec"], {"size": run.config["data"].get("size")})
    real = ds.test_x[:SHOW]
    sections = []

    palette_runs = [m for m in models.values() if m.info.pixels == "palette"]
    if palette_runs:
        palette = info_palette(palette_runs[0].info)
        snapped = palette_colours(palette_index(real, palette), palette)
        err = quantisation_error(ds.test_x, palette)
        save_grid(torch.cat([real, snapped]).float() / 255, out / "real-vs-palette.png", nrow=len(real))
        sections.append(("Real sprites and their 167-colour versions", out / "real-vs-palette.png",
                         f"top: held-out sprites; bottom: each pixel snapped to the nearest of the palette's "
                         f"{len(palette)} colours (fitted by k-means to the training sprites). Mean distance per "
                         f"pixel over the held-out sprites: {err['rgb']:.2f} in 8-bit RGB, ΔE76 {err['delta_e']:.2f} "
                         f"(about 2.3 is just noticeable)"))

    rows = [real.float() / 255] + [modalities.get(m.modality).draw(m, len(real), g()).float().cpu()
                                   for m in models.values()]
    save_grid(torch.cat(rows).clamp(0, 1), out / "samples.png", nrow=len(real))
    sections.append(("Samples", out / "samples.png",
                     "top row: held-out sprites; then one row per model: " + ", ".join(models) + " (seed 0)"))

    for name in completing:
        model, images = held_out(paths[name], device)
        for cover in COVERS:
            grid = torch.cat([completions(model, x[None], cover, COMPLETIONS, seed=i)
                              for i, x in enumerate(images[:COMPLETED])])
            path = out / f"completions-{name}-{cover.rstrip('%')}{'pc' if cover.endswith('%') else ''}.png"
            save_grid(grid.clamp(0, 1), path, nrow=COMPLETIONS + 2)
            sections.append((f"Completions by {name}, {cover} covered", path,
                             f"each row a held-out sprite: the original, the covered input (grey), then "
                             f"{COMPLETIONS} completions drawn pixel by pixel given everything above and to the "
                             "left"))

    for name, m in models.items():
        if "decode" in m.abilities and m.latent_dim == 2:
            path = out / f"code-grid-{name}.png"
            save_grid(latent.grid(m, (0, 1), 15, 3.0), path, nrow=15)
            sections.append((f"The code grid of {name}", path,
                             "the decoder's sprite for each code on a 15×15 grid from −3 to 3 in both dimensions "
                             "of the 2-d code (its prior is N(0, I))"))

    for name, path in paths.items():
        if (path / "memorisation.png").is_file():
            sections.append((f"Nearest training sprites: {name}", path / "memorisation.png",
                             "top: the samples closest to the training set; bottom: their nearest training "
                             "sprites (Euclidean, in pixels). Copies would be identical pairs: the NN ratio in "
                             "the table says how close samples sit to the training set against held-out sprites"))
    return sections
