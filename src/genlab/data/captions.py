"""Captions of images, for a text-to-image model: what genlab measures on each image, written as short
sentences; or the user's own captions (`captions:FILE`, lines of PATH<TAB>CAPTION).

Measured, from the image's moments (intensity as mass; rows y grow downwards):
  stroke width   the width of the rectangle with the ink's area A (m00) and perimeter P (the image's total
                 variation): P/4 − √((P/4)² − A), exact for an upright bar of any length
  slant          |μ11 / μ02|: how far the ink moves sideways per row, 0 for an upright stroke
  size           √(μ20 + μ02): the radius of gyration of the ink, in pixels
  brightness     the mean intensity of the inked pixels (those above 2% of full scale)
  area           the inked pixels' share of the image
  width          √(12·μ20) of the inked pixels: the width of a rectangle with the same spread across
Digits (digits, mnist, printed-digits) are described by their stroke width, slant and size; clothes
(fashion-mnist) and the classes of any other labelled data by their brightness, area and width.

A caption names the class and, for each attribute, the lower or upper third of the image's own class on
the training split ("a thick seven" is thick for a seven); the middle third goes unnamed. The words are
drawn anew each epoch from a small grammar (synonyms, word orders, "7" or "seven"), so that a model
learns what the words mean rather than one sentence per image; `parse` reads any caption of the grammar
back to its class and attribute levels. `holdout` combinations ("thick 7") are never written: the
images they describe get captions without that attribute, and a caption naming them is one never seen.
"""
from __future__ import annotations

import dataclasses
import hashlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import UserError
from ..printable import printable
from .containers.base import DataInfo, ImageDataset
from .containers.batch import Batch
from .containers.images import open_image, read_image
from .containers.loader import Batches, epoch_seed, transform
from .text.vocab import PAD, SPECIALS, TextInfo, build_vocab, tokenize

PREFIX = "captions:"
LOW, MID, HIGH = -1, 0, 1
INK = 0.02                    # an inked pixel: above 2% of full scale
TEST_FRACTION, SEED = 0.1, 0  # a caption file's split, as a folder's
EXAMPLES = 10                 # example captions kept with a run (what it draws when given none)


# ---- measuring ---------------------------------------------------------------------------------------

def _grey(images: torch.Tensor) -> torch.Tensor:
    """N×C×H×W uint8 (or floats in [0, 1]) as N×H×W float64 intensities in [0, 1]."""
    x = images.double()
    if not images.is_floating_point():
        x = x / 255
    return x.mean(1)


def _moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mass and the central second moments (μ20 across, μ02 down, μ11) of N×H×W weights, per image."""
    _, h, w = x.shape
    ys, xs = torch.arange(h, dtype=x.dtype), torch.arange(w, dtype=x.dtype)
    cols, rows = x.sum(1), x.sum(2)                                   # mass per column (N×W), per row (N×H)
    m = cols.sum(1)
    safe = m.clamp_min(1e-12)
    cx, cy = cols @ xs / safe, rows @ ys / safe
    mu20 = cols @ (xs * xs) / safe - cx * cx
    mu02 = rows @ (ys * ys) / safe - cy * cy
    mu11 = torch.einsum("nhw,h,w->n", x, ys, xs) / safe - cx * cy
    return m, mu20.clamp_min(0), mu02.clamp_min(0), mu11


def stroke_width(images: torch.Tensor) -> torch.Tensor:
    x = _grey(images)
    area = x.sum((1, 2))
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))          # strokes at the border have an edge there too
    perimeter = padded.diff(dim=1).abs().sum((1, 2)) + padded.diff(dim=2).abs().sum((1, 2))
    q = perimeter / 4
    return q - (q * q - area).clamp_min(0).sqrt()


def slant(images: torch.Tensor) -> torch.Tensor:
    _, _, mu02, mu11 = _moments(_grey(images))
    return (mu11 / mu02.clamp_min(1e-12)).abs()


def size(images: torch.Tensor) -> torch.Tensor:
    _, mu20, mu02, _ = _moments(_grey(images))
    return (mu20 + mu02).sqrt()


def brightness(images: torch.Tensor) -> torch.Tensor:
    x = _grey(images)
    ink = x > INK
    return (x * ink).sum((1, 2)) / ink.sum((1, 2)).clamp_min(1)


def area(images: torch.Tensor) -> torch.Tensor:
    ink = _grey(images) > INK
    return ink.double().mean((1, 2))


def width(images: torch.Tensor) -> torch.Tensor:
    _, mu20, _, _ = _moments((_grey(images) > INK).double())
    return (12 * mu20).sqrt()


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


# ---- captions of a split -----------------------------------------------------------------------------

class WrittenCaptions:
    """Each image's class and levels, worded anew by the random generator given."""

    def __init__(self, scheme: Scheme, labels: torch.Tensor, levels: torch.Tensor):
        self.scheme, self.labels, self.levels = scheme, labels.tolist(), levels.tolist()

    def lines(self, idx: list[int], rng: random.Random) -> list[str]:
        return [self.scheme.caption(self.labels[i], self.levels[i], rng) for i in idx]


class FixedCaptions:
    """The user's captions, as they wrote them."""

    def __init__(self, captions):
        self.captions = list(captions)

    def lines(self, idx: list[int], rng: random.Random) -> list[str]:
        return [self.captions[i] for i in idx]


def split_captions(ds: ImageDataset, record: dict):
    """(train, test): the captions of each split, as the run's data record says they are made."""
    if isinstance(ds, CaptionedImages):
        return FixedCaptions(ds.train_captions), FixedCaptions(ds.test_captions)
    scheme = scheme_for(ds)
    held = parse_holdout(scheme, record.get("holdout", ""))
    cuts = thresholds(scheme.measure(ds.train_x), ds.train_y, ds.num_classes)
    return tuple(WrittenCaptions(scheme, y, hold_out(y, levels_of(scheme.measure(x), y, cuts), held))
                 for x, y in ((ds.train_x, ds.train_y), (ds.test_x, ds.test_y)))


def with_captions(ds: ImageDataset, info: DataInfo, holdout: str = "") -> tuple[DataInfo, dict]:
    """The Info of a caption-conditioned run (its words and example captions) and what its data record
    says of the captions."""
    if isinstance(ds, CaptionedImages):
        if holdout.strip():
            raise UserError("holdout leaves combinations out of the captions genlab writes; a caption file's "
                            "captions are the user's own: leave the lines out of the file instead")
        vocab = build_vocab(ds.train_captions, "word", min_count=1).vocab
        examples = tuple(dict.fromkeys(ds.test_captions + ds.train_captions))[:EXAMPLES]
        return dataclasses.replace(info, vocab=vocab, captions=examples), {"captions": "file"}
    scheme = scheme_for(ds)
    held = parse_holdout(scheme, holdout)
    examples = tuple(scheme.plain(k) for k in range(ds.num_classes))
    record = {"captions": f"written ({scheme.name}: {', '.join(a.name for a in scheme.attributes)})",
              "holdout": ", ".join(f"{scheme.attributes[a].low[0] if lv == LOW else scheme.attributes[a].high[0]} "
                                   f"{scheme.nouns[c][0]}" for c, a, lv in held)}
    return dataclasses.replace(info, vocab=scheme.vocabulary(), captions=examples), record


# ---- token ids ---------------------------------------------------------------------------------------

def token_ids(vocab: tuple[str, ...], lines: list[str], device="cpu", *, strict: bool = False) -> torch.Tensor:
    """N×T token ids of the lines (each ended by </s>, padded with <pad>). `strict`: a user's caption,
    refused with one line when empty or holding a word the model never read."""
    text = TextInfo(vocab=vocab)
    if strict:
        for line in lines:
            if not text.tokens(line):
                raise UserError("the caption is empty: say what to draw, e.g. --text \"a thick seven\"")
            unknown = list(dict.fromkeys(text.unknown(line)))
            if unknown:
                known = " ".join(w for w in vocab if w not in SPECIALS and w[0].isalnum())
                raise UserError(f"{', '.join(map(repr, unknown))} {'is' if len(unknown) == 1 else 'are'} not among "
                                f"the words this model was trained on: {known[:300]}")
    ids = [text.encode(line) for line in lines]
    out = torch.full((len(ids), max(map(len, ids), default=1)), PAD, dtype=torch.long)
    for i, s in enumerate(ids):
        out[i, :len(s)] = torch.tensor(s, dtype=torch.long)
    return out.to(device)


class CaptionBatches(Batches):
    """Images with their captions: Batch(x, condition) where `condition` is N×T token ids, each caption
    ended by </s> and padded with <pad> (its length is its tokens before the padding). Written captions are
    worded anew each epoch (the test split's always alike)."""

    def __init__(self, images: torch.Tensor, captions, vocab: tuple[str, ...], **kwargs):
        super().__init__(images, None, **kwargs)
        self.captions, self.vocab = captions, vocab

    def epoch(self, epoch: int = 0):
        g = torch.Generator(device=self.device).manual_seed(epoch_seed(self.seed, epoch, salt=2)) if self.shuffle \
            else None
        mine = slice(self.rank, None, self.world_size)
        for i, b in enumerate(self._kept(epoch)):
            rng = random.Random(epoch_seed(self.seed, epoch, salt=5) * 100_003 + i if self.shuffle else i)
            tokens = token_ids(self.vocab, self.captions.lines(b.tolist(), rng), self.device)
            b = b.to(self.device)
            x = transform(self.images[b], self.binarize, g) if self.shuffle else self._fixed()[b]
            if self.world_size > 1:
                x, tokens = x[mine], tokens[mine]
            yield Batch(x, tokens)


def caption_batches(ds: ImageDataset, info: DataInfo, record: dict, *, batch_size: int, seed: int, device,
                    test_batch: int) -> tuple[CaptionBatches, CaptionBatches]:
    train, test = split_captions(ds, record)
    common = dict(binarize=record["binarize"], device=device)
    return (CaptionBatches(ds.train_x, train, info.vocab, batch_size=batch_size, shuffle=True, seed=seed, **common),
            CaptionBatches(ds.test_x, test, info.vocab, batch_size=test_batch, shuffle=False, seed=0, **common))


# ---- the user's captions: captions:FILE --------------------------------------------------------------

@dataclass
class CaptionedImages(ImageDataset):
    """Images with a caption each, split once and for all (unlabelled: the captions say what they are)."""
    train_captions: tuple[str, ...] = ()
    test_captions: tuple[str, ...] = ()

    def content_hash(self) -> str:
        h = hashlib.sha256(super().content_hash().encode())
        for line in self.train_captions + self.test_captions:
            h.update(line.encode("utf-8") + b"\n")
        return h.hexdigest()[:16]

    def describe(self) -> dict:
        return {**super().describe(), "captions": f"e.g. {self.train_captions[0]!r}"}


def load_caption_file(path: str, size: int | None = None, channels: int | None = None) -> CaptionedImages:
    """Lines of PATH<TAB>CAPTION (a PATH relative to the file's folder); blank lines skipped. Every
    fault is one line naming the file and line: no tab, no path, an empty caption, an image missing."""
    f = Path(path).expanduser()
    shown = printable(path)
    if not f.is_file():
        raise UserError(f"caption file {shown} does not exist" if not f.exists() else f"{shown} is not a file")
    if size is not None and (not isinstance(size, int) or size < 1):
        raise UserError(f"the image size must be a positive whole number, not {size!r}")
    try:
        text = f.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"caption file {shown} is not UTF-8 text") from None
    except OSError as e:
        raise UserError(f"cannot read caption file {shown}: {e.strerror or e}") from None
    files, captions = [], []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{shown} line {n}"
        if "\t" not in line:
            raise UserError(f"{where}: no tab between the image's path and its caption (each line is PATH<TAB>CAPTION)")
        name, caption = (part.strip() for part in line.split("\t", 1))
        if not name:
            raise UserError(f"{where}: no image path before the tab")
        if not caption or not tokenize(caption, "word"):
            raise UserError(f"{where}: the caption of {printable(name)} is empty")
        image = (f.parent / name).expanduser() if not Path(name).expanduser().is_absolute() else Path(name).expanduser()
        if not image.is_file():
            raise UserError(f"{where}: image {printable(name)} does not exist")
        files.append(image)
        captions.append(" ".join(caption.split()))
    if len(files) < 2:
        raise UserError(f"caption file {shown} has {len(files)} captioned image{'s' if len(files) != 1 else ''}; "
                        f"genlab needs at least 2: it keeps {TEST_FRACTION:.0%} of them, at least one, as the test "
                        f"split")
    if size is None:
        sizes = {}
        for image in files:
            with open_image(image) as im:
                sizes[image] = (im.size[1], im.size[0])
        hw = sizes[files[0]]
        other = next((p for p in files if sizes[p] != hw), None)
        if other is not None:
            raise UserError(f"images of {shown} differ in size ({printable(files[0].name)} and "
                            f"{printable(other.name)}); pass --size N to resize them all to N×N")
    else:
        hw = (size, size)
    x = torch.stack([read_image(p, channels or 3, hw) for p in files])
    if channels is None and bool((x[:, 0:1] == x[:, 1:]).all()):
        x = x[:, :1].contiguous()
    perm = torch.from_numpy(np.random.RandomState(SEED).permutation(len(files)))
    n_test = max(1, int(round(len(files) * TEST_FRACTION)))
    test, train = perm[:n_test].tolist(), perm[n_test:].tolist()
    return CaptionedImages(
        name=f"{PREFIX}{shown}", train_x=x[train], test_x=x[test],
        train_captions=tuple(captions[i] for i in train), test_captions=tuple(captions[i] for i in test),
        source=f"{len(files)} captioned images listed in {printable(f.resolve())}",
        licence="as the captions' and images' owner licensed them",
        split=f"{len(train)} train / {n_test} test, a fixed random permutation (seed {SEED}) of the file's lines")
