"""The trainer's options: what config.json's "train" holds, and the command-line flags for the ones any
model can use (clipping, learning-rate schedule, weight averaging, step checkpoints, TensorBoard, mixed
precision, compilation)."""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
from dataclasses import asdict, dataclass

from ..errors import UserError
from .acceleration import PRECISIONS

SCHEDULES = ("constant", "cosine", "linear", "hold-linear")
LOGS = ("jsonl", "tensorboard")


@dataclass
class TrainOptions:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    samples: int = 64            # examples in each epoch's sample file
    clip_grad: float = 0.0       # max gradient norm per optimiser step (0: off)
    lr_schedule: str = "constant"   # constant, cosine, linear (decays to 0 over the run's total steps) or
                                    # hold-linear (constant for the first half, then linear to 0)
    warmup_steps: int = 0        # linear warm-up from 0 before the schedule
    ema: float = 0.0             # decay of an average of the weights, which is sampled and saved (0: off)
    checkpoint_every: int = 0    # also checkpoint every N optimiser steps inside an epoch (0: at epoch ends only)
    log: str = "jsonl"           # or "tensorboard": event files under RUN/tensorboard/ as well
    precision: str = "auto"      # fp32, bf16 (training steps under bfloat16 autocast) or auto: bf16 where the device
                                 # computes it natively, chosen when the run starts (acceleration.py)
    compile: bool = False        # torch.compile the model's networks (acceleration.py)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            check_option(f.name, getattr(self, f.name))

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict, where: str = "config.json (train)") -> "TrainOptions":
        """Options from config.json's "train": missing ones the defaults (an older genlab's); an unknown one
        is refused with one line naming it (a hand-edited or damaged file: a newer genlab's runs carry a
        newer format, which runconfig refuses first)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(k for k in d if k not in names)
        if unknown:
            raise UserError(f"{where}: unknown option {unknown[0]!r:.60} (genlab's are {', '.join(sorted(names))})")
        return cls(**d)


def check_option(name: str, value) -> None:
    """Refuse a bad option value with one line naming its flag."""
    flag = "--" + name.replace("_", "-")
    if name == "lr_schedule" and value not in SCHEDULES:
        raise UserError(f"{flag} must be one of {', '.join(SCHEDULES)}, not {value!r}")
    if name == "log":
        if value not in LOGS:
            raise UserError(f"{flag} must be one of {', '.join(LOGS)}, not {value!r}")
        if value == "tensorboard" and importlib.util.find_spec("tensorboard") is None:
            raise UserError("--log tensorboard needs the tensorboard package: pip install tensorboard")
    if name == "clip_grad" and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0):
        raise UserError(f"{flag} must be a number from 0 (off), not {value!r}")
    if name in ("warmup_steps", "checkpoint_every") and (isinstance(value, bool) or not isinstance(value, int)
                                                          or value < 0):
        raise UserError(f"{flag} must be a whole number from 0, not {value!r}")
    if name == "precision" and value not in PRECISIONS:
        raise UserError(f"{flag} must be one of {', '.join(PRECISIONS)}, not {value!r}")
    if name == "compile" and not isinstance(value, bool):
        raise UserError(f"{flag} is on or off, not {value!r}")
    if name == "ema" and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1):
        raise UserError(f"{flag} must be from 0 (off) to below 1, e.g. 0.999, not {value!r}")


def _parser(kind, name: str):
    """An argparse type: the value, checked as TrainOptions checks it, or a one-line usage error."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"--{name.replace('_', '-')} must be {what}, not {text!r}") from None
        try:
            check_option(name, value)
        except UserError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        return value
    return parse


def add_trainer_options(parser: argparse.ArgumentParser) -> None:
    """The flags of the options any model can train with; each defaults to None ("not given")."""
    g = parser.add_argument_group("training options (any model)")
    g.add_argument("--clip-grad", dest="clip_grad", type=_parser(float, "clip_grad"), metavar="NORM",
                   help="clip the gradients of each optimiser step to this total norm (0: off; "
                        "default: the model's own, 5 for sentence-vae, else off)")
    g.add_argument("--lr-schedule", dest="lr_schedule", choices=SCHEDULES,
                   help="learning rate over the run: constant (default), or cosine / linear decay to 0 "
                        "by the last step, or hold-linear: constant for the first half, then linear to 0")
    g.add_argument("--warmup-steps", dest="warmup_steps", type=_parser(int, "warmup_steps"), metavar="N",
                   help="raise the learning rate linearly from 0 over the first N steps (default 0)")
    g.add_argument("--ema", dest="ema", type=_parser(float, "ema"), metavar="DECAY",
                   help="keep an exponential moving average of the weights with this decay (e.g. 0.999) and "
                        "sample, test and save it (0: off, the default)")
    g.add_argument("--checkpoint-every", dest="checkpoint_every", type=_parser(int, "checkpoint_every"),
                   metavar="STEPS", help="also checkpoint every STEPS steps inside an epoch, so a long epoch "
                                         "resumes where it stopped (0: at epoch ends only, the default)")
    g.add_argument("--precision", dest="precision", choices=PRECISIONS,
                   help="auto (default): bf16 where the device computes bfloat16 natively (GPUs, CPUs with "
                        "AVX-512 BF16 or AMX), else fp32; fp32; or bf16: each training step's matrix products "
                        "and convolutions in bfloat16 (weights and test figures stay float32; emulated on "
                        "other CPUs, 5 to 20 times slower)")
    g.add_argument("--compile", dest="compile", action="store_const", const=True,
                   help="torch.compile the model's networks: faster steps after tens of seconds of compiling")
    g.add_argument("--log", dest="log", choices=LOGS,
                   help="jsonl (default): metrics.jsonl and steps.jsonl; tensorboard: also TensorBoard event "
                        "files under RUN/tensorboard/ (needs pip install tensorboard)")
