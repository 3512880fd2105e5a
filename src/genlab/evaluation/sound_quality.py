"""Sample quality of sound, the images' protocol in the sound classifier's features (sound_features.py): draw N
clips, see each as its log-mel spectrogram, embed them and N real training clips, and compare.

- fid, kid, prdc: the Fréchet distance (as the Fréchet Audio Distance is, but in a network trained on the very
  data), KID and precision/recall/density/coverage of the classifier's features (sample_quality.feature_figures);
- classes (class-conditional runs): the share of samples the classifier assigns to the class they were drawn
  for, the classes drawn in turn (n/K clips each); its chance is 1/K;
- memorisation: memorisation.py's copy tests on the log-mel spectrograms themselves (a copied clip has its
  original's spectrogram; the classifier's features would also call two voices saying one word alike).

Every figure comes with its bootstrap `<key>_std`, and two rows of real clips are judged exactly like samples:
the held-out test clips (`data_reference`) and the real-versus-real floor (`data_floor`: the next N training
clips, disjoint from the reference); for them `classes` is the classifier's accuracy on their own labels.

The built-in data sets keep whole voices (spoken-digits) and instruments (notes) out of training, so a real
test clip is farther from the training set than a new clip of a training voice would be. The copy tests
therefore compare the samples with half the test split (held out: H) but are calibrated by training clips
themselves, each measured against the others (LeaveOneOut): what a model that makes new clips of its training
voices scores. The NN ratio's denominator is theirs too."""
from __future__ import annotations

import time
from pathlib import Path

import torch

from ..errors import UserError
from ..progress import Progress
from .class_agreement import agreement
from .memorisation import HeldOut, copied
from .neighbours import distance_blocks
from .sample_quality import (BOOTSTRAP, FLOOR_KEYS, bootstrap_indices, feature_figures, memorisation_figures,
                             within_floor)
from .sound_features import clips, labelling, pictures, sound_network

SOUND_METRICS = ("fid", "kid", "prdc", "memorisation", "classes")
NETWORK_METRICS = {"fid", "kid", "prdc", "classes"}     # those that need the classifier
DEFAULT_SAMPLES = 100   # sampling a WaveNet is slow on a CPU (one step per sample of every clip)
MIN_SAMPLES = 10        # precision/recall and density need more points than their k
DRAW_BATCH = 100
SOUND_FLOOR_KEYS = FLOOR_KEYS + ("class_agreement",)     # the figures set beside the floor's
CALIBRATION = 500       # training clips that calibrate the copy tests (± of their share: about 0.02)
GRID_COLUMNS = 8


class LeaveOneOut(HeldOut):
    """memorisation.py's real sets with training clips as the calibrating set R (`count` of them, a fixed random
    subset), each one's distance to the training set taken without itself; H stays the held-out clips."""

    def __init__(self, reference: torch.Tensor, held: torch.Tensor, count: int = CALIBRATION, seed: int = 0):
        pick = torch.randperm(len(reference), generator=torch.Generator().manual_seed(seed))[:count]
        super().__init__(reference, held, reference[pick])
        d = torch.empty(len(self.real), dtype=torch.float64)
        for start, block in distance_blocks(self.real, self.reference):
            rows = torch.arange(len(block), device=block.device)
            block[rows, pick[start:start + len(block)].to(block.device)] = float("inf")
            d[start:start + len(block)] = block.min(1).values.double().cpu()
        self.real_to_t = d
        self.real_share = float(copied(self.real_to_t, self.real_to_h.cpu()).mean())


def verdict(m: dict) -> str:
    """memorisation.py's verdict in the words of sound: its real share is the training clips' (LeaveOneOut)."""
    said = (f"{100 * m['copy_share']:.1f}% of samples are at most half as far from a training clip as from any "
            f"held-out one")
    real = f"{100 * m['copy_share_real']:.1f}% of the training clips"
    return (f"copies: {said}, against {real}, each measured against the others" if m["copies_found"]
            else f"no copying found: {said}, as {real} are, each measured against the others")


class SoundJudge:
    """Everything about one data set's real clips that each of its runs is compared with, computed once."""

    def __init__(self, ds, n: int, metrics: list[str], device, live):
        self.ds, self.metrics = ds, metrics
        self.network, self.meta, self.label, labels = None, {}, None, None
        if NETWORK_METRICS & set(metrics):
            self.label = labelling(ds)
            labels = ds.labels[self.label]
            bar = lambda total, what: Progress(total, what, unit="step", live=live)  # noqa: E731
            self.network, self.meta = sound_network(ds, device, bar)
        train, test = pictures(clips(ds, "train"), ds.rate), pictures(clips(ds, "test"), ds.rate)
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))
        self.n = n
        self.reference = train[order[:n]]
        # The floor: the next n training clips of the reference's order, where the split holds them.
        floor = order[n:2 * n]
        self.floor = (train[floor], labels.train[floor] if labels else None) if 2 * n <= len(train) else None
        pick = torch.randperm(len(test), generator=torch.Generator().manual_seed(1))[:n]
        self.test = (test[pick], labels.test[pick] if labels else None)
        self.train_all = train
        self.ref_feats = self.network(self.reference)[0] if self.network else None
        # H: half the test split (a fixed random half, as memorisation.py's halves), the other half unused here.
        self.held_index = torch.randperm(len(test), generator=torch.Generator().manual_seed(3))[:max(1, len(test) // 2)]
        self.held = LeaveOneOut(train, test[self.held_index]) if "memorisation" in metrics else None
        self._data_row = self._floor_row = None

    def judge(self, images: torch.Tensor, classes: torch.Tensor | None = None, picture: Path | None = None) -> dict:
        """Figures of clips seen as log-mel pictures; `classes`: what each was drawn for (or its label), for the
        class agreement; `picture`: where the memorisation picture goes (samples only)."""
        out, seconds = {"samples": len(images), "references": len(self.reference),
                        "bootstrap_resamples": BOOTSTRAP}, {}
        t = time.perf_counter()
        feats = probs = None
        if self.network is not None:
            feats, probs = self.network(images)
            seconds["features"] = time.perf_counter() - t
        t = time.perf_counter()
        resamples = bootstrap_indices(len(images))
        if feats is not None:
            out.update(feature_figures(self.ref_feats, feats, self.metrics, resamples))
        if "classes" in self.metrics and classes is not None:
            out.update(agreement(probs.argmax(1), classes, probs.shape[1], resamples))
        if "memorisation" in self.metrics and picture is not None:
            # The ratio's denominator: the training clips' distances to the others (LeaveOneOut's).
            m = memorisation_figures(images, self.train_all, self.test[0], self.held, resamples, picture,
                                     d_test=self.held.real_to_t)
            out.update(m, memorisation_verdict=verdict(m))
        seconds["metrics"] = time.perf_counter() - t
        out["seconds"] = {k: round(v, 2) for k, v in seconds.items()}
        return out

    def data_row(self) -> dict | None:
        """The held-out test clips judged like samples, with their own labels (None for fewer than MIN_SAMPLES)."""
        if self._data_row is None and len(self.test[0]) >= MIN_SAMPLES:
            self._data_row = self.judge(*self.test)
        return self._data_row

    def floor_row(self) -> dict | None:
        """n training clips disjoint from the reference, judged like samples: the real-versus-real floor at this n
        (None where the training split holds fewer than 2n clips)."""
        if self._floor_row is None and self.floor is not None:
            self._floor_row = self.judge(*self.floor)
        return self._floor_row


class SoundQuality:
    """What api.evaluate asks for a sound run's sample figures: one judge per data set, shared by its runs."""

    def __init__(self, metrics, samples: int | None, features: str | None, device):
        if features:
            raise UserError("--features is for images: sound is judged in genlab's own sound classifier's features")
        if samples is not None and samples < MIN_SAMPLES:
            raise UserError(f"--samples must be at least {MIN_SAMPLES} for the figures of sound, not {samples}")
        self.metrics = [m for m in metrics if m != "likelihood"]
        self.samples, self.device, self.judges = samples, device, {}

    def judge(self, data_hash: str, ds, live) -> SoundJudge:
        if data_hash not in self.judges:
            # By default at most half the training split, so that the floor has as many clips again.
            n = self.samples or min(DEFAULT_SAMPLES, len(ds.train_x) // 2)
            if n < MIN_SAMPLES:
                raise UserError(f"{ds.name} has {len(ds.train_x)} training clips: too few for the figures of "
                                f"sound, which compare at least {MIN_SAMPLES} samples with as many real clips twice")
            self.judges[data_hash] = SoundJudge(ds, n, self.metrics, self.device, live)
        return self.judges[data_hash]

    def report(self, model, run_path: Path, data_hash: str, ds, binarize, live) -> dict:
        judge = self.judge(data_hash, ds, live)
        info = model.info
        condition = (torch.arange(judge.n) % model.num_conditions) if model.condition_kind == "class" else None
        why = None
        if "classes" in self.metrics:
            if condition is None:
                why = f"{model.name} draws clips of no chosen class: it is not class-conditional"
            elif info.label != judge.label or tuple(info.class_names) != tuple(ds.labels[judge.label].names):
                why = f"the run is conditioned on the {info.label}; the classifier reads the {judge.label}"
        t = time.perf_counter()
        waves = draw_clips(model, judge.n, condition, f"sample {run_path}", live)
        sampling = time.perf_counter() - t
        images = pictures(waves, ds.rate)
        folder = Path(run_path)
        out = judge.judge(images, condition if why is None else None, folder / "memorisation.png")
        if why is not None:             # said in the table, not an error: the other figures stand
            out["skipped"] = {"classes": why}
        out["spectrograms_picture"] = str(spectrogram_grid(images, condition, info, folder / "spectrograms.png"))
        out["seconds"]["sampling"] = round(sampling, 2)
        floor = judge.floor_row()
        return {**out, "feature_network": judge.network.name if judge.network else None,
                "feature_test_accuracy": judge.meta.get("test_accuracy"),
                "data_reference": judge.data_row(), "data_floor": floor,
                "within_floor": within_floor(out, floor, SOUND_FLOOR_KEYS)}


@torch.no_grad()
def draw_clips(model, n: int, condition: torch.Tensor | None, label: str, live, seed: int = 0) -> torch.Tensor:
    """n clips (waveforms N×T in [-1, 1]) drawn with a fixed seed, `condition` the class of each (or None)."""
    g = torch.Generator(device=model.device).manual_seed(seed)
    bar = Progress(-(-n // DRAW_BATCH), label, unit="clip", live=live)
    out = []
    for s in range(0, n, DRAW_BATCH):
        c = None if condition is None else condition[s:s + DRAW_BATCH].to(model.device)
        out.append(model.sample(min(DRAW_BATCH, n - s), condition=c, generator=g).float().clamp(-1, 1).cpu())
        bar.update(1, items=len(out[-1]))
    bar.close()
    return torch.cat(out)


def spectrogram_grid(images: torch.Tensor, condition: torch.Tensor | None, info, path: Path) -> Path:
    """The samples' log-mel spectrograms (low frequencies at the bottom): for a class-conditional run a row per
    class, named beside it; else rows of GRID_COLUMNS."""
    from ..data.containers.images import save_grid
    k = info.num_classes
    if condition is not None and len(images) >= k:
        per = min(GRID_COLUMNS, len(images) // k)
        rows = torch.cat([images[condition == c][:per] for c in range(k)])
        labels = [f"{info.label} {name}" for name in info.class_names]
        return save_grid(rows, path, nrow=per, scale=2, row_labels=labels)
    return save_grid(images[:GRID_COLUMNS * GRID_COLUMNS], path, nrow=GRID_COLUMNS, scale=2)
