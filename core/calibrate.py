"""Fitting the paraphrase head's evaluation-mode offset (``HeadConfig.para_offset``) on training pairs.

Dropout is on while the paraphrase head learns and off when it is evaluated, and the logits of the undropped
network run higher, so a head whose threshold 0 suits training calls too many pairs duplicates at evaluation: the
multitask models of experiments/ (quora-ceiling/, paraphrase-offset/) call 42-44 % of Quora dev pairs duplicates, where dev has 37 % and the
training set 37.7 %, and too many of their own training pairs too. The fix is the one-parameter recalibration of
a logistic model's intercept: run ``n`` training pairs through the model in eval mode and choose the offset ``b``
that minimises the binary cross-entropy of ``logit + b`` against their labels. At that minimum the mean predicted
probability equals the labels' rate. No dev label is used; the weights do not change.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from core.checkpoint import checkpoint_path, load_single, model_meta, save_model
from core.data import TaskData, load_task
from core.evaluate import outputs
from core.multitask import MultitaskBert, predictions
from core.setup import subsample

log = logging.getLogger("walkless.calibrate")


def fit_offset(logits: torch.Tensor, labels: torch.Tensor, iters: int = 50) -> float:
    """Logits (N,) and 0/1 labels (N,) -> the ``b`` minimising the mean BCE of ``logits + b`` (Newton's method on
    a convex one-dimensional problem). Raises ``ValueError`` when the labels are all one class (no finite
    minimum)."""
    x, y = logits.double(), labels.double()
    if len(y) == 0 or y.min() == y.max():
        raise ValueError(f"calibrating the paraphrase offset needs pairs of both classes; got {len(y)} pairs "
                         f"with {int(y.sum())} duplicates")
    b = torch.logit(y.mean()) - torch.logit(torch.sigmoid(x).mean().clamp(1e-6, 1 - 1e-6))  # a start near it
    for _ in range(iters):
        p = torch.sigmoid(x + b)
        grad, hess = (p - y).mean(), (p * (1 - p)).mean().clamp(min=1e-12)
        b = b - grad / hess
        if grad.abs() < 1e-10:
            break
    return float(b)


@dataclass(frozen=True)
class Calibration:
    """One fit: the offset, the pairs it saw, and their share called duplicates before and after it."""

    para_offset: float
    pairs: int
    duplicates_before: float  # share of the pairs with an eval-mode logit > 0, without the offset
    duplicates_after: float  # the same with it
    labels: float  # their share of real duplicates


def calibrate_para(model: MultitaskBert, train: TaskData, n: int, seed: int = 0, batch_size: int = 128,
                   device: str | torch.device = "cpu") -> Calibration:
    """Fit and set ``model.heads.para_offset`` on ``n`` training pairs (a fixed sample by ``seed``; all of them
    when ``n`` is at least their number) in eval mode. The model's mode is restored."""
    if train.task != "para" or train.labels is None:
        raise ValueError(f"calibrating the paraphrase offset needs labelled paraphrase pairs, got {train.task}")
    if n < 1:
        raise ValueError(f"calibrating the paraphrase offset on {n} pairs: give at least 1")
    pairs = subsample(train, n, seed)
    model.heads.para_offset = 0.0  # the raw logits: the fit replaces any earlier offset
    logits = outputs(model, pairs, batch_size, device)
    labels = torch.as_tensor(pairs.labels, dtype=torch.float64)
    b = fit_offset(logits, labels)
    model.heads.para_offset = b
    before, after = (float(predictions("para", x).double().mean()) for x in (logits, logits + b))  # called duplicates
    c = Calibration(b, len(pairs), before, after, float(labels.mean()))
    log.info("paraphrase offset %+.4f on %d training pairs: called duplicates %.3f -> %.3f (labels %.3f)",
             b, c.pairs, c.duplicates_before, c.duplicates_after, c.labels)
    return c


def calibrate_checkpoint(path: str | Path, data_dir: str | Path, out: str | Path, n: int, seed: int = 0,
                         batch_size: int = 128) -> tuple[Path, Calibration]:
    """A trained checkpoint (or a run folder: its best) -> a new checkpoint folder ``out`` with the same weights
    and the paraphrase offset fitted on ``n`` pairs of ``data_dir``'s Quora training file; returns (out, the fit)."""
    if Path(out).exists():  # before the slow part
        raise ValueError(f"{out}: exists; calibrating writes a new folder")
    folder = checkpoint_path(path)
    model, meta, tokenizer = load_single(folder, "calibrate")
    if "para" not in model.heads.tasks:
        raise ValueError(f"{folder}: this checkpoint has no paraphrase head (it was trained for "
                         f"{', '.join(model.heads.tasks)})")
    c = calibrate_para(model, load_task(data_dir, "para", "train", tokenizer), n, seed, batch_size)
    info = {**model_meta(meta), "calibrated": {"from": str(folder), "seed": seed, **asdict(c)}}
    return save_model(Path(out), model, info, folder), c
