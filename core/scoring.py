"""Scoring your own text against a checkpoint: sentiment probabilities, paraphrase probability, similarity.

>>> s = Scorer.load("runs/my-run")      # a run folder (its best checkpoint) or a checkpoint folder
>>> s.sentiment("A lovely film.")       # {"probs": [5 floats], "label": 3, "ms": 4.1}
>>> s.pair("How do I cook rice?", "What is the best way to cook rice?")
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from core.checkpoint import load_checkpoint
from core.data import Batch, _pad
from core.multitask import MultitaskBert, probabilities


@dataclass
class Scorer:
    model: MultitaskBert
    tokenizer: object
    meta: dict
    max_length: int = 512

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> Scorer:
        model, meta, tok = load_checkpoint(path, device)
        return cls(model, tok, meta)

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self.model.heads.tasks)

    def _batch(self, task: str, texts: list[str]) -> Batch:
        ids = self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]
        input_ids, mask = _pad(ids)
        dev = next(self.model.parameters()).device
        return Batch(task, input_ids.to(dev), mask.to(dev), None, list(range(len(texts) // (2 if task in ("para", "sts") else 1))),
                     int(mask.sum()))

    @torch.inference_mode()
    def _run(self, task: str, texts: list[str]) -> torch.Tensor:
        if task not in self.tasks:
            raise ValueError(f"this checkpoint has no {task} head (it was trained for {', '.join(self.tasks)})")
        return self.model(self._batch(task, texts)).float()

    def sentiment(self, text: str, task: str = "sst") -> dict:
        """Class probabilities for one sentence (SST: 5 classes, CFIMDB: 2)."""
        t0 = time.perf_counter()
        probs = probabilities(task, self._run(task, [text]))[0].tolist()
        return {"probs": probs, "label": max(range(len(probs)), key=probs.__getitem__),
                "ms": (time.perf_counter() - t0) * 1e3}

    def pair(self, a: str, b: str) -> dict:
        """Paraphrase probability and 0..5 similarity for one pair, for the heads the checkpoint has."""
        t0 = time.perf_counter()
        out: dict = {}
        if "para" in self.tasks:
            out["paraphrase"] = float(torch.sigmoid(self._run("para", [a, b]))[0])
        if "sts" in self.tasks:
            out["similarity"] = float(self._run("sts", [a, b])[0].clamp(0, 5))
        out["ms"] = (time.perf_counter() - t0) * 1e3
        return out
