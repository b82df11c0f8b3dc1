"""Per-class scores equal scikit-learn's, including classes never predicted or never present."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

from core.evaluate import class_scores, task_report


@pytest.mark.parametrize("seed", range(5))
def test_class_scores_equal_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    k = 5
    labels = rng.integers(0, k - 1, 300)  # class 4 never true
    preds = np.where(rng.random(300) < 0.5, labels, rng.integers(0, k, 300))
    preds[preds == 2] = 3  # class 2 never predicted
    sc = class_scores(labels, preds, k)
    p, r, f, s = precision_recall_fscore_support(labels, preds, labels=list(range(k)), zero_division=0)
    assert np.array_equal(sc["confusion"], confusion_matrix(labels, preds, labels=list(range(k))))
    for ours, ref in ((sc["precision"], p), (sc["recall"], r), (sc["f1"], f), (sc["support"], s)):
        assert np.allclose(ours, ref)
    assert sc["precision"][2] == 0 and sc["recall"][4] == 0 and sc["support"][4] == 0


def test_task_report_macro_f1_and_accuracy():
    labels = np.array([0, 0, 1, 1, 1, 0, 1, 0], dtype=float)
    preds = np.array([0, 1, 1, 1, 0, 0, 1, 1], dtype=float)
    metrics, report = task_report("para", labels, preds)
    assert metrics["para/acc"] == 5 / 8
    assert metrics["para/macro_f1"] == pytest.approx(f1_score(labels, preds, average="macro"))
    assert report["confusion"] == [[2, 2], [1, 3]] and report["support"] == [4, 4]
    assert report["labels"] == ["not duplicate", "duplicate"]
