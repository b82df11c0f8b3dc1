"""Scoring your own text against a checkpoint: sentiment probabilities, paraphrase probability, similarity.

>>> s = Scorer.load("runs/my-run")      # a run folder (its best checkpoint) or a checkpoint folder
>>> s.sentiment("A lovely film.")       # {"probs": [5 floats], "label": 3, "ms": 4.1}
>>> s.pair("How do I cook rice?", "What is the best way to cook rice?")
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from core.checkpoint import load_checkpoint
from core.data import TASKS, Batch, TaskData, collate
from core.multitask import MultitaskBert, probabilities


@dataclass
class Scorer:
    model: MultitaskBert
    tokenizer: Any  # a transformers tokenizer (untyped)
    meta: dict
    max_length: int = 512

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> Scorer:
        model, meta, tok = load_checkpoint(path, device)
        model.bert.pack_for_inference()  # frozen inference model: oneDNN-prepacked weights on CPU, else a no-op
        return cls(model, tok, meta)

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self.model.heads.tasks)

    def _batch(self, task: str, texts: list[str]) -> Batch:
        """One sentence, or one pair ``[a, b]``, as the batch the training and evaluation code collates."""
        ids = self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]
        pair = TASKS[task].is_pair
        data = TaskData(task, ["0"] * (1 if pair else len(ids)), ids[:1] if pair else ids, ids[1:] if pair else None,
                        None)
        return collate(data, list(range(len(data))), self.model.heads.cross).to(next(self.model.parameters()).device)

    @torch.inference_mode()
    def _run(self, task: str, texts: list[str], heads: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
        """One encoder pass over ``texts`` (pairs stacked), then the output of every task in ``heads``
        (default: ``task``) from the same sentence embeddings."""
        for t in heads or (task,):
            if t not in self.tasks:
                raise ValueError(f"this checkpoint has no {t} head (it was trained for {', '.join(self.tasks)})")
        batch = self._batch(task, texts)
        x = self.model.sentence_embeddings(self.model.embed(batch), batch.attention_mask, task)  # (N, C)
        return {t: self.model.output(t, x).float() for t in heads or (task,)}

    def sentiment(self, text: str, task: str = "sst") -> dict:
        """Class probabilities for one sentence (SST: 5 classes, CFIMDB: 2)."""
        t0 = time.perf_counter()
        probs = probabilities(task, self._run(task, [text])[task])[0].tolist()
        return {"probs": probs, "label": max(range(len(probs)), key=probs.__getitem__),
                "ms": (time.perf_counter() - t0) * 1e3}

    def pair(self, a: str, b: str) -> dict:
        """Paraphrase probability and 0..5 similarity for one pair, for the heads the checkpoint has; both
        heads share one encoder pass over the two sentences."""
        t0 = time.perf_counter()
        heads = tuple(t for t in ("para", "sts") if t in self.tasks)
        if not heads:
            raise ValueError(f"this checkpoint has no pair head (it was trained for {', '.join(self.tasks)})")
        outs = self._run(heads[0], [a, b], heads)
        out: dict = {}
        if "para" in outs:
            out["paraphrase"] = float(torch.sigmoid(outs["para"])[0])
        if "sts" in outs:
            out["similarity"] = float(outs["sts"][0].clamp(0, 5))
        out["ms"] = (time.perf_counter() - t0) * 1e3
        return out
