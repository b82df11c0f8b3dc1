"""A small synthetic dataset in the CS224N format, so every command works on a fresh machine.

It is written by ``write_demo_data`` (deterministic for a seed) into ``assets/demo-data`` in the
repository, or into ``~/.cache/walkless/demo-data`` for an installed package. It is meant for demos and
fast tests, not for measuring anything: real users pass ``--data-dir`` with the CS224N files.
"""

from __future__ import annotations

import csv
import hashlib
import os
import random
from collections.abc import Callable
from pathlib import Path

SIZES = {"train": 1.0, "dev": 0.35, "test-student": 0.2}
SUBJECTS = ["the film", "this movie", "the story", "the acting", "the script", "the soundtrack",
            "the director's new picture", "the sequel", "the cast", "the ending"]
GRADES = [  # SST-5 classes: negative .. positive
    ["a total disaster", "unbearably dull", "painfully bad", "an awful mess"],
    ["rather disappointing", "a bit flat", "mostly forgettable", "weaker than expected"],
    ["fairly ordinary", "neither good nor bad", "about what you would expect", "an average effort"],
    ["quite enjoyable", "pleasant enough", "a solid piece of work", "warm and charming"],
    ["an absolute triumph", "brilliant from start to finish", "a stunning masterpiece", "wonderfully moving"],
]
TOPICS = ["learn python", "lose weight", "start a business", "improve my english", "get a job at google",
          "invest in stocks", "sleep better", "write a novel", "travel cheaply", "become a doctor",
          "fix a slow laptop", "prepare for an interview", "cook rice", "train a dog", "save money"]
Q_FORMS = ["How can I {t}?", "What is the best way to {t}?", "What should I do to {t}?",
           "Any tips on how to {t}?", "How do I {t} quickly?"]
SCENES = [("a man", "is playing", "a guitar"), ("a woman", "is slicing", "an onion"),
          ("a dog", "is running across", "the field"), ("two kids", "are playing in", "the park"),
          ("a chef", "is cooking", "pasta"), ("a cat", "is sleeping on", "the sofa"),
          ("a boy", "is riding", "a bike"), ("the team", "is celebrating", "a win"),
          ("a girl", "is reading", "a book"), ("an old man", "is feeding", "the birds")]
SYNONYMS = {"a man": "a guy", "a woman": "a lady", "a dog": "a puppy", "two kids": "two children",
            "is playing": "plays", "is slicing": "is cutting", "a guitar": "an acoustic guitar",
            "the field": "the meadow", "a cat": "a kitten", "a boy": "a young boy"}


def _sentiment_rows(rng: random.Random, n: int, classes: int) -> list[tuple[str, int]]:
    """``n`` (review sentence, class) rows, 5 or 2 classes, 15 % of labels moved one class off."""
    rows = []
    for _ in range(n):
        label = rng.randrange(classes)
        grade = GRADES[label * 4 if classes == 2 else label]  # 2 classes: very negative / very positive
        text = f"{rng.choice(SUBJECTS).capitalize()} is {rng.choice(grade)} ."
        if rng.random() < 0.15:  # label noise, as real annotators disagree: the task is not trivially solvable
            label = min(classes - 1, max(0, label + rng.choice((-1, 1))))
        rows.append((text, label))
    return rows


def _quora_rows(rng: random.Random, n: int) -> list[tuple[str, str, float]]:
    rows = []
    for _ in range(n):
        t = rng.choice(TOPICS)
        same = rng.random() < 0.4
        t2 = t if same else rng.choice([x for x in TOPICS if x != t])
        f1, f2 = rng.sample(Q_FORMS, 2)
        rows.append((f1.format(t=t), f2.format(t=t2), 1.0 if same else 0.0))
    return rows


def _swap(s: str) -> str:
    for a, b in SYNONYMS.items():
        s = s.replace(a, b)
    return s


def _sts_rows(rng: random.Random, n: int) -> list[tuple[str, str, float]]:
    rows = []
    for _ in range(n):
        subj, verb, obj = rng.choice(SCENES)
        level = rng.randrange(6)
        o_subj, o_verb, o_obj = rng.choice(SCENES)
        parts = [(subj, verb, obj), (subj, verb, o_obj), (subj, o_verb, o_obj), (o_subj, o_verb, o_obj)]
        a = f"{subj} {verb} {obj}."
        b = {5: _swap(a), 4: f"{subj} {verb} {obj} outside.", 3: "{} {} {}.".format(*parts[1]),
             2: "{} {} {}.".format(*parts[2]), 1: "{} {} {}.".format(*parts[3]), 0: f"{rng.choice(TOPICS)} is hard."}[level]
        score = max(0.0, min(5.0, level + rng.uniform(-0.4, 0.4)))
        rows.append((a.capitalize(), b.capitalize(), round(score, 1)))
    return rows


def _write(path: Path, header: list[str], rows: list[tuple], labeled: bool, rng: random.Random) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fp:
        w = csv.writer(fp, delimiter="\t", lineterminator="\n")
        w.writerow(["", "id", *header[: len(rows[0]) - 1], *(header[-1:] if labeled else [])])
        for i, r in enumerate(rows):
            rid = hashlib.sha1(f"{path.name}{i}{rng.random()}".encode()).hexdigest()[:25]
            w.writerow([i, rid, *r[:-1], *((r[-1],) if labeled else ())])
    os.replace(tmp, path)


FILES: dict[str, tuple[int, Callable[[random.Random, int], list[tuple]], list[str]]] = {  # file stem -> (training
    # rows at scale 1, the rows' generator, the columns after id)
    "ids-sst": (300, lambda rng, n: _sentiment_rows(rng, n, 5), ["sentence", "sentiment"]),
    "ids-cfimdb": (120, lambda rng, n: _sentiment_rows(rng, n, 2), ["sentence", "sentiment"]),
    "quora": (400, _quora_rows, ["sentence1", "sentence2", "is_duplicate"]),
    "sts": (240, _sts_rows, ["sentence1", "sentence2", "similarity"]),
}


def write_demo_data(out: str | Path, seed: int = 0, scale: int = 1) -> Path:
    """Write the demo files for all four tasks into ``out``; returns ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for split, frac in SIZES.items():
        for stem, (n, make_rows, header) in FILES.items():
            rows = make_rows(rng, max(8, int(n * frac * scale)))
            _write(out / f"{stem}-{split}.csv", header, rows, split != "test-student", rng)
    return out


def repo_demo_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "assets" / "demo-data"


def ensure_demo_data() -> Path:
    """The repository's ``assets/demo-data`` when present, else a cached copy written on first use."""
    repo = repo_demo_dir()
    if (repo / "sts-dev.csv").is_file():
        return repo
    cache = Path(os.environ.get("WALKLESS_CACHE", Path.home() / ".cache" / "walkless")) / "demo-data"
    if not (cache / "sts-dev.csv").is_file():
        write_demo_data(cache)
    return cache


if __name__ == "__main__":
    print(write_demo_data(repo_demo_dir()))
