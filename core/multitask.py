"""Task heads on one shared minBERT encoder (the report's Figure 1 and 2), built as the report's code builds them.

- SST (5-way) and CFIMDB (2-way): dropout, then a linear classifier on the sentence embedding; cross-entropy.
  Beyond the report, ``sst_head="mlp"`` puts a dense layer with tanh before it (dropout, dense, tanh, dropout,
  linear: the classification head of BERT's pooler and of RoBERTa), which the mean-pooled embedding lacks.
  ``sst_head="lstm"`` reads every token instead of the pooled embedding: a BiLSTM (hidden C/2 per direction) over
  the encoder's last token states, packed so padding never enters it, then the masked mean and max of its outputs
  side by side, dropout, linear (the BiLSTM sentiment head of the strongest student systems on this project).
- Paraphrase: the features ``[u, v, |u - v|]`` of the *undropped* embeddings, dropout on that vector, one
  linear logit; binary cross-entropy. Dropping u and v out separately would put dropout noise into
  ``|u - v|`` in training only (it inflates it), so evaluation would call too many pairs duplicates.
- STS: cosine similarity of the two undropped embeddings times 5 (the sentence-transformers convention); MSE.
- ``rlayer``: a relational layer shared by paraphrase and STS: dropout on the features
  ``[u, v, |u - v|, u * v / (|u| |v| + eps)]``, a linear layer with LeakyReLU, dropout, one linear output
  per task.

Beyond the report, ``pair_input="cross"`` encodes a pair as one sequence ``[CLS] a [SEP] b [SEP]`` (segment
ids 0 and 1), as a cross-encoder does: both pair heads are then dropout + one linear output on that pair's
embedding (STS starting at 2.5, the middle of the scale). Slower to score many pairs against each other, but the
sentences attend to each other.

Beyond the report, ``pair_symmetric`` scores each pair in both orders, (u, v) and (v, u), and averages the two
outputs (logits or scores), in training and evaluation alike: a paraphrase or similarity is a symmetric relation,
but ``[u, v, ...]`` is not, so the report's heads can give a pair two answers depending on which sentence the file
lists first. Each order draws its own head-dropout mask. Bi-encoded pairs only (the cosine STS head is already
symmetric, so only the ``[u, v, |u - v|]`` paraphrase head and ``rlayer`` change).

Beyond the report, ``sst_layers`` K > 0 gives the sentiment tasks (SST, CFIMDB) their own copy of the encoder's top
K layers, initialised from the shared ones: sentences for a sentiment head run through the shared lower layers,
then through that branch, while the pair tasks keep the shared top. SST's updates (which ``--sst-lr`` makes larger)
then no longer move the top layers the paraphrase and similarity heads read; the lower layers stay shared.

Beyond the report, ``para_offset`` is a constant added to the paraphrase logit in evaluation mode only, fitted after
training (``core.calibrate``): dropout (the encoder's and the heads') is on in training only, and a head trained
with it calls more pairs duplicates at evaluation than the labels hold (42-44 % of Quora dev, which has 37 %). The
offset is a fitted number, saved with the heads; 0 changes nothing. The report's SMART (``dropout_off``) computes its
adversarial term in eval mode, so from the first fit on the offset enters both outputs that term compares; the fast
mode (``--smart-fast``, the best recipe's) stays in training mode and never sees it.

The report's code (``--profile report-code``, docs/report-code.md) differs in choices that are options here:
``pooling="pooler"`` (every task's sentence embedding is BERT's pooler output, dense + tanh on [CLS]),
``sst_head="leaky"`` (LeakyReLU, dropout, linear), ``rlayer_sts="sigmoid"`` (the relational STS output
5·sigmoid: the code's sigmoid against label / 5, on the 0..5 scale) and ``plain_pair_heads`` (with ``rlayer``, the
non-relational paraphrase head is built too, and ``head(..., plain=True)`` runs the pair tasks through the plain
heads: what the code's SMART terms call).

``HeadConfig.dropout`` is the heads' dropout only; the encoder keeps the dropout of its own config.
Outputs per task: ``classify`` -> logits (B, C); ``binary`` -> one logit (B,); ``regress`` -> score (B,).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.config import PAIR_INPUTS, SST_HEADS
from core.data import TASKS, Batch
from core.model import BertConfig, BertModel


@dataclass
class HeadConfig:
    tasks: tuple[str, ...] = ("sst", "para", "sts")
    pooling: str = "mean"  # "mean" over real tokens, or "cls"
    dropout: float = 0.3
    rlayer: bool = False
    eps: float = 1e-8
    pair_input: str = "bi"  # "bi": u and v encoded apart (the report); "cross": one sequence per pair
    sst_head: str = "linear"  # the sentiment heads: "linear" (the report), "mlp" (dense + tanh first), "lstm" (BiLSTM)
    pair_symmetric: bool = False  # pair heads: average the outputs of (u, v) and (v, u)
    sst_layers: int = 0  # the sentiment tasks' own copy of the encoder's top K layers (0: all layers shared)
    para_offset: float = 0.0  # added to the paraphrase logit in eval mode; fitted by core.calibrate, not by hand
    rlayer_sts: str = "linear"  # the relational STS output: "linear" (bias 2.5) or "sigmoid" (5·sigmoid)
    plain_pair_heads: bool = False  # rlayer: also the plain paraphrase head, for head(..., plain=True)

    @property
    def cross(self) -> bool:
        return self.pair_input == "cross"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["tasks"] = list(self.tasks)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> HeadConfig:
        d = dict(d)
        d["tasks"] = tuple(d.get("tasks", cls.tasks))
        return cls(**d)


SENTIMENT = ("sst", "cfimdb")  # the single-sentence tasks: their heads (and their own top layers, if any)


def pool(h: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """Hidden states (N, T, C) and mask (N, T) -> sentence embeddings (N, C) ("mean" or "cls"; "pooler" is
    ``MultitaskBert.sentence_embeddings``', it needs the pooler's weights)."""
    if how == "cls":
        return h[:, 0]
    if how != "mean":
        raise ValueError(f"pooling {how!r}: pool() takes mean or cls (pooler: MultitaskBert.sentence_embeddings)")
    m = mask.unsqueeze(-1).to(h.dtype)  # (N, T, 1)
    return (h * m).sum(1) / m.sum(1).clamp(min=1.0)


def lstm_pool(lstm: nn.LSTM, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Token states (N, T, C) and mask (N, T) -> the masked mean and max over time of a bidirectional ``lstm``'s
    outputs, side by side (N, 4H). The sequences are packed at their lengths, so padding never enters the LSTM
    (the backward direction starts at each sentence's last real token)."""
    lengths = mask.sum(1).cpu()
    packed = nn.utils.rnn.pack_padded_sequence(h, lengths, batch_first=True, enforce_sorted=False)
    out, _ = lstm(packed)
    out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=h.size(1))  # (N, T, 2H)
    m = mask.unsqueeze(-1).to(out.dtype)  # (N, T, 1)
    mean = (out * m).sum(1) / m.sum(1).clamp(min=1.0)
    top = out.masked_fill(m == 0, float("-inf")).amax(1)
    return torch.cat([mean, top], dim=-1)


def pair_features(u: torch.Tensor, v: torch.Tensor, eps: float | None = None) -> torch.Tensor:
    """u, v (B, C) -> ``[u, v, |u - v|]`` (B, 3C), plus the scaled product ``u * v / (|u| |v| + eps)``
    (B, 4C) when ``eps`` is given (its sum is the cosine similarity)."""
    parts = [u, v, (u - v).abs()]
    if eps is not None:
        parts.append(u * v / (u.norm(dim=-1, keepdim=True) * v.norm(dim=-1, keepdim=True) + eps))
    return torch.cat(parts, dim=-1)


class RelationalLayer(nn.Module):
    """Shared layer for the two pair tasks (report 3.3): pair features (B, 4C) -> (B, C)."""

    def __init__(self, hidden: int):
        super().__init__()
        self.dense = nn.Linear(4 * hidden, hidden)
        self.act = nn.LeakyReLU()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.act(self.dense(features))


class MultitaskBert(nn.Module):
    """A ``BertModel`` plus the heads of ``HeadConfig.tasks``."""

    def __init__(self, bert: BertModel, heads: HeadConfig):
        super().__init__()
        self.bert = bert
        self.heads = heads
        C = bert.config.hidden_size
        self.dropout = nn.Dropout(heads.dropout)
        if heads.sst_head not in SST_HEADS:
            raise ValueError(f"sst head {heads.sst_head!r}: choose {', '.join(SST_HEADS[:-1])} or {SST_HEADS[-1]}")
        if heads.pooling not in ("mean", "cls", "pooler"):
            raise ValueError(f"pooling {heads.pooling!r}: choose mean, cls or pooler")
        n_layers = bert.config.num_hidden_layers
        if not 0 <= heads.sst_layers <= n_layers:
            raise ValueError(f"sst layers {heads.sst_layers}: the encoder has {n_layers} layers "
                             f"(choose 0 to {n_layers})")
        self.sst_top: nn.ModuleList | None = None
        if heads.sst_layers and any(t in heads.tasks for t in SENTIMENT):
            # a copy of the top K layers as they are now: the pretrained weights when built for training
            top = bert.encoder.layer[n_layers - heads.sst_layers:]
            self.sst_top = nn.ModuleList(copy.deepcopy(layer) for layer in top)
        for task in SENTIMENT:
            if task in heads.tasks:
                width = C
                if heads.sst_head == "mlp":
                    setattr(self, f"{task}_dense", nn.Linear(C, C))
                if heads.sst_head == "lstm":  # [mean, max] of both directions: 4 (C // 2)
                    setattr(self, f"{task}_lstm", nn.LSTM(C, C // 2, batch_first=True, bidirectional=True))
                    width = 4 * (C // 2)
                setattr(self, f"{task}_classifier", nn.Linear(width, TASKS[task].num_classes))
        if heads.pair_input not in PAIR_INPUTS:
            raise ValueError(f"pair input {heads.pair_input!r}: choose {' or '.join(PAIR_INPUTS)}")
        if heads.cross and heads.rlayer:
            raise ValueError("+rlayer needs the sentence embeddings u and v: use it with pair input bi")
        if heads.cross and heads.pair_symmetric:
            raise ValueError("pair_symmetric swaps the sentence embeddings u and v: use it with pair input bi")
        if heads.cross:
            if "para" in heads.tasks:
                self.para_classifier = nn.Linear(C, 1)
            if "sts" in heads.tasks:
                self.sts_regressor = nn.Linear(C, 1)
                nn.init.constant_(self.sts_regressor.bias, 2.5)
        elif heads.rlayer:
            self.relational = RelationalLayer(C)
            self.para_out = nn.Linear(C, 1)
            self.sts_out = nn.Linear(C, 1)
            if heads.rlayer_sts == "linear":
                nn.init.constant_(self.sts_out.bias, 2.5)  # start in the middle of the 0..5 scale
        if "para" in heads.tasks and not heads.cross and (not heads.rlayer or heads.plain_pair_heads):
            self.para_classifier = nn.Linear(3 * C, 1)

    @property
    def config(self) -> BertConfig:
        return self.bert.config

    def embed(self, batch: Batch) -> torch.Tensor:
        """Token ids -> embedding-layer output (N, T, C), the input SMART perturbs."""
        return self.bert.embed(batch.input_ids, batch.token_type_ids)

    def head(self, task: str, emb: torch.Tensor, mask: torch.Tensor, plain: bool = False) -> torch.Tensor:
        """Embedding-layer output (N, T, C) -> the task's output (see the module docstring); ``plain``: a pair task
        through the non-relational heads even with ``rlayer`` (the report's code's SMART terms)."""
        return self.output(task, self.sentence_embeddings(emb, mask, task), plain)

    def sentence_embeddings(self, emb: torch.Tensor, mask: torch.Tensor, task: str) -> torch.Tensor:
        """Embedding-layer output (N, T, C) -> ``task``'s pooled sentence embeddings (N, C), before the head
        dropout (a sentiment task's through its own top layers, when it has them; with the lstm head, its BiLSTM's
        pooled outputs (N, 4 (C // 2)) instead)."""
        top = self.sst_top if task in SENTIMENT else None
        h = self.bert.encode(emb, mask, top)  # (N, T, C)
        if task in SENTIMENT and self.heads.sst_head == "lstm":
            return lstm_pool(getattr(self, f"{task}_lstm"), h, mask)
        return self.bert.pooler(h) if self.heads.pooling == "pooler" else pool(h, mask, self.heads.pooling)

    def output(self, task: str, x: torch.Tensor, plain: bool = False) -> torch.Tensor:
        """Sentence embeddings (N, C), pairs stacked -> the task's output; several heads can share one
        encoder pass (scoring a pair for paraphrase and similarity). ``plain``: see ``head``."""
        if task in SENTIMENT:
            if self.heads.sst_head == "mlp":
                x = torch.tanh(getattr(self, f"{task}_dense")(self.dropout(x)))  # (N, C)
            elif self.heads.sst_head == "leaky":
                x = F.leaky_relu(x)  # the report's code: LeakyReLU, dropout, linear
            return getattr(self, f"{task}_classifier")(self.dropout(x))
        if plain and self.heads.rlayer:
            u, v = x.chunk(2)
            return self.plain_pair_output(task, u, v)
        if self.heads.cross:  # x: one embedding per pair (B, C)
            head = self.para_classifier if task == "para" else self.sts_regressor
            return self.offset(task, head(self.dropout(x)).squeeze(-1))
        u, v = x.chunk(2)  # pair tasks stack both sides: (B, C) each, never dropped out one by one
        if self.heads.pair_symmetric and (self.heads.rlayer or task == "para"):
            out = 0.5 * (self.pair_output(task, u, v) + self.pair_output(task, v, u))  # (B,)
        else:
            out = self.pair_output(task, u, v)
        return self.offset(task, out)

    def offset(self, task: str, out: torch.Tensor) -> torch.Tensor:
        """The paraphrase logit (B,) plus the fitted ``para_offset`` in eval mode; anything else unchanged."""
        if task != "para" or self.training or not self.heads.para_offset:
            return out
        return out + self.heads.para_offset

    def pair_output(self, task: str, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Undropped sentence embeddings u, v (B, C) of a bi-encoded pair -> the pair task's output (B,)."""
        if self.heads.rlayer:
            r = self.relational(self.dropout(pair_features(u, v, self.heads.eps)))  # (B, C)
            out = (self.para_out if task == "para" else self.sts_out)(self.dropout(r)).squeeze(-1)  # (B,)
            return 5.0 * torch.sigmoid(out) if task == "sts" and self.heads.rlayer_sts == "sigmoid" else out
        return self.plain_pair_output(task, u, v)

    def plain_pair_output(self, task: str, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """u, v (B, C) -> the non-relational pair output (B,): the ``[u, v, |u - v|]`` logit, or 5·cosine."""
        if task == "para":
            return self.para_classifier(self.dropout(pair_features(u, v))).squeeze(-1)
        return 5.0 * F.cosine_similarity(u, v, dim=-1, eps=self.heads.eps)

    def forward(self, batch: Batch, plain: bool = False) -> torch.Tensor:
        return self.head(batch.task, self.embed(batch), batch.attention_mask, plain)

    def freeze_encoder(self) -> None:
        """The ``pretrain`` baseline: only the heads learn."""
        for p in [*self.bert.parameters(), *(self.sst_top.parameters() if self.sst_top is not None else [])]:
            p.requires_grad_(False)


@dataclass(frozen=True)
class LossOptions:
    """How a task batch's loss is scaled. ``label_smoothing``: the multi-class tasks'. ``per_batch``: None, the
    mean over the batch (ours); else the classification losses are summed and divided by this (the report's code:
    its configured batch size, whatever the batch's own size). ``sts_unit``: the STS loss on the code's 0..1 scale
    (its cosine against label / 5), i.e. our 0..5-scale MSE / 25."""

    label_smoothing: float = 0.0
    per_batch: int | None = None
    sts_unit: bool = False


def task_loss(task: str, out: torch.Tensor, labels: torch.Tensor,
              label_smoothing: float | LossOptions = 0.0) -> torch.Tensor:
    """Training loss of one task batch: the mean with ``label_smoothing`` (a float, the multi-class tasks' only), or
    scaled as a ``LossOptions`` says."""
    o = label_smoothing if isinstance(label_smoothing, LossOptions) else LossOptions(label_smoothing)
    kind, how = TASKS[task].kind, "mean" if o.per_batch is None else "sum"
    if kind == "classify":
        loss = F.cross_entropy(out, labels, label_smoothing=o.label_smoothing, reduction=how)
    elif kind == "binary":
        loss = F.binary_cross_entropy_with_logits(out, labels.to(out.dtype), reduction=how)
    else:
        return F.mse_loss(out, labels.to(out.dtype)) / (25.0 if o.sts_unit else 1.0)
    return loss if o.per_batch is None else loss / o.per_batch


def predictions(task: str, out: torch.Tensor) -> torch.Tensor:
    """Task output -> class ids (classification) or 0..5 scores (STS)."""
    kind = TASKS[task].kind
    if kind == "classify":
        return out.argmax(-1)
    if kind == "binary":
        return (out > 0).long()
    return out.clamp(0.0, 5.0)


def probabilities(task: str, out: torch.Tensor) -> torch.Tensor:
    """Classification outputs -> class probabilities (B, C); paraphrase gives (B, 2)."""
    if TASKS[task].kind == "binary":
        p = torch.sigmoid(out)
        return torch.stack([1 - p, p], dim=-1)
    return out.softmax(-1)
