"""One training loop for every model: epochs of `train_step` (or the model's own `train_epoch`),
progress, a test figure, a checkpoint, a metrics line and a sample grid after each epoch.

Reproducible by construction: every epoch reseeds the global RNG and the batch order from (seed, epoch),
so a run resumed from the checkpoint of epoch k replays epochs k+1… exactly as an uninterrupted run.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass

import torch

from ..data.images import save_grid
from ..data.loader import Batches, epoch_seed
from ..errors import UserError
from ..models.base import GenerativeModel, average_eval_terms
from ..runs import Run, write_atomic
from .curves import draw_curves
from .progress import Progress

CURVES_EVERY = 20.0   # seconds between redraws of curves.png while training


class TrainingDiverged(UserError):
    """A loss or weight became non-finite; the last good checkpoint was kept."""


@dataclass
class TrainOptions:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    samples: int = 64          # images in each epoch's sample grid

    def to_json(self) -> dict:
        return asdict(self)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu or auto")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise UserError(f"--device must be auto, cpu or cuda, not {name!r}")
    return torch.device(name)


class Trainer:
    def __init__(self, model: GenerativeModel, run: Run, train: Batches, test: Batches, opts: TrainOptions,
                 *, live: bool | None = None, quiet: bool = False):
        self.model, self.run, self.train, self.test, self.opts = model, run, train, test, opts
        self.live, self.quiet = live, quiet
        self.optimizers = model.configure_optimizers(opts.lr)
        self.epoch, self.step = 0, 0
        self.elapsed = 0.0             # training seconds over all epochs, resumes included
        self._steps: list[dict] = []   # this epoch's per-step logs, written with its checkpoint
        self._last_curves = 0.0

    # ---- resume ----
    def restore(self) -> None:
        """Load weights and trainer state from the run directory."""
        epoch = self.run.load_weights(self.model)
        state = self.run.load_trainer_state(epoch)
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        self.epoch, self.step = epoch, int(state["step"])
        self.elapsed = float(state.get("elapsed", 0.0))
        self.run.truncate_metrics(epoch, self.step)

    def _checkpoint(self) -> None:
        state = {"epoch": self.epoch, "step": self.step, "elapsed": self.elapsed,
                 "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()}}
        self.run.save_checkpoint(self.model, state)

    # ---- the loop ----
    def fit(self) -> list[dict]:
        rows = []
        while self.epoch < self.opts.epochs:
            rows.append(self._one_epoch())
        if rows:
            draw_curves(self.run.path)
        return rows

    def _one_epoch(self) -> dict:
        e = self.epoch
        torch.manual_seed(epoch_seed(self.opts.seed, e, salt=3))
        self.model.train()
        t0 = time.perf_counter()
        label = f"epoch {e + 1}/{self.opts.epochs}"
        if hasattr(self.model, "train_epoch"):
            figures = self.model.train_epoch(self.train, e)
            self._check_finite(figures, e)
            images = self.train.num_images()
            self.step += 1
            self._steps.append({"step": self.step, "epoch": e + 1,
                                "seconds": round(self.elapsed + time.perf_counter() - t0, 4), **figures})
        else:
            figures, images = self._train_batches(e, label)
        report = self.model.epoch_report(self.train) if hasattr(self.model, "epoch_report") else {}
        warning = report.pop("warning", None)
        if warning and not self.quiet:
            print(f"genlab: warning: {warning}", file=sys.stderr, flush=True)
        figures.update(report)
        seconds = time.perf_counter() - t0
        self.elapsed += seconds
        self._check_weights(e)
        self.model.eval()
        test = average_eval_terms(self.model, self.test, iwae_k=0)
        self.epoch = e + 1
        self._checkpoint()
        row = {"epoch": self.epoch, "step": self.step, **figures,
               **{f"test_{k}": v for k, v in test.items()},
               "images_per_s": images / seconds if seconds > 0 else 0.0, "seconds": seconds}
        if warning:
            row["warning"] = warning
        self.run.append_metrics(row, self._steps)
        self._steps = []
        self._sample_grid()
        if time.perf_counter() - self._last_curves > CURVES_EVERY and self.epoch < self.opts.epochs:
            draw_curves(self.run.path)
            self._last_curves = time.perf_counter()
        # The progress bar showed a batch model's losses; what it could not show goes on one line.
        shown = figures if hasattr(self.model, "train_epoch") else report
        if not self.quiet and shown:
            figs = " ".join(f"{k}={v:.4g}" for k, v in {**shown, **{f'test_{k}': v for k, v in test.items()}}.items())
            print(f"{label} {figs}", flush=True)
        return row

    def _train_batches(self, e: int, label: str) -> tuple[dict, int]:
        bar = None if self.quiet else Progress(len(self.train), label, live=self.live,
                                               unit=getattr(self.model, "unit", "img"))
        sums: dict[str, float] = {}
        images = 0
        t0 = time.perf_counter()
        for batch in self.train.epoch(e):
            logs = self.model.train_step(batch, self.optimizers)
            self.step += 1
            self._check_finite(logs, e)
            self._steps.append({"step": self.step, "epoch": e + 1,
                                "seconds": round(self.elapsed + time.perf_counter() - t0, 4), **logs})
            n = len(batch[0])
            images += n
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v * n
            if bar:
                bar.update(1, items=n, **logs)
        figures = {k: v / max(images, 1) for k, v in sums.items()}
        if bar:
            bar.close(**figures)
        return figures, images

    def _check_finite(self, logs: dict, e: int) -> None:
        bad = [k for k, v in logs.items() if not math.isfinite(v)]
        if bad:
            raise TrainingDiverged(
                f"{bad[0]} became {logs[bad[0]]} in epoch {e + 1} (step {self.step}); training stopped and "
                f"{self._kept()}: try a lower --lr")

    def _check_weights(self, e: int) -> None:
        for name, p in self.model.state_dict().items():
            if p.is_floating_point() and not torch.isfinite(p).all():
                raise TrainingDiverged(f"weight {name} became non-finite in epoch {e + 1}; training stopped and "
                                       f"{self._kept()}: try a lower --lr")

    def _kept(self) -> str:
        if self.epoch == 0:
            return "no epoch finished, so there is no checkpoint"
        return f"the last good checkpoint (epoch {self.epoch}) is kept"

    def _sample_grid(self) -> None:
        if self.opts.samples <= 0:
            return
        g = torch.Generator(device=self.model.device).manual_seed(self.opts.seed)
        with torch.no_grad():
            if hasattr(self.model, "sample_text"):            # a text model writes lines, not a grid
                lines = self.model.sample_text(self.opts.samples, generator=g)
                path = self.run.sample_path(self.epoch).with_suffix(".txt")
                write_atomic(path, lambda p: p.write_text("".join(line + "\n" for line in lines), encoding="utf-8"))
                return
            images = self.model.sample(self.opts.samples, generator=g)
        save_grid(images, self.run.sample_path(self.epoch))
