"""The zoo: trained runs shipped inside genlab (package data: nothing is fetched), one folder each, named
`zoo:NAME` wherever a run is taken. Each folder is a run directory (config.json, model.safetensors) with its
card: README.md (how it was trained, its figures, what it shows and does not) and card.json (the same
figures, read by `genlab zoo` and checked by the tests). A shipped run never changes: evaluating one writes
nothing into it, and resuming one is refused (`genlab zoo copy NAME runs/x` first)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..errors import UserError
from ..printable import printable

PREFIX = "zoo:"
HOME = Path(__file__).resolve().parent


def names() -> list[str]:
    return sorted(p.name for p in HOME.iterdir() if not p.name.startswith(".") and (p / "config.json").is_file())


def is_shipped(path: str | Path) -> bool:
    """Whether `path` is (inside) one of the zoo's folders."""
    try:
        return Path(path).resolve().is_relative_to(HOME)
    except OSError:
        return False


def resolve(spec: str | Path) -> Path:
    """The folder (or a file inside it) that `zoo:NAME` or `zoo:NAME/FILE` names; any other spec as a path.
    An unknown name is one line naming those there are."""
    text = str(spec)
    if not text.startswith(PREFIX):
        return Path(spec)
    name, _, rest = text[len(PREFIX):].partition("/")
    if name not in names():
        raise UserError(f"no zoo entry {printable(name)!r}; the zoo has: {', '.join(names()) or 'none'} "
                        f"(genlab zoo lists them)")
    if rest and (".." in Path(rest).parts or Path(rest).is_absolute()):
        raise UserError(f"{printable(text)}: name a file inside the entry, such as zoo:{name}/config.json")
    return HOME / name / rest if rest else HOME / name


def expand(specs: list[str]) -> list[str]:
    """Run specs with `zoo:` alone standing for every entry of the zoo."""
    out = []
    for s in specs:
        out += [PREFIX + n for n in names()] if str(s) == PREFIX else [s]
    return out


def card(name: str) -> dict:
    return json.loads((resolve(PREFIX + name) / "card.json").read_text(encoding="utf-8"))


def card_text(name: str) -> str:
    return (resolve(PREFIX + name) / "README.md").read_text(encoding="utf-8")


def copy(name: str, dest: str | Path) -> Path:
    """A copy of an entry as a run of the user's own (config.json, weights, card), to resume or change."""
    src, dest = resolve(PREFIX + name), Path(dest)
    if dest.exists():
        raise UserError(f"{printable(dest)} already exists: copy the zoo entry to a new folder")
    try:
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__"))
    except OSError as e:
        raise UserError(f"cannot copy zoo:{name} to {printable(dest)}: {e.strerror or e}") from None
    return dest
