"""File names as text that can always be printed.

A name on disk may hold bytes that are not UTF-8; Python keeps them as lone surrogates, which a
strict stream (a pipe, a captured stderr) refuses to encode. `printable` shows such bytes as \\xNN."""
from __future__ import annotations

import os


def printable(name) -> str:
    """`name` (a str, bytes or path) as text that any UTF-8 stream can print."""
    try:
        raw = os.fsencode(name)
    except (TypeError, UnicodeEncodeError):
        return str(name).encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")
