"""The progress of the explorer's requests while they run, for the page to show.

The page names each request it sends by a ticket of its own (a random word in the X-Genlab-Ticket header);
while the request is in hand the server keeps what it is at under that ticket: waiting for the model (another
request of the same run holds it, or every worker is busy), then working, with the latest step of its long
work as genlab's one progress facility reports it (`progress.watched`: a model's DDIM steps, sound samples,
pixel rows; a data set built on first use). `GET /api/progress/TICKET` answers that, and nothing once the
request is answered. Tickets live no longer than their request, and no more are kept than requests in hand.
"""
from __future__ import annotations

import re
import threading
import time

from .guard import Refused

HEADER = "x-genlab-ticket"
_TICKET = re.compile(r"[A-Za-z0-9_-]{8,64}")


def ticket_of(request) -> str | None:
    """The request's ticket (None when the page named none); a malformed one is refused."""
    value = request.headers.get(HEADER)
    if value is None:
        return None
    if not _TICKET.fullmatch(value):
        raise Refused(400, f"{HEADER} must be 8 to 64 letters, digits, - or _")
    return value


def check(ticket: str) -> str:
    if not _TICKET.fullmatch(ticket):
        raise Refused(404, "no such request")
    return ticket


class Watch:
    """One request's progress: its state, and its latest step (label, done, total, unit)."""

    def __init__(self):
        self.state, self.since, self.step, self.started = "waiting", time.monotonic(), None, None

    def working(self) -> None:
        self.state, self.started = "working", time.monotonic()

    def tick(self, label: str, done: int, total: int, unit: str) -> None:
        self.step = (label, done, total, unit)      # one assignment: the reader sees the old step or the new

    def as_json(self) -> dict:
        out = {"state": self.state, "seconds": round(time.monotonic() - (self.started or self.since), 1)}
        if self.step is not None:
            label, done, total, unit = self.step
            out.update(label=label, done=done, total=total, unit=unit)
        return out


class Tickets:
    """The watches of the requests in hand, by ticket."""

    def __init__(self, most: int):
        self.most, self._by, self._lock = most, {}, threading.Lock()

    def open(self, ticket: str | None) -> Watch:
        watch = Watch()
        if ticket is not None:
            with self._lock:
                if ticket in self._by:
                    raise Refused(409, "a request with this ticket is already in hand")
                if len(self._by) >= self.most:
                    raise Refused(503, f"busy: {len(self._by)} requests are in hand; try again in a moment")
                self._by[ticket] = watch
        return watch

    def close(self, ticket: str | None, watch: Watch) -> None:
        with self._lock:
            if ticket is not None and self._by.get(ticket) is watch:
                del self._by[ticket]

    def state(self, ticket: str) -> dict:
        with self._lock:
            watch = self._by.get(ticket)
        return watch.as_json() if watch is not None else {"state": "none"}
