"""The work of ``walkless train --variant finetune --task sst --epochs 1 --batch-size 32 --lr 5e-5``, written as
a skilled transformers user writes it: the headline baseline of the end-to-end comparison (benchmarks/e2e.py).

What such a user already does, and ``hf_baseline.py`` (the naive loop, kept as a second column) does not:
- tokenize the training set once, without padding;
- length-grouped batches, as the HF Trainer's ``group_by_length``: shuffle, cut into windows of 50 batches,
  sort each window by length, cut batches, shuffle the batch order; each batch padded to its own longest;
- fused AdamW, sdpa attention, no pooler (mean pooling does not use it);
- evaluation sorted by length under ``torch.inference_mode``.
Same encoder (packaged all-MiniLM-L6-v2 unless --encoder), head (mean over real tokens, dropout 0.3, linear),
hyperparameters, data and epochs as ours. ``--device cuda --bf16`` for the GPU (autocast to bfloat16).

    python benchmarks/hf_expert.py --data-dir ../shared/data [--device cuda --bf16]
"""

from __future__ import annotations

import contextlib
import random
import time

import torch
import torch.nn.functional as F
from hf_baseline import parse, read_data, save_and_report, script_args  # a sibling script, on sys.path
from torch import nn
from transformers import BertModel, BertTokenizerFast

WINDOW = 50  # batches per length-sorted window (the HF Trainer's LengthGroupedSampler uses 50)


def grouped_batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Indices in length-grouped batches: shuffled, sorted within windows of WINDOW batches, batches shuffled."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    span = WINDOW * batch_size
    batches = []
    for s in range(0, len(order), span):
        window = sorted(order[s:s + span], key=lambda i: -lengths[i])
        batches += [window[b:b + batch_size] for b in range(0, len(window), batch_size)]
    rng.shuffle(batches)
    return batches


def pad(ids: list[list[int]], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Token id lists -> (input_ids, attention_mask), each (B, T) with T the longest in the batch."""
    T = max(len(x) for x in ids)
    input_ids = torch.zeros(len(ids), T, dtype=torch.long)
    mask = torch.zeros(len(ids), T, dtype=torch.long)
    for i, x in enumerate(ids):
        input_ids[i, :len(x)] = torch.tensor(x)
        mask[i, :len(x)] = 1
    return input_ids.to(device, non_blocking=True), mask.to(device, non_blocking=True)


def main() -> None:
    t_start = time.perf_counter()
    p = script_args(__doc__.splitlines()[0], lr=5e-5, out="hf-expert-model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--bf16", action="store_true", help="autocast to bfloat16 (GPU)")
    a = parse(p)
    torch.manual_seed(a.seed)
    rng = random.Random(a.seed)
    device = torch.device(a.device)

    tokenizer = BertTokenizerFast.from_pretrained(a.encoder)
    bert = BertModel.from_pretrained(a.encoder, attn_implementation="sdpa", add_pooling_layer=False,
                                     dtype=torch.float32).to(device)
    head = nn.Linear(bert.config.hidden_size, 5).to(device)
    dropout = nn.Dropout(a.dropout)
    params = list(bert.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.0, fused=True)
    amp = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if a.bf16 else contextlib.nullcontext

    train_x, train_y, dev_x, dev_y = read_data(a)
    train_ids = tokenizer(train_x, truncation=True, max_length=512)["input_ids"]
    dev_ids = tokenizer(dev_x, truncation=True, max_length=512)["input_ids"]
    lengths = [len(x) for x in train_ids]

    def logits(ids: list[list[int]]) -> torch.Tensor:
        input_ids, mask = pad(ids, device)
        with amp():
            h = bert(input_ids=input_ids, attention_mask=mask).last_hidden_state  # (B, T, C)
            m = mask.unsqueeze(-1).to(h.dtype)
            return head(dropout((h * m).sum(1) / m.sum(1))).float()  # mean over real tokens

    t_train = time.perf_counter()
    tokens = 0
    for epoch in range(a.epochs):
        bert.train()
        dropout.train()
        for step, b in enumerate(grouped_batches(lengths, a.batch_size, rng)):
            y = torch.tensor([train_y[i] for i in b]).to(device, non_blocking=True)
            loss = F.cross_entropy(logits([train_ids[i] for i in b]), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            tokens += sum(lengths[i] for i in b)
            if step % 50 == 0:
                print(f"epoch {epoch + 1} step {step} loss {loss.item():.4f}", flush=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t_eval = time.perf_counter()

    bert.eval()
    dropout.eval()
    order = sorted(range(len(dev_ids)), key=lambda i: len(dev_ids[i]))
    correct = 0
    with torch.inference_mode():
        for s in range(0, len(order), 128):
            b = order[s:s + 128]
            pred = logits([dev_ids[i] for i in b]).argmax(-1).cpu()
            correct += sum(int(pred[j]) == dev_y[i] for j, i in enumerate(b))
    save_and_report(a, bert, head, correct / len(dev_x), (t_start, t_train, t_eval),
                    f"{tokens / (t_eval - t_train):.0f} train tokens/s; device {device}{' bf16' if a.bf16 else ''}; "
                    f"threads {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
