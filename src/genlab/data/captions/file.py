"""`captions:FILE`: the user's own captions of their images, lines of PATH<TAB>CAPTION."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...errors import UserError
from ...printable import printable
from ..containers.base import ImageDataset
from ..containers.images import open_image, read_image
from ..text.vocab import tokenize

PREFIX = "captions:"
TEST_FRACTION, SEED = 0.1, 0  # a caption file's split, as a folder's
MAX_CAPTION_WORDS = 64        # a caption says what one image shows: longer is a misplaced text, not a caption


@dataclass
class CaptionedImages(ImageDataset):
    """Images with a caption each, split once and for all (unlabelled: the captions say what they are)."""
    train_captions: tuple[str, ...] = ()
    test_captions: tuple[str, ...] = ()

    def content_hash(self) -> str:
        h = hashlib.sha256(super().content_hash().encode())
        for line in self.train_captions + self.test_captions:
            h.update(line.encode("utf-8") + b"\n")
        return h.hexdigest()[:16]

    def describe(self) -> dict:
        return {**super().describe(), "captions": f"e.g. {self.train_captions[0]!r}"}


def load_caption_file(path: str, size: int | None = None, channels: int | None = None) -> CaptionedImages:
    """Lines of PATH<TAB>CAPTION (a PATH relative to the file's folder); blank lines skipped. Every
    fault is one line naming the file and line: no tab, no path, an empty caption, an image missing."""
    f = Path(path).expanduser()
    shown = printable(path)
    if not f.is_file():
        raise UserError(f"caption file {shown} does not exist" if not f.exists() else f"{shown} is not a file")
    if size is not None and (not isinstance(size, int) or size < 1):
        raise UserError(f"the image size must be a positive whole number, not {size!r}")
    try:
        text = f.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"caption file {shown} is not UTF-8 text") from None
    except OSError as e:
        raise UserError(f"cannot read caption file {shown}: {e.strerror or e}") from None
    files, captions = [], []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{shown} line {n}"
        if "\t" not in line:
            raise UserError(f"{where}: no tab between the image's path and its caption (each line is PATH<TAB>CAPTION)")
        name, caption = (part.strip() for part in line.split("\t", 1))
        if not name:
            raise UserError(f"{where}: no image path before the tab")
        words = tokenize(caption, "word") if caption else []
        if not words:
            raise UserError(f"{where}: the caption of {printable(name)} is empty")
        if len(words) > MAX_CAPTION_WORDS:
            raise UserError(f"{where}: the caption of {printable(name)} has {len(words):,} words; a caption has at "
                            f"most {MAX_CAPTION_WORDS}")
        image = (f.parent / name).expanduser() if not Path(name).expanduser().is_absolute() else Path(name).expanduser()
        if not image.is_file():
            raise UserError(f"{where}: image {printable(name)} does not exist")
        files.append(image)
        captions.append(" ".join(caption.split()))
    if len(files) < 2:
        raise UserError(f"caption file {shown} has {len(files)} captioned image{'s' if len(files) != 1 else ''}; "
                        f"genlab needs at least 2: it keeps {TEST_FRACTION:.0%} of them, at least one, as the test "
                        f"split")
    if size is None:
        sizes = {}
        for image in files:
            with open_image(image) as im:
                sizes[image] = (im.size[1], im.size[0])
        hw = sizes[files[0]]
        other = next((p for p in files if sizes[p] != hw), None)
        if other is not None:
            raise UserError(f"images of {shown} differ in size ({printable(files[0].name)} and "
                            f"{printable(other.name)}); pass --size N to resize them all to N×N")
    else:
        hw = (size, size)
    x = torch.stack([read_image(p, channels or 3, hw) for p in files])
    if channels is None and bool((x[:, 0:1] == x[:, 1:]).all()):
        x = x[:, :1].contiguous()
    perm = torch.from_numpy(np.random.RandomState(SEED).permutation(len(files)))
    n_test = max(1, int(round(len(files) * TEST_FRACTION)))
    test, train = perm[:n_test].tolist(), perm[n_test:].tolist()
    return CaptionedImages(
        name=f"{PREFIX}{shown}", train_x=x[train], test_x=x[test],
        train_captions=tuple(captions[i] for i in train), test_captions=tuple(captions[i] for i in test),
        source=f"{len(files)} captioned images listed in {printable(f.resolve())}",
        licence="as the captions' and images' owner licensed them",
        split=f"{len(train)} train / {n_test} test, a fixed random permutation (seed {SEED}) of the file's lines")
