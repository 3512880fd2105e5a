"""Benchmark: does genlab's self-supervised feature network (SimCLR, trained on the images alone) rank models
as the classifier's features do? On labelled data sets, runs of several models and training lengths are
judged by FID twice — in the classifier's feature space and in the self-supervised one — with the same
samples and reference images, and Spearman's rank correlation of the two FIDs is printed per data set.

A correlation near 1 says the label-free FID orders models as the labelled one does: what makes its
figures on unlabelled data (a user's folder, sprites) worth reading.

    python benchmarks/selfsup_rank.py                                   # mnist, fashion-mnist; 5 models × 2 lengths
    python benchmarks/selfsup_rank.py --data mnist --models vae ae gmm --epochs 1 3 10 --out runs/rank
    python benchmarks/selfsup_rank.py --data digits --models gmm ae vae --epochs 1 5 --samples 300 --steps 100
    python benchmarks/selfsup_rank.py --runs bench/taxonomy-mnist/* --samples 2000     # runs already trained
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

import genlab
from genlab import modalities
from genlab.evaluation import selfsup
from genlab.evaluation.quality import SELFSUP, SampleQuality
from genlab.models.registry import get_model_class
from genlab.runs import Run
from genlab.training.acceleration import describe_machine

DEFAULT_DATA = ["mnist", "fashion-mnist"]
DEFAULT_MODELS = ["vae", "ae", "gmm", "dcgan", "made"]
DEFAULT_EPOCHS = [1, 5]


def train_runs(data: str, models: list[str], epochs: list[int], out: Path, threads: int) -> list[Path]:
    """One run per model and training length, reused when its directory is already there."""
    paths = []
    for model in models:
        for e in epochs:
            path = out / f"{model}-{data.replace(':', '_').replace('/', '_')}-{e}ep"
            if not (path / "model.safetensors").is_file():
                print(f"train {model} on {data} for {e} epoch(s) ...", file=sys.stderr, flush=True)
                genlab.train(model, data, path, epochs=e, threads=threads, quiet=True, samples=0, device="cpu")
            paths.append(path)
    return paths


def judge_both(paths: list[Path], samples: int | None, device) -> tuple[list[dict], dict[str, str]]:
    """FID of each run in both feature spaces: the same samples (seed 0) and references for both."""
    judges = {"classifier": SampleQuality(["fid"], samples, None, device),
              "selfsup": SampleQuality(["fid"], samples, SELFSUP, device)}
    rows, names = [], {}
    for path in paths:
        run = Run.open(path)
        d = run.config["data"]
        model = genlab.load(path, device=device)
        ds = modalities.of_run(run).reload(run, warn=False)
        row = {"run": path.name, "model": model.name, "pixels": d["binarize"],
               "epochs": (run.metrics() or [{"epoch": 0}])[-1]["epoch"]}
        for kind, quality in judges.items():
            t = time.perf_counter()
            r = quality.report(model, path, d.get("hash"), ds, d["binarize"], live=False)
            row[kind], row[f"{kind}_std"] = r["fid"], r["fid_std"]
            row[f"{kind}_seconds"] = round(time.perf_counter() - t, 1)
            names[kind] = r["feature_network"]
        rows.append(row)
    return rows, names


def spearman(rows: list[dict]) -> tuple[float, float]:
    from scipy.stats import spearmanr
    if len(rows) < 3:
        return float("nan"), float("nan")
    result = spearmanr([r["classifier"] for r in rows], [r["selfsup"] for r in rows])
    return float(result.statistic), float(result.pvalue)


def ranks(values: list[float]) -> list[int]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0] * len(values)
    for rank, i in enumerate(order, 1):
        out[i] = rank
    return out


def format_table(rows: list[dict]) -> str:
    head = ["run", "model", "pixels", "epochs", "FID classifier", "rank", "FID self-sup.", "rank"]
    rc, rs = ranks([r["classifier"] for r in rows]), ranks([r["selfsup"] for r in rows])
    cells = [[r["run"], r["model"], r["pixels"], str(r["epochs"]), f"{r['classifier']:.2f}±{r['classifier_std']:.2f}",
              str(a), f"{r['selfsup']:.2f}±{r['selfsup_std']:.2f}", str(b)] for r, a, b in zip(rows, rc, rs)]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head)]

    def line(cs):
        return "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(cs, widths)))
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(c) for c in cells])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", default=DEFAULT_DATA, help="labelled image data sets")
    p.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    p.add_argument("--epochs", nargs="+", type=int, default=DEFAULT_EPOCHS,
                   help="training lengths: one run of each model per length (default 1 5)")
    p.add_argument("--samples", type=int, default=None,
                   help="samples per run (default: as genlab eval, half the training split, at most 10,000)")
    p.add_argument("--steps", type=int, default=None,
                   help=f"training steps of the self-supervised network (default {selfsup.STEPS}; cached per value)")
    p.add_argument("--out", default="runs/selfsup-rank", help="the runs, trained here or reused from here")
    p.add_argument("--runs", nargs="+", help="judge these image runs instead of training (grouped by their data)")
    p.add_argument("--json", help="also write the rows and correlations to this JSON file")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    print(f"machine: {describe_machine()}", flush=True)      # beside every figure below
    if any(e < 1 for e in args.epochs):
        p.error("--epochs must be positive")
    if args.samples is not None and args.samples < 2:
        p.error("--samples must be at least 2")
    if args.steps is not None:
        if args.steps < 1:
            p.error("--steps must be positive")
        selfsup.STEPS = args.steps
    for name in args.models:
        get_model_class(name)                       # an unknown name: one line, before anything trains
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    report = {}
    given = {}
    for path in args.runs or []:                        # existing runs, one group per data set
        run = Run.open(path)
        if modalities.of_run(run).name != "image" or "translate" in run.model_class.abilities:
            raise genlab.UserError(f"{path}: FID needs a run that draws images")
        given.setdefault(run.config["data"]["spec"], []).append(Path(path))
    for data in given or args.data:
        if modalities.for_spec(data).name != "image":
            raise genlab.UserError(f"{data}: FID needs image data")
        paths = given.get(data) or train_runs(data, args.models, args.epochs, Path(args.out), args.threads)
        rows, names = judge_both(paths, args.samples, device)
        rho, pvalue = spearman(rows)
        print(f"\n{data}: {len(rows)} runs; threads={args.threads}, device=cpu")
        print(format_table(rows))
        print(f"classifier: {names['classifier']}\nself-supervised: {names['selfsup']}")
        print(f"Spearman's rank correlation of the two FIDs: {rho:.3f} (p = {pvalue:.2g}, {len(rows)} runs)")
        report[data] = {"rows": rows, "networks": names, "spearman": rho, "p_value": pvalue}
    print("\nFID of each run's samples against as many training images, in each feature space (same samples, same "
          "references; ± bootstrap standard deviation). Runs of 8-bit and binarised pixels are each judged against "
          "real images of their own kind, by both networks alike. rank 1: the lowest FID.")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    genlab.api.run_script(main)     # bad input: one line and status 2, as `genlab` itself answers it
