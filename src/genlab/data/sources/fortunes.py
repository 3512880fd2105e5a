"""The built-in text corpora, read from the fortune files Debian's packages install.

A fortune file holds entries separated by lines holding a single `%`. Titles and authors in the Chinese
files are lines in terminal colours (ANSI escape codes); English entries end with an attribution line
("-- Mark Twain") and a few words are typed over with backspaces for underlining. Each corpus keeps only
the text to learn: the verses of a poem, the lines of a song, or the sentences of a quotation.

Files are UTF-8 here (the `.u8` name is read where it exists, as older releases kept Latin-1 under the
plain name); a file that is not UTF-8 is read as Latin-1, the encoding of those older releases.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ...errors import UserError
from ..text.dataset import TextDataset, split_lines
from ..text.vocab import tokenize

FORTUNE_DIRS = (Path("/usr/share/games/fortunes"),)
# As Debian's copyright files state them.
LICENCES = {"fortunes-zh": "GPL-3.0+", "fortunes": "BSD (fortune-mod)", "fortunes-min": "BSD (fortune-mod)"}


@dataclass(frozen=True)
class Corpus:
    packages: tuple[str, ...]        # the Debian packages that install its files
    files: tuple[str, ...]
    unit: str                        # how its lines are best tokenised
    read: str                        # "verses" (Chinese poems), "lines" (English verse) or "sentences"
    about: str


# English fortune files of fortunes-min and fortunes, less the pictures (art, ascii-art) and the
# entries in other languages (translate-me).
ENGLISH = ("fortunes", "literature", "riddles", "computers", "cookie", "debian", "definitions", "disclaimer",
           "drugs", "education", "ethnic", "food", "goedel", "humorists", "kids", "knghtbrd", "law", "linux",
           "linuxcookie", "love", "magic", "medicine", "men-women", "miscellaneous", "news", "paradoxum",
           "people", "perl", "pets", "platitudes", "politics", "pratchett", "science", "songs-poems", "sports",
           "startrek", "tao", "wisdom", "work", "zippy")

CORPORA = {
    "tang300": Corpus(("fortunes-zh",), ("tang300",), "char", "verses",
                      "the verses of the 300 Tang poems (唐诗三百首), one couplet a line"),
    "song100": Corpus(("fortunes-zh",), ("song100",), "char", "verses",
                      "the verses of 100 Song poems (宋诗一百首), one couplet a line"),
    "fortunes": Corpus(("fortunes-min", "fortunes"), ENGLISH, "word", "sentences",
                       "English sentences of the quotations, jokes and verse in the fortune files"),
    "songs-poems": Corpus(("fortunes",), ("songs-poems",), "word", "lines",
                          "the lines of the English songs and poems of the fortune file songs-poems"),
}

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_ATTRIBUTION = re.compile(r"^\s*--\s")
# A sentence ends at . ! or ? (a closing quote or bracket may follow) before a capital or an opening quote.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])|(?<=[.!?][\"')])\s+(?=[A-Z\"'(])")
MIN_SENTENCE_TOKENS = 3
MIN_WORD_SHARE = 0.6     # a "sentence" mostly of symbols is code or a picture, not language


def _path(name: str) -> Path | None:
    for d in FORTUNE_DIRS:
        for candidate in (d / f"{name}.u8", d / name):
            if candidate.is_file():
                return candidate
    return None


def available(corpus: str) -> tuple[bool, str]:
    c = CORPORA[corpus]
    missing = [f for f in c.files if _path(f) is None]
    if missing:
        return False, f"install Debian's {' and '.join(c.packages)}: apt-get install {' '.join(c.packages)}"
    return True, f"{c.about}; Debian's {' and '.join(c.packages)} in {_path(c.files[0]).parent}"


def overstrike(line: str) -> str:
    """What a terminal shows for a line with backspaces: a character typed over another replaces it."""
    if "\b" not in line:
        return line
    out: list[str] = []
    pos = 0
    for ch in line:
        if ch == "\b":
            pos = max(pos - 1, 0)
            continue
        if pos < len(out):
            out[pos] = ch
        else:
            out.append(ch)
        pos += 1
    return "".join(out)


def read_fortune_file(path: Path) -> list[list[str]]:
    """The entries of a fortune file, each a list of its lines (backspaces resolved, colours kept)."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    entries, current = [], []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.strip() == "%":
            entries.append(current)
            current = []
        else:
            current.append(overstrike(line))
    if any(line.strip() for line in current):
        entries.append(current)
    return entries


def verses(entries: list[list[str]], notes: dict) -> list[str]:
    """Chinese poems: every line but the coloured title and author lines and indented sub-titles (其一)."""
    out = []
    for entry in entries:
        for line in entry:
            if _ANSI.search(line):
                notes["title and author lines"] = notes.get("title and author lines", 0) + 1
            elif line.strip() and line[:1].isspace():
                notes["sub-titles"] = notes.get("sub-titles", 0) + 1
            else:
                out.append(line)
    return out


def lines(entries: list[list[str]], notes: dict) -> list[str]:
    """English verse: every line but the attributions."""
    out = []
    for entry in entries:
        for line in entry:
            if _ATTRIBUTION.match(line):
                notes["attribution lines"] = notes.get("attribution lines", 0) + 1
            else:
                out.append(_ANSI.sub("", line))
    return out


def sentences(entries: list[list[str]], notes: dict) -> list[str]:
    """English prose: each entry's lines joined (attributions aside) and cut into sentences."""
    out = []
    for entry in entries:
        body = " ".join(_ANSI.sub("", line).strip() for line in entry if not _ATTRIBUTION.match(line))
        for s in _SENTENCE_END.split(" ".join(body.split())):
            tokens = tokenize(s, "word")
            if len(tokens) < MIN_SENTENCE_TOKENS or sum(t.isalpha() for t in tokens) < MIN_WORD_SHARE * len(tokens):
                if s:
                    notes["fragments and code"] = notes.get("fragments and code", 0) + 1
                continue
            out.append(s)
    return out


def load(name: str) -> TextDataset:
    c = CORPORA[name]
    ok, why = available(name)
    if not ok:
        raise UserError(f"text corpus {name!r} is not available here: {why}")
    notes: dict = {}
    read = {"verses": verses, "lines": lines, "sentences": sentences}[c.read]
    text = [line for f in c.files for line in read(read_fortune_file(_path(f)), notes)]
    where = _path(c.files[0]).parent
    source = (f"{c.about}: {', '.join(c.files)} in {where}" if len(c.files) <= 3 else
              f"{c.about}: {len(c.files)} fortune files in {where}") + f" (Debian's {' and '.join(c.packages)})"
    licence = f"{LICENCES[c.packages[-1]]}, see /usr/share/doc/{c.packages[-1]}/copyright"
    return split_lines(name, text, unit=c.unit, source=source, licence=licence, notes=notes)
