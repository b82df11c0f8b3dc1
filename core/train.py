"""The training loop: build the model and data for a TrainConfig, run the epochs, write the run folder.

Each iteration of the schedule's plan is a list of task batches; by default each takes its own
optimizer step in turn (the report's finding), or all losses are summed into one step. Losses reach the
host (``.item()``) only every ``log_every`` steps, dev evaluation runs at each epoch end, and the best
checkpoint by the mean dev metric is kept.

Reliability: a checkpoint is saved every ``checkpoint_every`` steps and at each epoch end, with the
trainer state (optimizer, SMART teacher, RNG states, the epoch's plan and position), so ``resume``
continues a stopped or killed run exactly where its last checkpoint was: on CPU its losses match an
uninterrupted run step for step. A NaN or infinite loss stops the run naming the step and task, before
anything is saved, so the last checkpoint stays good.

Scale-out: under ``torchrun --nproc_per_node=N`` the same code runs data-parallel (``core.distributed``):
each global batch is sharded across the ranks, DistributedDataParallel averages the gradients, and rank 0
alone writes metrics, status and checkpoints.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.checkpoint import (
    FORMAT,
    load_model_weights,
    pack_state,
    point_to,
    prune_checkpoints,
    read_trainer_state,
    remove_partial_saves,
    save_checkpoint,
    verify_checkpoint,
)
from core.config import TrainConfig
from core.data import TASKS, Batch, TaskData, collate, demo_data_dir, load_task
from core.distributed import (
    DistInfo,
    all_mean,
    any_rank,
    barrier,
    broadcast_path,
    device_for,
    init_distributed,
    shard,
    shutdown,
)
from core.encoders import (
    CheckpointError,
    default_pooling,
    load_pretrained,
    load_tokenizer,
    read_bert_config,
    resolve_encoder,
)
from core.evaluate import evaluate, headline
from core.multitask import HeadConfig, MultitaskBert, task_loss
from core.runs import (
    MetricsLog,
    RunError,
    RunLock,
    create_run_dir,
    drop_metrics_after,
    read_json,
    write_json_atomic,
    write_status,
)
from core.schedules import MULTITASK, Variant, describe_schedule, make_plan, parse_variant, plan_steps
from core.smart import ema_update

log = logging.getLogger("walkless.train")
# Step losses go to the run's train.log only (the console shows a progress bar, the app tails the file).
step_log = logging.getLogger("walkless.steps")
step_log.propagate = False
step_log.setLevel(logging.INFO)
Plan = list[list[tuple[str, list[int]]]]


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
    return data.select(sorted(random.Random(seed).sample(range(len(data)), n)))


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

    @property
    def eval_tasks(self) -> tuple[str, ...]:
        """The dev sets evaluated each epoch (and the heads built): the trained tasks, plus with ``eval_all`` on a
        single-task variant the other multitask ones (the report's Table 2 rows, untrained heads at their init)."""
        if not (self.config.eval_all and not self.variant.multitask):
            return self.tasks
        return self.tasks + tuple(t for t in MULTITASK if t not in self.tasks)


def prepare(config: TrainConfig) -> Setup:
    """Parse the variant, find encoder and data, tokenize every split once."""
    config.validate()
    variant = parse_variant(config.variant)
    if not variant.multitask and config.task not in TASKS:
        raise ValueError(f"--task {config.task!r}: choose from {', '.join(TASKS)}")
    tasks = MULTITASK if variant.multitask else (config.task,)
    encoder_dir = resolve_encoder(config.encoder)
    max_len = config.max_length
    positions = read_bert_config(encoder_dir).max_position_embeddings
    if max_len > positions:
        log.warning("--max-length %d: the encoder has %d positions; using %d", max_len, positions, positions)
        max_len = positions
    data_dir = Path(config.data_dir) if config.data_dir else demo_data_dir()
    tok = load_tokenizer(encoder_dir)
    s = Setup(config, variant, tasks, encoder_dir, data_dir, tok)
    for t in tasks:
        s.train[t] = subsample(load_task(data_dir, t, "train", tok, max_len), config.max_train, config.seed)
    for t in s.eval_tasks:
        s.dev[t] = subsample(load_task(data_dir, t, "dev", tok, max_len), config.max_dev, config.seed)
    return s


def build_model(s: Setup, device: torch.device) -> MultitaskBert:
    c = s.config
    # The encoder keeps its checkpoint's dropout unless --encoder-dropout says otherwise; --dropout is the heads'.
    p = c.encoder_dropout
    bert = load_pretrained(s.encoder_dir, **({} if p is None else
                                             {"hidden_dropout_prob": p, "attention_probs_dropout_prob": p}))
    heads = HeadConfig(tasks=s.eval_tasks, pooling=c.pooling or default_pooling(s.encoder_dir),
                       dropout=c.dropout, rlayer=s.variant.rlayer, pair_input=c.pair_input)
    model = MultitaskBert(bert, heads)
    if s.variant.base == "pretrain":
        model.freeze_encoder()
    if c.compile:  # per layer, in place (parameter names unchanged); the packing index stays eager
        for layer in model.bert.encoder.layer:
            layer.compile(dynamic=True)
    return model.to(device)


def planned_steps(s: Setup) -> int:
    """Task steps of the whole run (``Trainer.step`` at the end; for the learning-rate schedule), from the plans'
    shapes."""
    c = s.config
    lengths = {t: d.lengths for t, d in s.train.items()}
    total = 0
    for epoch in range(1, c.epochs + 1):
        plan = make_plan(s.variant.base, lengths, c.batch_size, epoch, random.Random(0), False, config=c)
        plan = plan[: c.max_steps] if c.max_steps else plan
        total += plan_steps(plan)
    return max(1, total)


def lr_factor(step: int, total: int, warmup: float, schedule: str) -> float:
    """Multiplier of the base learning rate after ``step`` of ``total`` task steps: a linear warmup over
    the first ``warmup`` fraction, then constant or a linear decay to 0 at the last step."""
    n_warm = int(warmup * total)
    if step < n_warm:
        return (step + 1) / n_warm
    if schedule == "linear":
        return max(0.0, (total - step) / max(1, total - n_warm))
    if schedule != "constant":
        raise ValueError(f"lr schedule {schedule!r}: choose constant or linear")
    return 1.0


def layer_depth(name: str, n_layers: int) -> int:
    """Depth of a parameter for layer-wise lr decay: embeddings 0, encoder layer i at i + 1, the rest (pooler,
    heads) n_layers + 1."""
    if name.startswith("bert.embeddings."):
        return 0
    if name.startswith("bert.encoder.layer."):
        return int(name.split(".")[3]) + 1
    return n_layers + 1


def make_optimizer(model: MultitaskBert, c: TrainConfig, lr: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; with ``layer_decay`` < 1 one group per depth, the lr times
    ``layer_decay ** (top - depth)`` (the heads get ``lr``, the embeddings the smallest). Each group keeps its
    ``base_lr`` for the schedule."""
    n = model.config.num_hidden_layers
    groups: dict[int, list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            groups.setdefault(layer_depth(name, n) if c.layer_decay != 1.0 else 0, []).append(p)
    top = n + 1 if c.layer_decay != 1.0 else 0
    fused = c.fused_adamw and device.type in ("cuda", "cpu")
    param_groups = [{"params": ps, "lr": lr * c.layer_decay ** (top - d), "base_lr": lr * c.layer_decay ** (top - d)}
                    for d, ps in sorted(groups.items())]
    return torch.optim.AdamW(param_groups, lr=lr, weight_decay=c.weight_decay, fused=fused)


def batch_loss(model: MultitaskBert, smart: Any, task: str, batch: Batch) -> torch.Tensor:
    """Mean loss of one task batch, with the SMART terms when ``smart`` is set."""
    if smart is not None:
        smart.capture_rng()  # the Bregman teacher replays this forward's dropout masks
    emb = model.embed(batch)
    if smart is not None:
        smart.capture_rng("encoder")  # with same_masks, the perturbed forwards replay the encoder's masks
    out = model.head(task, emb, batch.attention_mask)
    loss = task_loss(task, out, batch.labels)
    if smart is not None:
        loss = loss + smart.regularizer(task, batch, emb, out)
    return loss


class StepLoss(nn.Module):
    """The weighted losses of some task batches as one module call, so that DistributedDataParallel can
    wrap it (DDP only synchronises gradients of work done inside its ``forward``)."""

    def __init__(self, model: MultitaskBert, smart: Any):
        super().__init__()
        self.model = model
        self.smart = smart  # not a module: the teacher is not trained and not synchronised

    def forward(self, items: list[tuple[str, Batch, float]]) -> torch.Tensor:
        """items: (task, batch, weight) -> weighted mean losses (K,)."""
        return torch.stack([batch_loss(self.model, self.smart, task, batch) * w for task, batch, w in items])


class _NoLog:
    """The metrics log of ranks other than 0: they write nothing."""

    def write(self, kind: str, **fields: Any) -> None:
        pass

    def close(self) -> None:
        pass


def encode_plan(plan: Plan, tasks: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """An epoch plan as four flat int tensors (safetensors holds no lists of lists)."""
    steps = [s for it in plan for s in it]
    return {"iteration_sizes": torch.tensor([len(it) for it in plan], dtype=torch.int64),
            "tasks": torch.tensor([tasks.index(t) for t, _ in steps], dtype=torch.int64),
            "sizes": torch.tensor([len(i) for _, i in steps], dtype=torch.int64),
            "index": torch.tensor([j for _, i in steps for j in i], dtype=torch.int64)}


def decode_plan(enc: dict[str, torch.Tensor], tasks: tuple[str, ...]) -> Plan:
    index, sizes, names = enc["index"].tolist(), enc["sizes"].tolist(), enc["tasks"].tolist()
    steps, at = [], 0
    for t, n in zip(names, sizes, strict=True):
        steps.append((tasks[t], index[at:at + n]))
        at += n
    plan, at = [], 0
    for n in enc["iteration_sizes"].tolist():
        plan.append(steps[at:at + n])
        at += n
    return plan


class Trainer:
    """Runs one training run into its run folder (on rank 0; other ranks only compute)."""

    def __init__(self, setup: Setup, run_dir: Path, dist: DistInfo | None = None):
        self.s, self.c, self.run_dir = setup, setup.config, run_dir
        self.dist = dist or DistInfo()
        self.device = device_for(self.dist, self.c.device)
        self.model = build_model(setup, self.device)
        self.lr = self.c.lr if self.c.lr is not None else default_lr(setup.variant)
        self.opt = make_optimizer(self.model, self.c, self.lr, self.device)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.param_names = [n for n, p in self.model.named_parameters() if p.requires_grad]
        self.ema = [p.detach().clone() for p in self.params] if self.c.ema > 0 else None  # starts at θ0
        self.clip = self.c.grad_clip_norm(setup.variant.smart)
        self.total_steps = planned_steps(setup)
        self.smart = None
        if setup.variant.smart:
            from core.smart import Smart

            self.smart = Smart(self.model, self.c.smart)
        self.step_loss: nn.Module = StepLoss(self.model, self.smart)
        if self.dist.enabled:
            # find_unused_parameters: each step trains one task head, the others sit idle
            self.step_loss = nn.parallel.DistributedDataParallel(self.step_loss, find_unused_parameters=True)
        self.rng = random.Random(self.c.seed)
        self.metrics = MetricsLog(run_dir / "metrics.jsonl") if self.dist.is_main else _NoLog()
        self.step = 0
        self.epoch = 0  # the epoch running, or the last one finished
        self.epoch_done = True  # False while self.epoch is under way
        self.next_iteration = 0  # position in self.epoch_plan
        self.epoch_plan: Plan = []
        self.epoch_seconds = 0.0  # training seconds of the unfinished epoch before a resume
        self.epoch_started = time.time()
        self.saved_step = 0
        self.best = float("-inf")
        self.stop_requested = False
        self.on_progress: Callable[[int, int, int], None] | None = None  # (epoch, iteration, iterations)
        self._pending: list[tuple[int, str, torch.Tensor]] = []  # (step, task, loss) not yet on the host

    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    def status(self, **fields: Any) -> None:
        if self.is_main:
            write_status(self.run_dir, **fields)

    # --- one step ---------------------------------------------------------------------------------
    def losses(self, steps: list[tuple[str, list[int]]]) -> torch.Tensor:
        """Weighted losses (K,) of this rank's shard of each step's batch, in one (DDP) module call."""
        items = []
        for task, idx in steps:
            mine, weight = shard(idx, self.dist)
            items.append((task, collate(self.s.train[task], mine, self.model.heads.cross).to(self.device), weight))
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.c.autocast == "bf16"):
            return self.step_loss(items)

    def optimizer_step(self) -> None:
        if self.clip is not None:
            torch.nn.utils.clip_grad_norm_(self.params, self.clip, foreach=True)
        if self.c.lr_schedule != "constant" or self.c.warmup > 0:
            for g in self.opt.param_groups:
                g["lr"] = g.get("base_lr", self.lr) * lr_factor(self.step, self.total_steps, self.c.warmup, self.c.lr_schedule)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        if self.ema is not None:
            ema_update(self.ema, self.params, self.c.ema)
        if self.smart is not None:
            self.smart.update_teacher()

    def iteration(self, steps: list[tuple[str, list[int]]]) -> None:
        if self.c.per_task_step:
            for task, idx in steps:
                loss = self.losses([(task, idx)])
                loss.sum().backward()
                self.optimizer_step()
                self.record(task, loss[0])
        else:
            losses = self.losses(steps)
            losses.sum().backward()
            self.optimizer_step()
            for (task, _), loss in zip(steps, losses, strict=True):
                self.record(task, loss)

    def record(self, task: str, loss: torch.Tensor) -> None:
        self.step += 1
        self._pending.append((self.step, task, loss.detach()))
        if self.step % self.c.log_every == 0:
            self.flush_losses()

    def flush_losses(self) -> None:
        """Move pending losses to the host (the only sync in the loop; one all-reduce under DDP), stop on
        the first non-finite one, and log each task's mean."""
        if not self._pending:
            return
        values = all_mean(torch.stack([x for _, _, x in self._pending]).float(), self.dist).tolist()
        for (step, task, _), v in zip(self._pending, values, strict=True):
            if not math.isfinite(v):
                self._pending.clear()
                raise TrainingError(f"loss is {v} at step {step} on task {task}; training stopped, the last "
                                    f"good checkpoint is kept ({self.last_checkpoint() or 'none saved yet'})")
        per_task: dict[str, list[float]] = {}
        for (_, task, _), v in zip(self._pending, values, strict=True):
            per_task.setdefault(task, []).append(v)
        means = {task: sum(vs) / len(vs) for task, vs in per_task.items()}
        for task, loss in means.items():
            self.metrics.write("step", step=self.step, epoch=self.epoch, task=task, loss=loss)
        step_log.info("step %d: %s", self.step, "  ".join(f"{t} loss {loss:.4f}" for t, loss in means.items()))
        self._pending.clear()

    # --- epochs -----------------------------------------------------------------------------------
    def plan(self, epoch: int) -> Plan:
        lengths = {t: d.lengths for t, d in self.s.train.items()}
        plan = make_plan(self.s.variant.base, lengths, self.c.batch_size, epoch, self.rng, self.c.bucket,
                         config=self.c)
        return plan[: self.c.max_steps] if self.c.max_steps else plan

    def run_epoch(self, epoch: int) -> None:
        """Run ``epoch`` from ``self.next_iteration`` (0, or where a resumed checkpoint stopped)."""
        if self.epoch_done:  # a fresh epoch; a resumed one keeps the plan from its checkpoint
            self.epoch, self.epoch_done, self.next_iteration = epoch, False, 0
            self.epoch_plan = self.plan(epoch)
        self.model.train()
        plan, start = self.epoch_plan, self.next_iteration
        self.epoch_started = time.time() - self.epoch_seconds  # a resumed epoch keeps its time before the stop
        for i in range(start, len(plan)):
            self.iteration(plan[i])
            self.next_iteration = i + 1
            if self.on_progress is not None:
                self.on_progress(epoch, i + 1, len(plan))
            if i % 5 == 0 or i == len(plan) - 1:
                self.status(epoch=epoch, step=self.step, total_steps=self.total_steps)
            if any_rank(self.stop_requested, self.dist, self.device):
                self.stop_requested = True
                if i < len(plan) - 1:
                    self.checkpoint(None)  # mid-epoch: --resume carries on from here
                    return
            elif (self.c.checkpoint_every and self.step - self.saved_step >= self.c.checkpoint_every
                  and i < len(plan) - 1):  # the epoch end saves anyway
                self.checkpoint(None)
        self.flush_losses()
        seconds = time.time() - self.epoch_started
        self.epoch_seconds = 0.0
        with self.averaged_weights():
            dev, reports = evaluate(self.model, self.s.dev, self.c.eval_batch_size, self.device)
        self.metrics.write("epoch", epoch=epoch, step=self.step, seconds=round(seconds, 3), dev=dev)
        for r in reports.values():
            self.metrics.write("report", epoch=epoch, step=self.step, **r)
        if self.is_main:
            log.info("epoch %d: %s (%.1fs)", epoch, "  ".join(f"{k} {v:.4f}" for k, v in dev.items()), seconds)
        self.epoch_done, self.epoch_plan = True, []
        self.checkpoint(dev)

    def fit(self) -> None:
        if not self.epoch_done:
            self.run_epoch(self.epoch)
        while not self.stop_requested and self.epoch < self.c.epochs:
            self.run_epoch(self.epoch + 1)

    # --- checkpoints ------------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """Everything ``resume`` needs besides the weights, as (tensors, JSON tree)."""
        state = {
            "format": FORMAT, "step": self.step, "epoch": self.epoch, "epoch_done": self.epoch_done,
            "next_iteration": self.next_iteration, "best": self.best, "rng": self.rng.getstate(),
            "python_random": random.getstate(), "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "optimizer": self.opt.state_dict(),
            "smart": self.smart.state_dict() if self.smart is not None else None,
            "plan": None if self.epoch_done else encode_plan(self.epoch_plan, self.s.tasks),
            "epoch_seconds": 0.0 if self.epoch_done else time.time() - self.epoch_started,
            # with --ema the checkpoint's weights are the average: the trained ones travel here
            "raw_weights": None if self.ema is None else dict(zip(self.param_names,
                                                                  [p.detach().clone() for p in self.params],
                                                                  strict=True)),
        }
        tensors: dict[str, torch.Tensor] = {}
        return tensors, pack_state(state, "state", tensors)

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what ``state`` saved (the model weights are loaded separately)."""
        self.step = self.saved_step = int(state["step"])
        self.epoch, self.epoch_done = int(state["epoch"]), bool(state["epoch_done"])
        self.next_iteration, self.best = int(state["next_iteration"]), float(state["best"])
        self.epoch_seconds = float(state.get("epoch_seconds") or 0.0)
        if self.ema is not None:
            raw = state.get("raw_weights")
            if raw is None:
                raise CheckpointError("the checkpoint has no trained weights beside its average but the run uses --ema")
            with torch.no_grad():  # the model holds the saved average; put the trained weights back
                for n, p, e in zip(self.param_names, self.params, self.ema, strict=True):
                    e.copy_(p)
                    p.copy_(raw[n])
        self.rng.setstate(state["rng"])
        random.setstate(state["python_random"])
        try:
            self.opt.load_state_dict(state["optimizer"])
        except (ValueError, KeyError) as e:
            raise CheckpointError(f"optimizer state does not fit this model ({e})") from e
        if self.smart is not None:
            if state.get("smart") is None:
                raise CheckpointError("the checkpoint has no SMART teacher state but the variant uses SMART")
            self.smart.load_state_dict(state["smart"])
        if state.get("plan") is not None:
            self.epoch_plan = decode_plan(state["plan"], self.s.tasks)
        torch.set_rng_state(state["torch_rng"])
        cuda = state.get("cuda_rng")
        if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)

    @contextlib.contextmanager
    def averaged_weights(self) -> Iterator[None]:
        """With ``--ema``, the model holds the averaged weights inside the block (evaluation, saving)."""
        if self.ema is None:
            yield
            return
        with torch.no_grad():
            raw = [p.detach().clone() for p in self.params]
            torch._foreach_copy_(self.params, self.ema)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(self.params, raw)

    def check_finite(self) -> None:
        finite = torch.stack([torch.isfinite(p).all() for p in self.model.parameters()]).all()
        if not bool(finite):
            raise TrainingError(f"weights became NaN or infinite by step {self.step} (epoch {self.epoch}); "
                                f"training stopped, the last good checkpoint is kept "
                                f"({self.last_checkpoint() or 'none saved yet'})")

    def last_checkpoint(self) -> str | None:
        last = read_json(self.run_dir / "last.json") if self.run_dir is not None else None
        return str(self.run_dir / last["path"]) if isinstance(last, dict) and "path" in last else None

    def checkpoint(self, dev: dict[str, float] | None) -> None:
        """Save weights + trainer state (rank 0); ``dev`` metrics at epoch ends decide the best one.
        Losses are checked first, so a NaN never reaches a checkpoint."""
        self.flush_losses()
        self.check_finite()
        self.saved_step = self.step
        score = headline(dev, self.s.tasks) if dev else None
        is_best = score is not None and score > self.best
        if is_best:
            self.best = score
        if not self.is_main:
            return
        tensors, tree = self.state()
        meta = {"variant": self.s.variant.name, "tasks": list(self.s.tasks), "encoder": self.c.encoder,
                "epoch": self.epoch, "epoch_done": self.epoch_done, "step": self.step, "dev": dev or {}}
        with self.averaged_weights():
            ckpt = save_checkpoint(self.run_dir, f"step-{self.step:08d}", self.model, meta, self.s.encoder_dir,
                                   extra=tensors, extra_meta=tree)
        point_to(self.run_dir, "last", ckpt, epoch=self.epoch, step=self.step)
        if is_best:
            point_to(self.run_dir, "best", ckpt, epoch=self.epoch, step=self.step, score=score, dev=dev)
        prune_checkpoints(self.run_dir, self.c.keep_last)


def write_run_config(run_dir: Path, s: Setup, lr: float) -> None:
    c = s.config.to_dict()
    c.update(variant=s.variant.name, tasks=list(s.tasks), lr=lr, encoder_dir=str(s.encoder_dir),
             data_dir=str(s.data_dir), data_sizes={t: {"train": len(s.train[t]), "dev": len(s.dev[t])}
                                                   for t in s.tasks},
             torch=torch.__version__, threads=torch.get_num_threads(),
             schedule_plan=describe_schedule(s.variant.base, {t: len(s.train[t]) for t in s.tasks},
                                             s.config.batch_size, s.config))
    write_json_atomic(run_dir / "config.json", c)


def attach_log(run_dir: Path) -> logging.Handler:
    h = logging.FileHandler(run_dir / "train.log")
    h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(h)
    step_log.addHandler(h)
    return h


def train(config: TrainConfig, progress: Callable[[int, int, int], None] | None = None) -> Path:
    """Run a training from scratch; returns the run folder. The status ends finished, stopped or failed.

    ``progress(epoch, iteration, iterations)`` is called after every iteration (the CLI draws a bar).
    Under ``torchrun`` every rank calls this; rank 0 creates and writes the run folder.
    """
    dist = init_distributed(config.device)
    seed_everything(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    setup = prepare(config)
    run_dir = lock = None
    if dist.is_main:
        run_dir = create_run_dir(config.runs_dir, config.name, prefix=setup.variant.name.replace("+", "_"))
        lock = RunLock(run_dir).acquire()
    try:
        run_dir = broadcast_path(run_dir, dist, device_for(dist, config.device))
        trainer = Trainer(setup, run_dir, dist)
        if dist.rank:
            torch.manual_seed(config.seed + dist.rank)  # own dropout masks; the weights came from rank 0
        if dist.is_main:
            write_run_config(run_dir, setup, trainer.lr)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    trainer.on_progress = progress if dist.is_main else None
    return run(trainer, lock, started=time.time())


def resume_checkpoint(run_dir: Path) -> Path:
    """The checkpoint to resume from: ``last.json``'s, else the newest one that verifies."""
    last = read_json(run_dir / "last.json")
    folders = sorted((p for p in (run_dir / "checkpoints").glob("step-*") if p.is_dir()), reverse=True)
    if isinstance(last, dict) and isinstance(last.get("path"), str):
        folders.insert(0, run_dir / last["path"])
    problems = []
    for folder in folders:
        try:
            verify_checkpoint(folder)
            read_trainer_state(folder)
            return folder
        except CheckpointError as e:
            problems.append(str(e))
            log.warning("cannot resume from %s: %s", folder, e)
    if problems:
        raise CheckpointError(f"{run_dir}: no usable checkpoint to resume from ({problems[0]})")
    raise RunError(f"{run_dir}: no checkpoint yet, nothing to resume (start the run again)")


def resume(run_dir: str | Path, epochs: int | None = None, threads: int | None = None,
           progress: Callable[[int, int, int], None] | None = None) -> Path:
    """Continue a stopped, failed or killed run from its last checkpoint, in the same run folder.

    The run's ``config.json`` is the configuration; ``epochs`` may extend it. Metrics logged after the
    checkpoint are dropped (they are redone). Under ``torchrun`` every rank calls this.
    """
    run_dir = Path(run_dir)
    raw = read_json(run_dir / "config.json")
    if not isinstance(raw, dict):
        raise RunError(f"{run_dir}: no readable config.json; not a run folder")
    config = TrainConfig.from_dict(raw)
    config.threads = threads or config.threads
    dist = init_distributed(config.device)
    lock = RunLock(run_dir).acquire() if dist.is_main else None  # refuses a run another process writes
    try:
        if dist.is_main:
            remove_partial_saves(run_dir)
        ckpt = resume_checkpoint(run_dir)
        state = read_trainer_state(ckpt)
        if epochs is not None:
            if epochs < state["epoch"]:  # equal: finish the epoch under way (or nothing left to do)
                raise ValueError(f"--epochs {epochs}: the run is already in epoch {state['epoch']}")
            config.epochs = epochs
        seed_everything(config.seed)
        if config.threads:
            torch.set_num_threads(config.threads)
        setup = prepare(config)
        if dist.is_main:  # before the Trainer opens metrics.jsonl for appending
            dropped = drop_metrics_after(run_dir, int(state["step"]))
            log.info("resuming %s from %s (epoch %d, step %d); %d metric records after it dropped",
                     run_dir, ckpt.name, state["epoch"], state["step"], dropped)
            if config.epochs != raw.get("epochs"):
                write_json_atomic(run_dir / "config.json", {**raw, "epochs": config.epochs})
        trainer = Trainer(setup, run_dir, dist)
        load_model_weights(trainer.model, ckpt)
        trainer.load_state(state)
        if dist.rank:
            torch.manual_seed(config.seed + dist.rank + trainer.step)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    old = read_json(run_dir / "status.json", {}) or {}
    ran = max(0.0, (old.get("updated") or 0) - (old.get("started") or 0))  # keep the pace for the ETA
    trainer.on_progress = progress if dist.is_main else None
    return run(trainer, lock, started=time.time() - ran, resumed_from=ckpt.name)


def run(trainer: Trainer, lock: RunLock | None = None, **status: Any) -> Path:
    """Drive ``trainer.fit`` with status bookkeeping (``status`` adds fields to the first write), the
    run's log file, and its lock. SIGTERM or Ctrl-C stops after the current iteration, with a checkpoint
    that ``--resume`` continues from; a second Ctrl-C aborts at once."""
    run_dir = trainer.run_dir
    handler = attach_log(run_dir) if trainer.is_main else None
    trainer.status(**{"state": "running", "pid": os.getpid(), "started": time.time(), "epochs": trainer.c.epochs,
                      "epoch": trainer.epoch, "step": trainer.step, "message": None,
                      "world_size": trainer.dist.world, **status})

    def on_term(signum, frame):
        trainer.stop_requested = True

    def on_int(signum, frame):  # Ctrl-C: stop like SIGTERM; a second Ctrl-C aborts at once
        if trainer.stop_requested:
            raise KeyboardInterrupt
        trainer.stop_requested = True
        log.warning("stopping after this iteration, with a checkpoint; Ctrl-C again to abort now")

    old = None
    if _main_thread():
        old = signal.signal(signal.SIGTERM, on_term), signal.signal(signal.SIGINT, on_int)
    try:
        trainer.fit()
        barrier(trainer.dist)
    except BaseException as e:
        msg = f"{type(e).__name__}: {e}" if not isinstance(e, KeyboardInterrupt) else "interrupted"
        try:
            trainer.status(state="stopped" if isinstance(e, KeyboardInterrupt) else "failed", message=msg)
        except OSError:  # e.g. the disk is full: the original error is the one to report
            pass
        if trainer.is_main:
            log.error("run %s ended: %s", run_dir, msg)
        raise
    finally:
        trainer.metrics.close()
        if old is not None:
            for sig, prev in zip((signal.SIGTERM, signal.SIGINT), old, strict=True):
                signal.signal(sig, prev if prev is not None else signal.SIG_DFL)
        if handler is not None:
            logging.getLogger().removeHandler(handler)
            step_log.removeHandler(handler)
            handler.close()
        if lock is not None:
            lock.release()
    trainer.status(state="stopped" if trainer.stop_requested else "finished",
                   message="stopped on request; continue with --resume" if trainer.stop_requested else None)
    shutdown(trainer.dist)
    return run_dir


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
