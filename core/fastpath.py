"""The CPU fast paths behind minBERT's plain modules (``core.model``), each giving the plain computation's
result (tests/core/test_fast_paths.py, tests/core/test_packed_inference.py) and standing aside off CPU
(tests/core/test_cuda.py). What each one buys is measured in benchmarks/README.md.

- ``Tokens``: no matmul, LayerNorm, GELU or dropout on padding.
- ``Packable.project``: a module's linear layers side by side, Q, K and V as one matmul.
- ``Dropout``: keep-masks from a quarter of the random-generator calls.
- ``PackedLinear``, ``InferencePacking``: inference matmuls without a per-call weight reorder.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from core.model import BertEncoder

log = logging.getLogger(__name__)


class Tokens:
    """Where the real tokens of a padded ``(N, T)`` batch are, so that every layer except attention works on
    real tokens only: hidden states travel packed as ``(n, C)``, n = real tokens, and attention scatters its
    queries, keys and values into ``(N, T, ·)`` and gathers its output back.
    With ``index=None`` nothing is packed: n = N·T and ``pad``/``pack`` are reshapes."""

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


class Dropout(nn.Dropout):
    """Inverted dropout, as ``nn.Dropout``, with a cheaper keep-mask on CPU.

    On CPU the mask comes from 16-bit random numbers, four per 64-bit draw (``random_`` over the full int64
    range, viewed as int16): a quarter of the generator calls of ``rand_like``. The drop probability is
    therefore ``p`` rounded to a multiple of 1/65536 (0.1 -> 0.100006), and the kept values are scaled by
    exactly 1 / (1 - that), so the expectation is unchanged. Other devices use ``F.dropout``.
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


def _cpu_autocast() -> bool:
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch < 2.4
        return torch.is_autocast_cpu_enabled()


class PackedLinear:
    """Inference-only copy of one or more ``nn.Linear`` side by side (Q, K, V: one ``(3C, C)`` matrix), its
    weight reordered once into oneDNN's blocked layout: ``F.linear`` on CPU re-lays the weight out on every call.

    Not a parameter or buffer, so ``state_dict`` is unchanged; a copy (``deepcopy``, pickle) comes out as
    ``None``, i.e. unpacked. ``applies(x)`` is false, so callers take the ordinary path, whenever gradients
    are on, ``x`` is not float32 on CPU, CPU autocast is on, or a source parameter was replaced or written
    to since packing (its version counter moved): a stale pack is never used.
    """

    def __init__(self, layers: list[nn.Linear]):
        self.layers = layers
        # (parameter dict, name, parameter, version) per source, read from the dicts: nn.Module.__getattr__ is slow
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
        return (type(None), ())  # NoneType() is None


class Packable(nn.Module):
    """A module whose linear layers, ``linears()`` (by default its ``dense``), run side by side as one matmul
    through ``project``, from a ``PackedLinear`` once ``InferencePacking.pack_for_inference`` has made one."""

    packed: PackedLinear | None = None
    dense: nn.Linear  # the one linear layer, unless ``linears`` names others

    def linears(self) -> list[nn.Linear]:
        return [self.dense]

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """x (n, in) -> (n, outs summed). Many tokens: one matmul on the concatenated weights (a larger matrix
        runs faster); few (one sentence): copying the outputs costs less than copying the weights."""
        if self.packed is not None and self.packed.applies(x):
            return self.packed(x)
        layers = self.linears()
        if len(layers) == 1:
            return layers[0](x)
        if x.size(0) < x.size(1):
            return torch.cat([m(x) for m in layers], dim=-1)
        return F.linear(x, torch.cat([m.weight for m in layers]), torch.cat([m.bias for m in layers]))


class InferencePacking(nn.Module):
    """Mixin: ``BertModel``'s oneDNN weight packing of its encoder's ``Packable`` modules, for CPU inference."""

    encoder: BertEncoder

    def _packable(self) -> list[Packable]:
        return [m for m in self.encoder.modules() if isinstance(m, Packable)]

    def pack_for_inference(self) -> bool:
        """Reorder the encoder's linear weights once for oneDNN (``PackedLinear``); True when packed.

        For a frozen model on CPU (scoring, evaluation): packs apply only with gradients off, and
        ``train(True)`` or any change to a parameter drops or bypasses them. Does nothing (False) off CPU,
        for non-float32 weights, for compiled layers (``--compile`` keeps its own kernels), or where this torch
        build lacks oneDNN or the trial call fails.
        """
        self.unpack()
        compiled = any(getattr(m, "_compiled_call_impl", None) is not None for m in self.encoder.layer)
        cpu32 = all(p.device.type == "cpu" and p.dtype == torch.float32 for p in self.encoder.parameters())
        if compiled or not (cpu32 and torch.backends.mkldnn.is_available()):
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

    def train(self, mode: bool = True):
        if mode:  # packs are for inference only: training never keeps them around
            self.unpack()
        return super().train(mode)
