"""Training for a stated time, shared by the benchmarks: a run trains one epoch, then is resumed an epoch at
a time until its own training seconds (metrics.jsonl's "seconds": the epochs themselves, not the per-epoch
test figures, sample grids or evaluations between them) reach the budget. A run already at `out` trains on,
so an interrupted benchmark picks up where it stopped.

A learning-rate schedule needs the run's length from its first step, which a budget does not give: a model
that decays its rate (cyclegan) trains for a stated number of epochs instead (`train_epochs`)."""
from __future__ import annotations

import json
from pathlib import Path

import genlab
from genlab.errors import UserError
from genlab.models import get_model_class


def metrics(run: Path) -> list[dict]:
    f = Path(run) / "metrics.jsonl"
    return [json.loads(line) for line in f.read_text().splitlines() if line.strip()] if f.is_file() else []


def training_seconds(run: Path) -> float:
    return sum(row.get("seconds", 0.0) for row in metrics(run))


def resume_options(train: dict) -> dict:
    """Those of genlab.train's keyword arguments that genlab.resume also takes."""
    return {k: train[k] for k in ("device", "threads", "live", "quiet") if k in train}


def train_for(model: str, data: str, out: Path, minutes: float, *, max_epochs: int = 10_000, **train) -> Path:
    """`model` on `data` in `out`, trained for about `minutes` of training (whole epochs: the last one may
    pass the budget); `train` are genlab.train's keyword arguments (settings, binarize, threads, ...)."""
    schedule = {**get_model_class(model).default_train, **(train.get("trainer") or {})}.get("lr_schedule", "constant")
    if schedule != "constant":      # each resume would stretch the schedule to the new end: the rate never holds
        raise UserError(f"{model} decays its learning rate over the run ({schedule}): train it for a number of "
                        f"epochs, not minutes")
    out = Path(out)
    common = resume_options(train)
    if not (out / "model.safetensors").is_file():
        genlab.train(model, data, out, epochs=1, **train)
    while training_seconds(out) < minutes * 60 and len(metrics(out)) < max_epochs:
        genlab.resume(out, epochs=len(metrics(out)) + 1, **common)
    return out


def train_epochs(model: str, data: str, out: Path, epochs: int | None = None, **train) -> Path:
    """`model` on `data` in `out` for `epochs` (default: the model's own length for this data), in one run whose
    schedule spans them all; a run already at `out` resumes to the end it was given."""
    out = Path(out)
    if (out / "model.safetensors").is_file():
        genlab.resume(out, **resume_options(train))
    else:
        genlab.train(model, data, out, epochs=epochs, **train)
    return out
