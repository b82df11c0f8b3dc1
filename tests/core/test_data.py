"""Reading CS224N files, tokenizing once, and batching."""

from __future__ import annotations

import logging
import random

import pytest
import torch

from core.data import DataError, batch_indices, collate, load_task, read_examples, tokenize
from core.encoders import load_tokenizer, resolve_encoder

HEADER = "\tid\tsentence1\tsentence2\tis_duplicate\n"


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(resolve_encoder("minilm-l6"))


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_malformed_rows_are_skipped_and_counted_in_one_warning(tmp_path, caplog):
    f = write(tmp_path / "quora-train.csv", HEADER
              + "0\ta\tHow are you?\tHow do you do?\t1.0\n"
              + "1\tb\tbroken \"quote\tonly two\n"  # wrong column count
              + "2\tc\tWhat is AI?\tWhat is ML?\t\n"  # empty label
              + "3\td\tIs it?\tIs it not?\t0.0\n")
    with caplog.at_level(logging.WARNING):
        ex = read_examples(f, "para")
    assert [e.id for e in ex] == ["a", "d"] and [e.label for e in ex] == [1, 0]
    warnings = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(warnings) == 1 and "skipped 2 malformed rows" in warnings[0] and str(f) in warnings[0]


def test_missing_column_and_missing_file_name_the_file(tmp_path):
    f = write(tmp_path / "sts-train.csv", "\tid\tsentence1\tsentence2\n0\ta\tx\ty\n")
    with pytest.raises(DataError, match=r"sts-train\.csv: missing column 'similarity'"):
        read_examples(f, "sts", labeled=True)
    with pytest.raises(DataError, match=r"nope\.csv: cannot open"):
        read_examples(tmp_path / "nope.csv", "sts")


def test_unlabeled_test_files_read_without_labels(shared_data):
    ex = read_examples(shared_data / "ids-sst-test-student.csv", "sst")
    assert len(ex) == 2210 and ex[0].label is None and ex[0].texts[0].startswith("Effective")


def test_shared_files_have_the_documented_sizes(shared_data, caplog):
    with caplog.at_level(logging.WARNING):
        quora = read_examples(shared_data / "quora-train.csv", "para")
    assert len(quora) == 13999  # one malformed row of 14,000
    assert any("skipped 1 malformed" in r.getMessage() for r in caplog.records)
    assert len(read_examples(shared_data / "ids-sst-dev.csv", "sst")) == 1101
    assert len(read_examples(shared_data / "sts-dev.csv", "sts")) == 863


def test_tokenize_once_and_pad_per_batch(demo_data, tok):
    data = load_task(demo_data, "para", "dev", tok)
    assert data.labels.dtype == torch.float32 and data.tokens_b is not None
    idx = [0, 1, 2, 3]
    b = collate(data, idx)
    assert b.input_ids.shape[0] == 8  # both sides of every pair in one tensor
    longest = max(max(len(data.tokens_a[i]), len(data.tokens_b[i])) for i in idx)
    assert b.input_ids.shape[1] == longest
    assert b.n_tokens == int(b.attention_mask.sum())
    assert b.input_ids[4].tolist()[: len(data.tokens_b[0])] == data.tokens_b[0]


def test_long_sentences_are_truncated_and_counted(tok, caplog, tmp_path):
    f = write(tmp_path / "ids-sst-train.csv", "\tid\tsentence\tsentiment\n0\ta\t" + "word " * 900 + "\t3\n")
    with caplog.at_level(logging.WARNING):
        data = tokenize(read_examples(f, "sst"), "sst", tok, max_length=512)
    assert len(data.tokens_a[0]) == 512 and data.tokens_a[0][-1] == tok.sep_token_id and data.truncated == 1
    assert any("truncated" in r.getMessage() for r in caplog.records)


def test_bucketed_batches_cover_every_example_once_and_pad_less():
    rng = random.Random(0)
    lengths = [rng.randint(5, 120) for _ in range(1000)]
    plain = batch_indices(lengths, 32, shuffle=True, rng=random.Random(1), bucket=False)
    bucketed = batch_indices(lengths, 32, shuffle=True, rng=random.Random(1), bucket=True)
    assert sorted(i for b in bucketed for i in b) == list(range(1000))

    def padded(batches):
        return sum(max(lengths[i] for i in b) * len(b) for b in batches)

    assert padded(bucketed) < 0.7 * padded(plain)
