"""One training loop for every model: epochs of `train_step` (or the model's own `train_epoch`), a test
figure after each, and callbacks around it (logs, checkpoints, sample files, curves, TensorBoard). Options
any model can use: gradient clipping, a learning-rate schedule, an average of the weights, checkpoints
inside an epoch, bfloat16 mixed precision and compilation (see options.py and acceleration.py).

Reproducible by construction: every epoch reseeds the global RNG and the batch order from (seed, epoch),
so a run resumed from the checkpoint of epoch k replays epochs k+1… exactly as an uninterrupted run. A
checkpoint inside an epoch also keeps the RNG state, the position in the epoch and the epoch's running
sums, so a run resumed from it finishes that epoch as the uninterrupted run did.

On many processes (torchrun; distributed.py) each trains on its share of every batch, the optimisers
average the gradients over all, the step's figures are the whole batch's, and process 0 alone tests,
writes and checkpoints (the callbacks run there, but for the one that gathers the random states).
"""
from __future__ import annotations

import contextlib
import hashlib
import math
import sys
import time

import torch

from ..data.containers.loader import Batches, epoch_seed
from ..errors import UserError
from ..evaluation.likelihood import test_figures
from ..models.base import GenerativeModel
from ..runs import PREVIOUS_TRAINER, Run
from .acceleration import autocast, compile_networks
from .callbacks import Callback, Checkpoint, Curves, MetricsLog, SampleFile, TensorBoard, write_grid
from .distributed import Processes, current
from .ema import EMA
from .optim import ManagedOptimizer, lr_factor
from .options import TrainOptions  # noqa: F401  (its home before options.py; callers import it from here)
from ..progress import Progress


class TrainingDiverged(UserError):
    """A loss or weight became non-finite, or a loss exploded; the last good checkpoint was kept."""


EARLY_STEPS = 5         # a run's loss is judged against the least of its first steps' (since it started or resumed)
EXPLODED = 1000.0       # ... and has diverged past this many times that (or than 1, for losses near 0)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not (name.startswith("cuda:") and name[5:].isdigit()):
        raise UserError(f"--device must be auto, cpu, cuda or cuda:N, not {name!r}")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {name} was asked for but no CUDA GPU is visible; use --device cpu or auto")
        if ":" in name and int(name[5:]) >= torch.cuda.device_count():
            raise UserError(f"--device {name}: there are only {torch.cuda.device_count()} GPUs (cuda:0 …)")
    return torch.device(name)


def weights_digest(model: torch.nn.Module) -> str:
    """A hash of every tensor of the state dict: ties a trainer state to the weights saved with it."""
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(f"{k}:{v.dtype}:{tuple(v.shape)}".encode())
        h.update(v.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class Trainer:
    """`write_samples(model, stem, n, generator) -> Path` writes each epoch's samples (default: a PNG grid);
    `unit` names an example on the progress bar; `callbacks` run after the built-in ones. `processes`: those
    training together (default: the ones this process joined, else itself alone); `train` is the whole
    split, of which each takes its share."""

    def __init__(self, model: GenerativeModel, run: Run, train: Batches, test: Batches, opts: TrainOptions,
                 *, write_samples=None, unit: str = "img", live: bool | None = None, quiet: bool = False,
                 callbacks: list[Callback] | None = None, processes: Processes | None = None):
        self.procs = processes or current()
        self.train_all = train
        if self.procs.many:
            train = train.share(self.procs.rank, self.procs.world_size)
        self.model, self.run, self.train, self.test, self.opts = model, run, train, test, opts
        self.unit, self.live, self.quiet = unit, live, quiet or not self.procs.is_main
        self.epoch, self.step = 0, 0
        self._early_losses: list[float] = []     # |loss| of the first steps, against which explosion is judged
        self.elapsed = 0.0             # training seconds over all epochs, resumes included
        self._pos: dict | None = None  # the epoch under way: steps done, examples, running sums, seconds
        self._saved: tuple[int, int, bool] | None = None    # (epoch, step, inside an epoch) of the last checkpoint
        scheduled = opts.lr_schedule != "constant" or opts.warmup_steps > 0
        factor = (lambda: lr_factor(opts.lr_schedule, self.step, self.total_steps(), opts.warmup_steps)) \
            if scheduled else None
        average = self.procs.average_gradients if self.procs.many else None
        self.optimizers = {k: ManagedOptimizer(o, opts.clip_grad, factor, average)
                           for k, o in model.configure_optimizers(opts.lr).items()}
        self.ema = EMA(model, opts.ema) if opts.ema > 0 else None
        if opts.compile:
            compile_networks(model)
        self.callbacks: list[Callback] = [MetricsLog(), *([TensorBoard()] if opts.log == "tensorboard" else []),
                                          Checkpoint(), SampleFile(write_samples or write_grid), Curves(),
                                          *(callbacks or [])] if self.procs.is_main else [Checkpoint()]

    def steps_per_epoch(self) -> int:
        return 1 if self.model.trains_by_epoch else len(self.train)

    def total_steps(self) -> int:
        return self.opts.epochs * self.steps_per_epoch()

    def in_epoch(self) -> bool:
        """Whether an epoch is under way, some of its steps done and some not."""
        return self._pos is not None and 0 < self._pos["steps"] < self.steps_per_epoch()

    def averaged_weights(self):
        """A block in which the model holds the averaged weights (when --ema is on)."""
        return self.ema.applied(self.model) if self.ema is not None else contextlib.nullcontext(self.model)

    # ---- checkpoints ----
    def save_checkpoint(self) -> None:
        """model.safetensors (the averaged weights with --ema) and trainer.pt (all that an exact resume needs:
        optimisers, schedule, the raw weights and the average, and inside an epoch the RNG and the sums).
        Process 0 writes it; the others only hand it their random states inside an epoch."""
        states = self.procs.random_states() if self.in_epoch() else None
        if not self.procs.is_main:
            return
        state = {"epoch": self.epoch, "step": self.step, "elapsed": self.elapsed,
                 "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                 "schedules": {k: o.schedule_state() for k, o in self.optimizers.items()}}
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
            state["model"] = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        if self.in_epoch():
            state["position"] = {**self._pos, "sums": dict(self._pos["sums"]), "seconds": self._epoch_seconds(),
                                 "rng": torch.get_rng_state()}
            if self.model.device.type == "cuda":
                state["position"]["cuda_rng"] = torch.cuda.get_rng_state(self.model.device)
            if states is not None:
                state["position"]["process_rngs"] = states      # each process's stream, rank by rank
        with self.averaged_weights():
            state["weights_digest"] = weights_digest(self.model)
            self.run.save_checkpoint(self.model, state)
        self._saved = (self.epoch, self.step, "position" in state)

    def restore(self) -> None:
        """Load weights and trainer state from the run directory."""
        epoch = self.run.load_weights(self.model)
        state = self._state_of_weights(self.run.load_trainer_state(epoch), epoch)
        self.epoch, self.step = epoch, int(state["step"])
        self.elapsed = float(state.get("elapsed", 0.0))
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
            if name in state.get("schedules", {}):
                opt.load_schedule_state(state["schedules"][name])
        if "model" in state:                      # the raw weights, saved beside their average
            self.model.load_state_dict(state["model"])
        if self.ema is not None:
            if "ema" in state:
                self.ema.load_state_dict(state["ema"])
            else:                                 # --ema turned on for a run saved without it
                self.ema = EMA(self.model, self.opts.ema)
        self._pos = state.get("position")
        self._saved = (self.epoch, self.step, self._pos is not None)
        if self.procs.is_main:
            self.run.truncate_metrics(epoch, self.step)

    def _state_of_weights(self, state: dict, epoch: int) -> dict:
        """The trainer state saved with the weights now loaded. Checkpoints inside an epoch share its number,
        so a process killed between the two renames of one is told apart by the weights' digest; the state
        saved with the older weights is then the previous one, kept beside it."""
        digest = state.get("weights_digest")
        here = weights_digest(self.model) if digest is not None else None
        if digest == here:
            return state
        prev = self.run.path / PREVIOUS_TRAINER
        try:
            old = torch.load(prev, map_location="cpu", weights_only=True) if prev.is_file() else None
        except Exception:  # a damaged previous state is as good as none
            old = None
        if isinstance(old, dict) and int(old.get("epoch", -1)) == epoch and old.get("weights_digest") == here:
            return old
        raise UserError(f"{self.run.path}: no trainer state matches model.safetensors; the checkpoint is damaged")

    # ---- the loop ----
    def fit(self) -> list[dict]:
        rows = []
        self.procs.same_model(self.model)       # they start alike (the seed makes them so; this makes sure)
        for cb in self.callbacks:
            cb.on_fit_start(self)
        try:
            while self.epoch < self.opts.epochs:
                rows.append(self._one_epoch())
        finally:
            for cb in self.callbacks:
                cb.on_fit_end(self)
        return rows

    def _epoch_seconds(self) -> float:
        return self._pos["seconds"] + time.perf_counter() - self._t0

    def _one_epoch(self) -> dict:
        e = self.epoch
        seed = epoch_seed(self.opts.seed, e, salt=3)
        # An EM model draws only to initialise, alike on every process from the whole split; a model that
        # steps draws its noise on each process's own stream.
        torch.manual_seed(seed if self.model.trains_by_epoch else self.procs.seed(seed))
        self.model.train()
        self._pos = self._pos or {"steps": 0, "examples": 0, "tokens": 0, "sums": {}, "seconds": 0.0}
        self._t0 = time.perf_counter()
        label = f"epoch {e + 1}/{self.opts.epochs}"
        if self.model.trains_by_epoch:
            figures = self.model.train_epoch(self.train, e)
            self._after_step(figures, e, self.train_all.num_images(), 0)
        else:
            figures = self._train_batches(e, label)
        report = self.model.epoch_report(self.train_all) if self.procs.is_main else {}
        warning = report.pop("warning", None)
        if warning and not self.quiet:
            print(f"genlab: warning: {warning}", file=sys.stderr, flush=True)
        figures.update(report)
        seconds, pos = self._epoch_seconds(), self._pos
        self.elapsed += seconds
        self._check_weights(e)
        self.procs.check_same_weights(self.model, e)
        self.procs.same_model(self.model, weights=False)     # batch-norm statistics: process 0's, as it saves them
        self.model.eval()
        test = {}
        if self.procs.is_main:
            with self.averaged_weights():
                test = self._test_figures()
        self.epoch, self._pos = e + 1, None
        row = {"epoch": self.epoch, "step": self.step, **figures, **test,
               "images_per_s": pos["examples"] / seconds if seconds > 0 else 0.0}   # examples (images, lines) per s
        if pos["tokens"]:
            row["tokens_per_s"] = pos["tokens"] / seconds if seconds > 0 else 0.0
        row["seconds"] = seconds
        if warning:
            row["warning"] = warning
        for cb in self.callbacks:
            cb.on_epoch_end(self, row)
        # The progress bar showed a batch model's losses; what it could not show, and the test figures (with
        # their standard errors), go on one line.
        shown = figures if self.model.trains_by_epoch else report
        if not self.quiet and (shown or test):
            figs = [f"{k}={v:.4g}" for k, v in shown.items()]
            figs += [f"{k}={v:.4g}" + (f"±{test[k + '_se']:.2g}" if k + "_se" in test else "")
                     for k, v in test.items() if not k.endswith("_se")]
            print(f"{label} {' '.join(figs)}", flush=True)
        return row

    def _test_figures(self) -> dict:
        """The epoch's test row: the same conversion and names as `genlab eval` (evaluation/likelihood.py),
        the ELBO on its own seeded stream (no IWAE bound), every figure with its standard error, prefixed
        test_. So metrics.jsonl's test_nelbo_nats is what `genlab eval` prints as nelbo_nats for the same
        weights, D·log 256 included for 8-bit densities."""
        figures = test_figures(self.model, self.test, iwae_k=0)
        return {f"test_{k}": v for k, v in figures.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool) and not k.endswith("_bpd_se")}

    def _train_batches(self, e: int, label: str) -> dict:
        pos = self._pos
        bar = None if self.quiet else Progress(len(self.train), label, live=self.live, unit=self.unit,
                                               done=pos["steps"])
        batches = self.train.epoch(e)
        totals = self.train.totals(e) if self.procs.many else None    # each batch's examples over all processes
        for _ in range(pos["steps"]):      # resumed inside the epoch: replay the order and draws of its batches
            next(batches)
        self._restore_random_state(pos, e)
        for i, batch in enumerate(batches, start=pos["steps"]):
            n = totals[i] if totals else len(batch)
            self.procs.weight = len(batch) / n
            with autocast(self.model.device, self.opts.precision):
                logs = self.model.train_step(batch, self.optimizers)
            if self.step == 0:             # weights set from a first batch (Glow's actnorm, an RBM's biases):
                self.procs.same_model(self.model)      # process 0's share's, on every process
            logs, tokens = self.procs.mean_logs(logs, int(batch.lengths.sum()) if batch.lengths is not None else 0)
            self._after_step(logs, e, n, tokens)
            if bar:
                bar.update(1, items=n, **logs)
        figures = {k: v / max(pos["examples"], 1) for k, v in pos["sums"].items()}
        if bar:
            bar.close(**figures)
        return figures

    def _restore_random_state(self, pos: dict, e: int) -> None:
        """A resume inside an epoch: each process's random state as saved, when it was one of the processes
        that saved it (rank 0's is also the plain "rng" one process saves); a process beyond them starts a
        stream of its own."""
        saved = pos.pop("process_rngs", None)
        mine = {k: pos.pop(k) for k in ("rng", "cuda_rng") if k in pos}
        if not mine:                       # the epoch's start: its seed is set
            return
        if self.procs.rank > 0:
            if saved is None or self.procs.rank >= len(saved):
                torch.manual_seed(self.procs.seed(epoch_seed(self.opts.seed, e, salt=3) + pos["steps"]))
                return
            mine = saved[self.procs.rank]
        torch.set_rng_state(mine["rng"])
        if "cuda_rng" in mine and self.model.device.type == "cuda":
            torch.cuda.set_rng_state(mine["cuda_rng"], self.model.device)

    def _after_step(self, logs: dict, e: int, n: int, tokens: int) -> None:
        self.step += 1
        self._check_finite(logs, e)
        if self.ema is not None:
            self.ema.update(self.model)
        pos = self._pos
        pos["steps"] += 1
        pos["examples"] += n
        pos["tokens"] += tokens
        for k, v in logs.items():
            pos["sums"][k] = pos["sums"].get(k, 0.0) + v * n
        line = {"step": self.step, "epoch": e + 1, "seconds": round(self.elapsed + self._epoch_seconds(), 4), **logs}
        opt = next(iter(self.optimizers.values()), None)
        if opt is not None and opt.factor is not None:
            line["lr"] = opt.param_groups[0]["lr"]        # the scheduled rate this step used
        for cb in self.callbacks:
            cb.on_step_end(self, line)

    # ---- divergence ----
    def _check_finite(self, logs: dict, e: int) -> None:
        bad = [k for k, v in logs.items() if not math.isfinite(v)]
        if bad:
            raise TrainingDiverged(
                f"{bad[0]} became {logs[bad[0]]} in epoch {e + 1} (step {self.step}); training stopped and "
                f"{self.kept()}: try a lower --lr")
        # A loss that stays finite but explodes: orders of magnitude over the least of its first steps.
        key = "loss" if "loss" in logs else next(iter(logs), None)
        if key is None:
            return
        early = self._early_losses
        if len(early) < EARLY_STEPS:
            early.append(abs(logs[key]))
        elif abs(logs[key]) > EXPLODED * max(min(early), 1.0):
            raise TrainingDiverged(
                f"the training {key} exploded to {logs[key]:.4g} at step {self.step} (epoch {e + 1}), from "
                f"{min(early):.4g} in its first steps: training stopped and {self.kept()}; a lower --lr "
                f"(this run's {self.opts.lr:g}) or --clip-grad 1 usually helps")

    def _check_weights(self, e: int) -> None:
        for name, p in self.model.state_dict().items():
            if p.is_floating_point() and not torch.isfinite(p).all():
                raise TrainingDiverged(f"weight {name} became non-finite in epoch {e + 1}; training stopped and "
                                       f"{self.kept()}: try a lower --lr")

    @property
    def has_saved(self) -> bool:
        """Whether this run has a checkpoint to resume from."""
        return self._saved is not None

    def kept(self) -> str:
        """What an interruption or a divergence leaves: the last good checkpoint, or none yet."""
        if self._saved is None:
            return "no epoch finished, so there is no checkpoint"
        epoch, step, inside = self._saved
        if inside:
            return f"the last good checkpoint (step {step}, in epoch {epoch + 1}) is kept"
        return f"the last good checkpoint (epoch {epoch}) is kept"
