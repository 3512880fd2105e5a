"""Benchmark: the sentence VAE on real poems and sentences, each trained for a stated time.

Each corpus trains through `genlab.train("sentence-vae", ...)` for its time budget (budget.py: resumed one
epoch at a time with `genlab.resume`, so the run directory is the ordinary one; the last epoch may pass the
budget; --epochs caps the epochs), on one CPU thread. Then the test split is scored (`genlab.evaluate`,
the figures of `genlab eval`: −ELBO, KL, the IWAE bound, per-token perplexity from the IWAE bound with end
tokens counted, the unigram baseline), five new lines are drawn (temperature 1) and two test lines are walked
between in code space (greedy decoding). Prints one table, then the lines.

    python benchmarks/sentence_vae.py --data tang300 --minutes 4 --epochs 30 --iwae-k 100
    python benchmarks/sentence_vae.py --data fortunes --minutes 6.5 --epochs 0 --iwae-k 20 --set min_count=5
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import torch
from budget import train_for, training_seconds

import genlab
from genlab.data.sources.corpora import load_corpus
from genlab.training.acceleration import describe_machine


def two_test_lines(model, data: str) -> tuple[str, str]:
    """Two test lines of five tokens or more with the fewest unknown tokens, starting differently."""
    lines = sorted((s for s in load_corpus(data).test if len(model.info.tokens(s)) >= 5),
                   key=lambda s: len(model.info.unknown(s)))
    first = lines[0]
    return first, next(s for s in lines[1:] if model.info.tokens(s)[0] != model.info.tokens(first)[0])


def bench(data: str, minutes: float, epochs: int, iwae_k: int, out: Path, model_settings: dict[str, str],
          options: str) -> dict:
    run = out / f"sentence-vae-{data}"
    train_for("sentence-vae", data, run, minutes, max_epochs=epochs or 10_000, threads=1, quiet=True,
              **model_settings)
    seconds = training_seconds(run)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    [r] = genlab.evaluate([run], iwae_k=iwae_k, device="cpu", live=False)
    model = genlab.load(run)
    g = torch.Generator().manual_seed(0)
    samples = model.sample_text(5, generator=g)
    a, b = two_test_lines(model, data)
    mu, _ = model.encode_text([a, b])
    t = torch.linspace(0, 1, 8).unsqueeze(1)
    walk = model.decode_text(mu[0] + t * (mu[1] - mu[0]), greedy=True)
    return {**r, "minutes": minutes, "train_seconds": seconds, "epochs": rows[-1]["epoch"],
            "steps": rows[-1]["step"], "tokens_per_s": statistics.median(row["tokens_per_s"] for row in rows),
            "options": options, "samples": samples, "interpolate": [a, b], "walk": walk}


def table(results: list[dict]) -> str:
    cols = [("data", "data"), ("tokens", "tokens"), ("vocab", "vocab"), ("epochs", "epochs"),
            ("train_seconds", "train s"), ("tokens_per_s", "tokens/s"), ("nelbo_nats_per_line", "−ELBO/line"),
            ("kl_nats_per_line", "KL/line"), ("iwae_k", "k"), ("iwae_nats_per_line", "IWAE/line"),
            ("iwae_nats_per_token", "IWAE/token"), ("perplexity", "perplexity"),
            ("unigram_perplexity", "unigram ppl"), ("active_units", "active z")]
    fmt = lambda v: f"{v:,.0f}" if isinstance(v, float) and abs(v) >= 1000 else f"{v:.2f}" if isinstance(v, float) else str(v)  # noqa: E731
    rows = [[fmt(r[k]) if k != "tokens" else r[k].split("s,")[0] for k, _ in cols] for r in results]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, (_, h) in enumerate(cols)]
    line = lambda cells: " | ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line([h for _, h in cols]), "-+-".join("-" * w for w in widths)] + [line(r) for r in rows])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", default=["tang300", "fortunes"])
    p.add_argument("--minutes", type=float, nargs="+", default=[4.0, 6.5], help="training time, one per corpus")
    p.add_argument("--epochs", type=int, nargs="+", default=[30, 0],
                   help="at most this many epochs, one per corpus (0: as many as fit; a small corpus overfits "
                        "past the default 30)")
    p.add_argument("--iwae-k", type=int, nargs="+", default=[100, 20], help="IWAE samples, one per corpus")
    p.add_argument("--out", help="keep the runs here (default: a temporary folder)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a model setting for every run")
    args = p.parse_args()
    print(f"machine: {describe_machine()}", flush=True)      # beside every figure below
    if not len(args.data) == len(args.minutes) == len(args.epochs) == len(args.iwae_k):
        p.error("give one --minutes, --epochs and --iwae-k per corpus")
    torch.set_num_threads(1)               # small recurrent nets: one thread is the fastest on a CPU
    out = Path(args.out or tempfile.mkdtemp(prefix="genlab-bench-"))
    model_settings = genlab.api.settings_from_pairs("sentence-vae", args.set)
    options = " ".join(a for s in args.set for a in ("--set", s))
    results = [bench(*corpus, out, model_settings, options)
               for corpus in zip(args.data, args.minutes, args.epochs, args.iwae_k)]
    print(table(results))
    print("nats on the test split; tokens/s: training, one CPU thread; perplexity per token from the IWAE bound "
          "(k samples), end tokens counted; unigram: each token on its own, from training frequencies.")
    for r in results:
        print(f"\n{r['data']} ({r['epochs']} epochs, {r['steps']} steps{', ' + r['options'] if r['options'] else ''})"
              f" — five samples:")
        print("\n".join(f"  {s}" for s in r["samples"]))
        print(f"  interpolation from {r['interpolate'][0]!r} to {r['interpolate'][1]!r}:")
        print("\n".join(f"  {i}. {s}" for i, s in enumerate(r["walk"])))
    (out / "sentence_vae.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"\nruns and figures in {out}")


if __name__ == "__main__":
    genlab.api.run_script(main)     # bad input: one line and status 2, as `genlab` itself answers it
