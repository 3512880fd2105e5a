"""What a model knows of its data, read back from config.json: one Info class per kind of data."""
from __future__ import annotations

from ...errors import UserError
from ..text.vocab import TextInfo
from .audio import AudioInfo
from .base import DataInfo
from .video import VideoInfo

INFO_KINDS = {"image": DataInfo, "text": TextInfo, "audio": AudioInfo, "video": VideoInfo}


def info_from_json(d: dict) -> "DataInfo | TextInfo | AudioInfo | VideoInfo":
    """The Info saved in a run's config.json. A run written before the kind was saved is an image run."""
    kind = d.get("kind", "image")
    if kind not in INFO_KINDS:
        raise UserError(f"unknown kind of data {kind!r} in config.json; known: {', '.join(INFO_KINDS)}")
    try:
        return INFO_KINDS[kind].from_json(d)
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"config.json: the data description ('info') is damaged: {type(e).__name__} {e}") from None
