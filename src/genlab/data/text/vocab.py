"""Tokens and the vocabulary: how a line of text becomes token ids and back.

Two tokenisers: by word (lower-cased words, numbers and contractions kept whole, each punctuation mark
its own token) for English, and by character for Chinese, where a character is the unit of meaning.
The vocabulary is built from the training split only; a token seen fewer than `min_count` times there
is read as <unk>, so the model learns how often unknown tokens occur and scores a test line with new
words honestly.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import ClassVar, Iterable

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")
UNITS = ("word", "char")

_WORD = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]")
_NO_SPACE_BEFORE = re.compile(r" ([.,!?;:%)\]}])")
_NO_SPACE_AFTER = re.compile(r"([(\[{$]) ")
_SPACES = re.compile(r"\s+")
# Scripts written without spaces between words: read by character.
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")


def tokenize(line: str, unit: str, lowercase: bool = True) -> list[str]:
    line = _SPACES.sub(" ", line).strip()
    if unit == "char":
        return list(line)
    return _WORD.findall(line.lower() if lowercase else line)


def detokenize(tokens: Iterable[str], unit: str) -> str:
    """Text from tokens; tokenising it again gives the same tokens (for tokens the tokeniser makes)."""
    if unit == "char":
        return "".join(tokens)
    text = " ".join(tokens)
    # Only spaces next to a punctuation mark go: two words never merge, so the round trip is exact.
    return _NO_SPACE_AFTER.sub(r"\1", _NO_SPACE_BEFORE.sub(r"\1", text))


def guess_unit(lines: Iterable[str], sample: int = 2000) -> str:
    """char when most letters are Chinese, Japanese or Korean, else word."""
    cjk = letters = 0
    for i, line in enumerate(lines):
        if i >= sample:
            break
        letters += sum(ch.isalpha() for ch in line)
        cjk += len(_CJK.findall(line))
    return "char" if letters and cjk / letters > 0.5 else "word"


@dataclass(frozen=True)
class TextInfo:
    """What a text model needs to know about its data: the tokeniser and the vocabulary. Saved in
    config.json, so a run directory reads and writes text on its own."""

    vocab: tuple[str, ...]               # id -> token; the four specials first
    unit: str = "word"                   # "word" or "char"
    lowercase: bool = True               # words only; characters keep their case
    max_len: int = 40                    # tokens in the longest training line (the end token aside)
    num_classes: ClassVar[int] = 0       # unlabelled: lines have no class
    class_names: ClassVar[tuple[str, ...]] = ()
    kind: ClassVar[str] = "text"
    scored: ClassVar[tuple[str, str]] = ("line", "lines")     # likelihood figures per line and per token
    dequantised: ClassVar[bool] = False
    per_line: ClassVar[bool] = True            # figures per line (and per token), not per example

    def __post_init__(self):
        object.__setattr__(self, "_ids", {t: i for i, t in enumerate(self.vocab)})

    @property
    def size(self) -> int:
        return len(self.vocab)

    def tokens(self, line: str) -> list[str]:
        return tokenize(line, self.unit, self.lowercase)

    def encode(self, line: str) -> list[int]:
        """Token ids of a line, unknown tokens as <unk>, and the end token."""
        return [self._ids.get(t, UNK) for t in self.tokens(line)] + [EOS]

    def unknown(self, line: str) -> list[str]:
        """The tokens of a line that are not in the vocabulary (read as <unk>)."""
        return [t for t in self.tokens(line) if t not in self._ids]

    def decode(self, ids: Iterable[int]) -> str:
        """Text from ids, up to the first end token; padding and start tokens are skipped."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i not in (PAD, BOS):
                out.append(self.vocab[i])
        return detokenize(out, self.unit)

    def to_json(self) -> dict:
        return {"kind": "text", "unit": self.unit, "lowercase": self.lowercase, "max_len": self.max_len,
                "vocab": list(self.vocab)}

    @classmethod
    def from_json(cls, d: dict) -> "TextInfo":
        return cls(vocab=tuple(d["vocab"]), unit=d["unit"], lowercase=d["lowercase"], max_len=d["max_len"])


def build_vocab(lines: Iterable[str], unit: str, *, lowercase: bool = True, min_count: int = 2,
                max_len: int = 40) -> TextInfo:
    """The vocabulary of the training lines: tokens seen at least `min_count` times, most frequent first
    (ties in code-point order, so the same lines always give the same ids)."""
    counts = Counter(t for line in lines for t in tokenize(line, unit, lowercase))
    kept = sorted((t for t, n in counts.items() if n >= min_count and t not in SPECIALS),
                  key=lambda t: (-counts[t], t))
    return TextInfo(vocab=SPECIALS + tuple(kept), unit=unit, lowercase=lowercase, max_len=max_len)
