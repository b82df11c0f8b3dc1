"""The CS224N default final project's submission files, written from one checkpoint.

``export_submission`` reads ``{ids-sst,quora,sts}-{dev,test-student}.csv`` from a data folder and writes
``{sst,para,sts}-{dev,test}-output.csv`` into an output folder, byte for byte in the starter code's format
(``multitask_classifier.py``'s ``test_multitask``)::

    id \\t Predicted_Sentiment \\n        (the header; para: Predicted_Is_Paraphrase, sts: Predicted_Similiary)
    <id> , <value> \\n                   (one line per example, input order)

Values: SST class ids 0..4, paraphrase 0 or 1, STS similarity as a float on the 0..5 scale. An input file
that is missing, or a task the checkpoint has no head for, is skipped with a warning; each output file is
written to a temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.data import read_examples, tokenize
from core.evaluate import frozen, predict
from core.multitask import MultitaskBert
from core.tasks import task_file

EXPORT_TASKS = ("sst", "para", "sts")
# input split (core.data.SPLITS) -> the split's name in the output file
EXPORT_SPLITS = {"dev": "dev", "test-student": "test"}
# the starter's column titles, its "Similiary" typo included
HEADERS = {"sst": "Predicted_Sentiment", "para": "Predicted_Is_Paraphrase", "sts": "Predicted_Similiary"}


@dataclass(frozen=True)
class ExportJob:
    """One output file to write: ``task`` predictions for the ``split`` file ``source``, into ``target``."""

    task: str
    split: str
    source: Path
    target: Path


def output_name(task: str, split: str) -> str:
    """Task and input split -> the starter's output file name, e.g. ``("sst", "test-student")`` ->
    ``"sst-test-output.csv"``."""
    return f"{task}-{EXPORT_SPLITS[split]}-output.csv"


def plan_export(model_tasks: Sequence[str], data_dir: str | Path,
                out_dir: str | Path) -> tuple[list[ExportJob], list[str]]:
    """The files to write for a model with heads ``model_tasks`` and the inputs in ``data_dir``.

    Returns ``(jobs, warnings)``: one job per export task the model has a head for and input file that
    exists, in the order sst, para, sts and dev before test; one warning per task without a head and per
    missing input file (naming it). Reads nothing but the folder listing.
    """
    jobs: list[ExportJob] = []
    warnings: list[str] = []
    for task in EXPORT_TASKS:
        if task not in model_tasks:
            warnings.append(f"the checkpoint has no {task} head (it has {', '.join(model_tasks)}); "
                            f"skipping the {task} files")
            continue
        for split in EXPORT_SPLITS:
            source = task_file(data_dir, task, split)
            if not source.is_file():
                warnings.append(f"{source} not found; skipping {output_name(task, split)}")
                continue
            jobs.append(ExportJob(task, split, source, Path(out_dir) / output_name(task, split)))
    return jobs, warnings


def format_value(task: str, value: float) -> str:
    """One prediction as the starter writes it: an int class for sst and para, a float for sts (rounded to
    4 decimals, Python's ``str``)."""
    return str(round(float(value), 4)) if task == "sts" else str(int(value))


def submission_lines(task: str, ids: Sequence[str], values: Sequence[float]) -> list[str]:
    """The lines of one output file, each ending in ``" \\n"``: the header, then ``"<id> , <value> \\n"``
    per example. ``ids`` and ``values`` have one entry per example, in the same order."""
    if len(ids) != len(values):
        raise ValueError(f"{task}: {len(ids)} ids but {len(values)} predictions")
    return [f"id \t {HEADERS[task]} \n"] + [f"{i} , {format_value(task, v)} \n"
                                            for i, v in zip(ids, values, strict=True)]


def write_atomic(path: Path, lines: Sequence[str]) -> None:
    """Write ``lines`` (UTF-8, ``\\n`` line ends as given) to ``path`` through a temporary file in the same
    folder and a rename: ``path`` holds either its old content or all of the new one."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.writelines(lines)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def export_submission(model: MultitaskBert, tokenizer, data_dir: str | Path, out_dir: str | Path,
                      batch_size: int = 128, warn: Callable[[str], None] = print) -> list[tuple[Path, int]]:
    """Write the submission files of ``model`` for the inputs in ``data_dir`` into ``out_dir`` (created).

    Every skipped file or task is passed to ``warn`` as one message. All inputs are read before anything is
    written, so a damaged input (a ``DataError`` naming it) leaves ``out_dir`` untouched. Returns
    ``[(output path, number of lines after the header)]`` in writing order; raises ``ValueError`` when
    there is nothing to write.
    """
    jobs, warnings = plan_export(model.heads.tasks, data_dir, out_dir)
    for w in warnings:
        warn(w)
    if not jobs:
        raise ValueError(f"nothing to export: no {'/'.join(EXPORT_TASKS)} dev or test-student file in {data_dir} "
                         f"for the checkpoint's heads ({', '.join(model.heads.tasks)})")
    inputs = [read_examples(job.source, job.task, labeled=False) for job in jobs]
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    written = []
    with frozen(model):  # pack the encoder once for all six files
        for job, examples in zip(jobs, inputs, strict=True):
            data = tokenize(examples, job.task, tokenizer, source=str(job.source))
            values = predict(model, data, batch_size).tolist()
            write_atomic(job.target, submission_lines(job.task, [e.id for e in examples], values))
            written.append((job.target, len(examples)))
    return written
