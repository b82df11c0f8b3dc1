"""CS224N-format task files: reading with validation, tokenizing once, and padded, length-bucketed batches.

Files are tab-separated with a header row (read with ``csv.DictReader``), columns found by name:
``ids-sst-*.csv`` and ``ids-cfimdb-*.csv`` (id, sentence, sentiment), ``quora-*.csv`` (id, sentence1,
sentence2, is_duplicate) and ``sts-*.csv`` (id, sentence1, sentence2, similarity). Damaged rows are
skipped and counted in one warning per file; a missing file or column is a ``DataError``.
"""

from __future__ import annotations

import csv
import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch

from core.tasks import TASKS, TaskSpec, task_file

log = logging.getLogger(__name__)
MAX_LENGTH = 512


class DataError(ValueError):
    """A data file that cannot be used at all; the message names the file and the problem."""


@dataclass
class Example:
    id: str
    texts: tuple[str, ...]
    label: float | int | None
    row: int  # line number in the file, for messages


def _non_utf8(text: str) -> bool:
    """Whether ``text`` holds bytes that were not UTF-8 (read back as surrogate escapes)."""
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _row_problem(row: dict, spec: TaskSpec, labeled: bool) -> str | None:
    """What makes a csv row unusable (its label aside), or None; the text is how ``read_examples`` counts it."""
    if None in row:
        return "extra columns"
    for c in spec.columns(labeled):
        v = row.get(c)
        if v is None:
            return "missing columns"
        if not v.strip():
            return f"empty {c}"
        if "\n" in v or "\t" in v:
            return f"broken quoting in {c}"
        if _non_utf8(v):
            return f"non-UTF-8 bytes in {c}"
    return None


def read_examples(path: str | Path, task: str, labeled: bool | None = None) -> list[Example]:
    """Read one CS224N file. ``labeled=None`` means: use the label column when the header has it.

    Returns the valid rows in file order. Damaged rows (broken quoting, missing or empty fields,
    non-UTF-8 bytes, a label out of range) are skipped and reported in one warning line naming the file,
    the problem, its field and the first line it occurs on. A file that cannot be used at all (missing,
    empty, header only, wrong delimiter, no valid row) is a ``DataError`` naming it.
    """
    spec, path = TASKS[task], Path(path)
    try:
        fp = open(path, newline="", encoding="utf-8-sig", errors="surrogateescape")
    except OSError as e:
        raise DataError(f"{path}: cannot open ({e.strerror or e})") from e
    examples: list[Example] = []
    skipped: Counter[str] = Counter()
    first_bad: dict[str, str] = {}
    reader = csv.DictReader(fp, delimiter="\t")
    try:
        with fp:
            header = reader.fieldnames or []
            if not header:
                raise DataError(f"{path}: empty file (expected a tab-separated header row)")
            if labeled is None:
                labeled = spec.label_column in header
            for c in spec.columns(labeled):
                if c not in header:
                    hint = " (is the file tab-separated?)" if len(header) == 1 else ""
                    if any(_non_utf8(h) for h in header):
                        hint = " (the header has non-UTF-8 bytes)"
                    raise DataError(f"{path}: missing column {c!r}; header has {header}{hint}")
            for row in reader:
                problem = _row_problem(row, spec, labeled)
                label = None
                if problem is None and labeled:
                    try:
                        label = spec.parse_label(row[spec.label_column])
                    except ValueError as e:
                        problem = str(e)
                        first_bad.setdefault(problem, f"line {reader.line_num}: {row[spec.label_column]!r}")
                if problem:
                    skipped[problem] += 1
                    first_bad.setdefault(problem, f"line {reader.line_num}")
                    continue
                texts = tuple(row[c].strip() for c in spec.text_columns)
                examples.append(Example(row["id"].strip(), texts, label, reader.line_num))
    except csv.Error as e:  # e.g. a field past csv's size limit: a quote never closed
        raise DataError(f"{path}: line {reader.line_num}: unreadable as tab-separated text ({e})") from e
    summary = ", ".join(f"{n} {p} (first at {first_bad[p]})" for p, n in skipped.items())
    if not examples:
        if not skipped:
            raise DataError(f"{path}: no data rows (only a header)")
        raise DataError(f"{path}: no valid rows; skipped {sum(skipped.values())}: {summary}")
    if skipped:
        log.warning("%s: skipped %d malformed rows: %s", path, sum(skipped.values()), summary)
    return examples


@dataclass
class TaskData:
    """One task's split, tokenized once: token id lists (no padding) and labels."""

    task: str
    ids: list[str]
    tokens_a: list[list[int]]
    tokens_b: list[list[int]] | None
    labels: torch.Tensor | None  # (N,) long for classes, float for binary/regression
    truncated: int = 0
    lengths: list[int] = field(default_factory=list)  # non-pad tokens per example (both sides for pairs)

    def __len__(self) -> int:
        return len(self.ids)

    def select(self, idx: list[int]) -> TaskData:
        """The examples at ``idx``, in that order."""
        pick = lambda xs: [xs[i] for i in idx]  # noqa: E731
        return TaskData(self.task, pick(self.ids), pick(self.tokens_a), self.tokens_b and pick(self.tokens_b),
                        None if self.labels is None else self.labels[idx], self.truncated, pick(self.lengths))


def _encode(tokenizer, texts: list[str], max_length: int) -> tuple[list[list[int]], list[int]]:
    """Token ids of each text, cut to ``max_length`` (keeping [SEP]), and the positions that were cut."""
    enc = tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
    cut = []
    for i, ids in enumerate(enc):
        if len(ids) > max_length:
            enc[i] = ids[: max_length - 1] + ids[-1:]  # keep [SEP] at the end
            cut.append(i)
    return enc, cut


def tokenize(examples: list[Example], task: str, tokenizer, max_length: int = MAX_LENGTH,
             source: str = "") -> TaskData:
    """Tokenize every example once; sentences past ``max_length`` tokens are cut and counted."""
    spec = TASKS[task]
    a, cut = _encode(tokenizer, [e.texts[0] for e in examples], max_length)
    b = None
    if spec.is_pair:
        b, cut_b = _encode(tokenizer, [e.texts[1] for e in examples], max_length)
        cut += cut_b
    labels = None
    if examples and examples[0].label is not None:
        dtype = torch.long if spec.kind == "classify" else torch.float32
        labels = torch.tensor([e.label for e in examples], dtype=dtype)
    if cut:
        log.warning("%s: %d sentences longer than %d tokens were truncated (first at line %d)", source or task,
                    len(cut), max_length, min(examples[i].row for i in cut))
    lengths = [len(x) + (len(b[i]) if b else 0) for i, x in enumerate(a)]
    return TaskData(task, [e.id for e in examples], a, b, labels, len(cut), lengths)


def load_task(data_dir: str | Path, task: str, split: str, tokenizer, max_length: int = MAX_LENGTH) -> TaskData:
    """Read and tokenize one split of a task (labels required except in test-student)."""
    path = task_file(data_dir, task, split)
    return tokenize(read_examples(path, task, labeled=None if split == "test-student" else True),
                    task, tokenizer, max_length, source=str(path))


@dataclass
class Batch:
    """Padded tensors for one batch. Pair tasks stack both sides: rows [0, B) are u, rows [B, 2B) are v;
    cross-encoded pairs are one row each, ``[CLS] a [SEP] b [SEP]``, with ``token_type_ids`` 1 on b."""

    task: str
    input_ids: torch.Tensor  # (N, T), N = B or 2B
    attention_mask: torch.Tensor  # (N, T)
    labels: torch.Tensor | None  # (B,)
    index: list[int]  # positions in the TaskData
    n_tokens: int  # non-padding tokens
    token_type_ids: torch.Tensor | None = None  # (N, T), cross-encoded pairs only

    @property
    def size(self) -> int:
        return len(self.index)

    def to(self, device: torch.device | str) -> Batch:
        lab = None if self.labels is None else self.labels.to(device, non_blocking=True)
        types = None if self.token_type_ids is None else self.token_type_ids.to(device, non_blocking=True)
        return Batch(self.task, self.input_ids.to(device, non_blocking=True),
                     self.attention_mask.to(device, non_blocking=True), lab, self.index, self.n_tokens, types)


def pad_ids(seqs: list[list[int]], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Token id lists -> ids (N, T) padded with ``pad_id`` and mask (N, T), 1 on real tokens; T = longest."""
    lengths = torch.tensor([len(s) for s in seqs])
    T = int(lengths.max())
    ids = torch.tensor([s + [pad_id] * (T - len(s)) for s in seqs], dtype=torch.long)  # one copy, not N
    mask = (torch.arange(T)[None, :] < lengths[:, None]).long()
    return ids, mask


def cross_sequence(a: list[int], b: list[int], max_length: int = MAX_LENGTH) -> tuple[list[int], list[int]]:
    """Two tokenized sentences (each ``[CLS] ... [SEP]``) -> ``[CLS] a [SEP] b [SEP]`` and its segment ids (0 on
    a, 1 on b), cut to ``max_length`` keeping the final [SEP]."""
    ids, types = a + b[1:], [0] * len(a) + [1] * (len(b) - 1)
    if len(ids) > max_length:
        ids, types = ids[: max_length - 1] + ids[-1:], types[: max_length - 1] + types[-1:]
    return ids, types


def collate(data: TaskData, index: list[int], cross: bool = False) -> Batch:
    """Pad one batch to its own longest sequence; ``cross`` puts both sentences of a pair in one sequence."""
    labels = None if data.labels is None else data.labels[index]
    if cross and data.tokens_b is not None:
        pairs = [cross_sequence(data.tokens_a[i], data.tokens_b[i]) for i in index]
        ids, mask = pad_ids([p for p, _ in pairs])
        types, _ = pad_ids([t for _, t in pairs])
        return Batch(data.task, ids, mask, labels, list(index), int(mask.sum()), types)
    seqs = [data.tokens_a[i] for i in index]
    if data.tokens_b is not None:
        seqs += [data.tokens_b[i] for i in index]  # one forward pass for both sides of every pair
    ids, mask = pad_ids(seqs)
    return Batch(data.task, ids, mask, labels, list(index), sum(len(s) for s in seqs))


def batch_indices(lengths: list[int], batch_size: int, shuffle: bool, rng: random.Random | None = None,
                  bucket: bool = True, drop_last: bool = False) -> list[list[int]]:
    """Split ``range(len(lengths))`` into batches.

    With ``bucket``, examples are sorted by length inside windows of 50 batches, so each batch pads
    little, and the batch order is shuffled; without it, plain (shuffled) order.
    """
    order = list(range(len(lengths)))
    rng = rng or random.Random(0)
    if shuffle:
        rng.shuffle(order)
    if bucket:
        window = batch_size * 50
        order = [i for s in range(0, len(order), window)
                 for i in sorted(order[s:s + window], key=lengths.__getitem__)]
    batches = [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    if shuffle and bucket:
        rng.shuffle(batches)
    return batches


def demo_data_dir() -> Path:
    """The demo dataset shipped in ``assets/demo-data`` (regenerated into a cache when not present)."""
    from core.demo import ensure_demo_data

    return ensure_demo_data()
