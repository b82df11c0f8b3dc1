"""The demo dataset is written by the project, deterministically, and reads like the CS224N files."""

from __future__ import annotations

import filecmp

from core.data import read_examples
from core.demo import repo_demo_dir, write_demo_data
from core.tasks import SPLITS, TASKS, task_file


def test_shipped_demo_data_is_what_the_generator_writes(tmp_path):
    out = write_demo_data(tmp_path)
    for task in TASKS:
        for split in SPLITS:
            assert filecmp.cmp(task_file(out, task, split), task_file(repo_demo_dir(), task, split), shallow=False)


def test_every_demo_file_reads_without_skips(tmp_path, caplog):
    out = write_demo_data(tmp_path, seed=3)
    for task in TASKS:
        ex = read_examples(task_file(out, task, "train"), task)
        assert len(ex) >= 100 and all(e.label is not None for e in ex)
        assert read_examples(task_file(out, task, "test-student"), task)[0].label is None
    assert "skipped" not in caplog.text
