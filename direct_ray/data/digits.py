"""The embedded default: scikit-learn's 8x8 handwritten digits (1797 images, ships with scikit-learn).

Pixels (0..16) are scaled to [0, 1] float32 features. The train/test split is fixed
(stratified 70/30 with its own seed, independent of any trial seed), so every trial of a
study sees the same pool and the same test split: 1257 training and 540 test examples.
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

TEST_FRACTION = 0.3
SPLIT_SEED = 0


def digits_splits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) with the original labels 0..9."""
    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=y
    )
    return x_train, y_train, x_test, y_test
