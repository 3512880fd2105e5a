"""Every kind of data genlab models, one module each: image, text, audio and video.

`get(name)` by a model's declared `modality`; `for_spec(spec)` by a data spec; `of_run(run)` by a run."""
from __future__ import annotations

from ..errors import UserError
from .audio import AudioModality
from .base import Modality
from .image import ImageModality
from .text import TextModality
from .video import VideoModality

MODALITIES: dict[str, Modality] = {m.name: m for m in (ImageModality(), TextModality(), AudioModality(),
                                                     VideoModality())}


def get(name: str) -> Modality:
    if name not in MODALITIES:
        raise UserError(f"unknown kind of data {name!r}; known: {', '.join(MODALITIES)}")
    return MODALITIES[name]


def for_spec(spec: str) -> Modality:
    """The modality whose data set a spec names; an unknown spec is refused with every known one."""
    for m in MODALITIES.values():
        if m.owns(spec):
            return m
    hints = "; ".join(f"{m.name}: {m.data_hint}" for m in MODALITIES.values())
    raise UserError(f"unknown data set {spec!r}; known: {hints}")


def of_run(run) -> Modality:
    return get(run.info.kind)


__all__ = ["MODALITIES", "Modality", "for_spec", "get", "of_run"]
