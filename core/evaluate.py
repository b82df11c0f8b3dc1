"""Evaluation: dev metrics per task, per-class reports, and predictions in input order.

Metric names: ``sst/acc``, ``cfimdb/acc``, ``para/acc``, ``sts/pearson``. Reports hold the confusion
matrix and per-class precision/recall/F1 for classification tasks (computed here with numpy; they equal
scikit-learn's, which tests/core/test_evaluate.py checks), and the true and predicted score lists for STS.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch

from core.data import TASKS, TaskData, batch_indices, collate
from core.multitask import MultitaskBert, predictions

SST_LABELS = ["negative", "somewhat negative", "neutral", "somewhat positive", "positive"]
CLASS_NAMES = {"sst": SST_LABELS, "cfimdb": ["negative", "positive"], "para": ["not duplicate", "duplicate"]}


@contextmanager
def frozen(model: MultitaskBert) -> Iterator[None]:
    """Eval mode, with oneDNN-prepacked encoder weights on CPU (``BertModel.pack_for_inference``), for the
    duration; the model's mode and packing are as before afterwards. Packing once around several
    ``predict`` calls (``evaluate``) saves repacking per task."""
    was_training = model.training
    model.eval()
    packed_here = not model.bert.is_packed and model.bert.pack_for_inference()
    try:
        yield
    finally:
        if packed_here:
            model.bert.unpack()
        model.train(was_training)


@torch.inference_mode()
def outputs(model: MultitaskBert, data: TaskData, batch_size: int = 128, device: str | torch.device = "cpu",
            autocast_dtype: torch.dtype | None = None, on_batch: Callable[[int], None] | None = None) -> torch.Tensor:
    """The model's raw output for every example of ``data``, in its order: (N, C) logits for SST and CFIMDB, (N,)
    logits for the paraphrase task, (N,) unclamped scores for STS. ``on_batch(n)`` is told after each batch of
    ``n`` examples (a progress bar; an exception it raises stops the evaluation)."""
    out: torch.Tensor | None = None
    # Batches of similar length pad little; a pair pads both sides to the longer one, so sort by that.
    lengths = data.lengths if data.tokens_b is None else [max(len(a), len(b)) for a, b in
                                                          zip(data.tokens_a, data.tokens_b, strict=True)]
    with frozen(model):
        for idx in batch_indices(lengths, batch_size, shuffle=False, bucket=True):
            batch = collate(data, idx, model.heads.cross).to(device)
            with torch.autocast(torch.device(device).type, dtype=autocast_dtype,
                                enabled=autocast_dtype is not None):
                o = model(batch).float().cpu()
            if out is None:
                out = torch.empty((len(data), *o.shape[1:]), dtype=torch.float32)
            out[idx] = o
            if on_batch is not None:
                on_batch(len(idx))
    return out if out is not None else torch.empty(0)


def predict(model: MultitaskBert, data: TaskData, batch_size: int = 128, device: str | torch.device = "cpu",
            autocast_dtype: torch.dtype | None = None, on_batch: Callable[[int], None] | None = None) -> torch.Tensor:
    """Predictions for every example of ``data``, in its order: class ids, or 0..5 scores for STS."""
    if len(data) == 0:
        return torch.empty(0)
    return predictions(data.task, outputs(model, data, batch_size, device, autocast_dtype, on_batch)).float()


def class_scores(labels: np.ndarray, preds: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Confusion matrix (k, k) (rows true, columns predicted) and per-class precision, recall, F1 and
    support, 0 where undefined: scikit-learn's ``confusion_matrix`` and ``precision_recall_fscore_support
    (zero_division=0)``, which tests/core/test_evaluate.py checks against. Written out because importing
    ``sklearn.metrics`` is slow (``python -X importtime -c "import sklearn.metrics"``), a cost every command
    that evaluates would pay."""
    cm = np.bincount(labels * k + preds, minlength=k * k).reshape(k, k)
    tp, predicted, support = np.diag(cm), cm.sum(0), cm.sum(1)

    def ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.divide(a, b, out=np.zeros(k), where=b > 0)

    return {"confusion": cm, "precision": ratio(tp, predicted), "recall": ratio(tp, support),
            "f1": ratio(2 * tp, predicted + support), "support": support}


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's r of two score arrays; 0.0 when either is constant (r is undefined there)."""
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def task_report(task: str, labels: np.ndarray, preds: np.ndarray) -> tuple[dict[str, float], dict]:
    """(metrics, report) for one task from true labels and predictions."""
    if TASKS[task].kind == "regress":
        return {f"{task}/pearson": pearson(labels, preds)}, {"task": task, "true": labels.round(3).tolist(),
                                                             "pred": preds.round(3).tolist()}
    labels, preds = labels.astype(int), preds.astype(int)
    sc = class_scores(labels, preds, TASKS[task].num_classes)
    report = {"task": task, "labels": CLASS_NAMES[task], "confusion": sc["confusion"].tolist(),
              **{k: sc[k].round(4).tolist() for k in ("precision", "recall", "f1")}, "support": sc["support"].tolist()}
    return {f"{task}/acc": float((labels == preds).mean()), f"{task}/macro_f1": float(sc["f1"].mean())}, report


def evaluate(model: MultitaskBert, datasets: dict[str, TaskData], batch_size: int = 128,
             device: str | torch.device = "cpu", on_batch: Callable[[int], None] | None = None
             ) -> tuple[dict[str, float], dict[str, dict]]:
    """Evaluate every labelled dataset: ``({"sst/acc": ..., "sts/pearson": ...}, {task: report})``; ``on_batch``
    as ``outputs``'s."""
    metrics, reports = {}, {}
    with frozen(model):
        for task, data in datasets.items():
            if data.labels is None:
                continue
            preds = predict(model, data, batch_size, device, on_batch=on_batch).numpy()
            m, r = task_report(task, data.labels.float().numpy(), preds)
            metrics.update(m)
            reports[task] = r
    return metrics, reports


def headline(metrics: dict[str, float], tasks: tuple[str, ...] | None = None) -> float:
    """One number to pick the best checkpoint: the mean of each task's main metric (of ``tasks`` only, when
    given: a single-task run evaluated on every dev set is judged by the task it trains)."""
    main = [v for k, v in metrics.items() if (k.endswith("/acc") or k.endswith("/pearson"))
            and (tasks is None or k.split("/")[0] in tasks)]
    return sum(main) / len(main) if main else float("-inf")
