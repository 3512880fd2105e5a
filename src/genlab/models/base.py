"""The contract every model keeps, and its configuration from the command line and from config.json."""
from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from .. import runconfig, zoo
from ..atomic import write_atomic
from ..data.containers.base import DataInfo
from ..data.containers.info import info_from_json
from ..errors import UserError
from ..printable import printable
from ..settings import (MAX_SETTING, NoSettings, config_from_json, make_config, option,  # noqa: F401 (re-exported)
                        parse_value)
from .weights import read_weights, write_weights

from ..data.containers.batch import Batch

CONDITIONS = ("none", "class", "text", "image")      # what a model can be conditioned on
LIKELIHOODS = ("exact", "bound", "estimate", "none")  # what its log_prob is (estimate: its `estimates`)
# chain: `chain(n, generator=)` gives n consecutive states of one Markov chain (the gsn); trajectory:
# `trajectory(n, frames, generator=, steps=)` gives `frames` states of n samples on their way from noise (ddpm)
ABILITIES = ("encode", "decode", "complete", "style", "translate", "chain", "trajectory")


class GenerativeModel(nn.Module):
    """A generative model: trained by `train_step` on its `loss` (or its own `train_step` with several
    optimisers, or `train_epoch`), sampled by `sample`, scored by `log_prob` where it can be.

    What a model is and can do is declared on its class (below), never probed: the command line, the
    evaluation and the explorer read these declarations.
    """

    name: ClassVar[str]
    Config: ClassVar[type]
    family: ClassVar[str] = ""                 # "latent", "autoregressive", "adversarial"
    modality: ClassVar[str] = "image"          # the kind of data it models: a module of genlab.modalities
    conditioning: ClassVar[str] = "none"       # one of CONDITIONS
    optional_conditioning: ClassVar[bool] = False   # conditioned only when its Config's `conditional` asks
    likelihood_kind: ClassVar[str] = "none"    # one of LIKELIHOODS
    abilities: ClassVar[tuple[str, ...]] = ()  # among ABILITIES: the methods it has beyond the contract
    trains_by_epoch: ClassVar[bool] = False    # `train_epoch` over the whole split (EM) instead of `train_step`
    loss_name: ClassVar[str] = "loss"         # what `train_step` logs `loss` as (the rbm's is a free-energy gap)
    has_iwae: ClassVar[bool] = False           # `iwae_nll`: a tighter bound than the ELBO
    # eval_terms keys that estimate the NLL (neither exact nor a bound: likelihood_kind "estimate"), each with
    # its heading in tables and the sentence saying how it is made and how it errs (the rbm's AIS).
    estimates: ClassVar[dict[str, tuple[str, str]]] = {}
    # The keywords its `sample` takes beyond the contract's, declared as a dataclass of `option(...)` fields
    # (DDIM's steps, a flow's temperature): each a `genlab sample` flag, a keyword of `genlab.sample` and a
    # control of the explorer, checked against its bounds before the model sees it.
    SampleSettings: ClassVar[type] = NoSettings
    default_binarize: ClassVar[str] = "dynamic"
    default_lr: ClassVar[float] = 1e-3        # what `genlab train` uses without --lr (GANs: their paper's)
    default_epochs: ClassVar[int] = 10        # without --epochs, for a model with no default_steps (EM)
    default_batch_size: ClassVar[int] = 128
    # Without --epochs: about this many optimiser steps (train_step calls), so that small data get more
    # epochs and large data fewer; the epochs follow from the data's size (`epochs_for`), within
    # default_epoch_range. None: default_epochs whatever the data.
    default_steps: ClassVar[int | None] = None
    default_epoch_range: ClassVar[tuple[int, int]] = (2, 500)
    default_train: ClassVar[dict] = {}         # TrainOptions fields it trains with unless told otherwise
    discrete: ClassVar[bool] = False           # log_prob is of the 8-bit values themselves, not a density
    palette_pixels: ClassVar[bool] = False     # models pixels="palette" (an index into the data's colours)

    def __init__(self, config, info: DataInfo):
        super().__init__()
        self.config, self.info = config, info
        if self.condition_kind == "class" and info.num_classes < 2:
            raise UserError(f"{self.name} needs labelled data (a data set with classes, or a folder with sub-folders)")
        if info.kind != self.modality:
            raise UserError(f"{self.name} models {self.modality} data, not {info.kind}")

    @property
    def condition_kind(self) -> str:
        """What this model is conditioned on: the class's `conditioning`, unless it is optional and off."""
        if self.optional_conditioning and not self.config.conditional:     # its Config's switch
            return "none"
        return self.conditioning

    @property
    def latent_dim(self) -> int:
        """The size of the code that `encode` gives and `decode` takes (models with those abilities); a flow's
        code is as large as its data."""
        return self.config.latent_dim

    @property
    def num_conditions(self) -> int:
        """Classes a class-conditional model draws (0 for any other)."""
        return self.info.num_classes if self.condition_kind == "class" else 0

    def check_condition(self, condition: torch.Tensor | None, n: int | None = None) -> None:
        """One place that refuses a wrong condition with one line: one for a model that takes none, a
        class out of range, or the wrong count."""
        kind = self.condition_kind
        if condition is None:
            return
        if kind == "none":
            raise UserError(f"{self.name} is not conditional: it takes no condition")
        if kind == "class":
            if condition.is_floating_point() and condition.dim() == 2:      # one-hot rows pass as they are
                return
            k = self.num_conditions
            if condition.numel() and (int(condition.min()) < 0 or int(condition.max()) >= k):
                raise UserError(f"class must be between 0 and {k - 1}")
        if n is not None and condition.dim() > 0 and len(condition) != n:
            raise UserError(f"{len(condition)} conditions for {n} examples")

    def class_condition(self, label: int | None, n: int) -> torch.Tensor | None:
        """The class labels of n examples asked for with --class (None: none asked for); refused with one
        line for a model that takes no class, or a class it does not have."""
        if label is None:
            return None
        if self.condition_kind != "class":
            raise UserError(f"{self.name} is not conditional: --class does not apply")
        if not 0 <= label < self.num_conditions:
            raise UserError(f"--class must be between 0 and {self.num_conditions - 1}, not {label}")
        return torch.full((n,), label, dtype=torch.long, device=self.device)

    @classmethod
    def epochs_for(cls, train_size: int, batch_size: int) -> int:
        """The epochs `genlab train` runs without --epochs on a training split of `train_size` examples in
        batches of `batch_size`: enough for `default_steps` optimiser steps, within `default_epoch_range`;
        `default_epochs` for a model without `default_steps` (EM counts iterations, not steps)."""
        if cls.default_steps is None or cls.trains_by_epoch:
            return cls.default_epochs
        per_epoch = max(1, -(-max(train_size, 1) // max(batch_size, 1)))      # batches in one epoch
        low, high = cls.default_epoch_range
        return max(low, min(high, -(-cls.default_steps // per_epoch)))

    @classmethod
    def data_request(cls, config) -> dict:
        """What its modality prepares the data with, from its Config (wavenet: the label it is conditioned on;
        text2img: the captions held out); {} for a model that asks nothing."""
        return {}

    @classmethod
    def declaration(cls) -> dict:
        """What `genlab train --list` shows beside the name."""
        cond = cls.conditioning + (" (optional)" if cls.optional_conditioning else "")
        return {"family": cls.family, "modality": cls.modality, "likelihood": cls.likelihood_kind,
                "conditioning": cond, "abilities": list(cls.abilities)}

    # ---- leaving and coming back: a run directory is a pretrained model ----
    def save_pretrained(self, directory: str | Path) -> Path:
        """config.json and model.safetensors in `directory`: what `from_pretrained` and `genlab.load` read,
        and what a model hub carries as it is."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = runconfig.build(type(self), self.config, self.info, {"spec": ""}, 0, {})
        write_atomic(directory / runconfig.CONFIG,
                     lambda p: p.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8"))
        write_weights(self, directory / runconfig.WEIGHTS, {})
        return directory

    @classmethod
    def from_config(cls, d: dict, where: str = "config.json") -> "GenerativeModel":
        """The model a checked config.json describes, with fresh weights."""
        from .registry import get_model_class
        model_cls = get_model_class(d["model"])
        if cls is not GenerativeModel and not issubclass(model_cls, cls):
            raise UserError(f"{where} describes a {model_cls.name} model, not a {cls.name}")
        config = config_from_json(model_cls.Config, d["config"], where=where)
        try:
            return model_cls(config, info_from_json(d["info"]))
        except (RuntimeError, MemoryError, OverflowError) as e:   # sizes no machine can hold
            raise UserError(f"{where}: the model it describes cannot be built "
                            f"({type(e).__name__}: {str(e).splitlines()[0][:100]})") from None

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu") -> "GenerativeModel":
        """The model saved in `directory` (a run directory, or `save_pretrained`'s), in eval mode. Reading
        it never runs code: config.json is checked field by field, the weights are safetensors. `zoo:NAME`
        names a run shipped with genlab."""
        directory = zoo.resolve(directory)
        f = directory / runconfig.CONFIG
        if not f.is_file():
            raise UserError(f"{printable(directory)} is not a run directory (no {runconfig.CONFIG}); make one "
                            f"with `genlab train`")
        model = cls.from_config(runconfig.read(f), str(f)).to(device)
        if not (directory / runconfig.WEIGHTS).is_file():
            raise UserError(f"{printable(directory)} has no {runconfig.WEIGHTS} yet: it has not finished an epoch")
        read_weights(model, directory / runconfig.WEIGHTS)
        return model.eval()

    @property
    def device(self) -> torch.device:
        for t in self.parameters():
            return t.device
        for t in self.buffers():
            return t.device
        return torch.device("cpu")

    def configure_optimizers(self, lr: float) -> dict[str, torch.optim.Optimizer]:
        return {"model": torch.optim.Adam(self.parameters(), lr=lr)}

    def loss(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """The scalar one training step minimises on `batch`, and the other figures to log beside it. A
        model with one optimiser writes only this; `train_step` does the rest. It is called once per step,
        so a counter the loss reads (a warm-up, an ordering taken in turn) may advance here."""
        raise NotImplementedError

    def train_step(self, batch: Batch, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, float]:
        """One step of the "model" optimiser on `loss(batch)`: the logs are the loss under `loss_name`, then
        the loss's own figures. Clipping, the learning-rate schedule and the gradients' average over
        processes are in the optimiser's `step()` (training/optim.py) and the precision is the trainer's
        autocast around this call, so nothing else is per model. A model with several optimisers (the
        adversarial ones) writes its own."""
        loss, logs = self.loss(batch)
        opt = optimizers["model"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {self.loss_name: loss.item(), **logs}

    def train_epoch(self, batches, epoch: int) -> dict[str, float]:
        """One pass over the whole split, for a model with `trains_by_epoch` (EM)."""
        raise NotImplementedError

    def epoch_report(self, train) -> dict:
        """Figures the trainer adds to each epoch's row (a "warning" key is shown to the user)."""
        return {}

    @torch.no_grad()
    def sample(self, n: int, *, condition: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def log_prob(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor | None:
        """Per-image log-likelihood in nats: exact, a lower bound, or None where the model has none."""
        return None

    @torch.no_grad()
    def eval_terms(self, x: torch.Tensor, condition: torch.Tensor | None = None, *,
                   iwae_k: int = 100, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Per-image figures on a test batch, in the model's own nats. Keys: "nll" (exact), "nelbo",
        "iwae", "recon", "kl"...

        `generator`, when given, draws the ELBO's code samples ("nelbo", "recon"): a stream of their own,
        so the ELBO does not move with iwae_k; the IWAE bound draws from the global generator.
        evaluation/likelihood.py turns these into the reported figures (D·log 256 added for 8-bit
        densities, bits per dimension, standard errors).
        """
        lp = self.log_prob(x, condition)
        return {} if lp is None else {"nll": -lp}


# ---- class labels, for the conditional models ------------------------------------------------------

class ClassConditioned:
    """What a model that takes its class as a one-hot vector shares (cgan, cvae): listed before its base
    class, it makes it class-conditional: the vector's size, the one-hot labels, and the labels samples are
    drawn with (the classes in turn, or those asked for)."""
    conditioning = "class"

    def cond_dim(self) -> int:
        return self.info.num_classes

    def cond(self, y):
        return one_hot_labels(self, y)

    def _sampling_condition(self, n, condition):
        return sampling_labels(n, condition, self.info.num_classes, self.device)


def one_hot_labels(model: GenerativeModel, y: torch.Tensor | None) -> torch.Tensor:
    """Labels N (class indices) as one-hot N×K floats for a class-conditional model; a given N×K
    condition passes through."""
    if y is None:
        raise UserError(f"{model.name} needs a class label for every image")
    if y.dim() == 1:
        model.check_condition(y)
        return torch.nn.functional.one_hot(y.long(), model.num_conditions).float()
    return y.float()


def sampling_labels(n: int, condition: torch.Tensor | None, num_classes: int, device) -> torch.Tensor:
    """The labels of n samples: those asked for (one for all, or one each), else the classes in turn."""
    if condition is None:
        return torch.arange(n, device=device) % num_classes
    if condition.dim() == 0:
        return condition.expand(n).to(device)
    return condition.to(device)
