"""What the explorer accepts from a request: bounded numbers, bounded bodies, and files of the runs it was
given, never a path outside them.

Every refusal is a `Refused(status, message)`, which the server answers as JSON {"error": message}."""
from __future__ import annotations

import asyncio
import ipaddress
import json
import math
from pathlib import Path, PurePosixPath

MAX_BODY = 4 * 1024 * 1024          # a request body: two uploads of 2 MiB in base64 and a little JSON
BODY_SECONDS = 10.0                 # a request body stalled longer is dropped with 408
# Files of a run the page may show: pictures, lines of samples, the figures. Weights and trainer state never.
SERVED_SUFFIXES = {".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg", ".txt": "text/plain; charset=utf-8",
                   ".json": "application/json", ".jsonl": "application/json", ".wav": "audio/wav"}


class Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def whole(body: dict, key: str, low: int, high: int, default: int | None = None) -> int | None:
    """A whole number of the request within [low, high]; `default` when it is not given."""
    v = body.get(key, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) and not (isinstance(v, float) and v.is_integer()):
        raise Refused(400, f"{key} must be a whole number, not {str(v)[:40]!r}")
    if not low <= v <= high:
        raise Refused(400, f"{key} must be from {low} to {high}, not {v}")
    return int(v)


def number(body: dict, key: str, low: float, high: float, default: float | None = None) -> float | None:
    v = body.get(key, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise Refused(400, f"{key} must be a number, not {str(v)[:40]!r}")
    if not low <= v <= high:
        raise Refused(400, f"{key} must be from {low:g} to {high:g}, not {v:g}")
    return float(v)


def text(body: dict, key: str, most: int) -> str:
    v = body.get(key)
    if not isinstance(v, str) or not v.strip():
        raise Refused(400, f"{key} must be some text")
    if len(v) > most:
        raise Refused(400, f"{key} is longer than {most} characters")
    return v


def choice(body: dict, key: str, options: tuple[str, ...], default: str) -> str:
    v = body.get(key, default)
    if v not in options:
        raise Refused(400, f"{key} must be one of {', '.join(options)}")
    return v


async def read_json(request, limit: int = MAX_BODY) -> dict:
    """The request's JSON object, refused past `limit` bytes (by its Content-Length, or while it streams),
    and refused unless it says it is JSON (so that no other site's plain form can post to the explorer)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise Refused(415, "send JSON (Content-Type: application/json)")
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise Refused(413, f"the request is larger than {limit // 1024 // 1024} MiB")
    body = bytearray()

    async def receive():
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > limit:
                raise Refused(413, f"the request is larger than {limit // 1024 // 1024} MiB")
    try:        # a body that stalls is dropped: a slow client holds its connection seconds, not minutes
        await asyncio.wait_for(receive(), BODY_SECONDS)
    except asyncio.TimeoutError:
        raise Refused(408, f"the request's body did not arrive within {BODY_SECONDS:g} s") from None
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Refused(400, "the request is not JSON") from None
    if not isinstance(value, dict):
        raise Refused(400, "the request must be a JSON object")
    return value


def run_file(root: Path, relative: str) -> Path:
    """The file at `relative` inside the run folder `root`, or Refused: no absolute path, no `..`, no
    backslash or NUL, no hidden file, only the kinds in SERVED_SUFFIXES, and the real file (its symbolic
    links followed) inside the real run folder."""
    if not relative or len(relative) > 300 or any(c in relative for c in "\\\x00") or ":" in relative:
        raise Refused(404, "no such file in this run")
    p = PurePosixPath(relative)
    if p.is_absolute() or any(part in ("..", ".", "") or part.startswith(".") for part in relative.split("/")):
        raise Refused(404, "no such file in this run")
    if p.suffix.lower() not in SERVED_SUFFIXES:
        raise Refused(404, "no such file in this run")
    base = root.resolve()
    try:
        real = (base / p).resolve(strict=True)
    except (OSError, RuntimeError):            # missing, or a loop of links
        raise Refused(404, "no such file in this run") from None
    if not real.is_relative_to(base) or not real.is_file():
        raise Refused(404, "no such file in this run")
    return real


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
