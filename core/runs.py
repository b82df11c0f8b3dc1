"""Run directories: the one place training writes and the app, ``eval`` and ``compare`` read.

Layout of ``RUNS_DIR/NAME``::

    config.json        the TrainConfig, plus encoder, data sizes (written once, atomically)
    status.json        state (``RunState``: running, finished, failed, stopped), pid, epoch/step progress, times
    metrics.jsonl      one JSON object per line: {"kind": "step"|"epoch"|"report"|"calibration", ...} (a SMART
                       run's step records add its unweighted terms ``smart_rs`` and ``bregman``; with
                       --calibrate-para, each epoch's fitted paraphrase offset comes before its "epoch" record)
    train.log          the human-readable log
    checkpoints/NAME/  model.safetensors + config.json (BERT) + walkless.json (heads, metrics) + tokenizer
                       + trainer_state.* (for --resume) + manifest.json (sizes, SHA-256)
    best.json, last.json   pointers {"path": "checkpoints/NAME", ...} to the best and newest checkpoint
    .lock              held (flock) by the one process writing the run

Every JSON file is written to a temporary file and renamed, so a reader never sees half of one; a
half-written last line of ``metrics.jsonl`` is skipped by ``read_metrics``. Nothing is shared between
run folders, so runs writing to the same runs folder never clobber each other.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
# The names of a run folder's files (the layout above) and of a checkpoint folder's own files: named here only.
CONFIG_FILE, STATUS_FILE, METRICS_FILE, LOG_FILE, LOCK_FILE = "config.json", "status.json", "metrics.jsonl", \
    "train.log", ".lock"
CHECKPOINTS_DIR, STEP_PREFIX = "checkpoints", "step-"
POINTERS = {"best": "best.json", "last": "last.json"}  # which checkpoint -> the file pointing at it
LISTED_FILES = (STATUS_FILE, CONFIG_FILE, METRICS_FILE)  # what a run's line in a list is read from
CKPT_META, CKPT_MANIFEST, CKPT_WEIGHTS, CKPT_CONFIG = "walkless.json", "manifest.json", "model.safetensors", "config.json"


class RunState(str, Enum):
    """A run's state: ``status.json``'s ``state`` (the last four), or ``starting`` while a launched or resumed
    process has not written it yet."""

    STARTING = "starting"
    RUNNING = "running"
    FINISHED = "finished"
    STOPPED = "stopped"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @property
    def active(self) -> bool:
        """A process is (or is about to be) training it."""
        return self in (RunState.STARTING, RunState.RUNNING)

    @property
    def ended(self) -> bool:
        """Stopped or failed: ``--resume`` may continue it."""
        return self in (RunState.STOPPED, RunState.FAILED)


class RunError(ValueError):
    """A run directory that cannot be created or read; the message names it."""


class RunFolder:
    """One run folder: where each of its files is, its checkpoints, and its ``RunInfo`` (the only reader)."""

    def __init__(self, path: str | Path) -> None:
        self.path = p = Path(path)
        self.config_file, self.status_file, self.metrics_file = p / CONFIG_FILE, p / STATUS_FILE, p / METRICS_FILE
        self.log_file, self.lock_file, self.checkpoints_dir = p / LOG_FILE, p / LOCK_FILE, p / CHECKPOINTS_DIR

    def pointer_file(self, which: str) -> Path:
        """``best.json`` or ``last.json``: {"path": "checkpoints/NAME", ...}."""
        return self.path / POINTERS[which]

    def pointer(self, which: str) -> dict | None:
        """The ``which`` ("best", "last") pointer's contents, or None when it is missing or unreadable."""
        p = read_json(self.pointer_file(which))
        return p if isinstance(p, dict) else None

    def pointed(self, which: str) -> Path | None:
        """The checkpoint folder the ``which`` pointer names (None without one)."""
        p = self.pointer(which)
        return self.path / p["path"] if p is not None and isinstance(p.get("path"), str) else None

    @staticmethod
    def step_checkpoint(step: int) -> str:
        """The name of the checkpoint saved after ``step``."""
        return f"{STEP_PREFIX}{step:08d}"

    def checkpoints(self) -> list[Path]:
        """The saved step checkpoints, oldest first (temporary folders of a save under way excluded)."""
        return sorted(p for p in self.checkpoints_dir.glob(f"{STEP_PREFIX}*") if p.is_dir())

    def has_checkpoint(self) -> bool:
        """Whether the run saved a checkpoint to resume from (``last.json`` or a step folder)."""
        return self.pointer_file("last").is_file() or bool(self.checkpoints())

    def is_run(self) -> bool:
        """A folder training has begun to write (a config.json or a status.json)."""
        return self.config_file.exists() or self.status_file.exists()

    def info(self, metrics: bool = True) -> RunInfo:
        """The run as a list shows it (``load_run``); without ``metrics``, metrics.jsonl is not read."""
        return load_run(self.path, metrics)


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to a temporary file in the same folder, fsync it, then rename over ``path``."""
    write_bytes_atomic(Path(path), [json.dumps(obj, indent=2).encode()])


def write_bytes_atomic(path: Path, chunks: list[bytes]) -> None:
    """Write ``chunks`` to a temporary file beside ``path``, fsync it, then rename it over ``path``: a reader
    sees the old file or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 would hide the file from a teammate's app
        with os.fdopen(fd, "wb") as f:
            f.writelines(chunks)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask, read without changing it where Linux shows it (another thread could create a
    file while ``os.umask`` has it set to 0)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return default


def create_run_dir(runs_dir: str | Path, name: str | None, prefix: str = "run") -> Path:
    """Make a new, empty run folder. ``mkdir`` is atomic, so two runs never share a folder:
    a taken generated name gets a suffix, a taken explicit name is an error."""
    runs_dir = Path(runs_dir)
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunError(f"runs folder {runs_dir}: cannot create ({e.strerror or e})") from e
    if not os.access(runs_dir, os.W_OK):
        raise RunError(f"runs folder {runs_dir}: not writable")
    if name:
        path = runs_dir / name
        try:
            path.mkdir()
        except FileExistsError as e:
            raise RunError(f"run {path} already exists (use --resume to continue it, or another --name)") from e
        return path
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        path = runs_dir / (f"{prefix}-{stamp}" + (f"-{i}" if i else ""))
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RunError(f"runs folder {runs_dir}: could not find a free run name")


class MetricsLog:
    """Appends one JSON object per line to ``metrics.jsonl``, flushed so readers see it at once."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._f = open(self.path, "a", buffering=1)

    def write(self, kind: str, **fields: Any) -> None:
        self._f.write(json.dumps({"kind": kind, "time": round(time.time(), 3), **fields}) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def read_metrics(run_dir: str | Path) -> list[dict]:
    """All complete records of ``metrics.jsonl``; a half-written or damaged line is skipped."""
    out = []
    try:
        with open(RunFolder(run_dir).metrics_file) as f:
            for line in f:
                if not line.endswith("\n"):
                    break  # being written right now
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(rec, dict):
                    out.append(rec)
    except OSError:
        pass
    return out


def drop_metrics_after(run_dir: Path, step: int) -> int:
    """Rewrite ``metrics.jsonl`` (atomically) without the records past ``step`` and any damaged line.

    A resumed run redoes the steps after its checkpoint; dropping what the stopped run logged for them
    keeps the curves clean. Returns the number of records dropped.
    """
    path = RunFolder(run_dir).metrics_file
    try:
        lines = path.read_bytes().split(b"\n")
    except FileNotFoundError:
        return 0
    keep, dropped = [], 0
    for line in lines:
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            dropped += bool(line.strip())  # the half-written last line of a killed run
            continue
        if isinstance(rec, dict) and isinstance(rec.get("step"), int) and rec["step"] > step:
            dropped += 1
            continue
        keep.append(line + b"\n")
    write_bytes_atomic(path, keep)
    return dropped


class RunLock:
    """An exclusive lock on a run folder for the life of the training process that writes it.

    ``flock`` on ``run_dir/.lock``: the OS releases it when the process dies, even by SIGKILL, so a
    killed run can be resumed at once while two processes can never write (or resume) the same run.
    """

    def __init__(self, run_dir: Path):
        self.path = RunFolder(run_dir).lock_file
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; unique run folders still keep runs apart
            return self
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise RunError(f"run folder {self.path.parent}: not writable ({e.strerror or e})") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            raise RunError(f"run {self.path.parent} is being written by another process") from e
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


def write_status(run_dir: Path, **fields: Any) -> dict:
    """Merge ``fields`` into ``status.json`` (atomically) and return the new status."""
    path = RunFolder(run_dir).status_file
    status = read_json(path, {}) or {}
    status.update(fields, updated=time.time())
    status.setdefault("host", socket.gethostname())
    write_json_atomic(path, status)
    return status


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class RunInfo:
    """What a list of runs shows, read from one run folder."""

    path: Path
    name: str
    state: RunState
    variant: str = "?"
    tasks: list[str] = field(default_factory=list)
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    total_steps: int = 0
    started: float | None = None
    updated: float | None = None
    message: str | None = None
    dev: dict[str, float] = field(default_factory=dict)
    seconds_per_epoch: float | None = None
    config: dict = field(default_factory=dict)

    @property
    def elapsed(self) -> float | None:
        if self.started is None:
            return None
        end = time.time() if self.state == RunState.RUNNING else (self.updated or time.time())
        return max(0.0, end - self.started)

    @property
    def eta(self) -> float | None:
        """Seconds left, from the pace so far (running runs only)."""
        if self.state != RunState.RUNNING or not self.step or not self.total_steps or self.elapsed is None:
            return None
        return self.elapsed / self.step * max(0, self.total_steps - self.step)


def run_state(status: dict) -> RunState:
    """The status's state, except that a running run whose process is gone on this host has failed."""
    state = status.get("state")
    if state == RunState.RUNNING and status.get("host") == socket.gethostname():
        pid = status.get("pid")
        if isinstance(pid, int) and not _pid_alive(pid):
            return RunState.FAILED
    written = (RunState.RUNNING, RunState.FINISHED, RunState.STOPPED, RunState.FAILED)
    return RunState(state) if state in written else RunState.FAILED


def load_run(run_dir: str | Path, metrics: bool = True) -> RunInfo:
    """One run folder as a list shows it: state, progress and times from status.json, variant and tasks from
    config.json, the last dev metrics and the pace from metrics.jsonl (not read without ``metrics``: the
    monitor reads it incrementally)."""
    folder = RunFolder(run_dir)
    run_dir = folder.path
    status = read_json(folder.status_file, {}) or {}
    config = read_json(folder.config_file, {}) or {}
    epochs = [r for r in read_metrics(run_dir) if r.get("kind") == "epoch"] if metrics else []
    last = epochs[-1] if epochs else {}
    secs = [r["seconds"] for r in epochs if isinstance(r.get("seconds"), (int, float))]
    state = run_state(status)
    message = status.get("message")
    if state == RunState.FAILED and status.get("state") == RunState.RUNNING:
        message = message or "the training process is gone (crashed or killed)"
    return RunInfo(
        path=run_dir, name=run_dir.name, state=state, variant=str(config.get("variant", "?")),
        tasks=list(config.get("tasks", [])), epoch=int(status.get("epoch", 0) or 0),
        epochs=int(status.get("epochs", config.get("epochs", 0)) or 0), step=int(status.get("step", 0) or 0),
        total_steps=int(status.get("total_steps", 0) or 0), started=status.get("started"),
        updated=status.get("updated"), message=message, dev=dict(last.get("dev", {})),
        seconds_per_epoch=sum(secs) / len(secs) if secs else None, config=config,
    )


def list_runs(runs_dir: str | Path) -> list[RunInfo]:
    """Every run folder (one with a config.json or status.json) under ``runs_dir``, newest first."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    runs = [load_run(p) for p in runs_dir.iterdir() if p.is_dir() and RunFolder(p).is_run()]
    return sorted(runs, key=lambda r: r.started or 0, reverse=True)


def best_metrics(run_dir: str | Path) -> dict[str, float]:
    """For each dev metric, the best value over the epochs (max; all our metrics are higher-better)."""
    best: dict[str, float] = {}
    for r in read_metrics(run_dir):
        if r.get("kind") == "epoch":
            for k, v in r.get("dev", {}).items():
                if isinstance(v, (int, float)):
                    best[k] = max(best.get(k, float("-inf")), v)
    return best


def checkpoint_path(run_or_ckpt: str | Path, which: str = "best") -> Path:
    """A run folder (its ``best`` or ``last`` checkpoint) or a checkpoint folder -> the checkpoint folder."""
    p = Path(run_or_ckpt)
    if any((p / f).is_file() for f in (CKPT_META, CKPT_MANIFEST, CKPT_WEIGHTS)):
        return p  # a checkpoint folder (perhaps damaged: loading names what is missing)
    folder = RunFolder(p)
    pointer = read_json(folder.pointer_file(which)) or read_json(folder.pointer_file("last"))
    if not p.is_dir():
        raise RunError(f"{p}: no such run or checkpoint folder")
    if not pointer or not (p / pointer.get("path", "") / CKPT_META).is_file():
        raise RunError(f"{p}: no checkpoint yet (no {which}.json pointing at a saved checkpoint)")
    return p / pointer["path"]


def copy_tokenizer(src: Path, dst: Path) -> None:
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)


# --- incremental readers (for live views: the app polls these every second) --------------------------


def read_metrics_since(run_dir: str | Path, offset: int = 0) -> tuple[list[dict], int]:
    """Complete records appended to ``metrics.jsonl`` after byte ``offset``, and the offset to pass next.

    A half-written last line stays unread until its newline lands; a damaged line is skipped; a file
    shorter than ``offset`` (replaced) is read again from the start.
    """
    path = RunFolder(run_dir).metrics_file
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            if size < offset:
                offset = 0
            f.seek(offset)
            data = f.read()
    except OSError:
        return [], offset
    end = data.rfind(b"\n") + 1  # only whole lines
    out = []
    for line in data[:end].splitlines():
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out, offset + end


def tail_lines(path: str | Path, n: int = 200, max_bytes: int = 256_000, start: int = 0) -> list[str]:
    """The last ``n`` lines of a text file after byte ``start`` (reading at most ``max_bytes`` from its end); []
    if unreadable."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(start, size - max_bytes))
            data = f.read()
    except OSError:
        return []
    lines = data.decode("utf-8", errors="replace").splitlines()
    if size - start > max_bytes and lines:
        lines = lines[1:]  # the first line was cut
    return lines[-n:] if n else []
