"""Training processes: ``train`` and ``resume`` share one start-up (seeds, threads, data, the run folder and
its lock, the ``Trainer``), then ``run`` supervises the loop (status file, log file, SIGTERM / Ctrl-C, the lock).

Under ``torchrun --nproc_per_node=N`` every rank calls ``train`` or ``resume``; the same code then runs
data-parallel (``core.trainer``), and rank 0 alone creates and writes the run folder.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import torch

from core.checkpoint import load_model_weights, read_trainer_state, remove_partial_saves, verify_checkpoint
from core.config import TrainConfig
from core.distributed import DistInfo, barrier, broadcast_path, device_for, init_distributed, shutdown
from core.encoders import CheckpointError
from core.runs import (
    RunError,
    RunFolder,
    RunLock,
    RunState,
    create_run_dir,
    drop_metrics_after,
    read_json,
    write_json_atomic,
)
from core.setup import prepare, seed_everything, write_run_config
from core.trainer import Progress, Trainer, step_log

log = logging.getLogger("walkless.train")


def train(config: TrainConfig, progress: Progress | None = None) -> Path:
    """Run a training from scratch with ``config`` as checked (``validate``, as the CLI's ``train_config`` does);
    returns the run folder. The status ends finished, stopped or failed.

    ``progress`` is called after every iteration (the CLI draws a bar). Under ``torchrun`` every rank calls
    this; rank 0 creates and writes the run folder.
    """
    trainer, lock = start(config, init_distributed(config.device))
    return run(trainer, lock, progress, started=time.time())


def resume(run_dir: str | Path, epochs: int | None = None, threads: int | None = None,
           progress: Progress | None = None) -> Path:
    """Continue a stopped, failed or killed run from its last checkpoint, in the same run folder.

    The run's ``config.json`` is the configuration; ``epochs`` may extend it. Metrics logged after the
    checkpoint are dropped (they are redone). Under ``torchrun`` every rank calls this.
    """
    folder = RunFolder(run_dir)
    run_dir, raw = folder.path, read_json(folder.config_file)
    if not isinstance(raw, dict):
        raise RunError(f"{run_dir}: no readable config.json; not a run folder")
    config = TrainConfig.from_dict(raw).validate()  # a hand-edited config.json is refused before the lock
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
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    trainer, lock = start(config, dist, run_dir, lock, (ckpt, state, raw))
    old = read_json(folder.status_file, {}) or {}
    ran = max(0.0, (old.get("updated") or 0) - (old.get("started") or 0))  # keep the pace for the ETA
    return run(trainer, lock, progress, started=time.time() - ran, resumed_from=ckpt.name)


def start(config: TrainConfig, dist: DistInfo, run_dir: Path | None = None, lock: RunLock | None = None,
          restore: tuple[Path, dict[str, Any], dict[str, Any]] | None = None) -> tuple[Trainer, RunLock | None]:
    """The start-up of ``train`` and ``resume``: seeds and threads, the data, then on rank 0 a new run folder and
    its lock (no ``run_dir`` given) or, resuming ``run_dir`` from ``restore`` (a checkpoint, its trainer state
    and the run's ``config.json`` as read), the metrics after it dropped; then the Trainer, restored or with the
    new ``config.json`` written.
    Returns the Trainer and the run's lock (rank 0), which is released if anything fails."""
    ckpt, state, raw = restore or (None, {}, {})
    try:
        seed_everything(config.seed)
        if config.threads:
            torch.set_num_threads(config.threads)
        setup = prepare(config)
        if dist.is_main and run_dir is None:  # made once the options and data are known to be good
            run_dir = create_run_dir(config.runs_dir, config.name, prefix=setup.variant.name.replace("+", "_"))
            lock = RunLock(run_dir).acquire()
        elif dist.is_main and ckpt is not None and run_dir is not None:  # before the Trainer opens metrics.jsonl
            dropped = drop_metrics_after(run_dir, int(state["step"]))
            log.info("resuming %s from %s (epoch %d, step %d); %d metric records after it dropped",
                     run_dir, ckpt.name, state["epoch"], state["step"], dropped)
            if config.epochs != raw.get("epochs"):  # extended by --epochs
                write_json_atomic(RunFolder(run_dir).config_file, {**raw, "epochs": config.epochs})
        run_dir = broadcast_path(run_dir, dist, device_for(dist, config.device))
        assert run_dir is not None, "rank 0 makes or resumes a run folder"
        trainer = Trainer(setup, run_dir, dist)
        if ckpt is not None:
            load_model_weights(trainer.model, ckpt)
            trainer.load_state(state)
        elif dist.is_main:
            write_run_config(trainer.run_dir, setup)
        if dist.rank:  # own dropout masks; the weights came from rank 0
            torch.manual_seed(config.seed + dist.rank + trainer.step)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return trainer, lock


def resume_checkpoint(run_dir: Path) -> Path:
    """The checkpoint to resume from: ``last.json``'s, else the newest one that verifies."""
    run = RunFolder(run_dir)
    last, folders = run.pointed("last"), run.checkpoints()[::-1]
    if last is not None:
        folders.insert(0, last)
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


def run(trainer: Trainer, lock: RunLock | None = None, progress: Progress | None = None, **status: Any) -> Path:
    """Drive ``trainer.fit`` with status bookkeeping (``status`` adds fields to the first write), the run's log
    file, and its lock; returns the run folder. SIGTERM or Ctrl-C stops after the current iteration, with a
    checkpoint that ``--resume`` continues from; a second Ctrl-C aborts at once."""
    trainer.on_progress = progress if trainer.is_main else None
    handler = attach_log(trainer.run_dir) if trainer.is_main else None
    if trainer.is_main:
        for note in trainer.notes:
            log.info("%s", note)
    if trainer.is_main and status.get("resumed_from"):  # in train.log too (the app's log tail shows that file)
        log.info("resumed from checkpoint %s (epoch %d, step %d)", status["resumed_from"], trainer.epoch,
                 trainer.step)
    trainer.status(**{"state": RunState.RUNNING, "pid": os.getpid(), "started": time.time(),
                      "epochs": trainer.config.epochs, "epoch": trainer.epoch, "step": trainer.step, "message": None,
                      "world_size": trainer.dist.world, **status})

    def on_term(signum: int, frame: Any) -> None:
        trainer.stop_requested = True

    def on_int(signum: int, frame: Any) -> None:  # Ctrl-C: stop like SIGTERM; a second Ctrl-C aborts at once
        if trainer.stop_requested:
            raise KeyboardInterrupt
        trainer.stop_requested = True
        log.warning("stopping after this iteration, with a checkpoint; Ctrl-C again to abort now")

    old = None
    if threading.current_thread() is threading.main_thread():  # elsewhere signal handlers cannot be set
        old = signal.signal(signal.SIGTERM, on_term), signal.signal(signal.SIGINT, on_int)
    try:
        trainer.fit()
        barrier(trainer.dist)
    except BaseException as e:
        msg = f"{type(e).__name__}: {e}" if not isinstance(e, KeyboardInterrupt) else "interrupted"
        with contextlib.suppress(OSError):  # e.g. the disk is full: the original error is the one to report
            stopped = isinstance(e, KeyboardInterrupt)
            trainer.status(state=RunState.STOPPED if stopped else RunState.FAILED, message=msg)
        if trainer.is_main:
            log.error("run %s ended: %s", trainer.run_dir, msg)
        raise
    finally:
        trainer.metrics.close()
        if old is not None:
            for sig, prev in zip((signal.SIGTERM, signal.SIGINT), old, strict=True):
                signal.signal(sig, prev if prev is not None else signal.SIG_DFL)
        if handler is not None:
            for logger in (logging.getLogger(), step_log):
                logger.removeHandler(handler)
            handler.close()
        if lock is not None:
            lock.release()
    # the step and epoch of the checkpoint a stop saved (status.json is otherwise rewritten every few iterations)
    trainer.status(state=RunState.STOPPED if trainer.stop_requested else RunState.FINISHED, step=trainer.step,
                   epoch=trainer.epoch, phase=None, message="stopped on request; continue with --resume" if trainer.stop_requested else None)
    shutdown(trainer.dist)
    return trainer.run_dir


def attach_log(run_dir: Path) -> logging.Handler:
    """Send the log and the step losses also to ``run_dir/train.log``; returns the handler to remove after."""
    handler = logging.FileHandler(RunFolder(run_dir).log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    for logger in (logging.getLogger(), step_log):
        logger.addHandler(handler)
    return handler
