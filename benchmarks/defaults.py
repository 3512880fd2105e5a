"""Benchmark: does every model learn at its defaults? Each registered model is trained with no options but
the data (`genlab.train(model, data)`: the epochs, batch size, learning rate and settings it picks by
itself) on each data set of its kind, scored with `genlab.evaluate`, and set beside the baseline it must
beat. One table:

  figure    the model's test figure: exact NLL (nats per image), −ELBO (nats per image; `iwae` beside it),
            for text −ELBO in nats per token; for models without a likelihood (GANs, the autoencoder) the
            FID of their samples (`genlab.evaluate(metrics=["fid"])`)
  baseline  the independent-pixel baseline of the same figure: `baseline_nll_nats` of the evaluation (for a
            density over 8-bit pixels, gmm, `baseline_gaussian_nll_nats`: a Gaussian per pixel, the
            baseline of its own class); for text the unigram model's nats per token; for FID the FID of
            images whose pixels are drawn independently from the training split's per-pixel marginals
            (Bernoulli per pixel for binarised data, a 256-way histogram per pixel, dequantised, for 8-bit
            data), judged by the same feature network against the same reference images
  gap       figure − baseline: negative is better than the baseline
  KL        the KL term (nats per image; per line for text) of the VAEs, where the code is used or not
  train s   wall-clock seconds of `genlab.train` (its per-epoch test figures included; no sample grids)

    python benchmarks/defaults.py                                   # every model on digits (+ tang300 for text)
    python benchmarks/defaults.py --models vae cvae gmm ae --out /tmp/defaults.json
    python benchmarks/defaults.py --data mnist fashion-mnist --models vae gmm dcgan

Each data set given is used by the models of its kind (images or text); `--data` defaults to digits and
tang300. Runs train with one torch thread unless `--threads` says otherwise.
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
from genlab import modalities
from genlab.models.registry import get_model_class, model_names
from genlab.runs import Run
from genlab.training.acceleration import describe_machine

DEFAULT_DATA = ["digits", "tang300"]


def independent_pixel_images(train_u8: torch.Tensor, binarize: str, n: int, seed: int = 0) -> torch.Tensor:
    """n images N×C×H×W in [0, 1] whose pixels are drawn independently from the training split's per-pixel
    marginals, in the form the model's data take: 0/1 pixels for binarised data (a Bernoulli per pixel:
    the intensity/255 for dynamic binarisation, the share above 0.5 for threshold), dequantised 8-bit
    values (k + u)/256 from a 256-way histogram per pixel for 8-bit data."""
    g = torch.Generator().manual_seed(seed)
    x = train_u8.double()
    shape = train_u8.shape[1:]
    if binarize in ("dynamic", "threshold"):
        p = (x / 255).mean(0) if binarize == "dynamic" else (x >= 128).double().mean(0)
        return torch.bernoulli(p.expand(n, *shape), generator=g).float()
    if binarize != "none":
        raise ValueError(f"no independent-pixel sampler for binarize={binarize!r}")
    flat = train_u8.flatten(1).long()                                        # N×D
    counts = torch.zeros(flat.shape[1], 256, dtype=torch.float64)
    counts.scatter_add_(1, flat.t(), torch.ones_like(flat.t(), dtype=torch.float64))
    values = torch.multinomial(counts / counts.sum(1, keepdim=True), n, replacement=True, generator=g).t()
    u = torch.rand(values.shape, generator=g, dtype=torch.float64) * (1 - 2**-12)
    return ((values.double() + u) / 256).float().view(n, *shape)


class BaselineFID:
    """The FID of independent-pixel images, judged exactly as `genlab.evaluate` judges a run's samples: the
    same feature network, reference images and sample count (one judge per data set and pixel kind)."""

    def __init__(self, device="cpu"):
        from genlab.evaluation.quality import SampleQuality
        self.quality = SampleQuality(["fid"], None, None, torch.device(device))
        self.cache: dict = {}

    def __call__(self, run_path: Path) -> float:
        run = Run.open(run_path)
        d = run.config["data"]
        key = (d.get("hash"), d["binarize"])
        if key not in self.cache:
            ds = modalities.of_run(run).reload(run, warn=False)
            judge = self.quality.judge(d.get("hash"), ds, d["binarize"], False)
            images = independent_pixel_images(ds.train_x, d["binarize"], judge.n)
            self.cache[key] = judge.judge(images)["fid"]
        return self.cache[key]


def first(r: dict, *keys):
    for k in keys:
        if isinstance(r.get(k), (int, float)):
            return r[k]
    return None


def bench(model: str, data: str, out: Path, iwae_k: int, threads: int, baseline_fid: BaselineFID) -> dict:
    cls = get_model_class(model)
    path = out / f"{model}-{data.replace(':', '_').replace('/', '_')}"
    t = time.perf_counter()
    run = genlab.train(model, data, path, threads=threads, quiet=True, samples=0, device="cpu")
    seconds = time.perf_counter() - t
    train = run.config["train"]
    row = {"model": model, "data": data, "epochs": train["epochs"], "batch_size": train["batch_size"],
           "lr": train["lr"], "train_seconds": round(seconds, 1),
           "settings": {k: v for k, v in run.config["config"].items() if k in ("latent_dim", "kl_warmup", "hidden")}}
    if cls.likelihood_kind == "none":
        [r] = genlab.evaluate([path], metrics=["fid"], device="cpu", threads=threads, live=False)
        row.update(kind="FID", figure=r["fid"], figure_std=r.get("fid_std"), baseline=baseline_fid(path))
    elif cls.modality == "text":
        [r] = genlab.evaluate([path], iwae_k=iwae_k, device="cpu", threads=threads, live=False)
        row.update(kind="−ELBO/token", figure=r["nelbo_nats_per_token"], baseline=r["unigram_nats_per_token"],
                   iwae=r.get("iwae_nats_per_token"), kl=first(r, "kl_nats_per_line"),
                   perplexity=r.get("perplexity"), active_units=r.get("active_units"))
    else:
        [r] = genlab.evaluate([path], iwae_k=iwae_k, device="cpu", threads=threads, live=False)
        kind, key = {"exact": ("NLL", "nll_nats"), "bound": ("−ELBO", "nelbo_nats"),
                     "estimate": ("AIS NLL", "nll_ais_nats")}[cls.likelihood_kind]
        # A density over dequantised 8-bit pixels (gmm) is held to the baseline of its own class, a Gaussian
        # per pixel: the 256-way histogram also exploits that the pixels take few values (digits: 17).
        gaussian = r.get("baseline_gaussian_nll_nats") if not cls.discrete else None
        row.update(kind=kind + (" 8-bit" if gaussian is not None else ""), figure=first(r, key),
                   baseline=gaussian if gaussian is not None else r["baseline_nll_nats"],
                   baseline_histogram=r["baseline_nll_nats"], iwae=first(r, "iwae_nats"), kl=first(r, "kl_nats"))
    row["gap"] = row["figure"] - row["baseline"]
    return row


def _number(row: dict, key: str, places: int) -> str:
    return "—" if row.get(key) is None else f"{row[key]:.{places}f}"


def format_table(rows: list[dict]) -> str:
    head = ["model", "data", "epochs", "batch", "lr", "figure", "value", "iwae", "baseline", "gap", "KL", "train s"]
    cells = []
    for r in rows:
        p = 3 if r["kind"].endswith("token") else 2          # nats per token: small numbers
        cells.append([r["model"], r["data"], str(r["epochs"]), str(r["batch_size"]), f"{r['lr']:g}", r["kind"],
                      *(_number(r, k, p) for k in ("figure", "iwae", "baseline", "gap")), _number(r, "kl", 2),
                      f"{r['train_seconds']:.1f}"])
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(head)]

    def line(cs):
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cs, widths)))
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(c) for c in cells])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", default=DEFAULT_DATA,
                   help="data sets; each is used by the models of its kind (default: digits tang300)")
    p.add_argument("--models", nargs="+", default=None, help=f"some of: {' '.join(model_names())} (default all)")
    p.add_argument("--iwae-k", type=int, default=100)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--runs", help="keep the runs here (default: a temporary folder)")
    p.add_argument("--out", help="also write the table's rows to this JSON file")
    args = p.parse_args()
    print(f"machine: {describe_machine()}", flush=True)      # beside every figure below
    names = args.models or model_names()
    for name in names:
        get_model_class(name)                      # an unknown name: one line, before anything trains
    torch.set_num_threads(args.threads)
    out = Path(args.runs or tempfile.mkdtemp(prefix="genlab-defaults-"))
    baseline_fid = BaselineFID()
    rows = []
    for data in args.data:
        kind = modalities.for_spec(data).name
        for name in names:
            if get_model_class(name).modality != kind or get_model_class(name).conditioning == "image":
                continue                           # translators need two domains: benchmarks/translation.py
            print(f"{name} on {data} ...", file=sys.stderr, flush=True)
            rows.append(bench(name, data, out, args.iwae_k, args.threads, baseline_fid))
            print(format_table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(f"\nevery model at its defaults; threads={args.threads}, device=cpu, runs in {out}")
    print(format_table(rows))
    print("figure: nats per image (text: per token) on the test split, or FID (lower is better) for models without "
          "a likelihood; baseline: independent pixels (text: unigram), the same figure; gap = figure − baseline; "
          f"KL in nats per image (text: per line); iwae: the IWAE bound (k={args.iwae_k}).")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    genlab.api.run_script(main)     # bad input: one line and status 2, as `genlab` itself answers it
