"""The words of a caption. Digits (digits, mnist, printed-digits) are described by their stroke width, slant
and size; clothes (fashion-mnist) and the classes of any other labelled data by their brightness, area and
width (measures.py).

A caption names the class and, for each attribute, the lower or upper third of the image's own class on
the training split ("a thick seven" is thick for a seven); the middle third goes unnamed. The words are
drawn anew each epoch from a small grammar (synonyms, word orders, "7" or "seven"), so that a model
learns what the words mean rather than one sentence per image; `parse` reads any caption of the grammar
back to its class and attribute levels. `holdout` combinations ("thick 7") are never written: the
images they describe get captions without that attribute, and a caption naming them is one never seen.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

import torch

from ...errors import UserError
from ..containers.base import ImageDataset
from ..text.vocab import SPECIALS, tokenize
from .file import PREFIX
from .measures import area, brightness, size, slant, stroke_width, width

LOW, MID, HIGH = -1, 0, 1


# ---- what is said of a class, and how -----------------------------------------------------------------


@dataclass(frozen=True)
class Attribute:
    name: str                             # what the benchmark reports: "stroke width"
    measure: Callable[[torch.Tensor], torch.Tensor]
    low: tuple[str, ...]                  # words for the lower third of its class, the first the plainest
    high: tuple[str, ...]                 # ... and for the upper third


DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DIGIT_ATTRIBUTES = (
    Attribute("size", size, ("small", "little"), ("large", "big")),
    Attribute("stroke width", stroke_width, ("thin", "fine", "skinny"), ("thick", "bold", "heavy")),
    Attribute("slant", slant, ("upright", "straight", "vertical"), ("slanted", "leaning", "tilted", "italic")),
)
THING_ATTRIBUTES = (
    Attribute("brightness", brightness, ("dark", "dim"), ("bright", "light", "pale")),
    Attribute("area", area, ("small", "little"), ("large", "big")),
    Attribute("width", width, ("narrow", "slim"), ("wide", "broad")),
)
CLOTHES = (("t-shirt", "top", "tee"), ("pair of trousers", "pair of pants"), ("pullover", "sweater", "jumper"),
           ("dress",), ("coat", "jacket"), ("sandal",), ("shirt",), ("sneaker", "trainer"), ("bag", "handbag"),
           ("ankle boot", "boot"))
DIGIT_DATA, CLOTHES_DATA = ("digits", "mnist", "printed-digits"), ("fashion-mnist",)
# Words that only join a sentence: never a class's nor an attribute's.
FILLERS = ("a", "an", "the", "digit", "that", "is", "and", ",", "of")


@dataclass(frozen=True)
class Scheme:
    """The captions of one kind of data: each class's nouns and the attributes said of an image."""
    name: str
    nouns: tuple[tuple[str, ...], ...]    # per class, the ways to name it, the first the plainest
    attributes: tuple[Attribute, ...]
    lead: str = ""                        # a word some captions put before the noun ("digit")

    def __post_init__(self):
        phrases = [tuple(tokenize(n, "word")) for names in self.nouns for n in names]
        if any(not p for p in phrases):
            raise UserError("a class name has no letters or digits to caption it by: rename its sub-folder")
        owners = {}
        for k, names in enumerate(self.nouns):
            for p in names:
                if owners.setdefault(tuple(tokenize(p, "word")), k) != k:
                    raise UserError(f"two classes are both called {p!r}: captions could not tell them apart")

    # -- writing --
    def caption(self, label: int, levels, rng: random.Random) -> str:
        """A sentence naming class `label` and each attribute whose level is not MID, worded by `rng`."""
        noun = rng.choice(self.nouns[label])
        if self.lead and rng.random() < 0.25:
            noun = f"{self.lead} {noun}"
        words = [rng.choice(a.low if lv == LOW else a.high) for a, lv in zip(self.attributes, levels) if lv != MID]
        if not words:
            return rng.choice([f"{_article(noun)} {noun}", noun])
        before = (", " if rng.random() < 0.5 else " ").join(words)
        after = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
        templates = (f"{_article(before)} {before} {noun}", f"{noun}, {after}",
                     f"{_article(noun)} {noun} that is {after}", f"{_article(noun)} {noun}, {after}")
        return rng.choices(templates, weights=(4, 1, 1, 1))[0]      # mostly "a thick, slanted seven"

    def plain(self, label: int) -> str:
        noun = self.nouns[label][0]
        return f"{_article(noun)} {noun}"

    def vocabulary(self) -> tuple[str, ...]:
        """Every word a caption of this scheme can hold, the specials first."""
        pieces = [n for names in self.nouns for n in names] + [self.lead, *FILLERS]
        pieces += [w for a in self.attributes for w in a.low + a.high]
        words = sorted({t for p in pieces for t in tokenize(p, "word")})
        return SPECIALS + tuple(words)

    # -- reading --
    def parse(self, caption: str) -> tuple[int | None, tuple[int, ...]]:
        """The class a caption names (None: none, or two) and the level it says of each attribute (MID
        where it says none); the longest noun wins ("t-shirt" over "shirt")."""
        tokens = tokenize(caption, "word")
        phrases = sorted(((tuple(tokenize(n, "word")), k) for k, names in enumerate(self.nouns) for n in names),
                         key=lambda pk: -len(pk[0]))
        adjectives = {w: (i, lv) for i, a in enumerate(self.attributes)
                      for lv, ws in ((LOW, a.low), (HIGH, a.high)) for w in ws}
        classes, levels, i = set(), [MID] * len(self.attributes), 0
        while i < len(tokens):
            match = next(((p, k) for p, k in phrases if tuple(tokens[i:i + len(p)]) == p), None)
            if match is not None:
                classes.add(match[1])
                i += len(match[0])
                continue
            if tokens[i] in adjectives:
                a, lv = adjectives[tokens[i]]
                levels[a] = lv
            i += 1
        return (classes.pop() if len(classes) == 1 else None), tuple(levels)

    def measure(self, images: torch.Tensor) -> torch.Tensor:
        """N×A: each attribute measured on each image (in chunks: 60,000 images as float64 would be 376 MB)."""
        if not len(images):
            return torch.zeros(0, len(self.attributes), dtype=torch.float64)
        return torch.cat([torch.stack([a.measure(part) for a in self.attributes], 1)
                          for part in images.split(4096)])


def _article(phrase: str) -> str:
    word = phrase.split()[0].strip(",")
    vowel = word[0] in "aeiou" and not word.startswith(("one", "uni", "use"))
    return "an" if vowel or word.startswith(("8", "11", "18")) else "a"


def scheme_for(ds: ImageDataset) -> Scheme:
    """How the images of a labelled data set are captioned; unlabelled data have nothing to say."""
    if ds.num_classes < 2:
        raise UserError(f"a text-to-image model learns from captions: give --data {PREFIX}FILE (lines of "
                        f"PATH<TAB>CAPTION), or labelled images whose captions genlab writes (digits, mnist, "
                        f"printed-digits, fashion-mnist, folder:PATH with class sub-folders); {ds.name} has "
                        f"{'no classes' if ds.num_classes == 0 else 'one class'}")
    if ds.name in DIGIT_DATA:
        nouns = tuple((DIGIT_WORDS[int(c)], c) if c.isdigit() and len(c) == 1 else (c.lower(),)
                      for c in ds.class_names)
        return Scheme("digits", nouns, DIGIT_ATTRIBUTES, lead="digit")
    if ds.name in CLOTHES_DATA:
        return Scheme("clothes", CLOTHES, THING_ATTRIBUTES)
    return Scheme("things", tuple((c.lower(),) for c in ds.class_names), THING_ATTRIBUTES)


# ---- each image's levels -------------------------------------------------------------------------------

def thresholds(values: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """K×A×2: the lower and upper third of each attribute within each class (NaN for a class unseen)."""
    out = torch.full((k, values.shape[1], 2), float("nan"), dtype=torch.float64)
    q = torch.tensor([1 / 3, 2 / 3], dtype=torch.float64)
    for c in range(k):
        v = values[labels == c]
        if len(v):
            out[c] = torch.quantile(v.double(), q, dim=0).T
    return out


def levels_of(values: torch.Tensor, labels: torch.Tensor, cuts: torch.Tensor) -> torch.Tensor:
    """N×A levels: LOW below the class's lower third, HIGH above its upper third, MID between."""
    c = cuts[labels]
    return (values > c[..., 1]).to(torch.int8) - (values < c[..., 0]).to(torch.int8)


def parse_holdout(scheme: Scheme, text: str) -> tuple[tuple[int, int, int], ...]:
    """"thick 7, small 3" as (class, attribute, level) triples; each item one class and one attribute."""
    out = []
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        label, levels = scheme.parse(item)
        named = [(a, lv) for a, lv in enumerate(levels) if lv != MID]
        if label is None or len(named) != 1:
            words = ", ".join(w for a in scheme.attributes for w in a.low[:1] + a.high[:1])
            raise UserError(f"holdout: {item!r} must name one class and one attribute word (one of {words}), "
                            f"e.g. '{scheme.attributes[0].high[0]} {scheme.nouns[-1][0]}'")
        out.append((label, *named[0]))
    return tuple(out)


def hold_out(labels: torch.Tensor, levels: torch.Tensor, held: tuple[tuple[int, int, int], ...]) -> torch.Tensor:
    """The levels with every held-out combination left unsaid."""
    levels = levels.clone()
    for label, a, lv in held:
        levels[(labels == label) & (levels[:, a] == lv), a] = MID
    return levels
