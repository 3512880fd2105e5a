"""Data sets by name: "digits", "printed-digits", "mnist", "fashion-mnist", "pokemon", "pokemon-20",
"pokemon-shiny", "folder:PATH", "captions:FILE"; and the batching of them.

The floor's rooms:
  sources/      the named data sets, fetched or built on request (mnist, pokemon, spoken-digits, notes,
                moving-mnist, the text corpora, ...)
  containers/   data held in memory (images, sound, video), the Info a model builds itself from, Batch and
                the batchers, image files, palettes, a folder of the user's images
  text/         tokens and the vocabulary, text corpora held in memory, batches of token ids
  captions/     captions of images, for a text-to-image model: measured, worded, read from a file, batched
"""
from __future__ import annotations

from ..errors import UserError
from .containers.base import DataInfo, ImageDataset
from .containers.loader import Batches, make_info
from .sources import digits, printed_digits

# name -> module with load() -> ImageDataset and available() -> (bool, why)
_NAMED = {"digits": digits, "printed-digits": printed_digits}


def _register_optional():
    from .sources import fashion_mnist, mnist
    _NAMED["mnist"] = mnist
    _NAMED["fashion-mnist"] = fashion_mnist
    from .sources import pokemon
    _NAMED.update(pokemon.DATA_SETS)


try:
    _register_optional()
except ImportError:  # pragma: no cover - modules still being written
    pass


def dataset_names() -> list[str]:
    return list(_NAMED) + ["folder:PATH"]


def availability() -> dict[str, tuple[bool, str]]:
    return {name: mod.available() for name, mod in _NAMED.items()}


def fetch_dataset(name: str):
    """Build a data set that is fetched on request (its module has `fetch()`) into the cache; its path."""
    mod = _NAMED.get(name)
    if mod is None or not hasattr(mod, "fetch"):
        fetched = [n for n, m in _NAMED.items() if hasattr(m, "fetch")]
        raise UserError(f"{name} is not fetched: the data sets genlab fetches are {', '.join(fetched)}; the others "
                        f"come with their packages")
    return mod.fetch()


def load_dataset(spec: str, size: int | None = None, channels: int | None = None) -> ImageDataset:
    """A data set from its spec: a built-in name, folder:PATH or captions:FILE (resized to `size`)."""
    if spec.startswith("folder:"):
        from .containers.folder import load_folder
        return load_folder(spec[len("folder:"):], size=size, channels=channels)
    if spec.startswith("captions:"):        # images and their captions, for a text-to-image model
        from .captions.file import load_caption_file
        return load_caption_file(spec[len("captions:"):], size=size, channels=channels)
    mod = _NAMED.get(spec)
    if mod is None:
        raise UserError(f"unknown data set {spec!r}; known: {', '.join(dataset_names())}")
    ok, why = mod.available()
    if not ok:
        raise UserError(f"data set {spec!r} is not available here: {why}")
    return mod.load()


__all__ = ["Batches", "DataInfo", "ImageDataset", "availability", "dataset_names", "fetch_dataset", "load_dataset", "make_info"]
