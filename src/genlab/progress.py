"""A progress bar for long work: position, figures, rate and time left. Live on a terminal; otherwise (a
log, CI, `| tee`) a plain line at least every PLAIN_EVERY seconds while it runs and one when it ends, so a
long step is never silent and the log stays readable. The same steps reach whoever `watched` the thread
they run on (the explorer, which shows a request's progress in its page)."""
from __future__ import annotations

import os
import sys
import threading
import time


def _every() -> float:
    """Seconds between plain lines: GENLAB_PROGRESS_SECONDS (a log that wants more or fewer), else 10."""
    try:
        return min(max(float(os.environ.get("GENLAB_PROGRESS_SECONDS", "")), 0.1), 3600.0)
    except ValueError:
        return 10.0


PLAIN_EVERY = _every()     # seconds between the plain lines written where the output is not a terminal


def fmt_time(s: float) -> str:
    s = int(max(s, 0))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class Progress:
    def __init__(self, total: int, label: str = "", unit: str = "img", stream=None, live: bool | None = None,
                 width: int = 24, done: int = 0):
        self.total, self.label, self.unit, self.width = max(total, 1), label, unit, width
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.start = self.last = time.perf_counter()
        self.first = done              # already done when the bar starts (a resumed epoch): not in the rate
        self.done, self.items, self.figures = done, 0, {}
        _report(label, done, self.total, unit)

    def line(self) -> str:
        elapsed = time.perf_counter() - self.start
        frac = min(self.done / self.total, 1.0)
        fill = int(frac * self.width)
        bar = "█" * fill + "·" * (self.width - fill)
        rate = self.items / elapsed if elapsed > 0 else 0.0
        share = (self.done - self.first) / max(self.total - self.first, 1)
        left = elapsed / share - elapsed if share > 0 else 0.0
        figs = " ".join(f"{k}={v:.4g}" for k, v in self.figures.items())
        return (f"{self.label} |{bar}| {self.done}/{self.total} {figs} "
                f"{rate:,.0f} {self.unit}/s {fmt_time(elapsed)}<{fmt_time(left)}")

    def update(self, n: int = 1, items: int = 0, **figures: float) -> None:
        self.done += n
        self.items += items
        self.figures.update(figures)
        _report(self.label, self.done, self.total, self.unit)
        now = time.perf_counter()
        if self.live and (now - self.last > 0.1 or self.done >= self.total):
            self.stream.write("\r" + self.line() + "\x1b[K")
            self.stream.flush()
            self.last = now
        elif not self.live and now - self.last >= PLAIN_EVERY and self.done < self.total:
            self.stream.write(self.line() + "\n")
            self.stream.flush()
            self.last = now

    def close(self, **figures: float) -> None:
        self.figures.update(figures)
        self.stream.write(("\r" if self.live else "") + self.line() + ("\x1b[K\n" if self.live else "\n"))
        self.stream.flush()

    def rate(self) -> float:
        elapsed = time.perf_counter() - self.start
        return self.items / elapsed if elapsed > 0 else 0.0


class CountBar:
    """A progress bar for building or reading a data set, given (done, total) as it goes; shown only when
    the total reaches `least` (a handful of files is not worth a bar)."""

    def __init__(self, label: str, unit: str = "clip", least: int = 50):
        self.label, self.unit, self.least, self.bar = label, unit, least, None

    def __call__(self, done: int, total: int) -> None:
        if total < self.least:
            return
        if self.bar is None:
            self.bar = Progress(total, self.label, unit=self.unit)
        self.bar.update(done - self.bar.done, items=done - self.bar.done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# ---- long loops inside a model, shown where a command asks ----------------------------------------
# A model's sampling loop (DDPM's steps, a pixel's turn, a sound's samples) calls `tick`; nothing is shown
# unless a command has opened `shown()` around it, so the library and the tests stay silent. A loop is
# shown only when it is long (`least` ticks), one bar per loop, in the command's stream.
_shown: list["_Loops"] = []


class _Loops:
    def __init__(self, stream, least: int):
        self.stream, self.least, self.bar, self.key = stream, least, None, None

    def tick(self, label: str, done: int, total: int, unit: str) -> None:
        if total < self.least:
            return
        if self.bar is None or self.key != (label, total) or done <= self.bar.done:
            self.close()
            self.bar, self.key = Progress(total, label, unit=unit, stream=self.stream), (label, total)
        self.bar.update(done - self.bar.done, items=done - self.bar.done)
        if done >= total:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class shown:
    """`with progress.shown():` — the long loops of the models called inside show a bar (in `stream`,
    stderr by default): a live one on a terminal, a plain line every PLAIN_EVERY seconds elsewhere."""

    def __init__(self, stream=None, least: int = 50):
        self.loops = _Loops(stream or sys.stderr, least)

    def __enter__(self):
        _shown.append(self.loops)
        return self

    def __exit__(self, *exc):
        _shown.remove(self.loops)
        self.loops.close()


def tick(label: str, done: int, total: int, unit: str = "step") -> None:
    """Step `done` of `total` of a model's loop named `label` ("sampling: DDIM steps"); shown only inside
    `shown()`, handed to this thread's `watched`, and free outside both."""
    _report(label, done, total, unit)
    if _shown:
        _shown[-1].tick(label, done, total, unit)


# ---- the same steps, handed to a watcher of one thread ---------------------------------------------
# The explorer runs each request on a worker thread and shows its progress in the page: it watches that
# thread, so the steps of another request on another thread never mix in.
class _Watchers(threading.local):
    def __init__(self):                 # run once in each thread that looks
        self.stack = []


_watchers = _Watchers()


class watched:
    """`with progress.watched(report):` — every step of long work on this thread (a model's `tick`, a
    `Progress` bar's update, shown or not) is also handed to report(label, done, total, unit)."""

    def __init__(self, report):
        self.report = report

    def __enter__(self):
        _watchers.stack.append(self.report)
        return self

    def __exit__(self, *exc):
        _watchers.stack.remove(self.report)


def _report(label: str, done: int, total: int, unit: str) -> None:
    stack = _watchers.stack
    if stack:
        stack[-1](label, done, total, unit)
