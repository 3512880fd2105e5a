"""Text corpora by spec: the built-in ones from Debian's fortune packages (fortunes.py), or text:PATH."""
from __future__ import annotations

from ...errors import UserError
from ..text.dataset import PREFIX, TextDataset, read_text_file
from .fortunes import CORPORA, available, load


def corpus_names() -> list[str]:
    return list(CORPORA)


def is_text_spec(spec: str) -> bool:
    return spec.startswith(PREFIX) or spec in CORPORA


def corpus_availability() -> dict[str, tuple[bool, str]]:
    return {name: available(name) for name in CORPORA}


def load_corpus(spec: str) -> TextDataset:
    """A text corpus from its spec: a built-in name or text:PATH."""
    if spec.startswith(PREFIX):
        return read_text_file(spec[len(PREFIX):])
    if spec not in CORPORA:
        raise UserError(f"unknown text corpus {spec!r}; known: {', '.join(CORPORA)}, text:PATH")
    return load(spec)
