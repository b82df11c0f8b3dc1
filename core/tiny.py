"""A tiny random BERT checkpoint folder (the packaged MiniLM's tokenizer, a few small layers).

For fast tests and smoke runs: ``walkless train --encoder $(python -m core.tiny /tmp/tiny)``.
It is written like any Hugging Face BERT folder, so it also exercises the real loading code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from core.encoders import resolve_encoder
from core.model import BertConfig, BertModel
from core.runs import copy_tokenizer


def write_tiny_encoder(out: str | Path, hidden: int = 32, layers: int = 2, heads: int = 2, seed: int = 0,
                       pooling: str | None = "mean") -> Path:
    """Write ``config.json``, ``model.safetensors``, tokenizer files (and a mean-pooling declaration)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    src = resolve_encoder("minilm-l6")
    config = BertConfig(vocab_size=30522, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=4 * hidden, max_position_embeddings=512)
    torch.manual_seed(seed)
    model = BertModel(config)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "model.safetensors"))
    d = config.to_dict()
    d.pop("attn_implementation")
    (out / "config.json").write_text(json.dumps({**d, "model_type": "bert", "architectures": ["BertModel"]}))
    copy_tokenizer(src, out)
    if pooling:
        (out / "1_Pooling").mkdir(exist_ok=True)
        (out / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_mean_tokens": pooling == "mean"}))
    return out


if __name__ == "__main__":
    print(write_tiny_encoder(sys.argv[1] if len(sys.argv) > 1 else "tiny-bert"))
