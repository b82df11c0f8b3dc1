"""minBERT: BERT in plain PyTorch, read top to bottom from config to full model.

Module and parameter names follow Hugging Face's ``BertModel`` exactly (``encoder.layer.N.attention.self.query``,
``pooler.dense``...), so its state dict loads by name (from a folder: ``core.encoders``), and outputs equal it on
real tokens (tests/core/test_model.py). The CPU fast paths it imports are ``core.fastpath``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from core.fastpath import Dropout, InferencePacking, Packable, Tokens


@dataclass
class BertConfig:
    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    attn_implementation: str = "sdpa"  # "sdpa" (fused kernel) or "eager" (explicit softmax, for checks)
    unpad: bool = True  # on CPU, run all but attention on real tokens only (no compute on padding)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BertConfig:
        """Build from a Hugging Face ``config.json`` dict, ignoring keys minBERT does not use."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _activation(name: str):
    if name == "gelu":
        return F.gelu  # exact erf form, as Hugging Face's "gelu"
    if name in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
        return lambda x: F.gelu(x, approximate="tanh")
    if name == "relu":
        return F.relu
    raise ValueError(f"hidden_act {name!r} is not supported (use gelu, gelu_new or relu)")


class BertEmbeddings(nn.Module):
    """Word + position + token-type embeddings, then LayerNorm and dropout."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """input_ids (B, T) -> embeddings (B, T, C)."""
        T = input_ids.size(1)
        pos = torch.arange(T, device=input_ids.device)
        x = self.word_embeddings(input_ids) + self.position_embeddings(pos)[None]  # (B, T, C)
        if token_type_ids is None:
            x = x + self.token_type_embeddings.weight[0]  # all segment 0: skip a gather
        else:
            x = x + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(Packable):
    def __init__(self, config: BertConfig):
        super().__init__()
        if config.hidden_size % config.num_attention_heads:
            raise ValueError("hidden_size must be a multiple of num_attention_heads")
        self.n_head = config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = Dropout(config.attention_probs_dropout_prob)
        self.impl = config.attn_implementation

    def linears(self) -> list[nn.Linear]:
        return [self.query, self.key, self.value]  # one (3C, C) matmul in project

    def forward(self, x: torch.Tensor, tokens: Tokens) -> torch.Tensor:
        """x (n, C) packed real tokens -> (n, C)."""
        N, T, C = tokens.N, tokens.T, x.size(-1)
        hs = C // self.n_head
        qkv = tokens.pad(self.project(x)).view(N, T, 3, self.n_head, hs)  # q, k, v side by side
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 × (N, nh, T, hs)
        p = self.dropout.p if self.training else 0.0
        if self.impl == "sdpa" and (p == 0.0 or x.device.type != "cpu"):
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=tokens.mask, dropout_p=p)  # fused kernel
        else:  # explicit softmax; also CPU training with attention dropout, which SDPA would run this way anyway
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))  # (N, nh, T, T)
            att = att.masked_fill(~tokens.mask, float("-inf")).softmax(dim=-1)
            y = self.dropout(att) @ v  # (N, nh, T, hs)
        return tokens.pack(y.transpose(1, 2))  # re-assemble heads side by side: (n, C)


class BertSelfOutput(Packable):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, h: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.project(h)) + residual)  # post-LN residual: (n, C)


class BertAttention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(config)  # the name "self" is Hugging Face's
        self.output = BertSelfOutput(config)

    def forward(self, x: torch.Tensor, tokens: Tokens) -> torch.Tensor:
        return self.output(self.self(x, tokens), x)


class BertIntermediate(Packable):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = _activation(config.hidden_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.project(x))  # (n, 4C)


class BertOutput(Packable):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, h: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.project(h)) + residual)  # (n, C)


class BertLayer(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def forward(self, x: torch.Tensor, tokens: Tokens) -> torch.Tensor:
        """x (n, C) packed real tokens -> (n, C)."""
        a = self.attention(x, tokens)
        return self.output(self.intermediate(a), a)


class BertEncoder(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList([BertLayer(config) for _ in range(config.num_hidden_layers)])
        self.unpad = config.unpad

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor,
                top: nn.ModuleList | None = None) -> torch.Tensor:
        """x (B, T, C), attention_mask (B, T) with 1 for real tokens -> (B, T, C), zeros at padding when
        packed (padding positions carry no meaning either way). ``top``: K layers that stand in for the last K
        (a task's own branch of the encoder's top, ``core.multitask``)."""
        tokens = Tokens(attention_mask, self.unpad)
        h = tokens.pack(x)  # (n, C)
        layers = list(self.layer) if top is None else [*self.layer[: len(self.layer) - len(top)], *top]
        for layer in layers:
            h = layer(h, tokens)
        return tokens.pad(h)


class BertPooler(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(h[:, 0]))  # (B, C) from the [CLS] position


class BertModel(InferencePacking, nn.Module):
    """The BERT encoder.

    ``forward(input_ids, attention_mask)`` returns ``(sequence_output (B, T, C), pooled_output (B, C))``,
    the same two tensors as ``transformers.BertModel``'s ``last_hidden_state`` and ``pooler_output``.
    ``embed`` and ``encode`` split it in two so SMART can perturb the embedding-layer output.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config)
        self.pooler_pretrained = False  # set by core.encoders.load_weights: the checkpoint held pooler.dense
        self.apply(self._init_weights)

    def _init_weights(self, m: nn.Module) -> None:
        std = 0.02  # BERT's initializer_range; only matters for weights a checkpoint does not provide
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=std)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def embed(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """input_ids (B, T) -> embedding-layer output (B, T, C)."""
        return self.embeddings(input_ids, token_type_ids)

    def encode(self, embeddings: torch.Tensor, attention_mask: torch.Tensor,
               top: nn.ModuleList | None = None) -> torch.Tensor:
        """Embedding-layer output (B, T, C) and mask (B, T) -> last hidden states (B, T, C); ``top`` replaces the
        last ``len(top)`` layers (``BertEncoder.forward``)."""
        return self.encoder(embeddings, attention_mask, top)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        h = self.encode(self.embed(input_ids, token_type_ids), attention_mask)
        return h, self.pooler(h)
