"""One writer per run directory: an exclusive `flock` on RUN/.lock, which holds the writer's pid.

    lock = run.lock()          # acquired now; held until lock.release() or the process ends
    with run.lock():           # or for a block: released when the block ends
        ...

A second process that asks for the lock of a run in use gets a UserError naming the process that holds it.
The kernel drops the lock when its holder dies however it dies (even by SIGKILL), so a lock is never stale.
RUN/.lock itself stays when the lock is released (removing it would race with a process opening it); it
names the last holder and is taken over by the next. Within one process the lock is re-entrant: asking
again for a run this process holds (by any path to it) counts one more hold.
"""
from __future__ import annotations

import atexit
import errno
import fcntl
import os
import stat
import threading
from pathlib import Path

from .errors import UserError
from .printable import printable

LOCK = ".lock"

_held: dict[tuple[int, int], "RunLock"] = {}     # (st_dev, st_ino) of a run directory -> its lock
_guard = threading.Lock()


class RunLock:
    """This process's hold on one run directory's lock; a context manager, re-entrant."""

    def __init__(self, run_dir: Path, key: tuple[int, int], fd: int):
        self.run_dir, self.path, self._key, self._fd, self._holds = run_dir, run_dir / LOCK, key, fd, 1

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def release(self) -> None:
        """Give back one hold; the last one unlocks."""
        with _guard:
            if self._fd is None:
                return
            self._holds -= 1
            if self._holds > 0:
                return
            _held.pop(self._key, None)
            fd, self._fd = self._fd, None
        _unlock(self.path, fd)

    def __repr__(self) -> str:
        return f"RunLock({str(self.run_dir)!r}, {'held' if self.held else 'released'})"


def _unlock(path: Path, fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError:
        pass
    os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    return f"process {int(text)}" if text.isdigit() else "another process"


def acquire(run_dir: str | Path) -> RunLock:
    """Lock `run_dir` for writing, or raise UserError naming the process that holds it."""
    run_dir = Path(run_dir)
    shown = printable(run_dir)
    try:
        st = os.stat(run_dir)
    except OSError as e:
        raise UserError(f"cannot lock {shown}: {e.strerror or e}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise UserError(f"cannot lock {shown}: it is not a folder")
    key = (st.st_dev, st.st_ino)
    with _guard:
        mine = _held.get(key)
        if mine is not None and mine.held:
            mine._holds += 1
            return mine
        path = run_dir / LOCK
        for _ in range(100):                  # the file may be removed (by hand) between open and flock
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
            except OSError as e:
                if e.errno == errno.ELOOP:
                    raise UserError(f"cannot lock {shown}: {printable(path)} is a symbolic link; "
                                    "remove it") from None
                raise UserError(f"cannot lock {shown} for writing ({printable(path)}): "
                                f"{e.strerror or e}") from None
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise UserError(f"cannot lock {shown}: {printable(path)} is not a regular file; remove it")
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise UserError(f"{shown} is in use: {_holder(fd)} is writing to it (it holds "
                                    f"{printable(path)}); wait for it to finish, or stop it") from None
                except OSError as e:
                    raise UserError(f"cannot lock {shown}: {e.strerror or e}") from None
                if not _same_file(fd, path):  # we locked a file someone had just removed: again
                    os.close(fd)
                    continue
                pid = f"{os.getpid()}\n".encode()
                try:
                    if os.pread(fd, 64, 0) != pid:
                        os.ftruncate(fd, 0)
                        os.pwrite(fd, pid, 0)
                except OSError:
                    pass                      # the lock holds without the pid; a full disk shows up later
            except BaseException:
                os.close(fd)
                raise
            lock = RunLock(run_dir, key, fd)
            _held[key] = lock
            return lock
    raise UserError(f"cannot lock {shown}: {printable(path)} keeps being replaced")


def holds(run_dir: str | Path) -> bool:
    """Whether this process holds the lock of `run_dir`."""
    try:
        st = os.stat(run_dir)
    except OSError:
        return False
    lock = _held.get((st.st_dev, st.st_ino))
    return lock is not None and lock.held


def _release_all() -> None:
    for lock in list(_held.values()):
        lock._holds = 1
        lock.release()


def _forget_in_child() -> None:
    """A forked child shares its parent's lock; it must neither release it nor think it holds it."""
    global _guard
    _guard = threading.Lock()
    for lock in _held.values():
        if lock._fd is not None:
            try:
                os.close(lock._fd)            # closing a duplicate does not unlock the parent's flock
            except OSError:
                pass
            lock._fd = None
    _held.clear()


atexit.register(_release_all)
os.register_at_fork(after_in_child=_forget_in_child)
