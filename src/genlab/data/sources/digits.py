"""`digits`: the 1,797 8×8 handwritten digits that scikit-learn ships (UCI optdigits test set)."""
from __future__ import annotations

import numpy as np
import torch

from ..containers.base import ImageDataset

SOURCE = "scikit-learn's load_digits (UCI ML hand-written digits, 8×8, 17 grey levels)"
LICENCE = "CC BY 4.0 (UCI Machine Learning Repository)"
TEST_FRACTION = 0.2


def available() -> tuple[bool, str]:
    return True, "ships with scikit-learn"


def load() -> ImageDataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    # 0..16 intensities to 0..255; the 17 levels stay distinct.
    x = torch.from_numpy(np.rint(d.images * (255 / 16)).astype(np.uint8)).unsqueeze(1)
    y = torch.from_numpy(d.target.astype(np.int64))
    # A fixed permutation: the same split on every machine and version.
    perm = torch.from_numpy(np.random.RandomState(0).permutation(len(x)))
    n_test = int(round(len(x) * TEST_FRACTION))
    test, train = perm[:n_test], perm[n_test:]
    return ImageDataset(
        name="digits", train_x=x[train], train_y=y[train], test_x=x[test], test_y=y[test],
        class_names=tuple(str(i) for i in range(10)), source=SOURCE, licence=LICENCE,
        split=f"{len(train)} train / {n_test} test, a fixed random permutation (seed 0)")
