"""A run directory, written and read back. A run directory is a pretrained model:

    runs/vae-digits/
      config.json          model name and Config, data spec and hash, seed, training options, version
      model.safetensors    weights (safetensors: loading never runs code)
      trainer.pt           optimiser state and epoch, for an exact resume (loaded with weights_only=True)
      metrics.jsonl        one line per epoch
      steps.jsonl          one line per training step (losses against training time)
      curves.png           those figures drawn, redrawn while it trains
      samples/epoch-0003.png

Every file is written to a temporary name and renamed into place, so a process killed at any moment
leaves the last good checkpoint loadable.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import __version__
from .data.base import DataInfo
from .errors import UserError
from .models.base import GenerativeModel, config_from_json, get_model_class

CONFIG, WEIGHTS, TRAINER, METRICS, SAMPLES = "config.json", "model.safetensors", "trainer.pt", "metrics.jsonl", "samples"
PREVIOUS_TRAINER = ".trainer-previous.pt"
STEPS = "steps.jsonl"


def write_atomic(path: Path, write) -> None:
    """Write through `write(tmp_path)` then rename: readers see the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json(path: Path, obj) -> None:
    write_atomic(path, lambda p: p.write_text(json.dumps(obj, indent=2) + "\n"))


class Run:
    """A run directory on disk."""

    def __init__(self, path: str | Path, config: dict):
        self.path, self.config = Path(path), config

    # ---- creating and opening ----
    @classmethod
    def create(cls, path: str | Path, config: dict) -> "Run":
        path = Path(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            hint = " (use --resume to continue it)" if (path / CONFIG).exists() else ""
            raise UserError(f"{path} already exists and is not empty{hint}; choose another --out")
        (path / SAMPLES).mkdir(parents=True, exist_ok=True)
        config = {"genlab_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), **config}
        write_json(path / CONFIG, config)
        return cls(path, config)

    @classmethod
    def open(cls, path: str | Path) -> "Run":
        path = Path(path)
        if not path.is_dir() or not (path / CONFIG).is_file():
            raise UserError(f"{path} is not a run directory (no {CONFIG}); make one with `genlab train`")
        try:
            config = json.loads((path / CONFIG).read_text())
            config["model"], config["config"], config["info"]  # noqa: B018  (the keys every run has)
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as e:
            raise UserError(f"{path / CONFIG} is damaged or not genlab's ({e.__class__.__name__})") from None
        return cls(path, config)

    # ---- the model ----
    @property
    def info(self) -> DataInfo:
        if self.config["info"].get("kind") == "text":          # a text model's tokeniser and vocabulary
            from .data.vocab import TextInfo
            return TextInfo.from_json(self.config["info"])
        return DataInfo.from_json(self.config["info"])

    def build_model(self) -> GenerativeModel:
        cls = get_model_class(self.config["model"])
        return cls(config_from_json(cls.Config, self.config["config"]), self.info)

    def has_checkpoint(self) -> bool:
        return (self.path / WEIGHTS).is_file()

    def load_weights(self, model: GenerativeModel) -> int:
        """Load model.safetensors into `model`; returns the epoch it was saved at."""
        f = self.path / WEIGHTS
        if not f.is_file():
            raise UserError(f"{self.path} has no {WEIGHTS} yet: it has not finished an epoch")
        try:
            state = load_file(str(f), device=str(model.device))
            from safetensors import safe_open
            with safe_open(str(f), "pt") as sf:
                meta = sf.metadata() or {}
        except (SafetensorError, OSError, ValueError) as e:
            raise UserError(f"{f} is truncated or not a safetensors file ({e})") from None
        if meta.get("model") not in (None, model.name):
            raise UserError(f"{f} holds a {meta.get('model')!r} model, not {model.name!r}")
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as e:
            lines = [line.strip() for line in str(e).splitlines() if line.strip()]
            first = lines[1] if len(lines) > 1 else lines[0]    # lines[0] is "Error(s) in loading state_dict for X:"
            first = first if len(first) <= 200 else first[:197] + "..."
            raise UserError(f"{f} does not fit the model in {CONFIG}: {first}") from None
        return int(meta.get("epoch", 0))

    # ---- checkpoints ----
    def save_checkpoint(self, model: GenerativeModel, trainer_state: dict) -> None:
        """Weights and trainer state, each renamed into place; both carry the epoch.

        The two renames are not one atomic step, so the previous trainer state stays beside the new one
        until the new weights are in place: a process killed between the renames leaves the old weights
        with their own trainer state, which `load_trainer_state` picks."""
        epoch = str(trainer_state["epoch"])
        state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        meta = {"model": model.name, "epoch": epoch, "genlab_version": __version__}
        trainer, previous = self.path / TRAINER, self.path / PREVIOUS_TRAINER
        if trainer.exists():
            previous.unlink(missing_ok=True)
            os.link(trainer, previous)
        write_atomic(trainer, lambda p: torch.save(trainer_state, p))
        write_atomic(self.path / WEIGHTS, lambda p: save_file(state, str(p), metadata=meta))

    def load_trainer_state(self, epoch: int) -> dict:
        """The trainer state saved with the weights of `epoch`."""
        f = self.path / TRAINER
        if not f.is_file():
            raise UserError(f"{self.path} has no {TRAINER}: it cannot be resumed")
        for candidate in (f, self.path / PREVIOUS_TRAINER):
            if not candidate.is_file():
                continue
            try:
                state = torch.load(candidate, map_location="cpu", weights_only=True)
            except Exception as e:  # any unpickling failure means a damaged or foreign file
                raise UserError(f"{candidate} is truncated or not genlab's trainer state ({e.__class__.__name__})") from None
            if isinstance(state, dict) and int(state.get("epoch", -1)) == epoch:
                return state
        raise UserError(f"{self.path}: no trainer state matches the weights of epoch {epoch}; "
                        f"the checkpoint is damaged")

    # ---- metrics ----
    def append_metrics(self, row: dict, steps: list[dict] = ()) -> None:
        """One epoch's row in metrics.jsonl and its per-step logs in steps.jsonl."""
        if steps:
            with open(self.path / STEPS, "a") as f:
                f.write("".join(json.dumps(s) + "\n" for s in steps))
        with open(self.path / METRICS, "a") as f:
            f.write(json.dumps(row) + "\n")

    def metrics(self) -> list[dict]:
        return self._rows(METRICS)

    def steps(self) -> list[dict]:
        return self._rows(STEPS)

    def _rows(self, name: str) -> list[dict]:
        f = self.path / name
        if not f.is_file():
            return []
        return [json.loads(line) for line in f.read_text().splitlines() if line.strip()]

    def truncate_metrics(self, epoch: int, step: int | None = None) -> None:
        """Drop rows past the checkpoint (logged after it by a run that was then killed)."""
        rows = [r for r in self.metrics() if r.get("epoch", 0) <= epoch]
        write_atomic(self.path / METRICS, lambda p: p.write_text("".join(json.dumps(r) + "\n" for r in rows)))
        if step is not None and (self.path / STEPS).is_file():
            kept = [r for r in self.steps() if r.get("step", 0) <= step]
            write_atomic(self.path / STEPS, lambda p: p.write_text("".join(json.dumps(r) + "\n" for r in kept)))

    def sample_path(self, epoch: int) -> Path:
        return self.path / SAMPLES / f"epoch-{epoch:04d}.png"

    def update_config(self, **changes) -> None:
        self.config.update(changes)
        write_json(self.path / CONFIG, self.config)


def load(path: str | Path, device: str | torch.device = "cpu") -> GenerativeModel:
    """The trained model of a run directory, in eval mode, ready to sample."""
    run = Run.open(path)
    model = run.build_model().to(device)
    run.load_weights(model)
    model.eval()
    model.run_config = run.config
    return model


def config_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)
