"""Parity with keras-rs: every keras-rs loss (the four pairwise ones and ListMLE) and
`keras_rs.metrics.NDCG`, `MeanReciprocalRank`, `MeanAveragePrecision`, `PrecisionAtK`, `RecallAtK`
on random padded lists.

Skipped unless keras-rs is available: importable here, or in the interpreter named by
``KERAS_REFERENCE_PYTHON`` (a virtualenv with the `bench` extra: keras, keras-rs, jax).
The reference values are computed there, in a subprocess, with the jax backend.
"""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest
import torch
from keras_support import reference_python
from torch.testing import assert_close

from dcnrank.metrics.ranking import ranking_metrics
from dcnrank.training.ranking_losses import RANKING_LOSSES

KERAS_LOSSES = {
    "pairwise_hinge": "PairwiseHingeLoss",
    "pairwise_logistic": "PairwiseLogisticLoss",
    "pairwise_soft_zero_one": "PairwiseSoftZeroOneLoss",
    "pairwise_mse": "PairwiseMeanSquaredError",
    "list_mle": "ListMLELoss",
}
REFERENCE = """
import json, sys
import numpy as np
import keras_rs
data = json.load(sys.stdin)
y, s = np.array(data["labels"], dtype="float32"), np.array(data["scores"], dtype="float32")
out = {name: float(getattr(keras_rs.losses, cls)()(y, s)) for name, cls in data["losses"].items()}
metrics = keras_rs.metrics
for name, metric in (("ndcg@3", metrics.NDCG(k=3)), ("mrr", metrics.MeanReciprocalRank()),
                     ("map@3", metrics.MeanAveragePrecision(k=3)), ("precision@3", metrics.PrecisionAtK(k=3)),
                     ("recall@3", metrics.RecallAtK(k=3))):
    metric.update_state(y, s)
    out[name] = float(metric.result())
print(json.dumps(out))
"""


def random_lists(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """8 lists of 6 slots, graded labels 0–3, some slots padded (−1), one list all padding."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, size=(8, 6)).astype(np.float32)
    labels[rng.random((8, 6)) < 0.2] = -1.0
    labels[3] = -1.0
    return labels, rng.normal(size=(8, 6)).astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_losses_and_metrics_match_keras_rs(seed):
    python = reference_python()
    labels, scores = random_lists(seed)
    request = {"labels": labels.tolist(), "scores": scores.tolist(), "losses": KERAS_LOSSES}
    proc = subprocess.run(
        [python, "-c", REFERENCE], input=json.dumps(request), capture_output=True, text=True, timeout=300,
        env={**os.environ, "KERAS_BACKEND": "jax"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    expected = json.loads(proc.stdout.strip().splitlines()[-1])
    for name in KERAS_LOSSES:
        ours = RANKING_LOSSES[name](torch.from_numpy(scores), torch.from_numpy(labels))
        assert_close(ours, torch.tensor(expected[name]), rtol=1e-5, atol=1e-6, msg=name)
    valid = (labels >= 0).ravel()
    groups = np.repeat(np.arange(len(labels)), labels.shape[1])[valid]
    flat_labels, flat_scores = labels.ravel()[valid], scores.ravel()[valid]
    ours = ranking_metrics(flat_labels, flat_scores, groups, k=3, threshold=1.0)  # keras-rs: relevant from 1
    for name in ("ndcg@3", "mrr", "map@3", "precision@3", "recall@3"):
        assert ours[name] == pytest.approx(expected[name], rel=1e-5), name
