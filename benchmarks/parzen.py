"""Benchmark: what the Parzen-window estimate says, beside what genlab can compute exactly (Theis, van den
Oord & Bethge 2016, "A note on the evaluation of generative models", on the user's own runs).

For each data set and each kind of pixels (binarised, 8-bit), the same Parzen rule (evaluation/parzen.py:
bandwidth chosen on half the test split, NLL of the other half, a Bernoulli kernel on bits and a Gaussian on
8-bit pixels + D·log 256) with the same number of kernel centres (--samples) for:

  real images      --samples training images: what real data itself scores;
  k-means k=10/100 the k-means centres of the training split (binarised data: the centres rounded to bits);
  gsn              samples of a generative stochastic network (its own figure: the CSL estimate);
  made, pixelcnn,  samples of models whose exact NLL (or bound) genlab computes, each trained for --minutes
  vae, realnvp,    (binarised: gsn, made, pixelcnn, vae; 8-bit: gsn, realnvp, ddpm, vae);
  ddpm

and beside each its own likelihood figure where it has one, FID in the classifier's features and the
memorisation ratio (median distance to the nearest training image over held-out images').

    python benchmarks/parzen.py --data mnist fashion-mnist --minutes 3 --threads 1
    python benchmarks/parzen.py --data digits --minutes 0.2 --samples 300        # a check that it runs
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch
from budget import metrics, train_for

import genlab
from genlab.data import load_dataset
from genlab.evaluation.likelihood import headline
from genlab.evaluation.quality import SampleQuality
from genlab.evaluation.sample_quality import real_images
from genlab.training.acceleration import describe_machine

MODELS = {"dynamic": ("gsn", "made", "pixelcnn", "vae"), "none": ("gsn", "realnvp", "ddpm", "vae")}
METRICS = ("likelihood", "fid", "memorisation", "parzen")


def kmeans_centres(images: torch.Tensor, k: int, binary: bool, seed: int = 0) -> torch.Tensor:
    from sklearn.cluster import KMeans
    flat = images.flatten(1).double().cpu().numpy()
    centres = torch.from_numpy(KMeans(k, n_init=3, random_state=seed).fit(flat).cluster_centers_).float()
    centres = centres.clamp(0, 1).view(k, *images.shape[1:])
    return (centres > 0.5).float() if binary else centres


def row(name: str, r: dict, pictures: Path | None = None) -> dict:
    key = headline(r)
    what = (r.get("estimates", {}).get(key, [None])[0] or {"nll_nats": "NLL", "nelbo_nats": "−ELBO",
                                                           "iwae_nats": "IWAE"}.get(key)) if key else None
    return {"row": name, "parzen": r.get("parzen_nats"), "parzen_se": r.get("parzen_nats_std"),
            "bandwidth": r.get("parzen_bandwidth"), "own": r.get(key) if key else None,
            "own_se": r.get(f"{key}_se") if key else None, "own_what": what, "fid": r.get("fid"),
            "fid_std": r.get("fid_std"), "nn_ratio": r.get("memorisation_ratio")}


def show(rows: list[dict], data: str, pixels: str, samples: int) -> None:
    f = lambda v, spec: "—" if v is None else format(v, spec)  # noqa: E731
    print(f"\n{data}, {'binarised' if pixels == 'dynamic' else '8-bit'} pixels: Parzen with {samples} kernel "
          f"centres (k-means: k)")
    print(f"{'':16s} {'Parzen NLL':>15s} {'bandwidth':>9s} {'own figure':>22s} {'FID':>13s} {'NN ratio':>8s}")
    for r in rows:
        own = "—" if r["own"] is None else f"{r['own_what']} {r['own']:.1f}" + (
            f"±{r['own_se']:.1f}" if r["own_se"] is not None else "")
        fid = f(r["fid"], ".1f") + ("" if r["fid_std"] is None else f"±{r['fid_std']:.1f}")
        print(f"{r['row']:16s} {f(r['parzen'], '.1f') + '±' + f(r['parzen_se'], '.1f'):>15s} "
              f"{f(r['bandwidth'], '.3g'):>9s} {own:>22s} {fid:>13s} {f(r['nn_ratio'], '.3f'):>8s}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", default=["mnist", "fashion-mnist"])
    p.add_argument("--pixels", nargs="+", default=["dynamic", "none"], choices=("dynamic", "none"))
    p.add_argument("--minutes", type=float, default=3.0, help="training time of each model (default 3)")
    p.add_argument("--samples", type=int, default=2000, help="kernel centres (samples) per row (default 2000)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", help="keep the runs here (default: a temporary folder); a run there trains on")
    args = p.parse_args()
    print(f"machine: {describe_machine()}", flush=True)      # beside every figure below
    torch.set_num_threads(args.threads)
    out = Path(args.out or tempfile.mkdtemp(prefix="genlab-parzen-"))
    for data in args.data:
        ds = load_dataset(data)
        for pixels in args.pixels:
            binary = pixels == "dynamic"
            quality = SampleQuality(list(METRICS), args.samples, None, torch.device("cpu"))
            judge = quality.judge(ds.content_hash(), ds, pixels, live=False)
            rows = [row("real images", judge.floor_row() or judge.judge(judge.reference, parzen=True))]
            train = real_images(ds.train_x, pixels, None, "cpu")
            for k in (10, 100):
                centres = kmeans_centres(train, k, binary)
                rows.append(row(f"k-means k={k}", judge.judge(centres, memorise_picture=out / f"km{k}.png")))
                print(f"{data} {pixels}: k-means k={k} done", file=sys.stderr, flush=True)
            for model in MODELS[pixels]:
                run = out / f"{model}-{data}-{pixels}"
                train_for(model, data, run, args.minutes, binarize=pixels, samples=0, threads=args.threads,
                          device="cpu", live=False, quiet=True)
                [r] = genlab.evaluate([run], METRICS, iwae_k=0, samples=args.samples, device="cpu",
                                      threads=args.threads, live=False)
                rows.append(row(f"{model} ({len(metrics(run))} ep)", r))
                print(f"{data} {pixels}: {model} done", file=sys.stderr, flush=True)
            show(rows, data, pixels, args.samples)
    print("\nParzen NLL: nats per image of the held-out half of the test split (± its standard error); "
          "own figure: the model's exact NLL, bound or estimate on the whole test split; FID in genlab's "
          "classifier's features against as many training images; NN ratio below 1: closer to training "
          f"images than held-out images are. Runs in {out}.")


if __name__ == "__main__":
    genlab.api.run_script(main)
