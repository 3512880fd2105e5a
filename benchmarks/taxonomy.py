"""Benchmark: the whole taxonomy on one data set — the newer branches (NADE, MADE, a Boltzmann machine,
two flows, diffusion) beside the lecture's families, each trained for the same stated time on a CPU and
judged by the same evaluation: one table.

Binarised images for the fully visible belief nets, the RBM and the reference VAE and PixelCNN (nats per
image, exact, an AIS estimate, or a bound); 8-bit images, uniformly dequantised, for the flows, the
diffusion and the Gaussian mixture (nats per image of the 8-bit values — the density's NLL plus D·log 256 —
and bits per dimension). Then the samples: FID, precision, recall (genlab's classifier of the data as the
feature network) and memorisation (the median ratio of each sample's distance to its nearest training image
over held-out images' — below 1: closer to the training images than new images are), each on --samples
samples against as many training images, binarised runs against binarised images.

    python benchmarks/taxonomy.py --data mnist --minutes 3
    python benchmarks/taxonomy.py --data fashion-mnist --minutes 3 --set ddpm:bound_timesteps=2
    python benchmarks/taxonomy.py --data digits --minutes 0.1 --samples 200      # a check that it runs

Each model trains with its defaults but the epochs (see budget.py), or what --set MODEL:KEY=VALUE says; the
time is training time alone (whole epochs: on fashion-mnist's 60,000 images a slow model's one epoch may pass
it, and the table says how long each trained). On a test split of 10,000 images, DDPM's bound estimated from
fewer timesteps per image (ddpm:bound_timesteps=2) is as unbiased and, over so many images, still precise:
its ± says so.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

import genlab
from budget import metrics, train_for, training_seconds
from genlab.api import settings_from_pairs
from genlab.models.registry import get_model_class
from genlab.training.acceleration import describe_machine

NEW = ("nade", "made", "rbm", "realnvp", "glow", "ddpm")
REFERENCE = ("vae", "pixelcnn", "gmm")            # the lecture's families, for comparison
KEYS = {"exact": "nll_nats", "bound": "nelbo_nats", "estimate": "nll_ais_nats"}
SAMPLE_METRICS = ("fid", "prdc", "memorisation")


def figure(r: dict, kind: str) -> tuple[float, float | None, str]:
    key = "iwae_nats" if kind == "bound" and "iwae_nats" in r else KEYS[kind]
    name = {"nll_nats": "NLL", "nelbo_nats": "−ELBO", "iwae_nats": "IWAE", "nll_ais_nats": "AIS"}[key]
    return r[key], r.get(key + "_se"), name


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="mnist")
    p.add_argument("--models", nargs="+", default=list(NEW + REFERENCE))
    p.add_argument("--minutes", type=float, default=3.0, help="training time of each model (default 3)")
    p.add_argument("--samples", type=int, default=2000, help="samples (and reference images) per run (default 2000)")
    p.add_argument("--iwae-k", type=int, default=100)
    p.add_argument("--set", action="append", default=[], metavar="MODEL:KEY=VALUE",
                   help="a setting of one model, e.g. ddpm:bound_timesteps=2")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", help="keep the runs here (default: a temporary folder); a run there trains on")
    p.add_argument("--json", help="also write the rows here")
    args = p.parse_args()
    print(f"machine: {describe_machine()}", flush=True)      # beside every figure below
    for name in args.models:
        get_model_class(name)
    settings = {name: [] for name in args.models}
    for item in args.set:
        name, _, pair = item.partition(":")
        if name not in settings or not pair:
            raise genlab.UserError(f"--set takes MODEL:KEY=VALUE for one of {', '.join(args.models)}, not {item!r}")
        settings[name].append(pair)
    settings = {name: settings_from_pairs(name, pairs) for name, pairs in settings.items()}
    torch.set_num_threads(args.threads)
    out = Path(args.out or tempfile.mkdtemp(prefix="genlab-taxonomy-"))
    rows = []
    for name in args.models:
        cls = get_model_class(name)
        print(f"{name} on {args.data}: {args.minutes} min ...", file=sys.stderr, flush=True)
        run = train_for(name, args.data, out / f"{name}-{args.data}", args.minutes, samples=0, threads=args.threads,
                        device="cpu", live=False, quiet=True, **settings[name])
        t = time.perf_counter()
        [r] = genlab.evaluate([run], ("likelihood",) + SAMPLE_METRICS, iwae_k=args.iwae_k, samples=args.samples,
                              device="cpu", threads=args.threads, live=False)
        nll, se, what = figure(r, cls.likelihood_kind)
        rows.append({"model": name, "family": cls.family, "pixels": r.get("pixels", ""), "epochs": len(metrics(run)),
                     "train_s": training_seconds(run), "figure": what, "nll": nll, "nll_se": se,
                     "bpd": r.get(KEYS[cls.likelihood_kind].replace("_nats", "_bpd")),
                     "baseline": r.get("baseline_nll_nats"), "fid": r.get("fid"), "fid_std": r.get("fid_std"),
                     "precision": r.get("precision"), "recall": r.get("recall"),
                     "nn_ratio": r.get("memorisation_ratio"), "eval_s": time.perf_counter() - t})
        print(format_row(rows[-1]), file=sys.stderr, flush=True)
    print(f"\n{args.data}: each model trained {args.minutes} min (2-core CPU, {args.threads} threads), "
          f"{args.samples} samples; runs in {out}")
    print(HEADER)
    for row in rows:
        print(format_row(row))
    print("NLL: nats per image on the test split (± standard error; AIS: also log Z's); 8-bit runs: of the "
          "8-bit values (density + D·log 256); b/dim: bits per dimension; base: each pixel on its own "
          "(binarised: Bernoulli; 8-bit: a 256-way histogram per pixel); NN ratio: memorisation's median ratio")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


HEADER = (f"{'model':9s} {'family':15s} {'pixels':17s} {'epochs':>6s} {'train s':>7s} {'figure':6s} "
          f"{'NLL':>15s} {'b/dim':>6s} {'base':>7s} {'FID':>13s} {'prec':>5s} {'rec':>5s} {'NN':>5s}")


def format_row(r: dict) -> str:
    f = lambda v, spec: "—" if v is None else format(v, spec)  # noqa: E731
    nll = f"{r['nll']:.2f}" + (f"±{r['nll_se']:.2f}" if r["nll_se"] is not None else "")
    fid = f(r["fid"], ".2f") + (f"±{r['fid_std']:.2f}" if r.get("fid_std") is not None else "")
    return (f"{r['model']:9s} {r['family']:15s} {str(r['pixels']):17s} {r['epochs']:6d} {r['train_s']:7.0f} "
            f"{r['figure']:6s} {nll:>15s} {f(r['bpd'], '6.3f'):>6s} {f(r['baseline'], '7.2f'):>7s} {fid:>13s} "
            f"{f(r['precision'], '5.2f'):>5s} {f(r['recall'], '5.2f'):>5s} {f(r['nn_ratio'], '5.2f'):>5s}")


if __name__ == "__main__":
    genlab.api.run_script(main)
