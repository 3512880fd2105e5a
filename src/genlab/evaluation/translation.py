"""How good an image-to-image translation is, measured against what is known of the two domains.

The figures, each of held-out images (the test splits) and each in one direction (a2b: A's images
translated into B; b2a the other way):

- against the truth, where each image has a true counterpart in the other domain (Pokémon sprites
  normal and shiny: image i of both is one creature): the mean absolute error per pixel between the
  translation and the counterpart, in 8-bit levels (0–255) over every channel, and the share of pixels
  whose colour lies within COLOUR_DISTANCE levels of the counterpart's (Euclidean over the channels);
  beside two baselines: the identity (the input itself, untranslated) and the best single global colour
  map fitted on the training pairs (below);
- the classes, where both domains are labelled with the same classes (handwritten ↔ printed digits):
  the share of translations that genlab's classifier of the target domain reads as the input's class,
  beside the identity (the same classifier reading the untranslated inputs) and the source domain's own
  classifier on them (what the inputs' class is worth to a reader of their own domain);
- the colours, for any two domains: the total-variation distance between the colour histogram of the
  translations and that of the target domain's test images, beside the identity (the inputs' histogram)
  and the floor (the target's training images against its test images).

The global colour map: each colour of the source's training images is quantised to one of 256 colours
(data/containers/palette.py's k-means; grey images keep their levels, 256 at most), and each of these is
mapped to the per-channel median of the target pixels at the same places of the paired training images:
the map of that quantisation with the least absolute error on the training pairs (a median minimises the
sum of absolute deviations). A lookup of every 24-bit colour would be 256³ entries, most of them never
seen.

Every function is pure: tensors in, numbers out; `figures` joins them for a model and its data.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from ..data.containers.palette import fit_palette, palette_index

COLOUR_DISTANCE = 16.0      # levels: a pixel this close to the truth's colour counts as right
MAP_COLOURS = 256           # the colour map's quantisation of the source colours
HISTOGRAM_BINS = {1: 32, 3: 8}      # per channel: 32 grey levels, or 8³ = 512 colours
BATCH = 256


def levels(images: torch.Tensor) -> torch.Tensor:
    """Images as float64 8-bit levels: uint8 as they are, floats in [0, 1] times 255."""
    return images.double() if images.dtype == torch.uint8 else images.double() * 255


def pixel_mae(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Per image: the mean absolute difference over every channel of every pixel, in levels."""
    return (levels(pred) - levels(truth)).abs().flatten(1).mean(1)


def within_share(pred: torch.Tensor, truth: torch.Tensor, distance: float = COLOUR_DISTANCE) -> torch.Tensor:
    """Per image: the share of pixels whose colour is within `distance` levels of the truth's."""
    d = (levels(pred) - levels(truth)).pow(2).sum(1).sqrt()          # N×H×W
    return (d <= distance).double().flatten(1).mean(1)


def mean_se(values: torch.Tensor) -> tuple[float, float]:
    n = len(values)
    return float(values.mean()), (float(values.std(unbiased=True)) / math.sqrt(n) if n > 1 else float("nan"))


def scores(pred: torch.Tensor, truth: torch.Tensor, distance: float = COLOUR_DISTANCE) -> dict:
    """Mean absolute error and share within `distance`, each with its standard error over the images."""
    mae, mae_se = mean_se(pixel_mae(pred, truth))
    within, within_se = mean_se(within_share(pred, truth, distance))
    return {"mae": mae, "mae_se": mae_se, "within": within, "within_se": within_se}


# ---- the global colour map -----------------------------------------------------------------------

@dataclass
class ColourMap:
    palette: torch.Tensor       # K×C uint8: the source colours, quantised
    colours: torch.Tensor       # K×C uint8: what each becomes

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 N×C×H×W (or floats in [0, 1], rounded to levels) recoloured: uint8 N×C×H×W."""
        if images.dtype != torch.uint8:
            images = levels(images).round().clamp(0, 255).to(torch.uint8)
        index = palette_index(images.cpu(), self.palette)[:, 0]          # N×H×W
        return self.colours[index].permute(0, 3, 1, 2).contiguous()


def fit_colour_map(source: torch.Tensor, target: torch.Tensor, colours: int = MAP_COLOURS) -> ColourMap:
    """The colour map fitted on paired uint8 images (source[i] and target[i] one pair): the source's
    colours quantised to `colours`, each mapped to the per-channel median of the target's pixels where
    the source has it (a quantised colour no pixel has keeps itself)."""
    if source.shape != target.shape:
        raise ValueError(f"paired images must have one shape, not {tuple(source.shape)} and {tuple(target.shape)}")
    palette = fit_palette(source.cpu(), colours)
    index = palette_index(source.cpu(), palette)[:, 0].reshape(-1)                   # every pixel's colour
    k = len(palette)
    counts = torch.bincount(index, minlength=k)
    middle = (torch.cumsum(counts, 0) - counts) + (counts - 1).clamp(min=0) // 2    # the lower median's place
    mapped = palette.clone()
    for ch in range(source.shape[1]):
        values = target[:, ch].reshape(-1).cpu().long()
        ordered = (index * 256 + values).sort().values % 256                        # by colour, then by value
        if len(ordered):
            mapped[:, ch] = torch.where(counts > 0, ordered[middle.clamp(max=len(ordered) - 1)],
                                        palette[:, ch].long()).to(torch.uint8)
    return ColourMap(palette, mapped)


# ---- colours of a whole domain -----------------------------------------------------------------

def colour_histogram(images: torch.Tensor) -> torch.Tensor:
    """The share of all pixels in each colour bin (HISTOGRAM_BINS levels per channel), float64."""
    channels = images.shape[1]
    bins = HISTOGRAM_BINS.get(channels, 8)
    q = (levels(images).round() * bins / 256).floor().clamp(0, bins - 1).long()    # N×C×H×W bin per channel
    code = torch.zeros_like(q[:, 0])
    for ch in range(channels):
        code = code * bins + q[:, ch]
    h = torch.bincount(code.reshape(-1), minlength=bins ** channels).double()
    return h / h.sum().clamp(min=1)


def histogram_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Total variation between the colour histograms of two sets of images: 0 alike, 1 disjoint."""
    return 0.5 * float((colour_histogram(a) - colour_histogram(b)).abs().sum())


# ---- classes ---------------------------------------------------------------------------------

def agreement(predicted: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """The share of predictions (class indices or N×K scores) equal to the labels, and its standard error."""
    if predicted.dim() == 2:
        predicted = predicted.argmax(1)
    hits = (predicted.cpu() == labels.cpu()).double()
    return mean_se(hits)


# ---- everything, for a translator and its two domains ----------------------------------------------

@torch.no_grad()
def translate_all(translate: Callable, images: torch.Tensor, as_input: Callable, label: str = "translating") \
        -> torch.Tensor:
    """Translations of uint8 images, in batches: `as_input` turns uint8 into the model's input."""
    from .. import progress
    out, done = [], 0
    for chunk in images.split(BATCH):
        out.append(translate(as_input(chunk)).cpu())
        done += len(chunk)
        progress.tick(label, done, len(images), "img")
    return torch.cat(out) if out else torch.zeros(0, *images.shape[1:])


def direction_figures(translated: torch.Tensor, inputs, target_train, target_test, *, truth=None,
                      colour_map: ColourMap | None = None, reader=None, source_reader=None, labels=None,
                      distance: float = COLOUR_DISTANCE) -> dict:
    """One direction's figures: `translated` (floats in [0, 1]) of `inputs` (uint8), the target domain's
    images (uint8); with `truth` (each input's counterpart) and `colour_map`, the truth's figures; with
    `reader` (images → class scores) and `labels`, the class figures."""
    out = {"colour_tv": histogram_distance(translated, target_test),
           "colour_tv_identity": histogram_distance(inputs, target_test),
           "colour_tv_floor": histogram_distance(target_train, target_test)}
    if truth is not None:
        out.update(scores(translated, truth, distance))
        identity = scores(inputs, truth, distance)
        out.update(identity_mae=identity["mae"], identity_within=identity["within"])
        if colour_map is not None:
            mapped = scores(colour_map(inputs), truth, distance)
            out.update(colour_map_mae=mapped["mae"], colour_map_within=mapped["within"])
    if reader is not None and labels is not None:
        out["agreement"], out["agreement_se"] = agreement(reader(translated), labels)
        out["identity_agreement"] = agreement(reader(levels(inputs) / 255), labels)[0]
        if source_reader is not None:
            out["source_accuracy"] = agreement(source_reader(levels(inputs) / 255), labels)[0]
    return out


# ---- the table -------------------------------------------------------------------------------------

COLUMNS = [("cycle_mae", "cycle MAE"), ("mae", "MAE"), ("identity_mae", "identity MAE"),
           ("colour_map_mae", "colour-map MAE"), ("within", "within"), ("identity_within", "identity within"),
           ("colour_map_within", "colour-map within"), ("agreement", "class agreement"),
           ("identity_agreement", "identity agr."), ("source_accuracy", "source acc."), ("colour_tv", "colour TV"),
           ("colour_tv_identity", "identity TV"), ("colour_tv_floor", "floor TV")]


def translation_figures(model, ds, as_input: Callable) -> dict:
    """A translator's figures on the held-out images of both domains: their
    colours against the target domain's, always; against each image's true counterpart where the two
    domains name the same images in the same order (their `extra` ids: Pokémon normal and shiny), with the
    colour map fitted on the training pairs; and their classes where both domains have the same ones,
    read by genlab's classifier of each domain (trained once and cached)."""
    from .features import builtin_network

    a, b = ds.a, ds.b
    paired = (a.extra.get("train_ids") is not None and a.extra.get("train_ids") == b.extra.get("train_ids")
              and a.extra.get("test_ids") == b.extra.get("test_ids"))
    labelled = (a.test_y is not None and b.test_y is not None and len(a.class_names) > 1
                and a.class_names == b.class_names)
    from ..progress import Progress
    readers = {}
    if labelled:
        for name, domain in (("a", a), ("b", b)):
            net = builtin_network(domain, model.device, lambda total, label: Progress(total, label, unit="img"))
            readers[name] = lambda x, net=net: net(x)[1]
    out = {}
    for d, (src, dst) in {"a2b": (a, b), "b2a": (b, a)}.items():
        translated = translate_all(lambda x, d=d: model.translate(x, d), src.test_x, as_input,
                                   f"translating {src.name} ({d})")
        figures = direction_figures(
            translated, src.test_x, dst.train_x, dst.test_x,
            truth=dst.test_x if paired else None,
            colour_map=fit_colour_map(src.train_x, dst.train_x) if paired else None,
            reader=readers.get(d[-1]), source_reader=readers.get(d[0]), labels=src.test_y if labelled else None)
        out.update({f"{d}_{k}": v for k, v in figures.items()})
    return out


def format_table(results: list[dict]) -> str:
    """One row per run and direction: the figures of `direction_figures` (keys DIRECTION_figure in each
    result) and the round trip's error (cycle_a_mae for a2b, cycle_b_mae for b2a)."""
    from pathlib import Path

    rows = []
    for r in results:
        for d, cycle in (("a2b", "cycle_a_mae"), ("b2a", "cycle_b_mae")):
            row = {k[len(d) + 1:]: v for k, v in r.items() if k.startswith(d + "_")}
            if cycle in r:
                row.update(cycle_mae=r[cycle], cycle_mae_se=r.get(cycle + "_se"))
            if row:
                rows.append({"run": Path(r["run"]).name, "model": r.get("model", ""), "direction": d, **row})
    cols = [(k, h) for k, h in COLUMNS if any(k in row for row in rows)]
    head = ["run", "model", "direction"] + [h for _, h in cols]
    cells = [[row["run"], row["model"], row["direction"]] + [_cell(row.get(k), row.get(k + "_se")) for k, _ in cols]
             for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(head)]
    def line(cs):
        return "  ".join(c.rjust(w) if i > 2 else c.ljust(w) for i, (c, w) in enumerate(zip(cs, widths)))
    notes = ("held-out images of each domain translated (a2b: A into B). cycle MAE: the round trip's mean absolute "
             "error per pixel, 8-bit levels; MAE, within: against each input's true counterpart (levels; the "
             f"share of pixels within {COLOUR_DISTANCE:g} levels of its colour), beside the identity (the input "
             "itself) and the best global colour map fitted on the training pairs; class agreement: translations "
             "read as their input's class by genlab's classifier of the target domain, beside the identity (it "
             "reads the inputs) and source acc. (the source domain's classifier reads the inputs); colour TV: "
             "total variation between the colour histograms of the translations and the target's test images, "
             "beside the identity and the floor (the target's training images). ± standard error over the images.")
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(c) for c in cells] + [notes])


def _cell(v, se=None) -> str:
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return "—"
    text = f"{v:.3f}" if abs(v) < 10 else f"{v:.2f}"
    if isinstance(se, float) and math.isfinite(se):
        text += f"±{se:.3f}" if abs(v) < 10 else f"±{se:.2f}"
    return text
