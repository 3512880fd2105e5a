"""What each `genlab` sub-command does, given its parsed arguments (the parser is in cli.py): a thin layer
over the library (api.py). A command asks the run's or the data's modality once and never branches on the
kind of data itself."""
from __future__ import annotations

import dataclasses
import json
import sys

import torch

from . import api, modalities
from .errors import UserError
from .models.registry import get_model_class, model_names
from .settings import parse_pairs
from .training import distributed
from .training.options import TrainOptions

# Options of `genlab train` that a resumed run cannot take: they are fixed when the run starts.
FIXED_AT_START = {"lr": "--lr", "batch_size": "--batch-size", "out": "--out", "size": "--size",
                  "binarize": "--binarize", "config": "--config", "data_a": "--data-a", "data_b": "--data-b"}
# The trainer's own options (--clip-grad, --ema, ...): every field of TrainOptions but the basics.
TRAINER_OPTIONS = tuple(f.name for f in dataclasses.fields(TrainOptions)
                        if f.name not in ("epochs", "batch_size", "lr", "seed", "samples"))


# ---- train -----------------------------------------------------------------------------------------

def cmd_train(args) -> int:
    if args.list:
        for name in model_names():
            d = get_model_class(name).declaration()
            print(f"{name:15s} {d['family']:15s} {d['modality']:6s} likelihood {d['likelihood']:8s} "
                  f"condition {d['conditioning']:17s} {', '.join(d['abilities']) or '—'}")
        return 0
    trainer = _given(args, TRAINER_OPTIONS)
    common = dict(device=args.device, threads=args.threads)
    if args.resume:
        given = [flag for key, flag in FIXED_AT_START.items() if getattr(args, key, None) is not None]
        if args.model:
            raise UserError("give either a model name or --resume RUN, not both")
        if given or _settings(args) or trainer:
            raise UserError(f"{(given or ['model settings'])[0]} cannot change when a run resumes (only --epochs, "
                            f"--device and --threads can): start a new run, or `genlab train --config "
                            f"{args.resume}/config.json --out NEW` with changes")
        run = _interruptible(lambda: api.resume(args.resume, epochs=args.epochs, **common))
    elif args.config:
        if args.model:
            raise UserError("give either a model name or --config FILE, not both")
        overrides = {**_settings(args), **_given(args, ("epochs", "batch_size", "lr", "samples", "size", "binarize"))}
        if trainer:
            overrides["trainer"] = trainer
        run = _interruptible(lambda: api.train_from_config(args.config, args.out, **common, **overrides))
    else:
        if not args.model:
            raise UserError("name a model to train (genlab train --list shows them), or --resume RUN")
        if bool(args.data_a) != bool(args.data_b):
            raise UserError("a translator learns from two domains: give both --data-a A and --data-b B")
        run = _interruptible(lambda: api.train(
            args.model, args.data_a or args.data, args.out, epochs=args.epochs, batch_size=args.batch_size,
            lr=args.lr, seed=args.seed, samples=args.samples, size=args.size, binarize=args.binarize,
            trainer=trainer, data_b=args.data_b, **common, **_settings(args)))
    if isinstance(run, int):
        return run
    if not distributed.current().is_main:        # one process of several: the first one reports
        return 0
    rows = run.metrics()
    last = rows[-1] if rows else {}
    tests = ", ".join(f"{k[5:]}={v:.2f}±{last.get(k + '_se', 0):.2f}" for k, v in last.items()
                      if k.startswith("test_") and not k.endswith("_se") and isinstance(v, float))
    print(f"done: {run.path} (epoch {last.get('epoch', 0)}{'; test ' + tests if tests else ''})")
    return 0


def _interruptible(start):
    try:
        return start()
    except KeyboardInterrupt:
        return 130


def _given(args, keys) -> dict:
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}


def _settings(args) -> dict[str, str]:
    """The model's settings from --set KEY=VALUE and --KEY VALUE; the same key twice must agree."""
    out = parse_pairs(args.set)
    for k, v in vars(args).items():
        if k.startswith("cfg__") and v is not None:
            key = k[5:]
            if key in out and out[key] != v:
                raise UserError(f"--set {key}={out[key]} and --{key.replace('_', '-')} {v} disagree: give one")
            out[key] = v
    return out


# ---- sample, explore, complete -----------------------------------------------------------------------

def _model(args):
    device = api.setup_torch(args.device, args.threads)
    return api.load(args.run, device=device)


def cmd_sample(args) -> int:
    model = _model(args)
    g = torch.Generator(device=model.device).manual_seed(args.seed)
    # The settings the run's modality and model declare (cli.py made a flag of each), as typed.
    options = {k[len("set__"):]: v for k, v in vars(args).items() if k.startswith("set__") and v is not None}
    if "translate" in model.abilities:         # a translator's grid is of its run's held-out images
        options["run"] = args.run
    modality = modalities.get(model.modality)
    modality.sample(model, args.n or modality.sample_count, options, args.output, g)
    return 0


def cmd_translate(args) -> int:
    model = _model(args)
    if "translate" not in model.abilities:
        raise UserError(f"{model.name} does not translate: translation needs a model trained on two domains "
                        f"(cyclegan, discogan: genlab train cyclegan --data-a A --data-b B)")
    modalities.get(model.modality).translate(model, args.image, args.direction, output=args.output)
    return 0


def cmd_explore(args) -> int:
    model = _model(args)
    options = {k: v for k, v in vars(args).items() if k not in ("run", "view", "command", "device", "threads")}
    modalities.get(model.modality).explore(model, args.view, options)
    return 0


def cmd_complete(args) -> int:
    model = _model(args)
    if "complete" not in model.abilities:
        raise UserError(f"{model.name} cannot complete images: completion needs an autoregressive model "
                        f"(pixelcnn, gated-pixelcnn, pixelrnn-row, pixelrnn-diag, pixel-lstm)")
    model.class_condition(args.label, 1)        # a wrong --class is refused before any work
    modalities.get(model.modality).complete(model, args.image, args.cover, args.n, output=args.output,
                                            seed=args.seed, label=args.label)
    return 0


# ---- eval ------------------------------------------------------------------------------------------

def cmd_eval(args) -> int:
    from .evaluation.sample_quality import parse_metrics

    metrics = parse_metrics(args.metrics)
    if args.plot:
        from .evaluation.plot import check_plot_path
        check_plot_path(args.plot)              # before minutes of sampling, not after
        if not set(metrics) & {"fid", "prdc", "all"}:
            raise UserError("--plot needs sample metrics: add --metrics prdc,fid (or all)")
    live = None if not args.json else False
    results = api.evaluate(args.runs, metrics, iwae_k=args.iwae_k, samples=args.samples, features=args.features,
                           device=args.device, threads=args.threads, live=live)
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else {r["run"]: r for r in results}, indent=2,
                         ensure_ascii=False))
    else:
        print(api.format_results(results))
    if args.plot:
        from .evaluation.plot import draw_quality
        print(f"wrote {draw_quality(results, args.plot)}", file=sys.stderr if args.json else sys.stdout)
    return 0


# ---- data and demo -----------------------------------------------------------------------------------

def cmd_data(args) -> int:
    options = {"size": args.size, "binarize": args.binarize}
    if args.name is None:
        for m in modalities.MODALITIES.values():
            for name, ok, why in m.availability():
                state = "" if ok is None else "available" if ok else "missing"
                print(f"{name:15s} {state:10s} {why}")
        return 0
    if args.name == "fetch":
        if not args.target:
            raise UserError("name the data set to fetch: genlab data fetch NAME")
        print(f"{args.target} ready at {modalities.for_spec(args.target).fetch(args.target)}")
        return 0
    modality = modalities.for_spec(args.name)
    ds = modality.load(args.name, options)
    modality.describe(ds, options, args.output)
    return 0


def cmd_demo(args) -> int:
    from pathlib import Path

    from .demo import run_demo
    from .demo_pokemon import run_pokemon_demo

    device = api.setup_torch(args.device, args.threads)
    base = "demo-out" if args.which == "digits" else f"demo-{args.which}-out"
    out = Path(args.out) if args.out else next(p for i in range(1, 10_000)
                                                for p in [Path(base if i == 1 else f"{base}-{i}")]
                                                if not p.exists() or (p.is_dir() and not any(p.iterdir())))
    (run_pokemon_demo if args.which == "pokemon" else run_demo)(out, device=device, epochs=args.epochs)
    return 0


# ---- the zoo -----------------------------------------------------------------------------------------

def cmd_zoo(args) -> int:
    from . import zoo

    if args.name is None:
        if args.target:
            raise UserError("genlab zoo takes an entry's name, or copy NAME DEST")
        for name in zoo.names():
            c = zoo.card(name)
            print(f"{name:28s} {c['lecture']}: {c['model']} on {c['data']}, {c['training']}\n"
                  f"{'':28s} {c['headline']}")
        print(f"\n{len(zoo.names())} entries; genlab zoo NAME shows one's card; zoo:NAME is a run to every command "
              f"(genlab sample zoo:NAME, genlab serve zoo:)")
        return 0
    if args.name == "copy":
        if len(args.target) != 2:
            raise UserError("copy takes the entry and a new folder: genlab zoo copy NAME DEST")
        print(f"copied zoo:{args.target[0]} to {zoo.copy(*args.target)}: resume it with genlab train --resume "
              f"{args.target[1]} --epochs N")
        return 0
    if args.target:
        raise UserError("genlab zoo NAME takes nothing more (genlab zoo copy NAME DEST copies one)")
    zoo.resolve(zoo.PREFIX + args.name)              # an unknown name is one line
    print(zoo.card_text(args.name), end="")
    return 0


# ---- report and serve --------------------------------------------------------------------------------

def cmd_report(args) -> int:
    from . import zoo
    from .web.report import write_report

    runs = zoo.expand(args.runs)
    print(f"wrote {write_report(runs, args.output, device=args.device, threads=args.threads)}")
    return 0


def cmd_serve(args) -> int:
    from . import zoo
    from .web.server import serve

    serve(zoo.expand(args.runs), args.host, args.port, device=args.device, threads=args.threads,
          workers=args.workers)
    return 0
