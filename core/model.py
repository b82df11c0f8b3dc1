"""minBERT: BERT in plain PyTorch, read top to bottom from config to full model.

Module and parameter names follow Hugging Face's ``BertModel`` exactly
(``embeddings.word_embeddings``, ``encoder.layer.N.attention.self.query``, ``pooler.dense``...), so a
Hugging Face state dict loads by name. Loading from a checkpoint folder lives in ``core.encoders``.

Speed on CPU (see benchmarks/README.md): inside the encoder the hidden states travel packed, real tokens
only (``Tokens``), so no matmul, LayerNorm, GELU or dropout runs on padding; only attention sees the padded
``(N, T)`` layout. Q, K and V are one matmul; dropout draws its mask from 16-bit random numbers. Outputs equal
``transformers.BertModel`` on real tokens (tests/test_model.py).

For CPU inference (scoring), ``BertModel.pack_for_inference()`` reorders the encoder's linear weights once
into oneDNN's blocked layout (``PackedLinear``), so the matmuls skip a per-call weight reorder
(tests/test_packed_inference.py).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)


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


class Dropout(nn.Dropout):
    """Inverted dropout, as ``nn.Dropout``, with a cheaper keep-mask on CPU.

    On CPU the mask comes from 16-bit random numbers, four per 64-bit draw (``random_`` over the full int64
    range, viewed as int16): a quarter of the generator calls of ``rand_like``. The drop probability is
    therefore ``p`` rounded to a multiple of 1/65536 (0.1 -> 0.100006), and the kept values are scaled by
    exactly 1 / (1 - that), so the expectation is unchanged. ``benchmarks/dropout.py`` on the 2-core
    benchmark machine: dropping out a (32, 12, 80, 80) attention tensor takes 10 ms against 21 ms with
    ``rand_like`` and 30 ms with ``F.dropout`` (``bernoulli_``); dropout runs ~20 times per training step, and a
    MiniLM SST step (batch 32) takes 0.983 of the time. Other devices use ``F.dropout``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        q = round(self.p * 65536)  # drop when a uniform int16 falls among the q lowest values
        if x.device.type != "cpu" or q >= 65536:
            return F.dropout(x, self.p, True)
        n = x.numel()
        bits = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), 2**63 - 1)
        keep = (bits.view(torch.int16)[:n].view(x.shape) >= q - 32768).to(x.dtype)
        return x * keep.mul_(65536 / (65536 - q))


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


class Tokens:
    """Where the real tokens of a padded ``(N, T)`` batch are, so that every layer except attention works on
    real tokens only: hidden states travel packed as ``(n, C)``, n = real tokens, and attention scatters its
    queries, keys and values into ``(N, T, ·)`` and gathers its output back.

    With ``index=None`` nothing is packed: n = N·T and ``pad``/``pack`` are reshapes.
    """

    def __init__(self, attention_mask: torch.Tensor, unpad: bool):
        N, T = attention_mask.shape
        self.N, self.T = N, T
        self.mask = attention_mask.bool()[:, None, None, :]  # (N, 1, 1, T): broadcast over heads and queries
        self.index = None
        # Packing pays when there is padding; the index costs a host sync, so only on CPU where syncs are free.
        if unpad and attention_mask.device.type == "cpu" and not bool(self.mask.all()):
            self.index = attention_mask.reshape(-1).nonzero().squeeze(1)  # (n,) flat positions in N·T

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """(N, T, ...) -> (n, D), the trailing dimensions flattened into D."""
        x = x.reshape(self.N * self.T, -1)
        return x if self.index is None else x.index_select(0, self.index)

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """(n, D) -> (N, T, D), zeros at padding positions."""
        if self.index is not None:  # in place into fresh zeros: no clone of the zeros (index_copy would)
            x = x.new_zeros(self.N * self.T, x.size(-1)).index_copy_(0, self.index, x)
        return x.view(self.N, self.T, x.size(-1))


def _no_pack() -> None:
    return None


def _cpu_autocast() -> bool:
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch < 2.4
        return torch.is_autocast_cpu_enabled()


class PackedLinear:
    """Inference-only copy of one or more ``nn.Linear`` side by side (Q, K, V: one ``(3C, C)`` matrix), its
    weight reordered once into oneDNN's blocked layout. ``F.linear`` on CPU re-lays the weight out on every
    call; skipping that makes the encoder's matmuls about 10-40 % faster at scoring sizes (tens of tokens).

    Not a parameter or buffer, so ``state_dict`` is unchanged; a copy (``deepcopy``, pickle) comes out as
    ``None``, i.e. unpacked. ``applies(x)`` is false, so callers take the ordinary path, whenever gradients
    are on, ``x`` is not float32 on CPU, CPU autocast is on, or a source parameter was replaced or written
    to since packing (its version counter moved): a stale pack is never used.
    """

    def __init__(self, layers: list[nn.Linear]):
        self.layers = layers
        # (parameter dict, name, parameter, version) per source: read straight from the dicts, since
        # nn.Module.__getattr__ would cost ~10 µs per check on a call that takes ~100 µs
        self.sources = [(m._parameters, n, t, t._version) for m in layers for n, t in m.named_parameters()]
        with torch.no_grad():
            w = torch.cat([m.weight for m in layers]) if len(layers) > 1 else layers[0].weight  # (out, in)
            self.weight = torch.ops.mkldnn._reorder_linear_weight(w.detach().contiguous(), None)
            self.bias = torch.cat([m.bias for m in layers])  # BERT's linears all have biases

    def applies(self, x: torch.Tensor) -> bool:
        if torch.is_grad_enabled() or not x.is_cpu or x.dtype != torch.float32 or _cpu_autocast():
            return False
        return all(d.get(n) is t and t._version == v for d, n, t, v in self.sources)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x (n, in) -> (n, out)."""
        return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")

    def __reduce__(self):  # copies are unpacked: an opaque oneDNN tensor has no storage to copy
        return (_no_pack, ())


class BertSelfAttention(nn.Module):
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
        self.packed: PackedLinear | None = None  # Q, K, V as one (3C, C) matrix, see BertModel.pack_for_inference

    def linears(self) -> list[nn.Linear]:
        return [self.query, self.key, self.value]

    def qkv(self, x: torch.Tensor) -> torch.Tensor:
        """x (n, C) -> (n, 3C). With many tokens, one matmul against the concatenated weights (a larger
        matrix runs faster); with few (scoring one sentence), copying the weights would cost more than
        copying the three outputs. Packed, the weights are concatenated once: always one matmul."""
        if self.packed is not None and self.packed.applies(x):
            return self.packed(x)
        if x.size(0) < x.size(1):
            return torch.cat([self.query(x), self.key(x), self.value(x)], dim=-1)
        w = torch.cat([self.query.weight, self.key.weight, self.value.weight])  # (3C, C)
        b = torch.cat([self.query.bias, self.key.bias, self.value.bias])
        return F.linear(x, w, b)

    def forward(self, x: torch.Tensor, tokens: Tokens) -> torch.Tensor:
        """x (n, C) packed real tokens -> (n, C)."""
        N, T, C = tokens.N, tokens.T, x.size(-1)
        hs = C // self.n_head
        qkv = tokens.pad(self.qkv(x)).view(N, T, 3, self.n_head, hs)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 × (N, nh, T, hs)
        p = self.dropout.p if self.training else 0.0
        if self.impl == "sdpa" and (p == 0.0 or x.device.type != "cpu"):
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=tokens.mask, dropout_p=p)  # fused kernel
        else:  # explicit softmax; also CPU training with attention dropout, which SDPA would run this way anyway
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))  # (N, nh, T, T)
            att = att.masked_fill(~tokens.mask, float("-inf")).softmax(dim=-1)
            y = self.dropout(att) @ v  # (N, nh, T, hs)
        return tokens.pack(y.transpose(1, 2))  # re-assemble heads side by side: (n, C)


class _Dense(nn.Module):
    """A module whose ``dense`` linear layer can run from a ``PackedLinear``."""

    dense: nn.Linear
    packed: PackedLinear | None = None

    def linears(self) -> list[nn.Linear]:
        return [self.dense]

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """``self.dense(x)``, from the packed weight when it applies."""
        if self.packed is not None and self.packed.applies(x):
            return self.packed(x)
        return self.dense(x)


class BertSelfOutput(_Dense):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, h: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.project(h)) + residual)  # post-LN residual


class BertAttention(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(config)  # the name "self" is Hugging Face's
        self.output = BertSelfOutput(config)

    def forward(self, x: torch.Tensor, tokens: Tokens) -> torch.Tensor:
        return self.output(self.self(x, tokens), x)


class BertIntermediate(_Dense):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = _activation(config.hidden_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.project(x))  # (n, 4C)


class BertOutput(_Dense):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, h: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.project(h)) + residual)


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

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """x (B, T, C), attention_mask (B, T) with 1 for real tokens -> (B, T, C), zeros at padding when
        packed (padding positions carry no meaning either way)."""
        tokens = Tokens(attention_mask, self.unpad)
        h = tokens.pack(x)  # (n, C)
        for layer in self.layer:
            h = layer(h, tokens)
        return tokens.pad(h)


class BertPooler(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(h[:, 0]))  # (B, C) from the [CLS] position


class BertModel(nn.Module):
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

    def encode(self, embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Embedding-layer output (B, T, C) and mask (B, T) -> last hidden states (B, T, C)."""
        return self.encoder(embeddings, attention_mask)

    def _packable(self) -> list[BertSelfAttention | _Dense]:
        return [m for m in self.encoder.modules() if isinstance(m, (BertSelfAttention, _Dense))]

    def pack_for_inference(self) -> bool:
        """Reorder the encoder's linear weights once for oneDNN (``PackedLinear``); True when packed.

        For a frozen model on CPU (scoring, evaluation): packs apply only with gradients off, and
        ``train(True)`` or any change to a parameter drops or bypasses them. Does nothing (False) off CPU,
        for non-float32 weights, for compiled layers (``--compile`` keeps its own kernels), or where this torch
        build lacks oneDNN or the trial call fails.
        """
        self.unpack()
        params = list(self.encoder.parameters())
        compiled = any(getattr(m, "_compiled_call_impl", None) is not None for m in self.encoder.layer)
        if compiled or not (torch.backends.mkldnn.is_available()
                            and all(p.device.type == "cpu" and p.dtype == torch.float32 for p in params)):
            return False
        mods = self._packable()
        try:
            packs = [PackedLinear(m.linears()) for m in mods]
            with torch.no_grad():  # trial: the packed call must exist and agree with F.linear
                C = packs[0].layers[0].in_features
                x = torch.linspace(-1.0, 1.0, 3 * C).view(3, C)  # not randn: leave the caller's RNG alone
                ref = torch.cat([layer(x) for layer in packs[0].layers], dim=-1)
                if not torch.allclose(packs[0](x), ref, rtol=1e-4, atol=1e-4):
                    raise RuntimeError("packed linear disagrees with F.linear")
        except Exception as e:  # any torch build must keep working, packed or not
            log.debug("oneDNN weight packing unavailable, using F.linear: %s", e)
            return False
        for m, p in zip(mods, packs, strict=True):
            m.packed = p
        return True

    def unpack(self) -> None:
        """Drop the packed weights (``pack_for_inference``); the model runs from its parameters again."""
        for m in self._packable():
            m.packed = None

    @property
    def is_packed(self) -> bool:
        return any(m.packed is not None for m in self._packable())

    def train(self, mode: bool = True) -> BertModel:
        if mode:  # packs are for inference only: training never keeps them around
            self.unpack()
        return super().train(mode)

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
