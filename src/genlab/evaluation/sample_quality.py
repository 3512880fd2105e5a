"""Sample-quality figures of one model, the same protocol for every family: draw N samples, embed them
and N real training images with one feature network, and compare (FID, KID, precision/recall,
density/coverage, mode coverage, Inception Score); compare samples with the whole training set in
pixel space for memorisation.

Every figure comes with its uncertainty, `<key>_std`: the standard deviation over BOOTSTRAP resamples
of the samples (drawn with replacement, a fixed seed; the features computed once, only the statistic
recomputed, the reference held fixed). KID keeps its own: the deviation over its random subsets.

Two rows of real images are judged exactly like samples: the held-out test images (`data_reference`)
and the real-versus-real floor (`data_floor`): as many training images again, disjoint from the
reference. A model's figure within the floor's noise (`within_floor`) cannot be told from real data at
this sample count.

Samples are judged as the data the model learnt: a model of binarised pixels is compared with binarised
images (one fixed draw), and its samples are binary (a Bernoulli draw of each pixel value where a model
returns probabilities); a model of 8-bit pixels is compared with the dequantised images. Memorisation
compares 8-bit pictures by exact integer distances: samples rounded to the nearest of the 256 levels (as
when saved), against the training images' own 8-bit values (SampleJudge.pictures)."""
from __future__ import annotations

import math
import time

import torch

from ..data.containers.loader import Batches
from ..errors import UserError
from . import fid as fidmod
from .features import FeatureNetwork
from .memorisation import HeldOut, memorisation, save_closest_pairs
from .modes import inception_score, mode_coverage
from .neighbours import eight_bit, nearest
from .prdc import prdc, prdc_resampled

SAMPLE_METRICS = ("fid", "kid", "prdc", "modes", "is", "memorisation", "parzen", "mixing", "classes")    # images'
OTHER_METRICS = ("continuation",)    # of other kinds of data only: video's continued clips (continuation.py)
METRICS = ("likelihood",) + SAMPLE_METRICS + OTHER_METRICS
CLASS_CONDITIONAL_METRICS = {"classes"}     # named in --metrics (not by all), every run must be conditional
FEATURE_METRICS = {"fid", "kid", "prdc", "modes", "is", "mixing", "classes"}
CLASS_FIGURES = {"modes": "modes_covered", "is": "inception_score"}   # they need class probabilities
SAMPLE_BATCH = 250
BOOTSTRAP = 100          # resamples for every `<key>_std`
BOOTSTRAP_SEED = 0
MAX_DEFAULT_SAMPLES = 10_000
PARZEN_HELD_OUT = 1000   # held-out images that choose the Parzen bandwidth, and as many others it scores
COPY_HELD_OUT = 5000     # memorisation: at most this many held-out images in each half
# Figures compared with the floor, and those where lower is better (there, any figure below the floor's
# counts as within it: nothing is closer to the data than the data).
FLOOR_KEYS = ("fid", "kid", "precision", "recall", "density", "coverage", "modes_covered", "modes_kl",
              "inception_score")
LOWER_IS_BETTER = {"fid", "kid", "modes_kl"}


def parse_metrics(text: str) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    if "all" in names:                  # every figure the runs' kind of data has (api.evaluate)
        return ["all"]
    bad = [m for m in names if m not in METRICS]
    if bad or not names:
        raise UserError(f"--metrics takes a comma-separated list of {', '.join(METRICS)} or all, not {text!r}")
    return names


def default_samples(ds) -> int:
    """Samples per run when none are asked for: half the training split (at most MAX_DEFAULT_SAMPLES), so
    that the reference and the floor are two disjoint sets of that many training images."""
    return max(1, min(MAX_DEFAULT_SAMPLES, len(ds.train_x) // 2))


def _subset(count: int, n: int | None, seed: int, skip: int = 0) -> torch.Tensor | None:
    """Positions skip..skip+n of a fixed random order of `count` images (None: all, in their own order)."""
    if n is None or (skip == 0 and n >= count):
        return None
    return torch.randperm(count, generator=torch.Generator().manual_seed(seed))[skip:skip + n]


def real_images(images_u8: torch.Tensor, binarize: str, n: int | None, device, seed: int = 0,
                skip: int = 0) -> torch.Tensor:
    """n images of a split (a fixed random subset, after the first `skip` of its order; all when n is None),
    transformed once as the model saw them."""
    idx = _subset(len(images_u8), n, seed, skip)
    if idx is not None:
        images_u8 = images_u8[idx]
    # A binarisation draw of its own for each subset (the reference's as before: seed + 0).
    return Batches(images_u8, None, binarize=binarize, batch_size=len(images_u8), shuffle=False, seed=seed + skip,
                   device=device)._fixed()


def bootstrap_indices(n: int, resamples: int = BOOTSTRAP, seed: int = BOOTSTRAP_SEED) -> torch.Tensor:
    """resamples × n positions drawn with replacement (the same for every set of n: a fixed seed)."""
    return torch.randint(n, (resamples, n), generator=torch.Generator().manual_seed(seed))


def _std(values) -> float:
    v = torch.as_tensor(values, dtype=torch.float64)
    v = v[torch.isfinite(v)]
    return float(v.std()) if len(v) > 1 else float("nan")


def within_floor(result: dict, floor: dict | None, keys: tuple[str, ...] = FLOOR_KEYS) -> list[str]:
    """The figures of `result` that the real-versus-real floor's noise covers: those differing from the
    floor's by less than twice their combined standard deviation (for FID, KID and KL(modes), exceeding
    it by less). Only at one sample count: a floor of another n says nothing."""
    if not floor or floor.get("samples") != result.get("samples"):
        return []
    out = []
    for key in keys:
        values = [result.get(key), floor.get(key), result.get(f"{key}_std"), floor.get(f"{key}_std")]
        if any(not isinstance(v, (int, float)) or not math.isfinite(v) for v in values):
            continue
        diff, noise = values[0] - values[1], 2 * math.hypot(values[2], values[3])
        if (diff if key in LOWER_IS_BETTER else abs(diff)) <= noise:
            out.append(key)
    return out


def feature_figures(ref_feats: torch.Tensor, feats: torch.Tensor, metrics, resamples: torch.Tensor) -> dict:
    """FID, KID and precision/recall/density/coverage (those of `metrics`) of features against the reference's,
    each with its ± over the bootstrap `resamples` (KID: over its random subsets)."""
    out = {}
    if "fid" in metrics:
        out["fid"] = fidmod.fid(ref_feats, feats)
        out["fid_std"] = _std(fidmod.fid_resampled(ref_feats, feats, resamples))
    if "kid" in metrics:
        out["kid"], out["kid_std"] = fidmod.kid(ref_feats, feats)
    if "prdc" in metrics:
        out.update(prdc(ref_feats, feats))
        out.update({f"{k}_std": _std(v) for k, v in prdc_resampled(ref_feats, feats, resamples).items()})
    return out


def memorisation_figures(pictures: torch.Tensor, train: torch.Tensor, test: torch.Tensor, held: HeldOut,
                         resamples: torch.Tensor, picture, train8=None, d_test=None) -> dict:
    """memorisation.py's figures of samples (as the data's pictures) with the ratio's ±, and the picture of the
    samples closest to the training set beside their nearest training and held-out pictures, written to `picture`."""
    m = memorisation(pictures, train, test, held=held, train8=train8, d_test=d_test, resamples=resamples)
    found, held_idx = m.pop("_nearest"), m.pop("_held_nearest")
    d_sample, real_median = found[0].double().cpu(), max(m["nn_distance_test"], 1e-12)
    m["memorisation_ratio_std"] = _std([float(d_sample[i].median()) / real_median for i in resamples])
    m["memorisation_picture"] = str(save_closest_pairs(pictures, train, found, picture, held.held, held_idx))
    return m


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
        # The floor: the next n training images of the reference's order, where the split holds them.
        self.floor = (real_images(ds.train_x, binarize, n, device, skip=n) if 2 * n <= len(ds.train_x)
                      else None)
        self.ref_feats = self.ref_probs = None
        self._data_row = self._floor_row = None        # judged on first use
        if network is not None and FEATURE_METRICS & set(metrics):
            self.ref_feats, self.ref_probs = network(self.reference)
        freq = None
        if ds.train_y is not None:
            freq = torch.bincount(ds.train_y, minlength=ds.num_classes).double()
            freq = freq / freq.sum()
        self.data_freq = freq
        self._train_all = self._test_all = self._pictures = None
        self.test = real_images(ds.test_x, binarize, n, device, seed=1)
        self.parzen_sets = None
        if "parzen" in metrics:         # two disjoint halves of the test split (a fixed order): bandwidth, score
            held = real_images(ds.test_x, binarize, None, device, seed=2)
            order = torch.randperm(len(held), generator=torch.Generator().manual_seed(2))
            half = min(PARZEN_HELD_OUT, len(held) // 2)
            self.parzen_sets = (held[order[:half]], held[order[half:2 * half]])

    def train_all(self):
        if self._train_all is None:
            self._train_all = real_images(self.ds.train_x, self.binarize, None, self.device)
        return self._train_all

    def pictures(self):
        """Memorisation compares 8-bit pictures (samples rounded to the nearest of the 256 levels, as when
        saved): the training images and the test images, as the model saw them (binarised, in palette colours)
        or before dequantisation (8-bit runs); the training images made ready for the exact integer search
        (neighbours.eight_bit); the test images' distances to them. Computed once: every run shares them."""
        if self._pictures is None:
            if self.binarize == "none":
                idx = _subset(len(self.ds.test_x), self.n, 1)
                train = self.ds.train_x.to(self.device).float() / 255
                test = (self.ds.test_x if idx is None else self.ds.test_x[idx]).to(self.device).float() / 255
            else:
                train, test = self.train_all(), self.test
            train8 = eight_bit(train.flatten(1))
            d_test = nearest(test.flatten(1), train.flatten(1), train8)[0]
            self._pictures = (train, test, train8, d_test, self._held_out(train, train8))
        return self._pictures

    def _held_out(self, train: torch.Tensor, train8) -> HeldOut:
        """The copy tests' real sets: every training image, and the whole test split as the model saw it cut
        in two halves (compared with; judging the judge), in a fixed random order."""
        held = (self.ds.test_x.to(self.device).float() / 255 if self.binarize == "none"
                else real_images(self.ds.test_x, self.binarize, None, self.device, seed=3))
        order = torch.randperm(len(held), generator=torch.Generator().manual_seed(3))
        h = max(1, min(COPY_HELD_OUT, len(held) // 2))
        return HeldOut(train, held[order[:h]], held[order[h:2 * h]], train8)

    def judge(self, images: torch.Tensor, *, memorise_picture=None, parzen: bool = True) -> dict:
        """Figures for a set of images (a model's samples, or real images as the data's own rows), each with
        its bootstrap standard deviation (the Parzen estimate: its standard error over the images it scores;
        `parzen` False for the test images' own row, which it would score against themselves)."""
        out, seconds = {"samples": len(images), "references": len(self.reference),
                        "bootstrap_resamples": BOOTSTRAP}, {}
        t = time.perf_counter()
        feats = probs = None
        if FEATURE_METRICS & set(self.metrics):
            feats, probs = self.network(images)
            seconds["features"] = time.perf_counter() - t
        t = time.perf_counter()
        resamples = bootstrap_indices(len(images))
        out.update(feature_figures(self.ref_feats, feats, self.metrics, resamples))
        if probs is not None and "modes" in self.metrics and self.data_freq is not None \
                and probs.shape[1] == len(self.data_freq):
            out.update(mode_coverage(probs, self.data_freq))
            again = [mode_coverage(probs[i.to(probs.device)], self.data_freq) for i in resamples]
            out["modes_covered_std"] = _std([m["modes_covered"] for m in again])
            out["modes_kl_std"] = _std([m["modes_kl"] for m in again])
        if probs is not None and "is" in self.metrics:
            # The score is the mean over 10 splits (the usual protocol); its deviation over them is kept as
            # inception_score_split_std, and its uncertainty is the bootstrap's, like every other figure.
            out["inception_score"], out["inception_score_split_std"] = inception_score(probs)
            out["inception_score_std"] = _std([inception_score(probs[i.to(probs.device)])[0] for i in resamples])
        skipped = {m: self._why_no_classes(probs) for m, key in CLASS_FIGURES.items()
                   if m in self.metrics and key not in out}
        if skipped:                     # said in the table, not an error: the other figures stand
            out["skipped"] = skipped
        if "memorisation" in self.metrics and memorise_picture is not None:
            train, test, train8, d_test, held = self.pictures()
            pictures = (images.clamp(0, 1) * 255).round() / 255
            out.update(memorisation_figures(pictures, train, test, held, resamples, memorise_picture, train8, d_test))
        if parzen and self.parzen_sets is not None:
            from .parzen import parzen as parzen_estimate
            out.update(parzen_estimate(images, *self.parzen_sets, binary=self.binarize in ("dynamic", "threshold")))
        seconds["metrics"] = time.perf_counter() - t
        out["seconds"] = {k: round(v, 2) for k, v in seconds.items()}
        return out

    def _why_no_classes(self, probs) -> str:
        """Why mode coverage or the Inception Score was not computed: they need a classifier of the data's classes."""
        if probs is None:
            return ("the data have no class labels to train a classifier on" if self.data_freq is None
                    else "the feature network gives no class probabilities")
        if self.data_freq is None:
            return "the data have no class labels"
        return f"the feature network's {probs.shape[1]} classes are not the data's {self.ds.num_classes}"

    def data_row(self) -> dict:
        """The held-out test images judged like samples: what a model that generalises perfectly would score."""
        if self._data_row is None:
            self._data_row = self.judge(self.test, parzen=False)
        return self._data_row

    def floor_row(self) -> dict | None:
        """n training images disjoint from the reference, judged like samples: the real-versus-real floor at
        this sample count (None where the training split holds fewer than 2n images)."""
        if self._floor_row is None and self.floor is not None:
            self._floor_row = self.judge(self.floor)
        return self._floor_row
