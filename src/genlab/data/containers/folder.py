"""`folder:PATH`: any folder of PNG, JPEG or GIF images, labelled by first-level sub-folder if it has them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from ...errors import UserError
from ...printable import printable
from .base import ImageDataset
from .images import IMAGE_SUFFIXES, open_image, read_image

SEED, TEST_FRACTION = 0, 0.1
MIN_IMAGES = 2        # one to train on and one to test on: the 10% test split is never empty


def _image_files(root: Path) -> list[Path]:
    """Image files under root, sorted by relative path; hidden ones (e.g. macOS ._x.png) skipped."""
    found = [p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
             and not any(part.startswith(".") for part in p.relative_to(root).parts)]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _size_of(path: Path) -> tuple[int, int]:
    """(H, W) from the file's header alone (an oversized or unreadable image is a UserError naming it)."""
    with open_image(path) as im:
        return im.size[1], im.size[0]


def load_folder(path: str, size: int | None = None, channels: int | None = None) -> ImageDataset:
    root = Path(path).expanduser()
    shown = printable(path)
    if not root.exists():
        raise UserError(f"folder {shown} does not exist")
    if not root.is_dir():
        raise UserError(f"{shown} is not a folder")
    if size is not None and (not isinstance(size, int) or size < 1):
        raise UserError(f"the image size must be a positive whole number, not {size!r}")
    if channels not in (None, 1, 3):
        raise UserError(f"channels must be 1 (greyscale) or 3 (colour), not {channels!r}")
    try:
        files = _image_files(root)
    except OSError as e:                      # an unreadable sub-folder, a loop of links
        raise UserError(f"cannot list the images in folder {shown}: {e.strerror or e}") from None
    if not files:
        raise UserError(f"no images found in folder {shown} (looked for {', '.join(IMAGE_SUFFIXES)} files)")
    if len(files) < MIN_IMAGES:
        raise UserError(f"folder {shown} holds only {len(files)} image ({printable(files[0].name)}); genlab needs "
                        f"at least {MIN_IMAGES}: it keeps {TEST_FRACTION:.0%} of them, at least one, as the test "
                        "split, and trains on the rest")

    # Labels: the first-level sub-folder of each image, all or nothing.
    parts = [f.relative_to(root).parts for f in files]
    nested = [len(p) > 1 for p in parts]
    if any(nested) and not all(nested):
        loose = files[nested.index(False)]
        raise UserError(f"folder {shown} has images both in sub-folders and at its top level "
                        f"(e.g. {printable(loose.name)}); "
                        "put every image in a class sub-folder, or use no sub-folders")
    folders = tuple(sorted({p[0] for p in parts})) if all(nested) else ()
    class_names = tuple(printable(c) for c in folders)     # as shown and saved; a label indexes `folders`

    if size is None:
        hw = _size_of(files[0])
        for f in files[1:]:
            if (other := _size_of(f)) != hw:
                raise UserError(f"images in {shown} differ in size ({printable(files[0].name)} is {hw[1]}×{hw[0]}, "
                                f"{printable(f.name)} is {other[1]}×{other[0]}); pass --size N to resize them "
                                "all to N×N")
    else:
        hw = (size, size)

    # Read as RGB unless told otherwise; keep one channel when every image turns out grey.
    x = torch.stack([read_image(f, channels or 3, hw) for f in files])
    if channels is None and bool((x[:, 0:1] == x[:, 1:]).all()):
        x = x[:, :1].contiguous()

    y = torch.tensor([folders.index(p[0]) for p in parts], dtype=torch.int64) if folders else None
    # A fixed permutation of the sorted paths: the same split wherever the folder is copied.
    perm = torch.from_numpy(np.random.RandomState(SEED).permutation(len(files)))
    n_test = max(1, int(round(len(files) * TEST_FRACTION)))     # at least one; len(files) >= MIN_IMAGES
    test, train = perm[:n_test], perm[n_test:]
    labels = f"labelled by sub-folder ({len(class_names)} classes)" if class_names else "unlabelled"
    return ImageDataset(
        name=f"folder:{shown}", train_x=x[train], test_x=x[test],
        train_y=y[train] if y is not None else None, test_y=y[test] if y is not None else None,
        class_names=class_names, source=f"{len(files)} image files in {printable(root.resolve())}, {labels}",
        licence="as the folder's owner licensed its images",
        split=(f"{len(train)} train / {n_test} test, a fixed random permutation (seed {SEED}) "
               "of the files sorted by path"))
