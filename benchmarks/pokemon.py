"""Benchmark: the lecture's line-up on the Pokémon sprites, each model trained for the same time.

Is one 1-of-N palette index per pixel better than three 256-way numbers? The same autoregressive model
(same settings) is trained on the same sprites as 3×256 RGB (`--binarize none`: a 256-way softmax per
channel, R then G then B) and as one 167-way palette index (`--binarize palette:167`), for the same
training time; beside them a VAE (latent_dim=2) and a GAN, as the demo trains them. Printed, one table:

  epochs, train s   epochs trained in the time given (--minutes per run) and their training seconds
  NLL               test negative log-likelihood in nats per sprite (exact; the VAE: its IWAE bound on the
                    8-bit values' density plus D·log 256, an upper bound)
  b/dim             bits per dimension as genlab reports it: per channel for RGB, per pixel for a palette
  b/px              bits per pixel, the figure that compares the two (RGB: 3 × its b/dim)
  complete          completion agreement on the held-out sprites (evaluation/completion.py), bottom half and
                    75% covered: the share of covered pixels drawn with the right colour (RGB: all three
                    values right), and −log₂ p(covered | visible) in bits per covered pixel
  FID … near        FID, precision, recall, NN ratio (memorisation: below 1 means closer to the training
                    sprites than held-out sprites are) and the excess share of copies (memorisation.py), by `genlab.evaluate` in the
                    self-supervised features of the sprites (or --features PATH)

The held-out sprites themselves are judged like samples in the last rows (the reference: for the palette
runs, in their 167 colours; for the others, as 8-bit images), and the palette's quantisation error on
them is printed first (RGB distance and CIE76 ΔE; benchmarks/pokemon_palette.py compares RGB and Lab fits).
A picture is written: held-out sprites, then for each autoregressive model its RGB samples above its
palette samples, then the VAE's and the GAN's. The sprites are © The Pokémon Company: keep it to yourself.

Training for a time (budget.py): each run trains one epoch, then is resumed an epoch at a time until its
own training seconds reach --minutes (the palette fit and the evaluations between epochs do not count);
the table shows the seconds each actually trained.

    python benchmarks/pokemon.py --minutes 10                       # 6 runs of 10 minutes on pokemon-20
    python benchmarks/pokemon.py --minutes 20 --autoregressive pixelcnn gated-pixelcnn pixelrnn-row
    python benchmarks/pokemon.py --minutes 0.2 --samples 64         # a check that it runs (a few minutes)

Needs the sprites (`genlab data fetch pokemon`).
"""
from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import torch
from budget import train_for, training_seconds

import genlab
from genlab.data import load_dataset
from genlab.data.containers.images import save_grid
from genlab.data.containers.palette import info_palette, quantisation_error
from genlab.data.sources import pokemon
from genlab.demo_pokemon import held_out
from genlab.errors import UserError
from genlab.evaluation.completion import completion_agreement
from genlab.runs import Run
from genlab.training.acceleration import describe_machine

AUTOREGRESSIVE = ("pixelcnn", "gated-pixelcnn", "pixelrnn-row", "pixelrnn-diag", "pixel-lstm")
OTHERS = {"vae": dict(latent_dim=2, binarize="none"), "dcgan": dict(binarize="none"), "wgan-gp": dict(binarize="none")}
METRICS = ("likelihood", "fid", "prdc", "memorisation")
COVERS = ("bottom-half", "75%")
SHOW = 12


def trained(model: str, data: str, path: Path, minutes: float, threads: int, **settings) -> Run:
    """The run trained for `minutes` of its own training time (budget.py), as a Run."""
    train_for(model, data, path, minutes, samples=0, threads=threads, quiet=True, **settings)
    run = Run.open(path)
    print(f"  {path.name}: {len(run.metrics())} epochs in {training_seconds(path):.0f} s", flush=True)
    return run


def headline(r: dict) -> tuple[float | None, str]:
    """The run's NLL in nats per sprite and what it is: exact, else the IWAE bound, else the ELBO."""
    for key, what in (("nll_nats", ""), ("iwae_nats", "≤"), ("nelbo_nats", "≤")):
        if isinstance(r.get(key), (int, float)):
            return r[key], what
    return None, ""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0, help="training time of each run (default 10)")
    p.add_argument("--data", default="pokemon-20", help="pokemon-20 (default), pokemon, pokemon-shiny")
    p.add_argument("--autoregressive", nargs="+", default=["pixelcnn", "gated-pixelcnn"], choices=AUTOREGRESSIVE,
                   help="models trained both as RGB and as palette:167 (default pixelcnn gated-pixelcnn)")
    p.add_argument("--others", nargs="*", default=["vae", "dcgan"], choices=list(OTHERS),
                   help="the other families (default vae dcgan; the VAE with latent_dim=2)")
    p.add_argument("--colours", type=int, default=167, help="N of palette:N (default 167)")
    p.add_argument("--samples", type=int, help="samples per run for the sample figures (default: half the "
                                                "training split)")
    p.add_argument("--features", help="a TorchScript feature network instead of the self-supervised one")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", help="keep the runs here (default: a temporary folder); runs already there train on")
    p.add_argument("--picture", help="the samples side by side (.png; default: in the runs' folder)")
    args = p.parse_args()
    print(f"machine: {describe_machine()}", flush=True)      # beside every figure below
    if not args.minutes > 0 or not 2 <= args.colours <= 256 or args.threads < 1 or (args.samples or 1) < 1:
        p.error("--minutes must be positive, --colours 2..256, --threads and --samples at least 1")
    if args.data in pokemon.DATA_SETS and not pokemon.cache_path().is_file():
        raise UserError("the Pokémon sprites are not on this machine yet: run `genlab data fetch pokemon` first")
    torch.set_num_threads(args.threads)
    out = Path(args.out or tempfile.mkdtemp(prefix="genlab-bench-pokemon-"))
    palette = f"palette:{args.colours}"

    print(f"training each run for {args.minutes:g} minutes on {args.data}, {args.threads} thread(s) → {out}",
          flush=True)
    runs = {}
    for model in args.autoregressive:
        for pixels in ("none", palette):
            name = f"{model}-{'rgb' if pixels == 'none' else 'palette'}"
            runs[name] = trained(model, args.data, out / name, args.minutes, args.threads, binarize=pixels)
    for model in args.others:
        runs[model] = trained(model, args.data, out / model, args.minutes, args.threads, **OTHERS[model])

    results = {r["run"]: r for r in genlab.evaluate([run.path for run in runs.values()], METRICS, iwae_k=100,
                                                    samples=args.samples, features=args.features,
                                                    device="cpu", live=False)}
    agreement = {}
    for name, run in runs.items():
        if "complete" in run.model_class.abilities:
            agreement[name] = completion_agreement(*held_out(run.path, torch.device("cpu")), COVERS, seed=0)

    ds = load_dataset(args.data)
    _, h, w = ds.shape
    some_palette = next((r for r in runs.values() if r.info.pixels == "palette"), None)
    if some_palette is not None:
        err = quantisation_error(ds.test_x, info_palette(some_palette.info))
        print(f"\n{len(some_palette.info.palette)}-colour palette (fitted to the training sprites) on the held-out "
              f"sprites: mean distance per pixel {err['rgb']:.2f} in 8-bit RGB, CIE76 ΔE {err['delta_e']:.2f}")

    head = ["run", "pixels", "epochs", "train s", "NLL nats", "b/dim", "b/px"]
    for cover in COVERS:
        head += [f"{cover} match", f"{cover} b/px"]
    head += ["features", "FID", "precision", "recall", "NN ratio", "near"]
    networks = list(dict.fromkeys(r["feature_network"] for r in results.values() if r.get("feature_network")))
    feature = lambda r: f"F{networks.index(r['feature_network']) + 1}" if r.get("feature_network") else "—"  # noqa: E731
    rows, refs = [], {}
    for name, run in runs.items():
        r = results[str(run.path)]
        nll, kind = headline(r)
        bpd = next((r[k] for k in ("nll_bpd", "iwae_bpd", "nelbo_bpd") if isinstance(r.get(k), (int, float))), None)
        row = [name, r["pixels"].split()[0], str(len(run.metrics())),
               f"{training_seconds(run.path):.0f}",
               "—" if nll is None else f"{kind}{nll:.1f}", "—" if bpd is None else f"{bpd:.3f}",
               "—" if nll is None else f"{kind}{nll / (h * w * math.log(2)):.3f}"]
        for cover in COVERS:
            f = agreement.get(name, {}).get(cover)
            row += ["—", "—"] if f is None else [_fig(f, "match"), _fig(f, "covered_bits_per_pixel")]
        row += [feature(r), _fig(r, "fid", 2), _fig(r, "precision"), _fig(r, "recall"),
                _fig(r, "memorisation_ratio"), _fig(r, "copy_excess")]
        rows.append(row)
        if r.get("data_reference"):
            refs.setdefault(r["pixels"].split()[0], (r["data_reference"], feature(r)))
    for pixels, (ref, net) in refs.items():
        rows.append(["(held-out sprites)", pixels] + ["—"] * (len(head) - 8)
                    + [net, _fig(ref, "fid", 2), _fig(ref, "precision"), _fig(ref, "recall"),
                       _fig(ref, "memorisation_ratio"), _fig(ref, "copy_excess")])
    widths = [max(len(hd), *(len(row[i]) for row in rows)) for i, hd in enumerate(head)]
    line = lambda cells: "  ".join(c.ljust(wd) if i < 2 else c.rjust(wd)  # noqa: E731
                                   for i, (c, wd) in enumerate(zip(cells, widths)))
    print("\n" + "\n".join([line(head), line(["-" * wd for wd in widths])] + [line(row) for row in rows]))
    print(f"NLL: nats per held-out sprite (≤: a bound); b/dim per channel for none (RGB), per pixel for a palette; "
          f"b/px = NLL / ({h}·{w}·ln 2), comparable across the two. match: share of covered pixels drawn exactly "
          f"right (one completion each, seed 0); b/px after it: −log₂ p(covered | visible) per covered pixel. "
          f"Sample figures ({results[str(next(iter(runs.values())).path)].get('samples')} samples each) in "
          "the feature networks named in the column features: "
          + "; ".join(f"F{i + 1}: {n}" for i, n in enumerate(networks))
          + ". Figures compare only within one feature network. (held-out sprites): the test split judged like "
          "samples, per pixel kind.")

    picture = Path(args.picture or out / "samples-side-by-side.png")
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    grid = [ds.test_x[:SHOW].float() / 255] + [genlab.load(run.path).sample(SHOW, generator=g()).float()
                                                for run in runs.values()]
    save_grid(torch.cat(grid).clamp(0, 1), picture, nrow=SHOW)
    print(f"\nwrote {picture}: rows = held-out sprites, then " + ", ".join(runs) + f" (seed 0). Runs: {out}. "
          "The sprites are © The Pokémon Company: keep the picture to yourself.")


def _fig(r: dict, key: str, decimals: int = 3) -> str:
    v = r.get(key)
    return "—" if not isinstance(v, (int, float)) else f"{v:.{decimals}f}"


if __name__ == "__main__":
    genlab.api.run_script(main)     # bad input: one line and status 2, as `genlab` itself answers it
