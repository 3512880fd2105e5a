"""Does a conditional model draw what it was asked for? The data's classifier reads samples drawn for each
class (a class-conditional model: the classes in turn; a caption-conditional one: the captions of held-out
images) and the share it reads as the class asked for is the class agreement (chance: one over the
classes; the classifier's own accuracy on the held-out images is its ceiling). For captions genlab wrote
from measured attributes (stroke width, slant, size; brightness, area...), the attribute agreement: the
same noise drawn under "a <high word> <class>" and "a <low word> <class>", and the share of pairs whose
measured attribute is ordered as the words say (0.5: the words do nothing)."""
from __future__ import annotations

import random

import torch

from ..data.captions.batches import split_captions, token_ids
from ..data.captions.file import CaptionedImages
from ..data.captions.grammar import HIGH, LOW, MID, parse_holdout, scheme_for

MAX_SAMPLES = 1000      # samples read for the class agreement (at most; as many of each class)
PAIRS = 50              # same-noise pairs per class and attribute
BATCH = 250


def draw(model, n: int, seed: int, condition, binary: bool = False) -> torch.Tensor:
    """n samples under the conditions (a binary model's: a Bernoulli draw of each pixel, as the judge's)."""
    g = torch.Generator(device=model.device).manual_seed(seed)
    x = model.sample(n, condition=condition, generator=g).float().clamp(0, 1)
    return torch.bernoulli(x, generator=g) if binary else x


def read(network, images: torch.Tensor) -> torch.Tensor:
    return network(images)[1].argmax(1).cpu()


def caption(scheme, label: int, attribute: int, level: int, rng: random.Random) -> str:
    """A caption of the class with one attribute at a level (HIGH, LOW) and the others unsaid (MID)."""
    levels = [MID] * len(scheme.attributes)
    levels[attribute] = level
    return scheme.caption(label, levels, rng)


def pair_agreement(model, scheme, label: int, attribute: int, n: int, seed: int, rng) -> float:
    """Share of same-noise pairs whose attribute is ordered as "high" vs "low" captions say (ties count half)."""
    vocab = model.info.vocab
    said = {level: token_ids(vocab, [caption(scheme, label, attribute, level, rng) for _ in range(n)], model.device)
            for level in (HIGH, LOW)}
    measure = scheme.attributes[attribute].measure
    high, low = (measure(draw(model, n, seed, said[level]).cpu()) for level in (HIGH, LOW))
    return float(((high > low).double() + 0.5 * (high == low).double()).mean())


def _conditions(model, ds, n: int):
    """(the conditions to draw with, the classes they ask for), or a reason there are none."""
    if model.condition_kind == "class":
        labels = torch.arange(n) % model.num_conditions
        return labels.to(model.device), labels
    if model.condition_kind == "text" and ds.test_y is not None and ds.num_classes > 1:
        idx = torch.randperm(len(ds.test_x), generator=torch.Generator().manual_seed(0))[:n]
        _, test = split_captions(ds, model.data_request(model.config))
        lines = test.lines(idx.tolist(), random.Random(0))
        return token_ids(model.info.vocab, lines, model.device), ds.test_y[idx]
    if model.condition_kind == "text":
        return "its captions name no classes of the data"
    return f"{model.name} draws no class on request"


def agreement(read_as: torch.Tensor, asked: torch.Tensor, classes: int, resamples: torch.Tensor) -> dict:
    """The share of samples read as the class they were drawn for (or real examples as their labels), its
    standard deviation over the bootstrap resamples (R×n positions), and chance (one over the classes)."""
    hit = (read_as.cpu() == asked.cpu()).double()
    return {"class_agreement": float(hit.mean()), "class_agreement_std": float(hit[resamples].mean(1).std()),
            "class_chance": 1 / classes}


@torch.no_grad()
def class_figures(model, ds, network, resamples_of, n: int = MAX_SAMPLES, binary: bool = False) -> dict:
    """class_agreement (± over bootstrap resamples of the samples), class_chance and, for captions genlab
    wrote, the attribute agreement per attribute; or {"skipped": {"classes": why}}. `network` classifies the
    data's classes."""
    asked = _conditions(model, ds, min(n, len(ds.test_x)) if model.condition_kind == "text" else n)
    if isinstance(asked, str):
        return {"skipped": {"classes": asked}}
    condition, labels = asked
    read_as = torch.cat([read(network, draw(model, len(labels[s:s + BATCH]), s, condition[s:s + BATCH], binary))
                         for s in range(0, len(labels), BATCH)])
    out = {**agreement(read_as, labels, ds.num_classes, resamples_of(len(labels))), "class_samples": len(labels)}
    if model.condition_kind == "text" and not isinstance(ds, CaptionedImages):   # attributes genlab measures
        out["attribute_agreement"] = attribute_figures(model, ds)
    return out


def attribute_figures(model, ds, pairs: int = PAIRS) -> dict:
    """Per attribute: the mean pair agreement over the classes whose combination training said, and its
    standard error over those classes."""
    scheme = scheme_for(ds)
    held = {(c, a) for c, a, _ in parse_holdout(scheme, model.data_request(model.config).get("holdout", ""))}
    rng, out = random.Random(0), {}
    for a, attribute in enumerate(scheme.attributes):
        figures = [pair_agreement(model, scheme, k, a, pairs, 7 * k, rng)
                   for k in range(ds.num_classes) if (k, a) not in held]
        mean = sum(figures) / len(figures)
        se = (sum((f - mean) ** 2 for f in figures) / max(len(figures) - 1, 1) / len(figures)) ** 0.5
        out[attribute.name] = [round(mean, 4), round(se, 4)]
    return out


@torch.no_grad()
def real_agreement(network, images: torch.Tensor, labels: torch.Tensor) -> float:
    """The classifier's reading of real held-out images against their labels: the ceiling of the figure."""
    return float((read(network, images) == labels.cpu()).double().mean())
