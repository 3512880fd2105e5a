"""Files written whole or not at all: write to a temporary name beside the target, fsync, rename.

A failure to write (a full disk, a read-only folder, a path below a file, a file-size limit) is one
UserError naming the file; the temporary file is removed and the file that was there stays as it was."""
from __future__ import annotations

import os
from pathlib import Path

from safetensors import SafetensorError

from .errors import UserError
from .printable import printable

# What a failed write raises: the OS's own errors, torch.save's zip writer (RuntimeError), safetensors'.
WRITE_ERRORS = (OSError, RuntimeError, SafetensorError)


def temporary_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def remove_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def why(e: BaseException) -> str:
    """A failed write's cause in a few words."""
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    first = (str(e).strip().splitlines() or [e.__class__.__name__])[-1].strip()
    first = first if len(first) <= 150 else first[:147] + "..."
    return f"the write failed ({printable(first)}); is the disk full or the folder read-only?"


def write_error(path, e: BaseException, what: str = "write") -> UserError:
    return UserError(f"cannot {what} {printable(path)}: {why(e)}")


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (best effort: some file systems cannot)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def prepare(path: str | Path, write) -> Path:
    """Write through `write(tmp)` to the temporary name of `path` and fsync it; returns that name.
    On any failure the temporary file is removed; a failure to write is a UserError naming `path`."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        remove_quietly(tmp)              # a stale one (or a link planted there) is never written through
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException as e:
        remove_quietly(tmp)
        if isinstance(e, WRITE_ERRORS):
            raise write_error(path, e) from None
        raise
    return tmp


def commit(tmp: Path, path: str | Path) -> None:
    """Rename a prepared temporary file into place (on failure it is removed, `path` stays as it was)."""
    path = Path(path)
    try:
        os.replace(tmp, path)
    except BaseException as e:
        remove_quietly(tmp)
        if isinstance(e, OSError):
            raise write_error(path, e) from None
        raise
    fsync_dir(path.parent)


def write_atomic(path: str | Path, write) -> None:
    """Write through `write(tmp_path)` then rename: readers see the old file or the new one, never half.

    On any failure the temporary file is removed; a failure to write is a UserError naming `path`."""
    commit(prepare(path, write), path)
