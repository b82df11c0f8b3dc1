"""The training loop: build the model and data for a TrainConfig, run the epochs, write the run folder.

Each iteration of the schedule's plan is a list of task batches; by default each takes its own
optimizer step in turn (the report's finding), or all losses are summed into one step. Losses reach the
host (``.item()``) only every ``log_every`` steps, dev evaluation runs at each epoch end, and the best
checkpoint by the mean dev metric is kept.
"""

from __future__ import annotations

import logging
import math
import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from core.checkpoint import point_to, prune_checkpoints, save_checkpoint
from core.config import TrainConfig
from core.data import TASKS, TaskData, collate, demo_data_dir, load_task
from core.encoders import default_pooling, load_pretrained, load_tokenizer, resolve_encoder
from core.evaluate import evaluate, headline
from core.multitask import HeadConfig, MultitaskBert, task_loss
from core.runs import MetricsLog, create_run_dir, write_json_atomic, write_status
from core.schedules import MULTITASK, Variant, make_plan, parse_variant, plan_steps

log = logging.getLogger("walkless.train")


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. a NaN loss); the message names the step and task."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def default_lr(variant: Variant) -> float:
    return 1e-3 if variant.base == "pretrain" else 1e-5


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def subsample(data: TaskData, n: int | None, seed: int) -> TaskData:
    """The first ``n`` examples of a fixed shuffle (short runs on big data)."""
    if n is None or n >= len(data):
        return data
    idx = sorted(random.Random(seed).sample(range(len(data)), n))
    pick = lambda xs: [xs[i] for i in idx]  # noqa: E731
    return TaskData(data.task, pick(data.ids), pick(data.tokens_a), data.tokens_b and pick(data.tokens_b),
                    None if data.labels is None else data.labels[idx], data.truncated, pick(data.lengths))


@dataclass
class Setup:
    """Everything a training run is built from."""

    config: TrainConfig
    variant: Variant
    tasks: tuple[str, ...]
    encoder_dir: Path
    data_dir: Path
    tokenizer: object
    train: dict[str, TaskData] = field(default_factory=dict)
    dev: dict[str, TaskData] = field(default_factory=dict)


def prepare(config: TrainConfig) -> Setup:
    """Parse the variant, find encoder and data, tokenize every split once."""
    variant = parse_variant(config.variant)
    if not variant.multitask and config.task not in TASKS:
        raise ValueError(f"--task {config.task!r}: choose from {', '.join(TASKS)}")
    tasks = MULTITASK if variant.multitask else (config.task,)
    encoder_dir = resolve_encoder(config.encoder)
    data_dir = Path(config.data_dir) if config.data_dir else demo_data_dir()
    tok = load_tokenizer(encoder_dir)
    s = Setup(config, variant, tasks, encoder_dir, data_dir, tok)
    for t in tasks:
        s.train[t] = subsample(load_task(data_dir, t, "train", tok, config.max_length), config.max_train, config.seed)
        s.dev[t] = subsample(load_task(data_dir, t, "dev", tok, config.max_length), config.max_dev, config.seed)
    return s


def build_model(s: Setup, device: torch.device) -> MultitaskBert:
    c = s.config
    bert = load_pretrained(s.encoder_dir, hidden_dropout_prob=c.dropout)
    heads = HeadConfig(tasks=s.tasks, pooling=c.pooling or default_pooling(s.encoder_dir), dropout=c.dropout,
                       rlayer=s.variant.rlayer)
    model = MultitaskBert(bert, heads)
    if s.variant.base == "pretrain":
        model.freeze_encoder()
    return model.to(device)


def make_optimizer(model: MultitaskBert, c: TrainConfig, lr: float, device: torch.device) -> torch.optim.AdamW:
    params = [p for p in model.parameters() if p.requires_grad]
    fused = c.fused_adamw and device.type in ("cuda", "cpu")
    return torch.optim.AdamW(params, lr=lr, weight_decay=c.weight_decay, fused=fused)


class Trainer:
    """Runs one training run into its run folder."""

    def __init__(self, setup: Setup, run_dir: Path):
        self.s, self.c, self.run_dir = setup, setup.config, run_dir
        self.device = resolve_device(self.c.device)
        self.model = build_model(setup, self.device)
        self.lr = self.c.lr if self.c.lr is not None else default_lr(setup.variant)
        self.opt = make_optimizer(self.model, self.c, self.lr, self.device)
        self.smart = None
        if setup.variant.smart:
            from core.smart import Smart

            self.smart = Smart(self.model, self.c.smart)
        self.rng = random.Random(self.c.seed)
        self.metrics = MetricsLog(run_dir / "metrics.jsonl")
        self.step = 0
        self.epoch = 0
        self.best = float("-inf")
        self.stop_requested = False
        self.on_progress: Callable[[int, int, int], None] | None = None  # (epoch, iteration, iterations)
        self._pending: dict[str, list[torch.Tensor]] = {}

    # --- one step ---------------------------------------------------------------------------------
    def loss(self, task: str, idx: list[int]) -> tuple[torch.Tensor, int]:
        """Loss of one task batch (with the SMART terms when enabled), and its non-padding tokens."""
        batch = collate(self.s.train[task], idx).to(self.device)
        emb = self.model.embed(batch)
        out = self.model.head(task, emb, batch.attention_mask)
        loss = task_loss(task, out, batch.labels)
        if self.smart is not None:
            loss = loss + self.smart.regularizer(task, batch, emb, out)
        return loss, batch.n_tokens

    def optimizer_step(self) -> None:
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        if self.smart is not None:
            self.smart.update_teacher()

    def iteration(self, steps: list[tuple[str, list[int]]]) -> None:
        if self.c.per_task_step:
            for task, idx in steps:
                loss, _ = self.loss(task, idx)
                loss.backward()
                self.optimizer_step()
                self.record(task, loss)
        else:
            losses = [(task, self.loss(task, idx)[0]) for task, idx in steps]
            torch.stack([loss for _, loss in losses]).sum().backward()
            self.optimizer_step()
            for task, loss in losses:
                self.record(task, loss)

    def record(self, task: str, loss: torch.Tensor) -> None:
        self.step += 1
        self._pending.setdefault(task, []).append(loss.detach())
        if self.step % self.c.log_every == 0:
            self.flush_losses()

    def flush_losses(self) -> None:
        """Move pending losses to the host (the only sync in the loop) and log their means."""
        for task, ls in self._pending.items():
            value = torch.stack(ls).float().mean().item()
            if not math.isfinite(value):
                raise TrainingError(f"loss is {value} at step {self.step} on task {task}; "
                                    f"stopped, the last good checkpoint is kept")
            self.metrics.write("step", step=self.step, epoch=self.epoch, task=task, loss=value)
        self._pending.clear()

    # --- epochs -----------------------------------------------------------------------------------
    def plan(self, epoch: int) -> list[list[tuple[str, list[int]]]]:
        lengths = {t: d.lengths for t, d in self.s.train.items()}
        plan = make_plan(self.s.variant.base, lengths, self.c.batch_size, epoch, self.rng, self.c.bucket,
                         config=self.c)
        return plan[: self.c.max_steps] if self.c.max_steps else plan

    def run_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.model.train()
        plan = self.plan(epoch)
        t0 = time.time()
        total = self.step + plan_steps(plan) * (self.c.epochs - epoch + 1)
        for i, steps in enumerate(plan):
            self.iteration(steps)
            if self.on_progress is not None:
                self.on_progress(epoch, i + 1, len(plan))
            if i % 5 == 0 or i == len(plan) - 1:
                write_status(self.run_dir, epoch=epoch, step=self.step, total_steps=total)
            if self.stop_requested:
                break
        self.flush_losses()
        seconds = time.time() - t0
        dev, reports = evaluate(self.model, self.s.dev, self.c.eval_batch_size, self.device)
        self.metrics.write("epoch", epoch=epoch, step=self.step, seconds=round(seconds, 3), dev=dev)
        for r in reports.values():
            self.metrics.write("report", epoch=epoch, **r)
        log.info("epoch %d: %s (%.1fs)", epoch, "  ".join(f"{k} {v:.4f}" for k, v in dev.items()), seconds)
        self.save(dev)

    def save(self, dev: dict[str, float]) -> None:
        meta = {"variant": self.s.variant.name, "tasks": list(self.s.tasks), "encoder": self.c.encoder,
                "epoch": self.epoch, "step": self.step, "dev": dev}
        ckpt = save_checkpoint(self.run_dir, f"step-{self.step:08d}", self.model, meta, self.s.encoder_dir)
        point_to(self.run_dir, "last", ckpt, epoch=self.epoch, step=self.step)
        score = headline(dev)
        if score > self.best:
            self.best = score
            point_to(self.run_dir, "best", ckpt, epoch=self.epoch, step=self.step, score=score, dev=dev)
        prune_checkpoints(self.run_dir, self.c.keep_last)

    def fit(self) -> None:
        for epoch in range(self.epoch + 1, self.c.epochs + 1):
            self.run_epoch(epoch)
            if self.stop_requested:
                break


def write_run_config(run_dir: Path, s: Setup, lr: float) -> None:
    c = s.config.to_dict()
    c.update(variant=s.variant.name, tasks=list(s.tasks), lr=lr, encoder_dir=str(s.encoder_dir),
             data_dir=str(s.data_dir), data_sizes={t: {"train": len(s.train[t]), "dev": len(s.dev[t])}
                                                   for t in s.tasks},
             torch=torch.__version__, threads=torch.get_num_threads())
    write_json_atomic(run_dir / "config.json", c)


def attach_log(run_dir: Path) -> logging.Handler:
    h = logging.FileHandler(run_dir / "train.log")
    h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(h)
    return h


def train(config: TrainConfig, progress: Callable[[int, int, int], None] | None = None) -> Path:
    """Run a training from scratch; returns the run folder. The status ends finished, stopped or failed.

    ``progress(epoch, iteration, iterations)`` is called after every iteration (the CLI draws a bar).
    """
    seed_everything(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    setup = prepare(config)
    run_dir = create_run_dir(config.runs_dir, config.name, prefix=setup.variant.name.replace("+", "_"))
    handler = attach_log(run_dir)
    trainer = Trainer(setup, run_dir)
    trainer.on_progress = progress
    write_run_config(run_dir, setup, trainer.lr)
    return run(trainer, handler)


def run(trainer: Trainer, handler: logging.Handler | None = None) -> Path:
    """Drive ``trainer.fit`` with status bookkeeping; SIGTERM stops after the current step."""
    run_dir = trainer.run_dir
    write_status(run_dir, state="running", pid=os.getpid(), started=time.time(), epochs=trainer.c.epochs,
                 epoch=trainer.epoch, step=trainer.step, message=None)

    def on_term(signum, frame):
        trainer.stop_requested = True

    old = signal.signal(signal.SIGTERM, on_term) if _main_thread() else None
    try:
        trainer.fit()
    except BaseException as e:
        msg = f"{type(e).__name__}: {e}" if not isinstance(e, KeyboardInterrupt) else "interrupted"
        write_status(run_dir, state="stopped" if isinstance(e, KeyboardInterrupt) else "failed", message=msg)
        log.error("run %s ended: %s", run_dir, msg)
        raise
    finally:
        trainer.metrics.close()
        if old is not None:
            signal.signal(signal.SIGTERM, old)
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            handler.close()
    write_status(run_dir, state="stopped" if trainer.stop_requested else "finished",
                 message="stopped on request" if trainer.stop_requested else None)
    return run_dir


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
