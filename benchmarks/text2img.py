"""Benchmark: text-to-image (text2img, GAN-CLS with GAN-INT) after a stated training time, beside a
class-conditional GAN (cgan) with the same nets, trained as long.

Both train an epoch at a time until their training seconds reach --minutes. text2img learns from the
captions genlab writes (data/captions/: the class and the measured attributes of each image, in varied
words), with some class × attribute combinations held out (--holdout: those words are never said of that
class in training). Then, on samples:

  class accuracy     genlab's classifier of the data (trained once on its labelled training images, cached)
                     reads the class the caption names: one sample for each test image's caption (the
                     held-out words left out, as in training), up to --per-class per class; cgan: as many
                     samples of each class, drawn with its label
  attribute agree.   for each class and attribute, "a <high word> <class>" against "a <low word> <class>"
                     ("a thick seven" against "a thin seven"), drawn with the same noise z: the share of pairs
                     whose measured attribute (stroke width, slant, size; for clothes brightness, area,
                     width) is ordered as the captions say (0.5: the words do nothing), held-out pairs aside
  caption diversity  each class's plain caption ("a seven") drawn --pairs times with different noise z: the
                     mean pairwise distance of those samples over that of the class's real test images
                     (0: one image per caption whatever z; about 1: as varied as the class's own drawings)
  novel captions     each held-out combination said in a caption ("a thick seven", never seen): the class
                     accuracy of its samples, and its attribute agreement against the opposite (seen) word

± is the standard error over the samples (over the classes' figures for the mean agreement). A grid of
samples, one row per caption (printed with the row numbers), is written to OUT/text2img-DATA-captions.png.

    python benchmarks/text2img.py                                   # mnist, 30 minutes each
    python benchmarks/text2img.py --data fashion-mnist --minutes 60 --out bench-t2i
    python benchmarks/text2img.py --data digits --minutes 0.2 --set hidden=64 --set text_hidden=32   # a check
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import random
import tempfile
from pathlib import Path

import torch
from budget import metrics, train_for, training_seconds

import genlab
from genlab.api import settings_from_pairs
from genlab.data import load_dataset
from genlab.data.captions.batches import split_captions, token_ids
from genlab.data.captions.grammar import HIGH, LOW, MID, parse_holdout, scheme_for
from genlab.data.containers.images import save_grid
from genlab.evaluation.class_agreement import caption, draw, pair_agreement, read
from genlab.evaluation.features import builtin_network
from genlab.models import get_model_class
from genlab.models.adversarial.indicators import mean_pairwise_distance
from genlab.training.acceleration import describe_machine

HOLDOUT = {"digits": "thick 7, thin 3, slanted 4, upright 9, large 2, small 8",
           "clothes": "bright coat, dark t-shirt, wide dress, narrow bag, large sneaker, small pullover"}
GRID_COLUMNS = 10
GRID_ATTRIBUTE = {"digits": 1, "clothes": 0}     # stroke width; brightness


def trained(model: str, data: str, out: Path, args, settings: dict) -> Path:
    return train_for(model, data, out / f"{model}-{data}", args.minutes, batch_size=args.batch_size, samples=36,
                     seed=args.seed, threads=torch.get_num_threads(), live=False, device=args.device, **settings)


def share(hits: torch.Tensor) -> tuple[float, float]:
    """A share and its standard error."""
    p, n = float(hits.float().mean()), len(hits)
    return p, (p * (1 - p) / max(n, 1)) ** 0.5


@torch.no_grad()
def measure_runs(t2i, cgan, ds, args, out: Path) -> dict:
    scheme = scheme_for(ds)
    held = parse_holdout(scheme, t2i.config.holdout)
    network = builtin_network(ds, t2i.device)
    rng = random.Random(args.seed)

    # Class accuracy: the test split's captions (as training says them), up to --per-class of each class.
    _, test = split_captions(ds, {"holdout": t2i.config.holdout})
    idx = torch.cat([torch.nonzero(ds.test_y == k).flatten()[:args.per_class] for k in range(ds.num_classes)])
    labels = ds.test_y[idx]
    lines = test.lines(idx.tolist(), rng)
    t2i_hits, cgan_hits = [], []
    for s in range(0, len(idx), 500):
        part = slice(s, s + 500)
        tokens = token_ids(t2i.info.vocab, lines[part], t2i.device)
        t2i_hits.append(read(network, draw(t2i, len(tokens), args.seed + s, tokens)) == labels[part])
        y = labels[part].to(cgan.device)
        cgan_hits.append(read(network, draw(cgan, len(y), args.seed + s, y)) == labels[part])
    result = {"class_accuracy": share(torch.cat(t2i_hits)), "cgan_class_accuracy": share(torch.cat(cgan_hits)),
              "samples_per_model": len(idx), "classifier": network.name}

    # Caption diversity: one caption, many z, against the spread of that class's real images.
    ratios = []
    for k in range(ds.num_classes):
        tokens = token_ids(t2i.info.vocab, [caption(scheme, k, 0, MID, rng)], t2i.device)
        real = ds.test_x[ds.test_y == k][:args.pairs].float() / 255
        ratios.append(mean_pairwise_distance(draw(t2i, args.pairs, args.seed + k, tokens).cpu())
                      / mean_pairwise_distance(real))
    mean = sum(ratios) / len(ratios)
    se = (sum((r - mean) ** 2 for r in ratios) / max(len(ratios) - 1, 1) / len(ratios)) ** 0.5
    result["caption_diversity"] = (mean, se)

    # Attribute agreement of seen combinations, per attribute over the classes.
    held_pairs = {(c, a) for c, a, _ in held}
    per_attribute = {}
    for a, attribute in enumerate(scheme.attributes):
        figures = [pair_agreement(t2i, scheme, k, a, args.pairs, args.seed + 7 * k, rng)
                   for k in range(ds.num_classes) if (k, a) not in held_pairs]
        mean = sum(figures) / len(figures)
        se = (sum((f - mean) ** 2 for f in figures) / max(len(figures) - 1, 1) / len(figures)) ** 0.5
        per_attribute[attribute.name] = (mean, se)
    result["attribute_agreement"] = per_attribute

    # Novel captions: each held-out combination said.
    novel = []
    for label, a, level in held:
        lines = [caption(scheme, label, a, level, rng) for _ in range(args.pairs)]
        images = draw(t2i, args.pairs, args.seed + 11, token_ids(t2i.info.vocab, lines, t2i.device))
        opposite = [caption(scheme, label, a, -level, rng) for _ in range(args.pairs)]
        others = draw(t2i, args.pairs, args.seed + 11, token_ids(t2i.info.vocab, opposite, t2i.device))
        measure = scheme.attributes[a].measure
        mine, theirs = measure(images.cpu()), measure(others.cpu())
        ordered = (mine > theirs) if level == HIGH else (mine < theirs)
        novel.append({"caption": lines[0], "class": ds.class_names[label], "attribute": scheme.attributes[a].name,
                      "accuracy": share(read(network, images) == label), "agreement": share(ordered),
                      "seen_accuracy": share(read(network, others) == label)})
    result["novel"] = novel

    # The picture: per class a row of each level of one attribute (digits: thin and thick; clothes: dark and
    # bright), then the novel captions.
    shown = GRID_ATTRIBUTE.get(scheme.name, 0)
    rows = [caption(scheme, k, shown, level, rng) for k in range(ds.num_classes) for level in (LOW, HIGH)]
    rows += [n["caption"] for n in novel]
    grid = torch.cat([draw(t2i, GRID_COLUMNS, args.seed, token_ids(t2i.info.vocab, [r], t2i.device)) for r in rows])
    result["grid"] = str(save_grid(grid.cpu(), out / f"text2img-{args.data}-captions.png", nrow=GRID_COLUMNS))
    result["grid_rows"] = rows
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="mnist", choices=["digits", "mnist", "printed-digits", "fashion-mnist"])
    p.add_argument("--minutes", type=float, default=30.0, help="training time of each model (default 30)")
    p.add_argument("--holdout", help="class × attribute combinations never said in training (default: six, "
                                     f"digits: {HOLDOUT['digits']!r}; clothes: {HOLDOUT['clothes']!r})")
    p.add_argument("--per-class", type=int, default=100, help="samples per class for class accuracy (default 100)")
    p.add_argument("--pairs", type=int, default=50, help="same-noise pairs per class and attribute (default 50)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a text2img setting; those cgan has too (latent_dim, net, hidden, features) go to both")
    p.add_argument("--batch-size", type=int, help="default: the models' (64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--out", help="keep the runs here (default: a temporary folder)")
    args = p.parse_args()
    print(f"machine: {describe_machine()}", flush=True)      # beside every figure below
    if not args.minutes > 0 or args.threads < 1 or args.per_class < 1 or args.pairs < 2:
        p.error("--minutes, --threads and --per-class must be positive, --pairs at least 2")
    torch.set_num_threads(args.threads)
    out = Path(args.out or tempfile.mkdtemp(prefix="genlab-bench-t2i-"))
    out.mkdir(parents=True, exist_ok=True)

    ds = load_dataset(args.data)
    scheme = scheme_for(ds)
    holdout = args.holdout if args.holdout is not None else HOLDOUT.get(scheme.name, "")
    settings = settings_from_pairs("text2img", args.set)
    shared = {f.name for f in dataclasses.fields(get_model_class("cgan").Config)}
    t2i_run = trained("text2img", args.data, out, args, {**settings, "holdout": holdout})
    cgan_run = trained("cgan", args.data, out, args, {k: v for k, v in settings.items() if k in shared})
    t2i, cgan = (genlab.load(r, device=genlab.api.setup_torch(args.device)) for r in (t2i_run, cgan_run))
    r = measure_runs(t2i, cgan, ds, args, out)
    runs = {name: {"minutes": training_seconds(run) / 60, "epochs": len(metrics(run)),
                   "steps": metrics(run)[-1]["step"]} for name, run in (("text2img", t2i_run), ("cgan", cgan_run))}

    nets = ", ".join(f"{k}={v}" for k, v in settings.items() if k in shared) or "the models' own nets"
    print(f"\n{args.data}: text2img and cgan ({nets}), {args.threads} thread(s), {args.device}; runs in {out}")
    for name, v in runs.items():
        print(f"  {name:9s} {v['minutes']:5.1f} min of training, {v['epochs']} epochs, {v['steps']} steps")
    print(f"held out: {holdout or 'nothing'}\n{r['classifier']}")
    print(f"\nclass accuracy ({r['samples_per_model']} samples each)")
    print(f"  text2img, the captions of test images   {_f(r['class_accuracy'])}")
    print(f"  cgan, the same classes by label         {_f(r['cgan_class_accuracy'])}")
    print(f"\ncaption diversity (one caption, many z; 1 = as varied as the class's images)  "
          f"{_f(r['caption_diversity'])}")
    print("\nattribute agreement (same-noise pairs ordered as the words say; 0.5 = the words do nothing)")
    for name, fig in r["attribute_agreement"].items():
        print(f"  {name:14s} {_f(fig)}")
    if r["novel"]:
        print("\nnovel captions (never seen in training)   class acc.     agreement      seen opposite's class acc.")
        for n in r["novel"]:
            print(f"  {n['caption']!r:38s} {_f(n['accuracy']):14s} {_f(n['agreement']):14s} {_f(n['seen_accuracy'])}")
        mean = sum(n["accuracy"][0] for n in r["novel"]) / len(r["novel"])
        print(f"  mean novel-caption class accuracy: {mean:.3f}")
    print(f"\ngrid: {r['grid']} ({GRID_COLUMNS} samples a row), rows:")
    for i, row in enumerate(r["grid_rows"], start=1):
        print(f"  {i:2d}  {row}")
    (out / "benchmark.json").write_text(json.dumps({"runs": runs, **r}, indent=2, default=str))


def _f(fig) -> str:
    return f"{fig[0]:.3f}±{fig[1]:.3f}"


if __name__ == "__main__":
    genlab.api.run_script(main)     # bad input: one line and status 2, as `genlab` itself answers it
