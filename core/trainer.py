"""The training loop: ``Trainer`` runs the epochs of a prepared run (``core.setup``) into its run folder.

Each iteration of the schedule's plan is a list of task batches; by default each takes its own
optimizer step in turn (the report's finding), or all losses are summed into one step. Losses reach the
host (``.item()``) only every ``log_every`` steps, dev evaluation runs at each epoch end, and the best
checkpoint by the mean dev metric is kept.

Reliability: a checkpoint is saved every ``checkpoint_every`` steps and at each epoch end, with the
trainer state (optimizer, SMART teacher, RNG states, the epoch's plan and position), so ``resume``
continues a stopped or killed run exactly where its last checkpoint was: on CPU its losses match an
uninterrupted run step for step. A NaN or infinite loss stops the run naming the step and task, before
anything is saved, so the last checkpoint stays good.

Scale-out: under ``torchrun`` (``core.distributed``) each global batch is sharded across the ranks,
DistributedDataParallel averages the gradients, and rank 0 alone writes metrics, status and checkpoints.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.calibrate import calibrate_para
from core.checkpoint import FORMAT, pack_state, point_to, prune_checkpoints, save_checkpoint
from core.config import TrainConfig
from core.data import Batch, collate
from core.distributed import DistInfo, all_mean, any_rank, device_for, shard
from core.encoders import CheckpointError
from core.evaluate import evaluate, headline
from core.multitask import LossOptions, MultitaskBert, task_loss
from core.runs import MetricsLog, RunFolder, write_status
from core.schedules import Plan, ScheduleOptions, make_plan
from core.setup import Setup, build_model, choice_notes, lr_factor, make_optimizer
from core.smart import Smart, ema_update
from core.surgery import GradSurgery

log = logging.getLogger("walkless.train")
# Step losses go to the run's train.log only (the console shows a progress bar, the app tails the file).
step_log = logging.getLogger("walkless.steps")
step_log.propagate = False
step_log.setLevel(logging.INFO)
Progress = Callable[[int, int, int], None]  # (epoch, iteration, iterations), after every iteration


class TrainingError(RuntimeError):
    """Training cannot go on (e.g. a NaN loss); the message names the step and task."""


def batch_loss(model: MultitaskBert, smart: Smart | None, task: str, batch: Batch,
               label_smoothing: float | LossOptions = 0.0) -> torch.Tensor:
    """Loss of one task batch (``task_loss``: the mean, or as ``LossOptions`` scale it), with the SMART terms when
    ``smart`` is set."""
    if smart is not None:
        smart.capture_rng()  # the Bregman teacher replays this forward's dropout masks
    emb = model.embed(batch)
    if smart is not None:
        smart.capture_rng("encoder")  # with same_masks, the perturbed forwards replay the encoder's masks
    out = model.head(task, emb, batch.attention_mask)
    assert batch.labels is not None, "training batches carry labels"
    loss = task_loss(task, out, batch.labels, label_smoothing)
    if smart is not None:
        loss = loss + smart.regularizer(task, batch, emb, out)
    return loss


def loss_options(c: TrainConfig) -> LossOptions:
    """The loss scale of a (resolved) config: ``--loss-scale``, ``--sts-target`` and ``--label-smoothing``."""
    per_batch = c.batch_size if c.loss_scale == "batch-size" else None
    return LossOptions(c.label_smoothing, per_batch, c.sts_target == "unit")


class StepLoss(nn.Module):
    """The weighted losses of some task batches as one module call, so that DistributedDataParallel can
    wrap it (DDP only synchronises gradients of work done inside its ``forward``)."""

    def __init__(self, model: MultitaskBert, smart: Smart | None, label_smoothing: float | LossOptions = 0.0):
        super().__init__()
        self.model = model
        self.smart = smart  # not a module: the teacher is not trained and not synchronised
        self.label_smoothing = label_smoothing

    def forward(self, items: list[tuple[str, Batch, float]]) -> torch.Tensor:
        """items: (task, batch, weight) -> weighted mean losses (K,)."""
        return torch.stack([batch_loss(self.model, self.smart, task, batch, self.label_smoothing) * w for task, batch, w in items])


def encode_plan(plan: Plan, tasks: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """An epoch plan as four flat int tensors (safetensors holds no lists of lists)."""
    steps = [s for it in plan for s in it]
    return {"iteration_sizes": torch.tensor([len(it) for it in plan], dtype=torch.int64),
            "tasks": torch.tensor([tasks.index(t) for t, _ in steps], dtype=torch.int64),
            "sizes": torch.tensor([len(i) for _, i in steps], dtype=torch.int64),
            "index": torch.tensor([j for _, i in steps for j in i], dtype=torch.int64)}


def decode_plan(enc: dict[str, torch.Tensor], tasks: tuple[str, ...]) -> Plan:
    """``encode_plan``'s tensors -> the plan."""
    index = iter(enc["index"].tolist())
    steps = iter([(tasks[t], list(itertools.islice(index, n)))
                  for t, n in zip(enc["tasks"].tolist(), enc["sizes"].tolist(), strict=True)])
    return [list(itertools.islice(steps, n)) for n in enc["iteration_sizes"].tolist()]


class Trainer:
    """Runs one training run into its run folder (on rank 0; other ranks only compute)."""

    def __init__(self, setup: Setup, run_dir: Path, dist: DistInfo | None = None):
        self.setup, self.config, self.run_dir = setup, setup.config, run_dir
        c = setup.config
        self.dist = dist or DistInfo()
        self.device = device_for(self.dist, c.device)
        if self.dist.enabled and c.loss_scale == "batch-size":  # shard's weights make a mean of each rank's mean
            raise ValueError("--loss-scale batch-size is not supported under torchrun yet (each rank's loss is "
                             "weighted as a mean of its shard); run it on one process")
        self.model = build_model(setup, self.device)
        self.notes = choice_notes(setup, self.model)  # the profile's choices, for the run's log
        self.lr, self.clip, self.total_steps = setup.lr, setup.clip, setup.total_steps  # resolved by core.setup
        self.optimizer = make_optimizer(self.model, c, self.lr, self.device)
        self.params: list[torch.Tensor] = [p for p in self.model.parameters() if p.requires_grad]
        self.param_names = [n for n, p in self.model.named_parameters() if p.requires_grad]
        self.ema = [p.detach().clone() for p in self.params] if c.ema > 0 else None  # starts at θ0
        self.schedule = ScheduleOptions.from_config(c)
        self.smart = Smart(self.model, c.smart) if setup.variant.smart else None
        self.step_loss: nn.Module = StepLoss(self.model, self.smart, loss_options(c))
        self.surgery = None if c.grad_surgery == "none" else GradSurgery(c.grad_surgery, c.gradvac_beta, c.seed)
        if self.surgery is not None and self.dist.enabled:
            raise ValueError(f"--grad-surgery {c.grad_surgery}: not under torchrun (the task gradients are taken "
                             f"apart from DistributedDataParallel's reduction); train on one process")
        if self.dist.enabled:
            # find_unused_parameters: each step trains one task head, the others sit idle
            self.step_loss = nn.parallel.DistributedDataParallel(self.step_loss, find_unused_parameters=True)
        self.rng = random.Random(c.seed)
        # ranks other than 0 write no metrics
        self.metrics = MetricsLog(RunFolder(run_dir).metrics_file if self.dist.is_main else Path(os.devnull))
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
        self.on_progress: Progress | None = None
        # (step, task, loss, SMART's (R_s, Bregman) or None) not yet on the host
        self._pending: list[tuple[int, str, torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]] = []

    @property
    def is_main(self) -> bool:
        return self.dist.is_main

    def status(self, **fields: Any) -> None:
        if self.is_main:
            write_status(self.run_dir, **fields)

    # --- one step ---------------------------------------------------------------------------------
    def losses(self, steps: list[tuple[str, list[int]]]) -> torch.Tensor:
        """Weighted losses (K,) of this rank's shard of each step's batch, in one (DDP) module call."""
        items, data = [], self.setup.train
        for task, idx in steps:
            mine, weight = shard(idx, self.dist)
            items.append((task, collate(data[task], mine, self.model.heads.cross).to(self.device), weight))
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.autocast == "bf16"):
            return self.step_loss(items)

    def optimizer_step(self, task: str | None = None) -> None:
        """One AdamW step on the gradients so far; ``task``: the one task whose loss they are (per-task steps)."""
        if self.clip is not None:
            torch.nn.utils.clip_grad_norm_(self.params, self.clip, foreach=True)
        c = self.config
        factor = lr_factor(self.step, self.total_steps, c.warmup, c.lr_schedule)  # 1.0: constant, no warmup
        factor *= c.sst_lr if task == "sst" else 1.0
        for g in self.optimizer.param_groups:
            g["lr"] = g.get("base_lr", self.lr) * factor
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            ema_update(self.ema, self.params, c.ema)
        if self.smart is not None:
            self.smart.update_teacher()

    def iteration(self, steps: list[tuple[str, list[int]]]) -> None:
        if self.config.per_task_step:
            for task, idx in steps:
                loss = self.losses([(task, idx)])
                loss.sum().backward()
                self.optimizer_step(task)
                self.record(task, loss[0], *self.smart_terms(1))
        else:
            if self.surgery is None:
                losses = self.losses(steps)
                losses.sum().backward()
            else:  # each task's gradient, changed against the others' where they conflict (core.surgery)
                per_batch = [self.losses([s])[0] for s in steps]  # a graph each: a task reaches its own weights
                self.surgery.backward([t for t, _ in steps], per_batch, self.params)
                losses = torch.stack(per_batch)
            self.optimizer_step()
            for (task, _), loss, terms in zip(steps, losses, self.smart_terms(len(steps)), strict=True):
                self.record(task, loss, terms)

    def smart_terms(self, n: int) -> list[tuple[torch.Tensor, torch.Tensor] | None]:
        """SMART's (R_s, Bregman) of the ``n`` batches just trained (None each without SMART)."""
        if self.smart is None:
            return [None] * n
        terms = self.smart.drain_terms()
        assert len(terms) == n, f"SMART recorded {len(terms)} batches' terms for {n} steps"
        return [*terms]

    def record(self, task: str, loss: torch.Tensor, terms: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        self.step += 1
        self._pending.append((self.step, task, loss.detach(), terms))
        if self.step % self.config.log_every == 0:
            self.flush_losses()

    def flush_losses(self) -> None:
        """Move pending losses to the host (the only sync in the loop; one all-reduce under DDP), stop on
        the first non-finite one, and log each task's mean."""
        if not self._pending:
            return
        smart = all(terms is not None for *_, terms in self._pending)
        rows = [torch.stack([x.float(), *terms]) if smart and terms is not None else x.float().reshape(1)
                for _, _, x, terms in self._pending]
        values = all_mean(torch.stack(rows), self.dist).tolist()  # (n, 3) with SMART, else (n, 1)
        for (step, task, _, _), (v, *_) in zip(self._pending, values, strict=True):
            if not math.isfinite(v):
                self._pending.clear()
                raise TrainingError(f"loss is {v} at step {step} on task {task}; training stopped, the last "
                                    f"good checkpoint is kept ({self.last_checkpoint() or 'none saved yet'})")
        per_task: dict[str, list[list[float]]] = {}
        for (_, task, _, _), row in zip(self._pending, values, strict=True):
            per_task.setdefault(task, []).append(row)
        self._pending.clear()
        parts = []
        for task, task_rows in per_task.items():
            loss, *terms = (sum(col) / len(col) for col in zip(*task_rows, strict=True))
            extra = {"smart_rs": terms[0], "bregman": terms[1]} if smart else {}
            self.metrics.write("step", step=self.step, epoch=self.epoch, task=task, loss=loss, **extra)
            parts.append(f"{task} loss {loss:.4f}" + (f" (R_s {terms[0]:.1e}, Bregman {terms[1]:.1e})" if smart else ""))
        step_log.info("step %d: %s", self.step, "  ".join(parts))

    # --- epochs -----------------------------------------------------------------------------------
    def plan(self, epoch: int) -> Plan:
        """Epoch ``epoch``'s plan (drawn from ``self.rng``), cut to ``max_steps`` iterations."""
        lengths = {t: d.lengths for t, d in self.setup.train.items()}
        plan = make_plan(self.setup.variant.base, lengths, epoch, self.rng, self.schedule)
        return plan[: self.config.max_steps or None]

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
                self.status(epoch=epoch, step=self.step, total_steps=self.total_steps, phase="training")
            if any_rank(self.stop_requested, self.dist, self.device):
                self.stop_requested = True
                if i < len(plan) - 1:
                    self.checkpoint(None)  # mid-epoch: --resume carries on from here
                    return
            elif (self.config.checkpoint_every and self.step - self.saved_step >= self.config.checkpoint_every
                  and i < len(plan) - 1):  # the epoch end saves anyway
                self.checkpoint(None)
        self.flush_losses()
        seconds = time.time() - self.epoch_started
        self.epoch_seconds = 0.0
        # the app shows the phase (and times the dev evaluation into its ETA) instead of a bar stuck near its end
        self.status(epoch=epoch, step=self.step, total_steps=self.total_steps, phase="evaluating",
                    evaluating_since=time.time())
        with self.averaged_weights():
            self.calibrate()
            dev, reports = evaluate(self.model, self.setup.dev, self.config.eval_batch_size, self.device)
        self.metrics.write("epoch", epoch=epoch, step=self.step, seconds=round(seconds, 3), dev=dev)
        for r in reports.values():
            self.metrics.write("report", epoch=epoch, step=self.step, **r)
        if self.is_main:
            log.info("epoch %d: %s (%.1fs)", epoch, "  ".join(f"{k} {v:.4f}" for k, v in dev.items()), seconds)
        self.epoch_done, self.epoch_plan = True, []
        self.checkpoint(dev)

    def calibrate(self) -> None:
        """With ``--calibrate-para N``: refit the paraphrase head's eval-mode offset (see ``core.calibrate``)."""
        n, train = self.config.calibrate_para, self.setup.train.get("para")
        if n and train is not None:
            c = calibrate_para(self.model, train, n, self.config.seed, self.config.eval_batch_size, self.device)
            self.metrics.write("calibration", epoch=self.epoch, step=self.step, **asdict(c))

    def fit(self) -> None:
        if not self.epoch_done:
            self.run_epoch(self.epoch)
        while not self.stop_requested and self.epoch < self.config.epochs:
            self.run_epoch(self.epoch + 1)

    # --- checkpoints ------------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """Everything ``resume`` needs besides the weights, as (tensors, JSON tree)."""
        state = {
            "format": FORMAT, "step": self.step, "epoch": self.epoch, "epoch_done": self.epoch_done,
            "next_iteration": self.next_iteration, "best": self.best, "rng": self.rng.getstate(),
            "python_random": random.getstate(), "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "optimizer": self.optimizer.state_dict(),
            "smart": self.smart.state_dict() if self.smart is not None else None,
            "surgery": self.surgery.state_dict() if self.surgery is not None else None,
            "plan": None if self.epoch_done else encode_plan(self.epoch_plan, self.setup.tasks),
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
            self.optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError) as e:
            raise CheckpointError(f"optimizer state does not fit this model ({e})") from e
        if self.smart is not None:
            if state.get("smart") is None:
                raise CheckpointError("the checkpoint has no SMART teacher state but the variant uses SMART")
            self.smart.load_state_dict(state["smart"])
        if self.surgery is not None and state.get("surgery") is not None:
            self.surgery.load_state_dict(state["surgery"])
        if state.get("plan") is not None:
            self.epoch_plan = decode_plan(state["plan"], self.setup.tasks)
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
        last = RunFolder(self.run_dir).pointed("last")
        return None if last is None else str(last)

    def checkpoint(self, dev: dict[str, float] | None) -> None:
        """Save weights + trainer state (rank 0); ``dev`` metrics at epoch ends decide the best one.
        Losses are checked first, so a NaN never reaches a checkpoint."""
        self.flush_losses()
        self.check_finite()
        self.saved_step = self.step
        setup = self.setup
        score = headline(dev, setup.judged_tasks) if dev else None
        is_best = score is not None and score > self.best
        if score is not None and is_best:
            self.best = score
        if not self.is_main:
            return
        tensors, tree = self.state()
        meta = {"variant": setup.variant.name, "tasks": list(setup.tasks), "encoder": self.config.encoder,
                "epoch": self.epoch, "epoch_done": self.epoch_done, "step": self.step, "dev": dev or {}}
        with self.averaged_weights():
            ckpt = save_checkpoint(self.run_dir, RunFolder.step_checkpoint(self.step), self.model, meta,
                                   setup.encoder_dir, extra=tensors, extra_meta=tree)
        point_to(self.run_dir, "last", ckpt, epoch=self.epoch, step=self.step)
        if is_best:
            point_to(self.run_dir, "best", ckpt, epoch=self.epoch, step=self.step, score=score, dev=dev)
        prune_checkpoints(self.run_dir, self.config.keep_last)
