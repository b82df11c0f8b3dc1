"""The tasks: each one's CS224N files, columns, label kind and dev metric (``TASKS``, the one list of task names).

Imports no torch, so that the options (``core.config``) and the app's launch form can name the tasks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TaskSpec:
    name: str
    stem: str  # file name before "-train.csv" / "-dev.csv" / "-test-student.csv"
    text_columns: tuple[str, ...]
    label_column: str
    kind: str  # "classify" (integer classes), "binary" (one logit) or "regress" (0..5 score)
    num_classes: int
    metric: str  # the dev metric that picks the best checkpoint

    @property
    def is_pair(self) -> bool:
        return len(self.text_columns) == 2

    def columns(self, labeled: bool) -> tuple[str, ...]:
        """The columns a row needs: id, the text columns, and the label column when ``labeled``."""
        return ("id", *self.text_columns) + ((self.label_column,) if labeled else ())

    def parse_label(self, raw: str) -> float | int:
        """Label text -> value; ``ValueError`` when unparsable or out of range (the message is the kind of
        problem, naming the label column; ``read_examples`` counts rows by it)."""
        try:
            v = float(raw)
        except ValueError:
            raise ValueError(f"{self.label_column} not a number") from None
        if not math.isfinite(v):
            raise ValueError(f"{self.label_column} not a number")
        if self.kind == "regress":
            if not 0.0 <= v <= 5.0:
                raise ValueError(f"{self.label_column} outside 0..5")
            return v
        if v != int(v) or not 0 <= int(v) < self.num_classes:
            raise ValueError(f"{self.label_column} outside 0..{self.num_classes - 1}")
        return int(v)


TASKS: dict[str, TaskSpec] = {
    "sst": TaskSpec("sst", "ids-sst", ("sentence",), "sentiment", "classify", 5, "sst/acc"),
    "cfimdb": TaskSpec("cfimdb", "ids-cfimdb", ("sentence",), "sentiment", "classify", 2, "cfimdb/acc"),
    "para": TaskSpec("para", "quora", ("sentence1", "sentence2"), "is_duplicate", "binary", 2, "para/acc"),
    "sts": TaskSpec("sts", "sts", ("sentence1", "sentence2"), "similarity", "regress", 0, "sts/pearson"),
}
TASK_NAMES = tuple(TASKS)
SPLITS = ("train", "dev", "test-student")


def task_file(data_dir: str | Path, task: str, split: str) -> Path:
    """The path of a task's split in a CS224N data folder, e.g. ``data/ids-sst-dev.csv``."""
    return Path(data_dir) / f"{TASKS[task].stem}-{split}.csv"
