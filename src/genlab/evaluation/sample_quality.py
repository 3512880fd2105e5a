"""Sample-quality figures of one model, the same protocol for every family: draw N samples, embed them
and N real training images with one feature network, and compare (FID, KID, precision/recall,
density/coverage, mode coverage, Inception Score); compare samples with the whole training set in
pixel space for memorisation.

Samples are judged as the data the model learnt: a model of binarised pixels is compared with binarised
images (one fixed draw), and its samples are binary (a Bernoulli draw of each pixel value where a model
returns probabilities); a model of 8-bit pixels is compared with the dequantised images."""
from __future__ import annotations

import time

import torch

from ..data.loader import Batches
from ..errors import UserError
from . import fid as fidmod
from .features import FeatureNetwork
from .memorisation import memorisation
from .modes import inception_score, mode_coverage
from .prdc import prdc

SAMPLE_METRICS = ("fid", "kid", "prdc", "modes", "is", "memorisation")
METRICS = ("likelihood",) + SAMPLE_METRICS
FEATURE_METRICS = {"fid", "kid", "prdc", "modes", "is"}
SAMPLE_BATCH = 250


def parse_metrics(text: str) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    if "all" in names:
        return list(METRICS)
    bad = [m for m in names if m not in METRICS]
    if bad or not names:
        raise UserError(f"--metrics takes a comma-separated list of {', '.join(METRICS)} or all, not {text!r}")
    return names


def real_images(images_u8: torch.Tensor, binarize: str, n: int | None, device, seed: int = 0) -> torch.Tensor:
    """n images of a split (a fixed random subset; all when n is None), transformed once as the model saw them."""
    if n is not None and n < len(images_u8):
        images_u8 = images_u8[torch.randperm(len(images_u8), generator=torch.Generator().manual_seed(seed))[:n]]
    return Batches(images_u8, None, binarize=binarize, batch_size=len(images_u8), shuffle=False, seed=seed,
                   device=device)._fixed()


@torch.no_grad()
def draw_samples(model, n: int, binary: bool, seed: int = 0, progress=None) -> torch.Tensor:
    g = torch.Generator(device=model.device).manual_seed(seed)
    out = []
    for s in range(0, n, SAMPLE_BATCH):
        m = min(SAMPLE_BATCH, n - s)
        x = model.sample(m, generator=g).float().clamp(0, 1)
        if binary:
            x = torch.bernoulli(x, generator=g)   # already 0/1: unchanged
        out.append(x)
        if progress is not None:
            progress.update(1, items=m)
    return torch.cat(out)


class SampleJudge:
    """Everything about the real data that every run of it is compared with, computed once."""

    def __init__(self, ds, binarize: str, n: int, metrics: list[str], network: FeatureNetwork | None, device):
        self.ds, self.binarize, self.n, self.metrics, self.network = ds, binarize, n, metrics, network
        self.device = device
        if network is None and FEATURE_METRICS & set(metrics):
            raise UserError("no feature network for this data: pass --features PATH")
        self.reference = real_images(ds.train_x, binarize, n, device)
        self.ref_feats = self.ref_probs = None
        if network is not None and FEATURE_METRICS & set(metrics):
            self.ref_feats, self.ref_probs = network(self.reference)
        freq = None
        if ds.train_y is not None:
            freq = torch.bincount(ds.train_y, minlength=ds.num_classes).double()
            freq = freq / freq.sum()
        self.data_freq = freq
        self._train_all = self._test_all = None
        self.test = real_images(ds.test_x, binarize, n, device, seed=1)

    def train_all(self):
        if self._train_all is None:
            self._train_all = real_images(self.ds.train_x, self.binarize, None, self.device)
        return self._train_all

    def judge(self, images: torch.Tensor, *, memorise_picture=None) -> dict:
        """Figures for a set of images (a model's samples, or the test split itself as the data's own row)."""
        out, seconds = {"samples": len(images), "references": len(self.reference)}, {}
        t = time.perf_counter()
        feats = probs = None
        if FEATURE_METRICS & set(self.metrics):
            feats, probs = self.network(images)
            seconds["features"] = time.perf_counter() - t
        t = time.perf_counter()
        if "fid" in self.metrics:
            out["fid"] = fidmod.fid(self.ref_feats, feats)
        if "kid" in self.metrics:
            out["kid"], out["kid_std"] = fidmod.kid(self.ref_feats, feats)
        if "prdc" in self.metrics:
            out.update(prdc(self.ref_feats, feats))
        if probs is not None and "modes" in self.metrics and self.data_freq is not None \
                and probs.shape[1] == len(self.data_freq):
            out.update(mode_coverage(probs, self.data_freq))
        if probs is not None and "is" in self.metrics:
            out["inception_score"], out["inception_score_std"] = inception_score(probs)
        if "memorisation" in self.metrics and memorise_picture is not None:
            m = memorisation(images, self.train_all(), self.test)
            found = m.pop("_nearest")
            out.update(m)
            from .memorisation import save_closest_pairs
            out["memorisation_picture"] = str(save_closest_pairs(images, self.train_all(), found, memorise_picture))
        seconds["metrics"] = time.perf_counter() - t
        out["seconds"] = {k: round(v, 2) for k, v in seconds.items()}
        return out

    def data_row(self) -> dict:
        """The held-out test images judged like samples: what a model that generalises perfectly would score."""
        if not hasattr(self, "_data_row"):
            self._data_row = self.judge(self.test)
        return self._data_row
