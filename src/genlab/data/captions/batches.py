"""The captions of a run: each split's (written anew each epoch from the grammar, or the user's own), what
the run's Info and data record keep of them, and the batches that carry them to a model as token ids."""
from __future__ import annotations

import dataclasses
import random

import torch

from ...errors import UserError
from ..containers.base import DataInfo, ImageDataset
from ..containers.batch import Batch
from ..containers.loader import Batches, epoch_seed, transform
from ..text.vocab import PAD, SPECIALS, TextInfo, build_vocab
from .file import CaptionedImages
from .grammar import LOW, Scheme, hold_out, levels_of, parse_holdout, scheme_for, thresholds

EXAMPLES = 10                 # example captions kept with a run (what it draws when given none)


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
