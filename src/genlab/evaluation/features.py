"""Feature networks for sample-quality metrics: genlab's own classifier of a labelled data set, genlab's
self-supervised network of any data set (unlabelled data's default; `--features selfsup`), or the
user's network saved as TorchScript (`--features PATH`, Inception-v3 among them; other formats are
refused, since loading them can run code).

A feature network maps images N×C×H×W in [0, 1] to features N×D and, where it classifies, to class
probabilities N×K. Figures are comparable only within one network: every table names it."""
from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..data.containers.base import ImageDataset
from ..errors import UserError

BATCH = 500


@dataclass
class FeatureNetwork:
    name: str                                        # e.g. "genlab classifier of mnist (test accuracy 98.9%)"
    forward: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]]
    device: torch.device

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Features and probabilities of many images, in batches; returned on the network's device."""
        feats, probs = [], []
        for s in range(0, len(images), BATCH):
            f, p = self.forward(images[s:s + BATCH].to(self.device).float())
            feats.append(f.float())
            if p is not None:
                probs.append(p.float())
        return torch.cat(feats), (torch.cat(probs) if probs else None)


def builtin_network(ds: ImageDataset, device, progress_factory=None) -> FeatureNetwork:
    from .classifier import load_or_train
    net, meta = load_or_train(ds, device, progress_factory)
    net = net.to(device)
    name = (f"genlab classifier v{meta['version']} of {ds.name} ({meta['features']}-d, test accuracy "
            f"{100 * meta['test_accuracy']:.1f}%, binarised {100 * meta['test_accuracy_binarised']:.1f}%)")
    return FeatureNetwork(name, lambda x: (net.embed(x), torch.softmax(net(x), 1)), torch.device(device))


def selfsup_network(ds: ImageDataset, device, progress_factory=None) -> FeatureNetwork:
    """Features learnt from the images alone (no labels): they give no class probabilities."""
    from .selfsup import describe, load_or_train
    net, meta = load_or_train(ds, device, progress_factory)
    net = net.to(device)
    return FeatureNetwork(describe(ds, meta), lambda x: (net.embed(x), None), torch.device(device))


def _load_module(p: Path, device):
    """TorchScript (torch.jit.save) only. Its loader reads a restricted format that cannot unpickle
    arbitrary Python objects; an exported program (torch.export, .pt2) or a pickled module can carry a
    pickle payload that its loader would run, so neither is accepted."""
    with open(p, "rb") as f:
        head = f.read(4)
    if head[:2] != b"PK":                       # TorchScript files are zip archives
        raise UserError(f"--features {p}: not a TorchScript network (save it with torch.jit.save)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")         # TorchScript still loads; it is the format asked for
        try:
            return torch.jit.load(str(p), map_location=device).eval(), "TorchScript"
        except Exception as e:  # a torch.export archive, a torch.save pickle, a damaged file
            raise UserError(f"--features {p}: not a TorchScript network ({type(e).__name__}); exported programs "
                            f"and pickled modules are refused because loading them can run code: save the "
                            f"network with torch.jit.script or torch.jit.trace, then torch.jit.save") from None


def torchscript_network(path: str, shape: tuple[int, int, int], device) -> FeatureNetwork:
    """A TorchScript module taking N×C×H×W in [0, 1] at the data's size (it resizes
    and normalises itself) and returning features N×D, or a tuple (features N×D, logits N×K)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"--features {path}: no such file")
    module, kind = _load_module(p, device)

    def forward(x):
        out = module(x)
        feats, logits = (out[0], out[1]) if isinstance(out, (tuple, list)) else (out, None)
        return feats.flatten(1), (torch.softmax(logits, 1) if logits is not None else None)

    try:
        with torch.no_grad():
            f, _ = forward(torch.rand(2, *shape, device=device))
    except Exception as e:
        raise UserError(f"--features {path}: the network fails on a batch of 2 images of shape {list(shape)}, "
                        f"in [0, 1] (any batch size must work): {type(e).__name__}: "
                        f"{(str(e).splitlines() or [''])[0][:120]}") from None
    if f.shape[0] != 2 or f.shape[1] < 2:
        raise UserError(f"--features {path}: expected features N×D, got {list(f.shape)}")
    digest = hashlib.sha256(p.read_bytes()).hexdigest()[:8]
    return FeatureNetwork(f"{kind} {p.name} (sha256 {digest}, {f.shape[1]}-d)", forward, torch.device(device))
