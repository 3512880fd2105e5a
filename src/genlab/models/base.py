"""The contract every model keeps, its configuration from the command line, and the registry by name."""
from __future__ import annotations

import dataclasses
import typing
from typing import Any, ClassVar

import torch
from torch import nn

from ..data.base import DataInfo
from ..errors import UserError

Batch = tuple[torch.Tensor, "torch.Tensor | None"]   # images N×C×H×W as floats, labels N or None


def option(default: Any, help: str, choices: tuple | None = None, low: float | None = None):
    """A Config field with its meaning (shown by `genlab train MODEL --help`) and its valid values."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices, "low": low})


class GenerativeModel(nn.Module):
    """A generative model: trained by `train_step`, sampled by `sample`, scored by `log_prob` where it can be.

    Optional capabilities are plain methods a model has or lacks (`encode`, `decode`, `complete`,
    `train_epoch`, ...); callers ask with `hasattr`, never by class.
    """

    name: ClassVar[str]
    Config: ClassVar[type]
    family: ClassVar[str] = ""                 # "latent", "autoregressive", "adversarial"
    default_binarize: ClassVar[str] = "dynamic"
    default_lr: ClassVar[float] = 1e-3        # what `genlab train` uses without --lr (GANs: their paper's)
    needs_labels: ClassVar[bool] = False
    discrete: ClassVar[bool] = False           # log_prob is of the 8-bit values themselves, not a density
    palette_pixels: ClassVar[bool] = False     # models pixels="palette" (an index into the data's colours)

    def __init__(self, config, info: DataInfo):
        super().__init__()
        self.config, self.info = config, info
        if self.needs_labels and info.num_classes < 2:
            raise UserError(f"{self.name} needs labelled data (a data set with classes, or a folder with sub-folders)")
        if info.pixels == "palette" and not self.palette_pixels:
            raise UserError(f"{self.name} cannot model palette pixels: use --binarize dynamic, threshold or none, "
                            f"or an autoregressive model (pixelcnn, gated-pixelcnn, pixelrnn-row, pixelrnn-diag, "
                            f"pixel-lstm)")

    @property
    def device(self) -> torch.device:
        for t in self.parameters():
            return t.device
        for t in self.buffers():
            return t.device
        return torch.device("cpu")

    def configure_optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        return {"model": torch.optim.Adam(self.parameters(), lr=lr)}

    def train_step(self, batch: Batch, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, n: int, *, condition: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def log_prob(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor | None:
        """Per-image log-likelihood in nats: exact, a lower bound, or None where the model has none."""
        return None

    @torch.no_grad()
    def eval_terms(self, x: torch.Tensor, condition: torch.Tensor | None = None, *,
                   iwae_k: int = 100) -> dict[str, torch.Tensor]:
        """Per-image figures on a test batch, in nats. Keys: "nll" (exact), "nelbo", "iwae", "recon", "kl"...

        A key whose name is a negative log-likelihood or a bound on one ("nll", "nelbo", "iwae") is
        converted to bits per dimension for 8-bit data by the evaluator.
        """
        lp = self.log_prob(x, condition)
        return {} if lp is None else {"nll": -lp}


# ---- the registry ---------------------------------------------------------------------------------

_REGISTRY: dict[str, type[GenerativeModel]] = {}


def register(cls: type[GenerativeModel]) -> type[GenerativeModel]:
    _REGISTRY[cls.name] = cls
    return cls


def model_names() -> list[str]:
    from . import _load_all  # noqa: F401  (registers every model)
    return sorted(_REGISTRY)


def get_model_class(name: str) -> type[GenerativeModel]:
    names = model_names()
    if name not in _REGISTRY:
        raise UserError(f"unknown model {name!r}; known: {', '.join(names)}")
    return _REGISTRY[name]


# ---- configs from the command line ----------------------------------------------------------------

def _field_type(config_cls: type, f: dataclasses.Field):
    hints = typing.get_type_hints(config_cls)
    return hints.get(f.name, str)


def parse_value(config_cls: type, key: str, text: str) -> Any:
    """One Config field's value from text, checked against its type, choices and lower bound."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    if key not in fields:
        raise UserError(f"unknown setting {key!r}; this model has: {', '.join(fields)}")
    f = fields[key]
    t = _field_type(config_cls, f)
    try:
        if t is bool:
            low = text.strip().lower()
            if low not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError
            value = low in ("1", "true", "yes")
        elif t in (int, float):
            value = t(text)
        elif typing.get_origin(t) is tuple:
            inner = typing.get_args(t)[0]
            value = tuple(inner(v) for v in text.replace(",", " ").split())
        else:
            value = text
    except ValueError:
        raise UserError(f"{key} must be of type {getattr(t, '__name__', t)}, not {text!r}") from None
    choices, low = f.metadata.get("choices"), f.metadata.get("low")
    if choices and value not in choices:
        raise UserError(f"{key} must be one of {', '.join(map(str, choices))}, not {text!r}")
    if low is not None and isinstance(value, (int, float)) and value < low:
        raise UserError(f"{key} must be at least {low}, not {text!r}")
    return value


def make_config(config_cls: type, overrides: dict[str, str] | None = None, base: Any = None):
    cfg = base if base is not None else config_cls()
    values = {k: parse_value(config_cls, k, v) for k, v in (overrides or {}).items()}
    return dataclasses.replace(cfg, **values)


def config_from_json(config_cls: type, d: dict):
    names = {f.name for f in dataclasses.fields(config_cls)}
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in names}
    return config_cls(**kwargs)


def config_help(config_cls: type) -> list[tuple[str, str, str]]:
    """(name, default, meaning) for each field."""
    return [(f.name, repr(f.default), f.metadata.get("help", "")) for f in dataclasses.fields(config_cls)]


@torch.no_grad()
def average_eval_terms(model: GenerativeModel, batches, *, iwae_k: int = 0, progress=None) -> dict[str, float]:
    """Mean over a whole split of each per-image figure from `eval_terms` (nats per image)."""
    sums: dict[str, float] = {}
    n = 0
    for x, y in batches.epoch(0):
        terms = model.eval_terms(x, y, iwae_k=iwae_k)
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + float(v.double().sum())
        n += len(x)
        if progress is not None:
            progress.update(1, items=len(x))
    return {k: v / max(n, 1) for k, v in sums.items()}


# ---- class labels, for the conditional models ------------------------------------------------------

def one_hot_labels(y: torch.Tensor | None, num_classes: int, model: str) -> torch.Tensor:
    """Labels N (class indices) as one-hot N×K floats; a given N×K condition passes through."""
    if y is None:
        raise UserError(f"{model} needs a class label for every image")
    if y.dim() == 1:
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
            raise UserError(f"class must be between 0 and {num_classes - 1}")
        return torch.nn.functional.one_hot(y.long(), num_classes).float()
    return y.float()


def sampling_labels(n: int, condition: torch.Tensor | None, num_classes: int, device) -> torch.Tensor:
    """The labels of n samples: those asked for (one for all, or one each), else the classes in turn."""
    if condition is None:
        return torch.arange(n, device=device) % num_classes
    if condition.dim() == 0:
        return condition.expand(n).to(device)
    return condition.to(device)
