"""The training task: train on the labeled set, score the pool, predict the test split.

One Ray remote task per round does all three, so the model never leaves the worker that
trained it (a ResNet-18 is 45 MB; the scores are what the selection needs). The pool and
test inputs arrive as object-store references put once per trial, so they are shared
zero-copy, never re-serialised per round. It asks for ``num_gpus`` from the trial's
resources and uses CUDA when Ray gives it a GPU, the CPU otherwise.
"""

from __future__ import annotations

import numpy as np
import ray

from direct_ray.training import ModelConfig, fit_and_score


def _train_and_score(
    model: dict,
    x_pool: np.ndarray,
    labeled: np.ndarray,
    labels: np.ndarray,
    x_test: np.ndarray,
    num_classes: int,
    seed: int,
    want_embeddings: bool,
):
    result = fit_and_score(
        ModelConfig.from_dict(model), x_pool, labeled, labels, x_test, num_classes, seed, with_embeddings=want_embeddings
    )
    info = {
        "test_pred": result.test_pred,
        "train_seconds": result.train_seconds,
        "score_seconds": result.score_seconds,
        "device": result.device,
    }
    return result.probs, result.embeddings, info


train_and_score = ray.remote(num_returns=3, max_retries=2)(_train_and_score)
