"""What happens around the training loop, as callbacks the Trainer calls in order: the logs, the
checkpoints, the sample files, the curves, TensorBoard. Extra callbacks (a caller's) run after these."""
from __future__ import annotations

import time
from pathlib import Path

import torch

from ..errors import UserError
from .curves import draw_curves

CURVES_EVERY = 20.0   # seconds between redraws of curves.png while training


class Callback:
    """Hooks of the training loop; each gets the Trainer (its model, run, opts, epoch and step)."""

    def on_fit_start(self, trainer) -> None:
        """Before the first epoch of this `fit` (after a resume's `restore`)."""

    def on_step_end(self, trainer, logs: dict) -> None:
        """After each optimiser step; `logs` is the step's line of steps.jsonl (step, epoch, seconds, figures)."""

    def on_epoch_end(self, trainer, row: dict) -> None:
        """After each epoch, its test figures taken; `row` is its line of metrics.jsonl."""

    def on_fit_end(self, trainer) -> None:
        """When `fit` returns or raises."""


class MetricsLog(Callback):
    """steps.jsonl, a line as each step ends, and metrics.jsonl, a line as each epoch ends; both before the
    checkpoint that covers them, so a resume's truncation drops whatever a killed run logged past it."""

    def on_step_end(self, trainer, logs):
        trainer.run.append_steps([logs])

    def on_epoch_end(self, trainer, row):
        trainer.run.append_metrics(row)


class Checkpoint(Callback):
    """A checkpoint at each epoch's end and, with checkpoint_every N, after every N-th step inside one."""

    def on_step_end(self, trainer, logs):
        n = trainer.opts.checkpoint_every
        if n and trainer.step % n == 0 and trainer.in_epoch():
            trainer.save_checkpoint()

    def on_epoch_end(self, trainer, row):
        trainer.save_checkpoint()


class SampleFile(Callback):
    """The epoch's samples, drawn with the run's seed (so epochs compare) from the averaged weights if any."""

    def __init__(self, write_samples):
        self.write = write_samples

    def on_epoch_end(self, trainer, row):
        n = trainer.opts.samples
        if n <= 0:
            return
        g = torch.Generator(device=trainer.model.device).manual_seed(trainer.opts.seed)
        stem = trainer.run.sample_path(trainer.epoch).with_suffix("")
        with trainer.averaged_weights(), torch.no_grad():
            self.write(trainer.model, stem, n, g)


def write_grid(model, stem: Path, n: int, generator) -> Path:
    """The default sample file: a PNG grid of n images."""
    from ..data.containers.images import save_grid
    return save_grid(model.sample(n, generator=generator), stem.with_suffix(".png"))


class Curves(Callback):
    """curves.png: drawn at the first epoch's end, then at most every CURVES_EVERY seconds (inside long
    epochs too), and once at the end."""

    def on_fit_start(self, trainer):
        self.last, self.drawn, self.finished_epoch = time.perf_counter(), False, False

    def _draw(self, trainer):
        draw_curves(trainer.run.path)
        self.last, self.drawn = time.perf_counter(), True

    def on_step_end(self, trainer, logs):
        if time.perf_counter() - self.last > CURVES_EVERY:
            self._draw(trainer)

    def on_epoch_end(self, trainer, row):
        if trainer.epoch < trainer.opts.epochs and (not self.drawn or time.perf_counter() - self.last > CURVES_EVERY):
            self._draw(trainer)
        self.finished_epoch = True

    def on_fit_end(self, trainer):
        if self.finished_epoch:
            draw_curves(trainer.run.path)


class TensorBoard(Callback):
    """TensorBoard event files under RUN/tensorboard/: each step's figures (train/…) and each epoch's row
    (epoch/…), all against the step count. A resumed run hides the events a killed run wrote past its
    checkpoint (purge_step)."""

    def __init__(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UserError("--log tensorboard needs the tensorboard package: pip install tensorboard") from None
        self._writer_cls, self.writer = SummaryWriter, None

    def on_fit_start(self, trainer):
        self.writer = self._writer_cls(str(trainer.run.path / "tensorboard"),
                                       purge_step=trainer.step + 1 if trainer.step else None)

    def _scalars(self, prefix: str, figures: dict, step: int, skip=()) -> None:
        for k, v in figures.items():
            if k not in skip and isinstance(v, (int, float)) and not isinstance(v, bool):
                self.writer.add_scalar(f"{prefix}/{k}", v, step)

    def on_step_end(self, trainer, logs):
        self._scalars("train", logs, trainer.step, skip=("step", "epoch", "seconds"))

    def on_epoch_end(self, trainer, row):
        self._scalars("epoch", row, trainer.step, skip=("step", "epoch"))
        self.writer.flush()

    def on_fit_end(self, trainer):
        if self.writer is not None:
            self.writer.close()
