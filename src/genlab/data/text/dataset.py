"""Text corpora: lines of text (one sentence, verse or short poem each) with a fixed train/test split.

`text:PATH` reads a UTF-8 file, one line per example; the built-in corpora (tang300, song100, fortunes,
songs-poems) come from Debian's fortune packages (sources/fortunes.py). Every corpus is read the same way:
surrounding white space trimmed, empty lines skipped, and a line that occurs twice kept once, so that no
test line is also a training line. The split is a fixed permutation (seed 0), a tenth for test.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import UserError
from .vocab import build_vocab, guess_unit, tokenize

PREFIX = "text:"
SEED, TEST_FRACTION = 0, 0.1


@dataclass
class TextDataset:
    """Lines of text, split once and for all."""

    name: str
    train: list[str]
    test: list[str]
    unit: str = "word"                   # the tokens this corpus is best read in, unless told otherwise
    source: str = ""
    licence: str = ""
    split: str = ""
    notes: dict = field(default_factory=dict)   # what reading left out, e.g. {"empty lines": 3}

    def content_hash(self) -> str:
        """A short hash of every line and the split, so numbers from different text never mix silently."""
        h = hashlib.sha256()
        for part in (self.train, self.test):
            h.update("\n".join(part).encode())
            h.update(b"\0")
        return h.hexdigest()[:16]

    def describe(self, min_count: int = 2) -> dict:
        info = build_vocab(self.train, self.unit, min_count=min_count)
        test_tokens = [t for line in self.test for t in tokenize(line, self.unit)]
        unknown = sum(len(info.unknown(line)) for line in self.test) / max(len(test_tokens), 1)
        lengths = [len(tokenize(line, self.unit)) for line in self.train]
        return {"name": self.name, "train": f"{len(self.train)} lines, {sum(lengths)} {self.unit} tokens",
                "test": f"{len(self.test)} lines, {len(test_tokens)} tokens",
                "tokens": f"by {self.unit}; lines of {min(lengths)} to {max(lengths)} tokens, "
                          f"{np.mean(lengths):.1f} on average",
                "vocab": f"{info.size} ({info.size - 4} {self.unit}s seen at least {min_count} times in the "
                         f"training split, and <pad> <s> </s> <unk>); {100 * unknown:.1f}% of test tokens unknown",
                "split": self.split, "source": self.source, "licence": self.licence,
                **({"skipped": ", ".join(f"{n} {what}" for what, n in self.notes.items())} if self.notes else {})}


def split_lines(name: str, lines: list[str], *, unit: str | None = None, source: str = "", licence: str = "",
                notes: dict | None = None) -> TextDataset:
    """A corpus from its lines (trimmed, blank ones skipped, repeats kept once), split by a fixed permutation."""
    notes = dict(notes or {})
    trimmed = [line.strip() for line in lines]
    if blank := sum(not t for t in trimmed):
        notes["empty lines"] = notes.get("empty lines", 0) + blank
    unique = list(dict.fromkeys(t for t in trimmed if t))
    if (repeats := sum(bool(t) for t in trimmed) - len(unique)) > 0:
        notes["repeated lines"] = repeats
    if len(unique) < 2:
        raise UserError(f"{name} has {len(unique)} distinct non-empty line{'s' if len(unique) != 1 else ''}; "
                        f"a text corpus needs at least 2 (one for training, one for testing)")
    perm = np.random.RandomState(SEED).permutation(len(unique))
    n_test = max(1, int(round(len(unique) * TEST_FRACTION)))
    test, train = [unique[i] for i in perm[:n_test]], [unique[i] for i in perm[n_test:]]
    return TextDataset(name=name, train=train, test=test, unit=unit or guess_unit(unique), source=source,
                       licence=licence, split=f"{len(train)} train / {len(test)} test lines, a fixed random "
                                             f"permutation (seed {SEED})", notes=notes)


def read_text_file(path: str) -> TextDataset:
    """`text:PATH`: one example per line, UTF-8; anything else is refused with the line it is on."""
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"text file {path} does not exist")
    if not p.is_file():
        raise UserError(f"{path} is not a file (text:PATH takes a UTF-8 text file, one line per example)")
    data = p.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):          # a byte-order mark some editors write: not text
        data = data[3:]
    if not data.strip():
        raise UserError(f"text file {path} is empty")
    pieces = data.split(b"\n")
    if pieces[-1] == b"":                        # the newline that ends the last line
        pieces.pop()
    lines = []
    for number, raw in enumerate(pieces, 1):
        try:
            lines.append(raw.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError as e:
            raise UserError(f"{path}, line {number}: not UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1}); "
                            f"save the file as UTF-8") from None
        if "\0" in lines[-1]:
            raise UserError(f"{path}, line {number}: a NUL byte; this is not a text file")
    return split_lines(f"{PREFIX}{path}", lines, source=f"{p.resolve()}, one example per line",
                       licence="as the file's owner licensed it")


# ---- the corpora by name ----------------------------------------------------------------------------
