"""config.json: the one place that builds it and the one place that reads it back, checked field by field.

    {"format": 2, "genlab_version": ..., "created": ...,
     "model": "vae", "config": {the model's Config}, "info": {what the model knows of its data, with its kind},
     "data": {"spec": "digits", "name": ..., "hash": ..., "train": N, "test": N, ... the modality's options},
     "seed": 0, "train": {the trainer's options}}

Format 1 (no "format" key) is what genlab wrote before; it reads the same, an image run when "info" has no kind.
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from .version import __version__
from .errors import UserError

FORMAT = 2
CONFIG, WEIGHTS = "config.json", "model.safetensors"
# field -> (type, required) of each part every run has
SCHEMA = {"model": (str, True), "config": (dict, True), "info": (dict, True), "data": (dict, True),
          "seed": (int, False), "train": (dict, True)}
DATA_SCHEMA = {"spec": (str, True), "hash": (str, False), "train": (int, False), "test": (int, False)}
TRAIN_INTS = ("epochs", "batch_size", "seed", "samples")
MAX_SEED = 2**63 - 1


def build(model_cls, config, info, data: dict, seed: int, train: dict) -> dict:
    """A new run's config.json."""
    return {"format": FORMAT, "genlab_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "model": model_cls.name, "config": dataclasses.asdict(config), "info": info.to_json(),
            "data": data, "seed": seed, "train": train}


def _check(part: dict, schema: dict, where: str) -> None:
    for key, (kind, required) in schema.items():
        if key not in part:
            if required:
                raise UserError(f"{where}: the field {key!r} is missing")
            continue
        value = part[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise UserError(f"{where}: the field {key!r} must be {kind.__name__}, not {type(value).__name__} "
                            f"{value!r:.40}")


def validate(d, where: str) -> dict:
    """The parsed config.json, or one line naming the first field that is wrong."""
    if not isinstance(d, dict):
        raise UserError(f"{where} is not genlab's run configuration (not a JSON object)")
    fmt = d.get("format", 1)
    if not isinstance(fmt, int) or fmt > FORMAT:
        raise UserError(f"{where} has format {fmt!r}; this genlab reads formats up to {FORMAT}: upgrade genlab")
    _check(d, SCHEMA, where)
    _check(d["data"], DATA_SCHEMA, f"{where} (data)")
    train = d["train"]
    for key in TRAIN_INTS:
        v = train.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0 or v > MAX_SEED):
            raise UserError(f"{where} (train): the field {key!r} must be a whole number from 0, not {v!r:.40}")
    lr = train.get("lr")
    if lr is not None and (not isinstance(lr, (int, float)) or not 0 < lr < 1e3):
        raise UserError(f"{where} (train): the field 'lr' must be a positive number, not {lr!r:.40}")
    return d


def read(path: Path, what: str | None = None) -> dict:
    """A config.json file (a run's, or one given with --config: `what` names it), parsed and checked."""
    where = what or str(path)
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, OSError, RecursionError) as e:
        why = "nested too deep" if isinstance(e, RecursionError) else e.__class__.__name__
        raise UserError(f"{where} is damaged or not genlab's config.json ({why})") from None
    return validate(d, where)
