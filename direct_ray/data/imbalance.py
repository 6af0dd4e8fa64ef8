"""The paper's imbalance construction (Table 1), the majority-last convention, the imbalance ratio. Pure numpy.

Construction: keep the first K-1 original classes as they are and merge every other class
into class K-1. On the training splits this gives exactly the paper's Table 1 (CIFAR-10 K=2:
5000 vs 45000, ..., SVHN K=3: 18809 vs 54448), where the merged class is the majority.

Convention: class K-1 is the majority, and "minority" (the minority labels bought, the
minority accuracy, the minority_to_majority noise) means classes 0..K-2. A user's file need
not follow the paper's order (scikit-learn's ``make_classification(weights=[0.9, 0.1])``
makes class 0 the common one), so after the construction the largest class of the training
split is moved to K-1 when it is not there already, the others keeping their order
(:func:`majority_last`). :func:`class_map` gives the whole mapping, original label -> study
label, which the results record. In the paper's six settings, CIFAR and the digits with
K <= 9 the merged class is already the largest, so their labels are the construction's;
SVHN with K = 9 or 10 and the digits with K = 10 are relabelled.

Imbalance ratio gamma: **the largest minority class over the majority class**, computed as
the second-largest class count over the largest. Every row of Table 1 is reproduced by this
definition and by no simpler alternative we checked:

=========== === =================== ============ ==================== ===================
dataset      K  counts              largest/max  smallest/max         minority sum/max
=========== === =================== ============ ==================== ===================
CIFAR-10     2  5000, 45000         .1111        .1111                .1111
CIFAR-10     3  5000, 5000, 40000   .1250        .1250                .2500 (paper .1250)
CIFAR-100    2  500, 49500          .0101        .0101                .0101
CIFAR-100    3  500, 500, 49000     .0102        .0102                .0204 (paper .0102)
SVHN         2  4948, 68309         .0724        .0724                .0724
SVHN         3  4948, 13861, 54448  .2546        .0909 (paper .2546)  .3454 (paper .2546)
=========== === =================== ============ ==================== ===================

(SVHN K=3's .2546 = 13861 / 54448: digit '1', the larger minority class, over the merged
majority.) With the construction the merged class is the largest one in all six settings,
so "second largest over largest" and "largest of classes 0..K-2 over class K-1" coincide;
the sorted form is used because it stays in [0, 1] for any label histogram.
"""

from __future__ import annotations

import numpy as np


def _check_labels(labels: np.ndarray, num_classes: int) -> np.ndarray:
    labels = np.asarray(labels)
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    if labels.ndim != 1:
        raise ValueError(f"labels must be a 1-D array, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise ValueError(f"labels must be >= 0, got {labels.min()}")
    return labels


def imbalanced_labels(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Map original labels 0..M-1 to 0..K-1: classes 0..K-2 kept, classes K-1..M-1 merged into K-1.

    A pure relabelling (returns a new int64 array); K = M leaves the labels unchanged. Whether
    K exceeds a dataset's classes is checked where the dataset is known (``DatasetSpec`` and
    ``load_dataset``), since one split alone (a small test split) may lack some classes.
    """
    labels = _check_labels(labels, num_classes)
    return np.minimum(labels, num_classes - 1).astype(np.int64)


def majority_last(counts: np.ndarray) -> np.ndarray:
    """The relabelling of classes 0..K-1 (``new = perm[old]``) that makes the largest class K-1.

    ``counts`` are the training examples per class. When class K-1 is (or ties for) the
    largest, the identity; otherwise the largest class (the first one among ties) becomes
    K-1 and the classes after it move down by one, so the minority classes keep their order.
    """
    counts = np.asarray(counts)
    if counts.ndim != 1 or counts.size < 2:
        raise ValueError(f"counts must be a 1-D array of at least 2 classes, got shape {counts.shape}")
    k = counts.size
    perm = np.arange(k, dtype=np.int64)
    if counts[-1] == counts.max():
        return perm
    largest = int(np.argmax(counts))
    perm[largest] = k - 1
    perm[largest + 1 :] -= 1
    return perm


def class_map(train_labels: np.ndarray, num_classes: int, num_original: int) -> np.ndarray:
    """Study label of each original class 0..M-1 (index: original label): the construction, then majority last.

    ``train_labels`` are the original labels of the training split, whose class counts decide
    which class is the majority; ``num_original`` is M, the dataset's number of classes.
    """
    labels = _check_labels(train_labels, num_classes)
    if num_original < num_classes or (labels.size and labels.max() >= num_original):
        raise ValueError(f"num_original must cover the labels and be >= num_classes, got {num_original}")
    merged = imbalanced_labels(np.arange(num_original), num_classes)
    counts = np.bincount(imbalanced_labels(labels, num_classes), minlength=num_classes)
    return majority_last(counts)[merged]


def imbalance_ratio(labels: np.ndarray, num_classes: int) -> float:
    """Largest minority class count over the majority class count (second largest / largest).

    ``labels`` are the imbalanced labels in 0..K-1; classes with no example count as 0.
    See the module docstring for why this definition (it reproduces the paper's Table 1).
    """
    labels = _check_labels(labels, num_classes)
    if labels.size and labels.max() >= num_classes:
        raise ValueError(f"labels must lie in 0..{num_classes - 1}, got {labels.max()}")
    counts = np.sort(np.bincount(labels, minlength=num_classes))
    if counts[-1] == 0:
        raise ValueError("imbalance ratio of an empty label array is undefined")
    return float(counts[-2] / counts[-1])
