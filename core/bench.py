"""``walkless bench``: training throughput, SMART step cost, scoring latency and MFU, side by side in one run.

Everything is measured in one process, on the same weights, data, batch size and thread count (the method
and the latest figures: benchmarks/README.md):

1. Training throughput of our ``Trainer`` against the expert and the naive loop over ``transformers.BertModel``
   (``HFLoop``), on the examples of ``batches`` epoch-grouped batches (``epoch_sample``), all from the same
   weights; ``warmup`` untimed steps each, then steps alternating (expert, naive, ours, ...) so that load from
   other processes hits all alike, one pass over the examples per side per round.
2. The cost of a SMART step (``core.smart``) relative to a plain step of our trainer, on the same batches,
   steps alternating: the report's algorithm and the opt-in fast mode.
3. Scoring latency once a checkpoint is loaded (``Scorer.sentiment``, ``Scorer.pair``): median and p95 over
   ``latency_samples`` calls on dev sentences (``time_calls``; the targets are judged on the raw p95).
4. Model FLOP utilization: useful training FLOPs per second over the fp32 matmul rate measured in the same
   run (``matmul_peak``) and over the CPU's theoretical FMA peak (``fma_peak``).
5. Optionally (``eval_dev``), the wall time of tokenizing and evaluating the SST, Quora and STS dev sets.

Useful FLOPs (``train_flops``) count matmuls on non-padding tokens only. For a sentence of L real tokens,
per encoder layer of width C and FFN width I:

    6 · P · L  +  12 · L² · C,        P = 4·C² + 2·C·I   (Q, K, V, attention output; FFN in and out)

6 = 2 (multiply + add) × 3 (forward; backward for the input; backward for the weights). The attention
term is QKᵀ and AV: 2 · 2 · L² · C forward, × 3 for training. The task head adds 6 · P_head per example.
Biases, embedding lookups, LayerNorm, softmax, GELU, dropout and the optimizer are not counted: they are
the overhead that MFU exposes. A pair task would count both sentences.

Every stage records the seconds the hypervisor gave this machine's CPUs to other guests during its timing
(``steal_s``), so a slow figure can be told from a stolen one.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from core.config import AT_LEAST_0, AT_LEAST_1, FRACTION, POSITIVE, SmartConfig, TrainConfig, opt
from core.data import (
    TASKS,
    TaskData,
    batch_indices,
    demo_data_dir,
    load_task,
    pad_ids,
    read_examples,
    task_file,
    tokenize,
)
from core.model import BertConfig
from core.multitask import pool

log = logging.getLogger("walkless.bench")

TARGETS = {  # what the benchmark checks (issue 14); "min" = at least, "max" = at most
    "train_speedup": ("min", 1.15),  # against the expert loop, the one a skilled user writes
    "mfu_fma": ("min", 0.75),  # useful training FLOPs over the CPU's theoretical FMA peak
    "smart_step_ratio": ("max", round(10 / 3 * 1.05, 3)),  # the report's algorithm: within 5 % of 10 units / 3
    "smart_fast_step_ratio": ("max", 2.5),  # --smart-fast: 7 / 3
    "sentence_p95_ms": ("max", 30.0),  # the raw p95: every call's first timing (retimed figures shown beside)
    "pair_p95_ms": ("max", 30.0),
    "eval_seconds": ("max", 60.0),
}


@dataclass
class BenchConfig:
    """``walkless bench``'s options (its flags are generated from these fields)."""

    encoder: str = opt("minilm-l6", "minilm-l6 (packaged) or a Hugging Face BERT folder")
    data_dir: str | None = opt(None, "the CS224N folder (e.g. ../shared/data, for figures); default: demo data")
    task: str = opt("sst", "a single-sentence task", choices=("sst", "cfimdb"))
    batch_size: int = opt(32, "examples per batch", check=AT_LEAST_1)
    batches: int = opt(10, "timed training batches per side per round (epoch-grouped)", check=AT_LEAST_1)
    rounds: int = opt(3, "passes over the examples per side (steps alternate expert / naive / ours)", check=AT_LEAST_1)
    warmup: int = opt(2, "untimed steps per side before the first round", check=AT_LEAST_0)
    smart: bool = opt(True, "measure the SMART steps")
    smart_batches: int = opt(4, "batches per side per round for the SMART comparison", check=AT_LEAST_1)
    latency_samples: int = opt(100, "single-sentence scoring calls timed", check=AT_LEAST_1)
    eval_dev: bool = opt(True, "time the evaluation of the SST, Quora and STS dev sets", aliases=("--no-eval",))
    max_dev: int | None = opt(None, "cap per dev set for the evaluation timing (tests)", check=AT_LEAST_1)
    threads: int | None = opt(None, "CPU threads (default: torch's)", check=AT_LEAST_1)
    peak_sizes: tuple[int, ...] = opt((2048, 3072), "the measured peak is the best of these square matmuls")
    lr: float = opt(1e-5, "our trainer's learning rate", check=POSITIVE)
    dropout: float = opt(0.3, "head dropout of both sides", check=FRACTION)
    seed: int = opt(0, "random seed")
    autocast: str | None = opt(None, "our trainer's bf16 autocast", choices=("bf16",))
    compile: bool = opt(False, "our trainer's torch.compile option")
    out: str | None = opt("bench.json", "JSON output file")


# --- FLOPs and the peak ---------------------------------------------------------------------------------
def inference_flops(lengths: list[int], config: BertConfig) -> int:
    """Forward-only matmul FLOPs of this encoder over sentences with these real lengths (heads left out)."""
    C, intermediate = config.hidden_size, config.intermediate_size
    P = 4 * C * C + 2 * C * intermediate  # weights in matmuls: Q, K, V, attention output; FFN in and out
    return config.num_hidden_layers * sum(2 * P * L + 4 * L * L * C for L in lengths)


def train_flops(lengths: list[int], config: BertConfig, head_params: int) -> int:
    """Useful training FLOPs of one pass over sentences with these real lengths (module docstring): three
    times the forward's (forward, backward for the inputs, backward for the weights), plus the head's."""
    return 3 * inference_flops(lengths, config) + 6 * head_params * len(lengths)


def matmul_peak(sizes: tuple[int, ...] = (2048, 3072), repeats: int = 5) -> float:
    """Best fp32 ``n × n`` matmul rate in GFLOP/s over ``sizes``, on the current threads."""
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b  # warm-up: thread pool, allocator
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ b
            best = max(best, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return best


def _cpuinfo(text: str | None = None) -> dict[str, str]:
    """The first value of each field of ``/proc/cpuinfo`` (or of ``text``, in its format); {} where unreadable."""
    if text is None:
        try:
            text = Path("/proc/cpuinfo").read_text()
        except OSError:
            text = ""
    info: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
    return info


def fma_peak(threads: int, cpuinfo: str | None = None) -> dict:
    """The CPU's theoretical fp32 peak for ``threads`` cores: cores × clock × FLOP per cycle, from
    ``/proc/cpuinfo`` (or ``cpuinfo``, its text). FLOP per cycle = 2 FMA pipes × fp32 lanes × 2: AVX-512 64,
    AVX2 + FMA 32, AVX 16, else 8; AMD before Zen 5 (family < 26) runs AVX-512 on 256-bit pipes, so 32 there.
    Returns gflops (0.0 when the clock is unknown), cores, ghz and flop_per_cycle."""
    info = _cpuinfo(cpuinfo)
    flags = set(info.get("flags", "").split())
    mhz = float(info.get("cpu MHz") or 0)
    half_width = info.get("vendor_id") == "AuthenticAMD" and int(info.get("cpu family") or 0) < 26
    if "avx512f" in flags and not half_width:
        per_cycle = 64
    else:
        per_cycle = 32 if {"avx2", "fma"} <= flags else 16 if "avx" in flags else 8
    cores = min(threads, os.cpu_count() or threads)
    return {"gflops": round(cores * mhz / 1e3 * per_cycle, 1), "cores": cores, "ghz": round(mhz / 1e3, 3),
            "flop_per_cycle": per_cycle}


def steal_s() -> float:
    """CPU seconds (all CPUs together) the hypervisor has given to other guests since boot: the ``steal``
    column of ``/proc/stat``; 0.0 where the system does not report it."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def percentile(xs: list[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation."""
    s = sorted(xs)
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


# --- the baselines ---------------------------------------------------------------------------------------
class HFLoop:
    """A training step over ``transformers.BertModel`` (sdpa), with the same pooling + dropout + linear head.

    ``expert=True`` (the headline baseline) is what a skilled user writes: the examples tokenized once,
    length-grouped batches (``batches_for``; the HF Trainer's ``group_by_length``), each padded to its own
    longest, no pooler, fused AdamW, no host sync per step. ``expert=False`` (the naive loop, a second column):
    batches in file order tokenized and padded as they come, the pooler computed and unused, the for-loop
    AdamW, ``loss.item()`` each step.
    """

    def __init__(self, encoder_dir: Path, texts: list[str], labels: torch.Tensor, num_classes: int,
                 pooling: str, dropout: float, lr: float, weight_decay: float, head_state: dict, expert: bool):
        from transformers import BertModel as HFBertModel
        from transformers import BertTokenizerFast  # type: ignore[attr-defined]  # a lazy alias in transformers 5
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()  # no load report for the pooler the expert leaves out
        self.texts, self.labels, self.pooling, self.expert = texts, labels, pooling, expert
        self.tok = BertTokenizerFast.from_pretrained(str(encoder_dir))
        self.ids: list[list[int]] = self.tok(texts, truncation=True, max_length=512)["input_ids"] if expert else []
        # the encoder's own dropout, as ours (TrainConfig.encoder_dropout None); ``dropout`` is the head's
        self.bert = HFBertModel.from_pretrained(str(encoder_dir), attn_implementation="sdpa",
                                                add_pooling_layer=not expert)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(self.bert.config.hidden_size, num_classes)
        self.head.load_state_dict(head_state)
        self.bert.train()
        params = list(self.bert.parameters()) + list(self.head.parameters())
        self.opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=expert or None)
        self.last: torch.Tensor | float = torch.zeros(())

    def batches_for(self, seed: int, batch_size: int) -> list[list[int]]:
        """The expert's batches: shuffled, sorted by length within windows of 50 batches, batch order shuffled;
        the naive loop's: file order."""
        if not self.expert:
            return [list(range(s, min(s + batch_size, len(self.texts)))) for s in range(0, len(self.texts), batch_size)]
        return batch_indices([len(x) for x in self.ids], batch_size, True, random.Random(seed), bucket=True)

    def _inputs(self, idx: list[int]) -> dict[str, torch.Tensor]:
        """The batch's input_ids and attention_mask: padded by the tokenizer (naive) or from the ids (expert)."""
        if not self.expert:
            return self.tok([self.texts[i] for i in idx], padding=True, truncation=True, max_length=512,
                            return_tensors="pt")
        input_ids, mask = pad_ids([self.ids[i] for i in idx])
        return {"input_ids": input_ids, "attention_mask": mask}

    def step(self, idx: list[int]) -> None:
        """One optimizer step on the examples at ``idx``."""
        enc = self._inputs(idx)
        x = pool(self.bert(**enc).last_hidden_state, enc["attention_mask"], self.pooling)  # (B, C)
        loss = F.cross_entropy(self.head(self.drop(x)), self.labels[idx])
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.last = loss.detach() if self.expert else loss.item()

    def finish(self) -> None:
        float(self.last)  # the expert's one host sync per round


# --- pieces of the run -----------------------------------------------------------------------------------
Side = tuple[Callable[[list[int]], Any], list[list[int]], Callable[[], Any]]  # step, its batches, finish


def _interleave(sides: dict[str, Side]) -> tuple[dict[str, float], float]:
    """(seconds per side, hypervisor steal seconds) for (step, its batches, finish): one step of each side
    in turn, so a burst of load from another process hits every side about equally. ``finish`` (our
    trainer's one host sync) runs at the end and counts for its side."""
    secs = dict.fromkeys(sides, 0.0)
    steal0 = steal_s()
    for i in range(max(len(batches) for _, batches, _ in sides.values())):
        for name, (step, batches, _) in sides.items():
            if i < len(batches):
                t0 = time.perf_counter()
                step(batches[i])
                secs[name] += time.perf_counter() - t0
    for name, (_, _, finish) in sides.items():
        t0 = time.perf_counter()
        finish()
        secs[name] += time.perf_counter() - t0
    return secs, steal_s() - steal0


def _make_trainer(cfg: BenchConfig, variant: str, encoder_dir: Path, data_dir: Path, tok, data: TaskData,
                  run_dir: Path, smart: SmartConfig | None = None):
    """Our ``Trainer`` for ``variant`` on ``data`` with the benchmark's options, writing into ``run_dir``."""
    from core.setup import Setup, resolve
    from core.trainer import Trainer
    from core.variants import parse_variant

    tc = TrainConfig(variant=variant, task=cfg.task, encoder=str(encoder_dir), data_dir=str(data_dir),
                     runs_dir=str(run_dir.parent), batch_size=cfg.batch_size, lr=cfg.lr, seed=cfg.seed,
                     dropout=cfg.dropout, threads=cfg.threads, autocast=cfg.autocast, compile=cfg.compile,
                     log_every=10**9, smart=smart or SmartConfig())
    setup = resolve(Setup(tc, parse_variant(variant), (cfg.task,), encoder_dir, data_dir, tok, train={cfg.task: data}))
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    return Trainer(setup, run_dir)


def _step_fn(trainer, task: str) -> Callable[[list[int]], None]:
    """A step of our trainer on one batch of ``task`` (indices into its training data)."""
    return lambda idx: trainer.iteration([(task, idx)])


def _warm_up(trainer, cfg: BenchConfig) -> None:
    """``cfg.warmup`` untimed steps of our trainer, from its own plan, and the host sync that ends them."""
    step = _step_fn(trainer, cfg.task)
    for b in _our_batches(trainer, 0, cfg.warmup):
        step(b)
    trainer.flush_losses()


def _our_batches(trainer, epoch: int, n: int) -> list[list[int]]:
    """Our trainer's own plan for an epoch over the subset (bucketed, shuffled), its first n steps."""
    return [idx for it in trainer.plan(epoch) for _, idx in it][:n]


def epoch_sample(examples: list, tok, cfg: BenchConfig) -> tuple[list, TaskData]:
    """``cfg.batches`` batches' worth of examples as a whole epoch's length grouping would batch them (windows of
    50 batches over the full training set), in file order, and their tokenized data. A plain prefix of the file
    would be one window of a few batches: sorting it leaves far more padding than an epoch's grouped batches do
    (benchmarks/README.md), which flatters a side that skips padding."""
    data = tokenize(examples, cfg.task, tok)
    batches = batch_indices(data.lengths, cfg.batch_size, True, random.Random(cfg.seed), bucket=True)[: cfg.batches]
    idx = sorted(i for b in batches for i in b)
    return [examples[i] for i in idx], data.select(idx)


def bench_training(cfg: BenchConfig, encoder_dir: Path, data_dir: Path, tok, work: Path) -> tuple[dict, Any]:
    """Rounds of the expert loop, the naive loop and ours on the same examples, one step of each in turn;
    returns (results, our trainer)."""
    from core.encoders import default_pooling

    examples, data = epoch_sample(read_examples(task_file(data_dir, cfg.task, "train"), cfg.task), tok, cfg)
    assert data.labels is not None, "training examples are labelled"
    n = len(examples)
    ours = _make_trainer(cfg, "finetune", encoder_dir, data_dir, tok, data, work / "ours")
    head = getattr(ours.model, f"{cfg.task}_classifier")
    loops = {name: HFLoop(encoder_dir, [e.texts[0] for e in examples], data.labels, TASKS[cfg.task].num_classes,
                          ours.model.heads.pooling or default_pooling(encoder_dir), cfg.dropout, cfg.lr,
                          ours.config.weight_decay, {k: v.detach().clone() for k, v in head.state_dict().items()},
                          expert=name == "expert") for name in ("expert", "naive")}
    for loop in loops.values():
        for b in loop.batches_for(cfg.seed, cfg.batch_size)[: cfg.warmup]:
            loop.step(b)
        loop.finish()
    _warm_up(ours, cfg)
    rounds, batches = [], {}
    steps = len(loops["naive"].batches_for(0, cfg.batch_size))
    for r in range(cfg.rounds):
        batches = {name: loop.batches_for(cfg.seed + r + 1, cfg.batch_size) for name, loop in loops.items()}
        batches["ours"] = _our_batches(ours, r + 1, steps)
        secs, steal = _interleave({**{name: (loop.step, batches[name], loop.finish) for name, loop in loops.items()},
                                   "ours": (_step_fn(ours, cfg.task), batches["ours"], ours.flush_losses)})
        rounds.append({**{f"{k}_s": round(v, 3) for k, v in secs.items()},
                       "speedup": round(secs["expert"] / secs["ours"], 3),
                       "speedup_naive": round(secs["naive"] / secs["ours"], 3),
                       "load": round(os.getloadavg()[0], 2), "steal_s": round(steal, 2)})
        log.info("round %d: expert %.1fs, naive %.1fs, ours %.1fs (%.2fx the expert)", r + 1, secs["expert"],
                 secs["naive"], secs["ours"], secs["expert"] / secs["ours"])
    tokens = sum(data.lengths)
    total = {k: sum(x[f"{k}_s"] for x in rounds) for k in ("expert", "naive", "ours")}
    flops = train_flops(data.lengths, ours.model.config, sum(p.numel() for p in head.parameters() if p.dim() == 2))

    def side(name: str) -> dict:
        padded = sum(len(b) * max(data.lengths[i] for i in b) for b in batches[name])
        return {"seconds": round(total[name], 3), "tokens_per_s": round(tokens * cfg.rounds / total[name], 1),
                "sentences_per_s": round(n * cfg.rounds / total[name], 2),
                "step_ms": round(1e3 * total[name] / (cfg.rounds * steps), 1),
                "useful_gflops_per_s": round(flops * cfg.rounds / total[name] / 1e9, 2),
                "padding_ratio": round(padded / tokens, 3)}

    res = {"sentences": n, "tokens": tokens, "steps_per_round": steps, "flops_per_pass": flops,
           **{k: side(k) for k in ("expert", "naive", "ours")}, "rounds": rounds,
           "speedup": round(total["expert"] / total["ours"], 3),
           "speedup_naive": round(total["naive"] / total["ours"], 3),
           "steal_s": round(sum(x["steal_s"] for x in rounds), 2),
           "ours_packed": bool(ours.model.config.unpad),  # our linear layers skip the padding altogether
           "speedup_median_round": round(statistics.median(x["speedup"] for x in rounds), 3)}
    return res, ours


def _smart_ratios(secs: dict[str, float]) -> dict[str, float]:
    """Each SMART side's time over the plain side's: ``ratio`` (the report's SMART), ``fast_ratio``,
    ``bregman_ratio``."""
    names = {"smart": "ratio", "fast": "fast_ratio", "bregman": "bregman_ratio"}
    return {key: round(secs[side] / secs["plain"], 3) for side, key in names.items()}


def bench_smart(cfg: BenchConfig, plain_trainer, encoder_dir: Path, data_dir: Path, tok, work: Path) -> dict:
    """Our plain step vs our SMART step (the report's algorithm) vs the fast SMART step (``--smart-fast``)
    vs a SMART step with λ = 0 (the Bregman term alone, ``--smart-lam 0``: no perturbed forward), on the same
    bucketed batches, one step of each in turn."""
    data = plain_trainer.setup.train[cfg.task]
    sides = {"plain": plain_trainer}
    for name, sc in (("smart", SmartConfig()), ("fast", SmartConfig.fast()), ("bregman", SmartConfig(lam=0.0))):
        sides[name] = _make_trainer(cfg, "finetune+smart", encoder_dir, data_dir, tok, data, work / name, sc)
        _warm_up(sides[name], cfg)
    rounds = []
    for r in range(cfg.rounds):
        batches = _our_batches(plain_trainer, 100 + r, cfg.smart_batches)
        plain_trainer.flush_losses()
        secs, steal = _interleave({name: (_step_fn(tr, cfg.task), batches, tr.flush_losses)
                                   for name, tr in sides.items()})
        rounds.append({**{f"{k}_s": round(v, 3) for k, v in secs.items()}, "steal_s": round(steal, 2),
                       **_smart_ratios(secs), "load": round(os.getloadavg()[0], 2)})
        log.info("smart round %d: plain %.1fs; %s", r + 1, secs["plain"],
                 ", ".join(f"{k} {secs[k]:.1f}s ({secs[k] / secs['plain']:.2f}x)" for k in sides if k != "plain"))
    total = {k: sum(x[f"{k}_s"] for x in rounds) for k in sides}
    steps = cfg.rounds * len(batches)
    return {**{f"{k}_step_ms": round(1e3 * total[k] / steps, 1) for k in sides}, **_smart_ratios(total),
            "steal_s": round(sum(x["steal_s"] for x in rounds), 2),
            # forward-pass units F (backward 2F, ascent backward 1F) over a plain step's 3F: see core/smart.py;
            # λ 0 adds only the teacher's no-grad forward
            "pass_ratio": {"smart": round(10 / 3, 3), "fast": round(7 / 3, 3), "bregman": round(4 / 3, 3)},
            "rounds": rounds, "smart_config": asdict(sides["smart"].config.smart),
            "fast_config": asdict(sides["fast"].config.smart), "bregman_config": asdict(sides["bregman"].config.smart)}


def _scoring_checkpoint(encoder_dir: Path, work: Path) -> Path:
    """A three-head checkpoint from the pre-trained encoder (scoring cost does not depend on training)."""
    from core.checkpoint import save_checkpoint
    from core.encoders import default_pooling, load_pretrained
    from core.multitask import HeadConfig, MultitaskBert

    torch.manual_seed(0)
    model = MultitaskBert(load_pretrained(encoder_dir),
                          HeadConfig(tasks=("sst", "para", "sts"), pooling=default_pooling(encoder_dir)))
    work.mkdir(parents=True, exist_ok=True)
    return save_checkpoint(work, "bench", model, {"variant": "bench", "encoder": str(encoder_dir)}, encoder_dir)


def time_calls(fn: Callable[[int], Any], k: int, steal: Callable[[], float] = steal_s, warmup: int = 3) -> dict:
    """Latency of ``fn(0) .. fn(k - 1)`` in ms: median, p95 and max, after ``warmup`` untimed calls.

    A call during which ``steal()`` grew (the hypervisor gave this machine's CPU to another guest) is
    timed again, at most twice; ``retimed`` counts those calls, ``steal_s`` sums the steal seen, and
    ``raw_p95_ms`` / ``raw_max_ms`` are over every call's first timing."""
    for i in range(warmup):
        fn(i)
    ms, raw, retimed, stolen = [], [], 0, 0.0
    for i in range(k):
        for attempt in range(3):
            s0, t = steal(), time.perf_counter()
            fn(i)
            ms_i, st = (time.perf_counter() - t) * 1e3, steal() - s0
            stolen += st
            if attempt == 0:
                raw.append(ms_i)
            if st == 0:
                break
        ms.append(ms_i)  # the last timing: steal-free unless all three were hit
        retimed += attempt > 0
    return {"median_ms": round(statistics.median(ms), 2), "p95_ms": round(percentile(ms, 0.95), 2),
            "max_ms": round(max(ms), 2), "samples": k, "raw_p95_ms": round(percentile(raw, 0.95), 2),
            "raw_max_ms": round(max(raw), 2), "retimed": retimed, "steal_s": round(stolen, 2)}


def bench_scoring(cfg: BenchConfig, ckpt: Path, data_dir: Path) -> dict:
    """Median and p95 latency of ``Scorer.sentiment`` and ``Scorer.pair`` on dev sentences."""
    from core.scoring import Scorer

    t0 = time.perf_counter()
    scorer = Scorer.load(ckpt)
    load_s = time.perf_counter() - t0
    sents = [e.texts[0] for e in read_examples(task_file(data_dir, "sst", "dev"), "sst")]
    pairs = [e.texts for e in read_examples(task_file(data_dir, "sts", "dev"), "sts")]
    k = cfg.latency_samples
    return {"load_s": round(load_s, 2), "sentence": time_calls(lambda i: scorer.sentiment(sents[i % len(sents)]), k),
            "pair": time_calls(lambda i: scorer.pair(*pairs[i % len(pairs)]), k)}


def bench_eval(cfg: BenchConfig, ckpt: Path, data_dir: Path) -> dict:
    """Wall time of tokenizing and evaluating the SST, Quora and STS dev sets with a loaded checkpoint."""
    from core.checkpoint import load_checkpoint
    from core.evaluate import evaluate
    from core.setup import subsample

    model, _, tok = load_checkpoint(ckpt)
    steal0, t0 = steal_s(), time.perf_counter()
    dev = {t: subsample(load_task(data_dir, t, "dev", tok), cfg.max_dev, 0) for t in ("sst", "para", "sts")}
    t1 = time.perf_counter()
    evaluate(model, dev)
    t2, steal = time.perf_counter(), steal_s() - steal0
    lengths = [len(x) for d in dev.values() for side in (d.tokens_a, d.tokens_b or []) for x in side]
    flops = inference_flops(lengths, model.config)
    return {"seconds": round(t2 - t0, 2), "tokenize_s": round(t1 - t0, 2), "evaluate_s": round(t2 - t1, 2),
            "examples": {t: len(d) for t, d in dev.items()}, "sentences": len(lengths), "tokens": sum(lengths),
            "sentences_per_s": round(len(lengths) / (t2 - t1), 1),
            "useful_gflops_per_s": round(flops / (t2 - t1) / 1e9, 2), "full_dev_sets": cfg.max_dev is None,
            "steal_s": round(steal, 2)}


# --- the whole run -----------------------------------------------------------------------------------------
def machine() -> dict:
    """Where a measurement ran: CPU model, cores, torch and its threads, GPU if any, Python."""
    cpu = _cpuinfo().get("model name") or platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": os.cpu_count(), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "gpu": gpu, "python": platform.python_version()}


def _targets(res: dict) -> dict:
    values = {
        "train_speedup": res["train"]["speedup"],
        "mfu_fma": res["mfu"]["ours"]["fma_peak"],
        "smart_step_ratio": res.get("smart", {}).get("ratio"),
        "smart_fast_step_ratio": res.get("smart", {}).get("fast_ratio"),
        "sentence_p95_ms": res["scoring"]["sentence"]["raw_p95_ms"],
        "pair_p95_ms": res["scoring"]["pair"]["raw_p95_ms"],
        "eval_seconds": res["eval"]["seconds"] if res.get("eval", {}).get("full_dev_sets") else None,
    }
    out = {}
    for k, (how, bound) in TARGETS.items():
        v = values[k]
        met = None if v is None else (v >= bound if how == "min" else v <= bound)
        out[k] = {"value": v, "target": f"{'>=' if how == 'min' else '<='} {bound:g}", "met": met}
    return out


def run_bench(cfg: BenchConfig, command: str | None = None) -> dict:
    """Run every part of the benchmark and return the results (and write them to ``cfg.out`` as JSON).

    ``command`` is the command line that made the figures, stored with them."""
    if TASKS[cfg.task].is_pair:
        raise ValueError(f"bench --task {cfg.task}: the training comparison takes a single-sentence task "
                         f"(sst or cfimdb)")
    threads_before = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _run(cfg, command)
    finally:
        torch.set_num_threads(threads_before)


def _run(cfg: BenchConfig, command: str | None) -> dict:
    """``run_bench`` once the thread count is set: every stage in a temporary work folder."""
    from core.encoders import load_tokenizer, resolve_encoder

    encoder_dir = resolve_encoder(cfg.encoder)
    data_dir = Path(cfg.data_dir) if cfg.data_dir else demo_data_dir()
    tok = load_tokenizer(encoder_dir)
    res: dict[str, Any] = {"command": command, "config": asdict(cfg), "machine": machine(),
                           "load_before": [round(x, 2) for x in os.getloadavg()],
                           "encoder_dir": str(encoder_dir), "data_dir": str(data_dir)}
    with tempfile.TemporaryDirectory(prefix="walkless-bench-") as tmp:
        work = Path(tmp)
        res["matmul_peak_gflops"] = round(matmul_peak(cfg.peak_sizes), 1)
        res["fma_peak"] = fma_peak(torch.get_num_threads())
        log.info("matmul peak %.1f GFLOP/s, theoretical FMA peak %.1f", res["matmul_peak_gflops"],
                 res["fma_peak"]["gflops"])
        res["train"], ours = bench_training(cfg, encoder_dir, data_dir, tok, work)
        peak, fma = res["matmul_peak_gflops"], res["fma_peak"]["gflops"] or None
        res["mfu"] = {side: {"measured_peak": round(res["train"][side]["useful_gflops_per_s"] / peak, 3),
                             "fma_peak": fma and round(res["train"][side]["useful_gflops_per_s"] / fma, 3)}
                      for side in ("ours", "expert", "naive")}
        res["mfu"]["formula"] = ("6*P*L + 12*L^2*C per layer per sentence of L real tokens, P = 4*C^2 + 2*C*I; "
                                 "plus 6*P_head per sentence; over the measured fp32 matmul peak (best of "
                                 f"{'/'.join(f'{n}^2' for n in cfg.peak_sizes)}) and over cores x clock x FLOP/cycle")
        if cfg.smart:
            res["smart"] = bench_smart(cfg, ours, encoder_dir, data_dir, tok, work)
        del ours
        ckpt = _scoring_checkpoint(encoder_dir, work / "scoring")
        res["scoring"] = bench_scoring(cfg, ckpt, data_dir)
        if cfg.eval_dev:
            res["eval"] = bench_eval(cfg, ckpt, data_dir)
            res["eval"]["mfu"] = round(res["eval"]["useful_gflops_per_s"] / peak, 3)
        res["matmul_peak_after_gflops"] = round(matmul_peak(cfg.peak_sizes), 1)
    res["load_after"] = [round(x, 2) for x in os.getloadavg()]
    res["targets"] = _targets(res)
    if cfg.out:
        Path(cfg.out).write_text(json.dumps(res, indent=2) + "\n")
    return res


def print_bench(res: dict) -> None:
    """The small table of ``run_bench`` results."""
    from rich.console import Console
    from rich.table import Table

    tr, m = res["train"], res["machine"]
    t = Table(title=f"walkless bench: {m['cpu']}, {m['threads']} threads, torch {m['torch']}, "
                    f"load {res['load_before'][0]:.2f} -> {res['load_after'][0]:.2f}")
    t.add_column("measure")
    for name in ("ours", "expert loop", "naive loop", "target"):
        t.add_column(name, justify="right")
    tg = res["targets"]

    def mark(k: str) -> str:
        met = tg[k]["met"]
        return f"{tg[k]['target']} {'[green]ok[/]' if met else '[red]missed[/]' if met is False else '-'}"

    sides = ("ours", "expert", "naive")
    t.add_row("train tokens/s (non-padding)", *(f"{tr[k]['tokens_per_s']:,.0f}" for k in sides), "")
    t.add_row("train sentences/s", *(f"{tr[k]['sentences_per_s']:.1f}" for k in sides), "")
    t.add_row("ours' speedup", "", f"{tr['speedup']:.2f}x", f"{tr['speedup_naive']:.2f}x", mark("train_speedup"))
    packed = " (packed)" if tr.get("ours_packed") else ""
    t.add_row("batch padding (padded / real tokens)", f"{tr['ours']['padding_ratio']:.2f}{packed}",
              f"{tr['expert']['padding_ratio']:.2f}", f"{tr['naive']['padding_ratio']:.2f}", "")
    t.add_row("useful GFLOP/s", *(f"{tr[k]['useful_gflops_per_s']:.1f}" for k in sides), "")
    mfu, fp = res["mfu"], res["fma_peak"]
    t.add_row(f"MFU, measured peak ({res['matmul_peak_gflops']:.0f} GFLOP/s)",
              *(f"{mfu[k]['measured_peak']:.1%}" for k in sides), "")
    if fp["gflops"]:
        t.add_row(f"MFU, FMA peak ({fp['cores']} x {fp['ghz']:.2f} GHz x {fp['flop_per_cycle']} = {fp['gflops']:.0f})",
                  *(f"{mfu[k]['fma_peak']:.1%}" for k in sides), mark("mfu_fma"))
    sm = res.get("smart")
    if sm:
        t.add_row("SMART step / plain step (report's)", f"{sm['ratio']:.2f}x ({sm['smart_step_ms']:.0f} ms)", "", "",
                  mark("smart_step_ratio"))
        t.add_row("fast SMART step / plain step", f"{sm['fast_ratio']:.2f}x ({sm['fast_step_ms']:.0f} ms)", "", "",
                  mark("smart_fast_step_ratio"))
        if "bregman_ratio" in sm:  # files from before the λ 0 side lack it
            t.add_row("SMART λ 0 step (Bregman only) / plain step",
                      f"{sm['bregman_ratio']:.2f}x ({sm['bregman_step_ms']:.0f} ms)", "", "", "")
    sc = res["scoring"]
    for k, name in (("sentence", "sentence_p95_ms"), ("pair", "pair_p95_ms")):
        retimed = f" (retimed p95 {sc[k]['p95_ms']:.1f}, {sc[k]['retimed']} calls)" if sc[k].get("retimed") else ""
        t.add_row(f"scoring one {k}: median / raw p95 ms",
                  f"{sc[k]['median_ms']:.1f} / {sc[k]['raw_p95_ms']:.1f}{retimed}", "", "", mark(name))
    ev = res.get("eval")
    if ev:
        t.add_row(f"eval dev sets ({sum(ev['examples'].values())} examples): s (MFU)",
                  f"{ev['seconds']:.1f} ({ev['mfu']:.0%})", "", "", mark("eval_seconds"))
    stages = {"train": tr, "smart": sm or {}, "eval": ev or {}}
    stolen = {k: v["steal_s"] for k, v in stages.items() if v.get("steal_s")}
    if stolen:  # CPU the hypervisor gave to other guests while a stage was timed
        t.add_row("hypervisor steal during timing, s", ", ".join(f"{k} {v:.1f}" for k, v in stolen.items()), "", "", "")
    Console().print(t)
