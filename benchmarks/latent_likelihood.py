"""Benchmark: the VAE and the Gaussian mixture on mnist and fashion-mnist, through `genlab.train`.

Prints one table: test negative ELBO and IWAE bound (VAE, binarised pixels, nats per image), exact NLL
(mixture, 8-bit pixels: nats per image and bits per dimension), training images/s and sampling images/s.

    python benchmarks/latent_likelihood.py --data mnist fashion-mnist --vae-epochs 10 --gmm-epochs 10
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

import genlab
from genlab.training.acceleration import describe_machine


def sampling_rate(run: Path, n: int = 1000, repeats: int = 3) -> float:
    model = genlab.load(run)
    model.sample(16)                                            # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        model.sample(n)
        times.append(time.perf_counter() - t)
    return n / statistics.median(times)


def bench(data: str, model: str, epochs: int, settings: dict, out: Path, iwae_k: int) -> dict:
    run = out / f"{model}-{data}"
    genlab.train(model, data, run, epochs=epochs, threads=torch.get_num_threads(), **settings)
    rows = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    [r] = genlab.evaluate([run], iwae_k=iwae_k, device="cpu", live=False)
    options = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in settings.items())
    return {"data": data, "model": model + (" " + options if options else ""), "epochs": epochs,
            "train_img_s": statistics.median(row["images_per_s"] for row in rows),
            "sample_img_s": sampling_rate(run), **r}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", default=["mnist", "fashion-mnist"])
    p.add_argument("--vae-epochs", type=int, default=10)
    p.add_argument("--gmm-epochs", type=int, default=10)
    p.add_argument("--gmm-covariance", default="diag", choices=("diag", "full"))
    p.add_argument("--iwae-k", type=int, default=100)
    p.add_argument("--out", help="keep the runs here (default: a temporary folder)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = p.parse_args()
    print(f"machine: {describe_machine()}", flush=True)      # beside every figure below
    for flag, epochs in (("--vae-epochs", args.vae_epochs), ("--gmm-epochs", args.gmm_epochs)):
        if epochs < 1:
            p.error(f"{flag} must be positive, not {epochs}")
    torch.set_num_threads(args.threads)
    out = Path(args.out or tempfile.mkdtemp(prefix="genlab-bench-"))
    results = []
    for data in args.data:
        results.append(bench(data, "vae", args.vae_epochs, {}, out, args.iwae_k))
        results.append(bench(data, "gmm", args.gmm_epochs, {"covariance": args.gmm_covariance}, out, 0))
    print(f"\nthreads={torch.get_num_threads()}  device=cpu  runs in {out}")
    head = f"{'data':14s} {'model':20s} {'ep':>3s} {'−ELBO':>8s} {'IWAE':>8s} {'NLL':>8s} {'b/dim':>6s} " \
           f"{'base':>8s} {'train img/s':>11s} {'sample img/s':>12s}"
    print(head + "\n" + "-" * len(head))
    f = lambda r, k, w=8: f"{r[k]:{w}.2f}" if k in r else f"{'—':>{w}s}"  # noqa: E731
    for r in results:
        base = r.get("baseline_gaussian_nll_nats", r["baseline_nll_nats"])
        print(f"{r['data']:14s} {r['model']:20s} {r['epochs']:3d} {f(r, 'nelbo_nats')} {f(r, 'iwae_nats')} "
              f"{f(r, 'nll_nats')} {f(r, 'nll_bpd', 6)} {base:8.2f} {r['train_img_s']:11,.0f} {r['sample_img_s']:12,.0f}")
    print("VAE: dynamically binarised pixels, nats per image (IWAE with k=%d). Mixture: 8-bit pixels, "
          "dequantised density, nats per image and bits/dim. base: independent pixels (Bernoulli for the VAE, "
          "Gaussian for the mixture)." % args.iwae_k)
    (out / "benchmark.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    genlab.api.run_script(main)     # bad input: one line and status 2, as `genlab` itself answers it
