"""genlab as a library: train, resume, load, sample and evaluate, the same steps the command line takes.

    import genlab
    run = genlab.train("vae", data="digits", epochs=20, latent_dim=8)    # -> a Run (its directory on disk)
    model = genlab.load(run.path)                                         # any run directory, any process
    images = genlab.sample(run.path, 16, seed=1)
    figures = genlab.evaluate([run.path], metrics=["likelihood", "fid"])  # one dict per run, also in eval.json

Every function takes plain values and raises genlab.UserError, with one line, on bad input.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import tempfile
from pathlib import Path

import torch

from . import modalities, runconfig, zoo
from .errors import UserError
from .models.base import config_from_json, make_config
from .models.registry import get_model_class, model_names
from .runs import Run, load as _load_run, write_json
from .settings import parse_pairs
from .training import distributed
from .training.acceleration import choose_precision
from .training.options import TrainOptions
from .training.trainer import Trainer, TrainingDiverged, resolve_device
from .training.watch import LearningWatch


def setup_torch(device: str | torch.device = "auto", threads: int | None = None) -> torch.device:
    if threads:
        torch.set_num_threads(threads)
    return device if isinstance(device, torch.device) else resolve_device(device)


def training_device(device: str | torch.device = "auto", threads: int | None = None) -> torch.device:
    """The device this process trains on: the one asked for, or under torchrun (many processes) the GPU of
    its LOCAL_RANK (or the CPU), the processes joined."""
    dev = setup_torch(device, threads)
    return distributed.join(dev) if distributed.launched() else dev


def settings_from_pairs(model: str, pairs: list[str]) -> dict[str, str]:
    """KEY=VALUE strings (the command line's --set) as keyword settings of `train`; a key that is no
    setting of the model is refused, never taken for one of train's own arguments."""
    fields = [f.name for f in dataclasses.fields(get_model_class(model).Config)]
    out = parse_pairs(pairs)
    for k in out:
        if k not in fields:
            raise UserError(f"unknown setting {k!r}; {model} has: {', '.join(fields)}")
    return out


def run_script(main) -> None:
    """Run a script's main() as `genlab` runs a command: bad input is one line on stderr and status 2."""
    try:
        main()
    except UserError as e:
        print(f"genlab: error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


def _as_text(value) -> str:
    return " ".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)


def next_run_dir(model: str, data: str) -> Path:
    """runs/MODEL-DATA-001, -002, ...: the first that does not exist yet."""
    stem = Path(data.split(":", 1)[1]).stem if ":" in data else data
    for i in range(1, 10_000):
        p = Path("runs") / f"{model}-{stem}-{i:03d}"
        if not p.exists():
            return p
    raise UserError("too many runs under runs/; pass --out")


MAX_LR = 10.0       # no model of genlab learns at a rate past this (Adam's steps are about lr in size)


def _check_positive(**values) -> None:
    """None means "the model's default"; anything given must be a positive, finite number."""
    for key, v in values.items():
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < float("inf")):
            raise UserError(f"--{key.replace('_', '-')} must be positive, not {v!r}")


def train(model: str, data: str = "digits", out: str | Path | None = None, *, epochs: int | None = None,
          batch_size: int | None = None, lr: float | None = None, seed: int = 0, samples: int = 64,
          size: int | None = None, binarize: str | None = None, device: str | torch.device = "auto",
          threads: int | None = None, trainer: dict | None = None, live: bool | None = None, quiet: bool = False,
          data_b: str | None = None, **settings) -> Run:
    """Train MODEL on DATA into a new run directory (default runs/MODEL-DATA-NNN) and return the run.

    `settings` are the model's Config fields (latent_dim=8, ...); `trainer` the trainer's options
    (clip_grad, lr_schedule, ema, checkpoint_every, log, ...); `size`/`binarize` are image data options.
    `data_b`: a second domain of images for a translator (cyclegan, discogan), `data` being the first;
    the two are drawn independently, never paired."""
    cls = get_model_class(model)
    modality = modalities.get(cls.modality)
    if data_b is not None:              # one spec of both domains, "A+B" (modalities/image.py)
        from .data.containers.two_domains import two_domains
        data = two_domains(data, data_b)
    given = modalities.for_spec(data)
    if given is not modality:
        raise UserError(f"{cls.name} models {modality.noun} and {data!r} is {given.noun}: give --data "
                        f"{modality.data_hint}, or train a {given.name} model "
                        f"({', '.join(n for n in model_names() if get_model_class(n).modality == given.name)})")
    config = make_config(cls.Config, {k: _as_text(v) for k, v in settings.items()})
    ds = modality.load(data, {"size": size, "binarize": binarize})
    info, record = modality.prepare(ds, cls, config, {"spec": data, "size": size, "binarize": binarize})
    dev = training_device(device, threads)
    torch.manual_seed(seed)             # the initial weights are part of what the seed fixes
    net = cls(config, info).to(dev)
    _check_positive(epochs=epochs, batch_size=batch_size, lr=lr)
    if lr is not None and lr > MAX_LR:        # only divergence lies past this: refused before anything is written
        raise UserError(f"--lr must be at most {MAX_LR:g}, not {lr:g}: a step that large can only diverge")
    opts = TrainOptions.from_json({**cls.default_train, **(trainer or {}),
                                   "epochs": epochs or cls.default_epochs,
                                   "batch_size": batch_size or cls.default_batch_size,
                                   "lr": lr or cls.default_lr, "seed": seed, "samples": samples},
                                  "the trainer options")
    if not epochs:              # the model's default: its optimiser steps over this data's size
        opts.epochs = cls.epochs_for(record["train"], opts.batch_size)
    # The precision is chosen here, once, and recorded: a resumed run keeps it on any machine.
    opts.precision, why = choose_precision(dev, opts.precision)
    # Batches before the run exists: data that cannot be batched writes nothing.
    train_b, test_b = modality.batches(ds, info, record, batch_size=opts.batch_size, seed=seed, device=dev)
    config = runconfig.build(cls, net.config, info, record, seed, opts.to_json())
    run = distributed.current().on_main(lambda: Run.create(out or next_run_dir(cls.name, data), config))
    return _fit(run, net, modality, ds, train_b, test_b, opts, resume=False, live=live, quiet=quiet,
                precision_why=why)


def resume(path: str | Path, *, epochs: int | None = None, device: str | torch.device = "auto",
           threads: int | None = None, live: bool | None = None, quiet: bool = False) -> Run:
    """Continue a run where its last checkpoint left it (to `epochs` in all, when given): the weights
    come out identical to a run that was never interrupted."""
    run = Run.open(path)
    if run.shipped:
        raise UserError(f"{path} is shipped with genlab and never changes: copy it first (genlab zoo copy "
                        f"{run.path.name} runs/{run.path.name}), then resume the copy")
    modality = modalities.of_run(run)
    dev = training_device(device, threads)
    restart = not run.has_checkpoint()          # it died before its first checkpoint: start it again, same seed
    if restart:
        torch.manual_seed(run.config.get("seed", 0))
    net = run.build_model().to(dev)
    # A run saved before a model's default trainer options existed resumes with them (clipping, ...).
    _check_positive(epochs=epochs)
    opts = TrainOptions.from_json({**run.model_class.default_train, **run.config["train"]},
                                  f"{run.path / 'config.json'} (train)")
    if epochs:
        opts.epochs = epochs
    ds = modality.reload(run)
    train_b, test_b = modality.batches(ds, net.info, run.config["data"], batch_size=opts.batch_size,
                                       seed=opts.seed, device=dev)
    return _fit(run, net, modality, ds, train_b, test_b, opts, resume=not restart, live=live, quiet=quiet,
                restart=restart)


def train_from_config(config_path: str | Path, out: str | Path | None = None, **overrides) -> Run:
    """A new run with the settings of another run's config.json: the same model, data, seed and options."""
    p = zoo.resolve(config_path)            # zoo:NAME/config.json: retrain a zoo entry from scratch
    cfg = runconfig.read(p, f"--config {p}")
    cls = get_model_class(cfg["model"])
    # The same field checks as a run's own config.json: types, choices, bounds, unknown keys refused.
    config_from_json(cls.Config, cfg["config"], f"--config {p}")
    TrainOptions.from_json(cfg["train"], f"--config {p} (train)")
    modality = modalities.get(cls.modality)
    data = {k: cfg["data"].get(k) for k in modality.data_options}
    t = TrainOptions.from_json(cfg["train"]).to_json()
    basics = {k: t.pop(k) for k in ("epochs", "batch_size", "lr", "samples")}
    t.pop("seed", None)
    kwargs = {**basics, **data, "seed": cfg.get("seed", 0), "trainer": t, **cfg["config"], **overrides}
    return train(cls.name, cfg["data"]["spec"], out, **kwargs)


def _fit(run: Run, model, modality, ds, train_b, test_b, opts, *, resume: bool, live, quiet,
         restart: bool = False, precision_why: str = "") -> Run:
    procs = distributed.current()               # with many processes, process 0 alone writes and speaks
    main = procs.is_main
    watch = [LearningWatch(modality.baseline_nats(model, ds, test_b), quiet=quiet,
                           baseline_name=modality.baseline_name(model))] if main else []
    trainer = Trainer(model, run, train_b, test_b, opts, write_samples=modality.write_samples, unit=modality.unit,
                      live=live, quiet=quiet, callbacks=watch, processes=procs)
    if resume:
        trainer.restore()                       # a damaged checkpoint fails here, before anything is written
        if trainer.epoch >= opts.epochs:
            if main:
                print(f"{run.path} already has {trainer.epoch} epochs; ask for more with --epochs", file=sys.stderr)
            return run
    # One writer per run: a second process (not one of this run's) is told which holds it.
    with run.lock() if main else contextlib.nullcontext():
        if main and restart:
            run.truncate_metrics(0, 0)          # whatever its first, unfinished epoch logged
        if main and (resume or restart):
            run.check_writable(("samples", "tensorboard"))     # a failing resume changes nothing of the run
            run.update_config(train=opts.to_json())
        if main and not quiet:
            on = f"{model.device}" + (f" × {procs.world_size} processes" if procs.many else "")
            print(f"training {model.name} on {modality.announce(model, ds, train_b, run.config['data'])} on "
                  f"{on} in {opts.precision}{f' ({precision_why})' if precision_why else ''} → {run.path}",
                  file=sys.stderr)
        try:
            trainer.fit()
        except TrainingDiverged as e:           # a verdict the run keeps: sample, eval and the report say so
            if main:
                run.update_config(diverged={"step": trainer.step, "why": str(e)})
            raise
        except KeyboardInterrupt:
            if main:
                print(f"\ninterrupted: {trainer.kept()}; continue with: genlab train --resume {run.path}"
                      + ("" if trainer.has_saved else " (it starts again from the beginning)"), file=sys.stderr)
            raise
        if main and "diverged" in run.config:   # trained on past it (a resume with a lower rate): no longer so
            run.config.pop("diverged")
            run.update_config()
    procs.barrier()                             # the run's files are whole when any process returns
    return run


def load(path: str | Path, device: str | torch.device = "cpu"):
    """The trained model of a run directory, in eval mode, ready to sample (`from_pretrained` too)."""
    return _load_run(path, device=device)


def sample(run: str | Path, n: int = 16, *, seed: int = 0, device: str | torch.device = "cpu", **how):
    """n samples of a run, as its kind of data gives them: images N×C×H×W in [0, 1], or lines of text.
    `how`: condition= (class labels) for images; temperature=, greedy= for text."""
    model = load(run, device=setup_torch(device))
    g = torch.Generator(device=model.device).manual_seed(seed)
    return modalities.get(model.modality).draw(model, n, g, **how)


def evaluate(runs, metrics=("likelihood",), *, iwae_k: int = 100, samples: int | None = None,
             features: str | None = None, device: str | torch.device = "auto", threads: int | None = None,
             live: bool | None = None) -> list[dict]:
    """The chosen figures of each run on its test split, one dict per run, each also written to RUN/eval.json.
    metrics: "likelihood" and, for images, "fid", "kid", "prdc", "modes", "is", "memorisation", "classes" (a
    conditional run's class agreement); for video, "continuation" and "fid" (of single frames); for sound "fid",
    "kid", "prdc", "memorisation", "classes" (all: every figure the runs' kind of data has)."""
    from .evaluation.sample_quality import CLASS_CONDITIONAL_METRICS, METRICS

    runs = [Run.open(p) for p in ([runs] if isinstance(runs, (str, Path)) else runs)]
    if not runs:
        raise UserError("name at least one run to evaluate")
    metrics = list(metrics)
    unknown = [m for m in metrics if m not in METRICS and m != "all"]
    if unknown:
        raise UserError(f"unknown metric {unknown[0]!r}; known: {', '.join(METRICS)}")
    if iwae_k < 0:
        raise UserError(f"--iwae-k must be 0 or more, not {iwae_k}")
    kinds = {modalities.of_run(r).name for r in runs}
    if len(kinds) > 1:
        raise UserError(f"evaluate {' runs and '.join(sorted(kinds))} runs separately: their figures are not alike")
    modality = modalities.of_run(runs[0])
    every = "all" in metrics
    if every:
        metrics = ["likelihood", *modality.sample_metrics]
    wants_quality = bool(set(metrics) - {"likelihood"})
    lacking = [m for m in metrics if m != "likelihood" and m not in modality.sample_metrics]
    if lacking:
        has = ", ".join(("likelihood",) + modality.sample_metrics)
        raise UserError(f"--metrics {lacking[0]}: {modality.name} runs have {has} only")
    named = sorted(CLASS_CONDITIONAL_METRICS & set(metrics)) if not every else []
    for run in runs if named else []:         # refused before any sampling; `all` gives them to those that are
        if run.build_model().condition_kind == "none":
            raise UserError(f"--metrics {named[0]}: {run.path} is not conditional, so its samples have no class "
                            f"to agree with; leave {named[0]} out (all gives it only to conditional runs)")
    translators = [r for r in runs if "translate" in r.model_class.abilities]
    if wants_quality and translators:           # refused before any feature network is trained
        raise UserError(f"--metrics {','.join(metrics)}: {translators[0].config['model']} translates images and "
                        f"draws none of its own; `genlab eval {translators[0].path}` gives its translation figures")
    dev = setup_torch(device, threads)
    quality = modality.sample_quality(metrics, samples, features, dev) if wants_quality else None
    results = []
    for run in runs:
        model = load(run.path, device=dev)
        ds = modality.reload(run)
        d = run.config["data"]
        result = {"run": str(run.path), "model": model.name, "data": d["spec"], "data_hash": d.get("hash"),
                  **modality.describe_run(model, run, ds), "epochs": (run.metrics() or [{"epoch": 0}])[-1]["epoch"]}
        # A zoo run, or a run this user may not write, keeps nothing: its pictures go to a temporary folder.
        keeps = not run.shipped and os.access(run.path, os.W_OK | os.X_OK)
        if not run.shipped and not keeps:
            print(f"genlab: {run.path} is read-only: its figures are printed, not kept in its eval.json",
                  file=sys.stderr)
        if "likelihood" in metrics:
            result.update(modality.likelihood(model, run, ds, iwae_k=iwae_k, live=live))
        if quality is not None:
            pictures = run.path if keeps else Path(tempfile.mkdtemp(prefix=f"genlab-{run.path.name}-"))
            result.update(quality.report(model, pictures, d.get("hash"), ds, d.get("binarize"), live))
        if keeps:
            write_json(run.path / "eval.json", result)
        results.append(result)
    return results


def format_results(results: list[dict]) -> str:
    """The table `genlab eval` prints for these results (all of one kind of data)."""
    if not results:
        return ""
    return modalities.of_run(Run.open(results[0]["run"])).format_table(results)
