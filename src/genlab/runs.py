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

import json
import math
import os
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from .version import __version__
from . import runconfig, zoo
from .data.containers.info import info_from_json
from .errors import UserError
from . import atomic as _atomic, runlock                     # writing safely; one writer per run
from .printable import printable
from .models.base import GenerativeModel
from .models.weights import non_finite, read_weights
from .models.registry import get_model_class

CONFIG, WEIGHTS, TRAINER, METRICS, SAMPLES = "config.json", "model.safetensors", "trainer.pt", "metrics.jsonl", "samples"
PREVIOUS_TRAINER = ".trainer-previous.pt"
STEPS = "steps.jsonl"


def write_atomic(path: Path, write) -> None:
    """Write through `write(tmp_path)` then rename: readers see the old file or the new one, never half.
    A failure removes the temporary file, keeps the old file, and is one UserError naming `path`."""
    _atomic.write_atomic(path, write)


def finite_json(obj):
    """`obj` with every NaN or infinite float as None: JSON has no NaN, and a file with one is not JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    return obj


def json_text(obj, **kw) -> str:
    return json.dumps(finite_json(obj), allow_nan=False, **kw)


def write_json(path: Path, obj) -> None:
    """`obj` as JSON, atomically; non-finite floats are written as null (never the invalid NaN/Infinity)."""
    text = json_text(obj, indent=2) + "\n"
    write_atomic(path, lambda p: p.write_text(text, encoding="utf-8"))


class Run:
    """A run directory on disk."""

    def __init__(self, path: str | Path, config: dict):
        self.path, self.config = Path(path), config

    @property
    def shipped(self) -> bool:
        """A run of the zoo, inside genlab: read, never written."""
        return zoo.is_shipped(self.path)

    # ---- creating and opening ----
    @classmethod
    def create(cls, path: str | Path, config: dict) -> "Run":
        path = Path(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            hint = " (use --resume to continue it)" if (path / CONFIG).exists() else ""
            raise UserError(f"{path} already exists and is not empty{hint}; choose another --out")
        try:
            (path / SAMPLES).mkdir(parents=True, exist_ok=True)
        except OSError as e:                 # a file where a folder must be, a read-only place, a full disk
            raise _atomic.write_error(path, e, "make the run folder") from None
        write_json(path / CONFIG, config)
        return cls(path, config)

    @classmethod
    def open(cls, path: str | Path) -> "Run":
        path = zoo.resolve(path)                 # zoo:NAME: a run shipped with genlab
        if not path.is_dir() or not (path / CONFIG).is_file():
            raise UserError(f"{path} is not a run directory (no {CONFIG}); make one with `genlab train`")
        return cls(path, runconfig.read(path / CONFIG))

    # ---- the model ----
    @property
    def info(self):
        return info_from_json(self.config["info"])

    @property
    def model_class(self) -> type[GenerativeModel]:
        return get_model_class(self.config["model"])

    def build_model(self) -> GenerativeModel:
        return GenerativeModel.from_config(self.config, str(self.path / CONFIG))

    def has_checkpoint(self) -> bool:
        return (self.path / WEIGHTS).is_file()

    def load_weights(self, model: GenerativeModel) -> int:
        """Load model.safetensors into `model`; returns the epoch it was saved at."""
        f = self.path / WEIGHTS
        if not f.is_file():
            raise UserError(f"{self.path} has no {WEIGHTS} yet: it has not finished an epoch")
        meta = read_weights(model, f, described_by=CONFIG)
        try:
            return int(meta.get("epoch", 0))
        except (TypeError, ValueError):
            raise UserError(f"{printable(f)} is damaged: its epoch {meta.get('epoch')!r:.40} "
                            "is not a whole number") from None

    # ---- one writer at a time ----
    def lock(self) -> "runlock.RunLock":
        """Lock this run directory for writing (flock on RUN/.lock, which holds the pid): acquired now,
        held until the returned lock's release(), the end of a `with run.lock():` block, or the process's
        end. A run another process holds is a UserError naming that process. Re-entrant in one process.
        Every writing method below also holds it while it writes."""
        return runlock.acquire(self.path)

    # ---- checkpoints ----
    def save_checkpoint(self, model: GenerativeModel, trainer_state: dict) -> None:
        """Weights and trainer state, each renamed into place; both carry the epoch.

        The two renames are not one atomic step, so the previous trainer state stays beside the new one
        until the new weights are in place: a process killed between the renames leaves the old weights
        with their own trainer state, which `load_trainer_state` picks. Weights holding NaN or inf are
        never written, and a failed write puts the previous trainer state back: either way the last
        good checkpoint stays as it was."""
        epoch = str(trainer_state["epoch"])
        state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        bad = non_finite(state)
        if bad is not None:
            kept = "the last good checkpoint is kept" if self.has_checkpoint() else "there is no checkpoint yet"
            raise UserError(f"not saving the checkpoint of epoch {epoch} in {printable(self.path)}: weight {printable(bad)} "
                            f"holds NaN or infinite values; {kept}")
        meta = {"model": model.name, "epoch": epoch, "genlab_version": __version__}
        trainer, previous = self.path / TRAINER, self.path / PREVIOUS_TRAINER
        with self.lock():
            # Both files are written in full under temporary names first: a full disk changes nothing.
            new_trainer = _atomic.prepare(trainer, lambda p: torch.save(trainer_state, p))
            try:
                new_weights = _atomic.prepare(self.path / WEIGHTS, lambda p: save_file(state, str(p), metadata=meta))
            except BaseException:
                _atomic.remove_quietly(new_trainer)
                raise
            had_trainer = trainer.is_file()
            try:
                if had_trainer:
                    self._keep_previous_trainer(trainer, previous)
                _atomic.commit(new_trainer, trainer)
            except BaseException:
                _atomic.remove_quietly(new_trainer)
                _atomic.remove_quietly(new_weights)
                raise
            try:
                _atomic.commit(new_weights, self.path / WEIGHTS)
            except BaseException:
                # The old weights stay; so must the trainer state that goes with them.
                try:
                    if had_trainer:
                        os.replace(previous, trainer)
                    else:
                        os.unlink(trainer)
                except OSError:
                    pass                      # load_trainer_state still finds it as the previous one
                raise

    @staticmethod
    def _keep_previous_trainer(trainer: Path, previous: Path) -> None:
        """`previous` becomes the current trainer state (a hard link, or a copy where links fail)."""
        try:
            previous.unlink(missing_ok=True)
        except OSError as e:
            raise _atomic.write_error(previous, e, "replace") from None
        try:
            os.link(trainer, previous)
        except OSError:                       # a file system without hard links; a read-only one fails here too
            write_atomic(previous, lambda p: p.write_bytes(trainer.read_bytes()))

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
            if isinstance(state, dict) and _is_number(state.get("epoch")) and state["epoch"] == epoch:
                return state
        raise UserError(f"{self.path}: no trainer state matches the weights of epoch {epoch}; "
                        f"the checkpoint is damaged")

    # ---- metrics ----
    def append_metrics(self, row: dict, steps: list[dict] = ()) -> None:
        """One epoch's row in metrics.jsonl and its per-step logs in steps.jsonl: each file gets one write
        of whole lines, fsynced. A failed append leaves both files as they were and is a UserError."""
        with self.lock():
            appended = []
            try:
                if steps:
                    appended.append(self._append_lines(STEPS, steps))
                self._append_lines(METRICS, [row])
            except BaseException:
                for f, size in appended:          # the steps of an epoch whose row could not be written
                    try:
                        os.truncate(f, size)
                    except OSError:
                        pass
                raise

    def append_steps(self, steps: list[dict], fsync: bool = False) -> None:
        """Per-step logs in steps.jsonl, as they come: one write of whole lines (fsynced only when asked:
        a crash loses at most the last lines, and a line it cuts short is dropped when read)."""
        if steps:
            with self.lock():
                self._append_lines(STEPS, steps, fsync=fsync)

    def _append_lines(self, name: str, rows, fsync: bool = True) -> tuple[Path, int]:
        """Append `rows` to `name` as JSON lines in one write; returns (file, its size before)."""
        f = self.path / name
        data = _jsonl(rows).encode()
        try:
            fd = os.open(f, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
        except OSError as e:
            raise _atomic.write_error(f, e, "append to") from None
        try:
            size = os.fstat(fd).st_size
            try:
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    # A line cut short by a process stopped while writing it: the new rows must not join it.
                    whole = self._whole_lines(f)
                    _warn_torn(f, whole.count(b"\n") + 1)
                    os.ftruncate(fd, len(whole))
                    size = len(whole)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                if fsync:
                    os.fsync(fd)
            except OSError as e:
                try:
                    os.ftruncate(fd, size)        # no torn line of ours either
                except OSError:
                    pass
                raise _atomic.write_error(f, e, "append to") from None
        finally:
            os.close(fd)
        return f, size

    @staticmethod
    def _whole_lines(f: Path) -> bytes:
        data = f.read_bytes()
        return data[:data.rfind(b"\n") + 1]

    def metrics(self) -> list[dict]:
        return self._rows(METRICS)

    def steps(self) -> list[dict]:
        return self._rows(STEPS)

    def _rows(self, name: str) -> list[dict]:
        """The rows of a .jsonl file. A last line cut short (a crash or a full disk while appending) is
        dropped with a warning; a damaged line before it is a UserError naming the file and the line."""
        f = self.path / name
        if not f.is_file():
            return []
        try:
            data = f.read_bytes()
        except OSError as e:
            raise UserError(f"cannot read {printable(f)}: {e.strerror or e}") from None
        key = "step" if name == STEPS else "epoch"          # what every row of the file has
        lines = [(n, line) for n, line in enumerate(data.split(b"\n"), 1) if line.strip()]
        rows = []
        for i, (n, line) in enumerate(lines):
            try:
                row = json.loads(line.decode("utf-8"))
            except (ValueError, RecursionError):            # UnicodeDecodeError is a ValueError
                row = None
            if isinstance(row, dict) and _is_number(row.get(key)):
                rows.append(row)
            elif i == len(lines) - 1 and row is None:
                _warn_torn(f, n)
            else:
                what = "not a JSON row" if row is None else f"a row without a numeric {key!r}"
                raise UserError(f"{printable(f)} is damaged at line {n} ({what}); the run's history cannot be "
                                "read: repair or delete that line")
        return rows

    def truncate_metrics(self, epoch: int, step: int | None = None) -> None:
        """Drop rows past the checkpoint (logged after it by a run that was then killed), and a torn last line."""
        with self.lock():
            rows = [r for r in self.metrics() if r["epoch"] <= epoch]
            write_atomic(self.path / METRICS, lambda p: p.write_text(_jsonl(rows), encoding="utf-8"))
            if step is not None and (self.path / STEPS).is_file():
                kept = [r for r in self.steps() if r["step"] <= step]
                write_atomic(self.path / STEPS, lambda p: p.write_text(_jsonl(kept), encoding="utf-8"))

    def sample_path(self, epoch: int) -> Path:
        return self.path / SAMPLES / f"epoch-{epoch:04d}.png"

    def check_writable(self, folders: tuple[str, ...]) -> None:
        """One line, before anything is written, when the run or one of its own folders cannot take a write:
        a file where the folder should be, or a folder this user may not write."""
        for p in (self.path, *(self.path / name for name in folders)):
            if p.exists() and not p.is_dir():
                raise UserError(f"{printable(str(p))} is a file where the run keeps its {p.name}: move it away, "
                                f"and genlab makes the folder again")
            if p.is_dir() and not os.access(p, os.W_OK | os.X_OK):
                raise UserError(f"cannot write into {printable(str(p))}: this user may not (chmod u+w it)")

    def update_config(self, **changes) -> None:
        self.config.update(changes)
        write_json(self.path / CONFIG, self.config)


def _jsonl(rows) -> str:
    return "".join(json_text(r) + "\n" for r in rows)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_warned: set = set()


def _warn_torn(f: Path, line: int) -> None:
    """Once per file and line: its last line was cut short and is left out."""
    if (str(f), line) not in _warned:
        _warned.add((str(f), line))
        print(f"genlab: warning: {printable(f)}: line {line}, the last, was cut short (a process stopped while "
              "writing it); it is left out", file=sys.stderr, flush=True)


def load(path: str | Path, device: str | torch.device = "cpu") -> GenerativeModel:
    """The trained model of a run directory, in eval mode, ready to sample (a run whose training diverged
    says so, once: its weights are its last good checkpoint's)."""
    model = GenerativeModel.from_pretrained(path, device=device)
    try:
        said = diverged(runconfig.read(zoo.resolve(path) / CONFIG))
    except UserError:                   # from_pretrained read it a moment ago: it is there and whole
        said = None
    if said and ("diverged", str(path)) not in _warned:
        _warned.add(("diverged", str(path)))
        print(f"genlab: warning: {printable(str(path))}: {said}", file=sys.stderr, flush=True)
    return model


def diverged(config: dict) -> str | None:
    """What a run's config.json records of a training that diverged, in words; None for one that did not."""
    d = config.get("diverged")
    if not isinstance(d, dict):
        return None
    return (f"its training diverged at step {d.get('step', '?')} and was stopped; its weights are those of its "
            f"last good checkpoint ({str(d.get('why', ''))[:300]})")
