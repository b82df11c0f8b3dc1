"""Run directories: the one place training writes and the app, ``eval`` and ``compare`` read.

Layout of ``RUNS_DIR/NAME``::

    config.json        the TrainConfig, plus encoder, data sizes (written once, atomically)
    status.json        state (``RunState``: running, finished, failed, stopped), pid, epoch/step progress, phase
                       (training or evaluating), times
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
    DAMAGED = "damaged"  # never written: config.json or status.json cannot be read as a run's (``RunInfo.reason``)

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
class Pace:
    """How fast a run goes, from the times of its logged records (``pace``): a smoothed steps-per-second rate,
    the last logged step and its time, and the seconds of a dev evaluation (from an epoch's last logged step to
    its ``epoch`` record)."""

    rate: float | None = None
    step: int = 0
    time: float | None = None
    eval_seconds: float | None = None
    evals_done: int = 0

    def eta(self, total_steps: int, epochs: int, now: float, evaluating_since: float | None = None) -> float | None:
        """Seconds left: the steps left at the smoothed rate, less the time since the last logged step, plus the
        dev evaluations left (the one under way counted from ``evaluating_since``). None before a rate exists."""
        if not self.rate or self.time is None or not total_steps:
            return None
        steps_left = max(0, total_steps - self.step) / self.rate
        evals_left = max(0, epochs - self.evals_done)
        evals = (self.eval_seconds or 0.0) * evals_left
        if evaluating_since is not None:  # the time since the last step went into this evaluation
            under_way = min(now - evaluating_since, self.eval_seconds or 0.0)
            return max(0.0, steps_left + evals - under_way)
        return max(0.0, steps_left - (now - self.time)) + evals


def pace(records: list[dict], smoothing: float = 0.7) -> Pace:
    """A run's ``Pace`` from its metrics records in order. The rate is an EMA (weight ``smoothing`` on the past)
    of each interval's steps per second between logged steps (records written together count once, at their
    last step); an interval that spans a dev evaluation, a stop or a resume is left out."""
    out, evals = Pace(), []
    prev: tuple[int, float] | None = None  # (step, time) of the last logged step (or epoch end)
    for r in records:
        t, step, kind = r.get("time"), r.get("step"), r.get("kind")
        if not isinstance(t, (int, float)) or not isinstance(step, int) or isinstance(step, bool):
            continue
        if kind == "epoch":
            if prev is not None and t >= prev[1]:
                evals.append(t - prev[1])
            out.evals_done += 1
            prev = (step, t)  # the next interval starts after the evaluation
        elif kind == "step":
            if prev is not None and t > prev[1] and step > prev[0]:
                rate = (step - prev[0]) / (t - prev[1])
                if out.rate is None or rate > out.rate / 20:  # far slower: a pause (stopped, then resumed)
                    out.rate = rate if out.rate is None else smoothing * out.rate + (1 - smoothing) * rate
            if prev is None or t > prev[1] or step > prev[0]:
                prev = (step, t) if prev is None or t > prev[1] else (step, prev[1])
            out.step, out.time = step, t
    out.eval_seconds = sum(evals) / len(evals) if evals else None
    return out


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
    reason: str | None = None  # why a ``damaged`` run's files cannot be read (names the file)
    phase: str | None = None  # "training" or "evaluating" (the dev evaluation after an epoch), while running
    evaluating_since: float | None = None  # when the dev evaluation under way began
    pace: Pace | None = None  # from the logged steps' times (``pace``); None when metrics were not read
    history: list[float] = field(default_factory=list)  # per epoch: the mean of its numeric dev metrics' values

    @property
    def elapsed(self) -> float | None:
        if self.started is None:
            return None
        end = time.time() if self.state == RunState.RUNNING else (self.updated or time.time())
        return max(0.0, end - self.started)

    @property
    def eta(self) -> float | None:
        """Seconds left (running runs only), from ``pace``: the logged steps' smoothed rate and the dev
        evaluations' time; None until two steps were logged."""
        if self.state != RunState.RUNNING or self.pace is None:
            return None
        since = self.evaluating_since if self.phase == "evaluating" else None
        return self.pace.eta(self.total_steps, self.epochs, time.time(), since)


def run_state(status: dict) -> RunState:
    """The status's state, except that a running run whose process is gone on this host has failed."""
    state = status.get("state")
    if state == RunState.RUNNING and status.get("host") == socket.gethostname():
        pid = status.get("pid")
        if isinstance(pid, int) and not _pid_alive(pid):
            return RunState.FAILED
    written = (RunState.RUNNING, RunState.FINISHED, RunState.STOPPED, RunState.FAILED)
    return RunState(state) if state in written else RunState.FAILED


def read_object(path: Path) -> tuple[dict, str | None]:
    """A JSON object file -> (its dict, None); ({}, None) when it does not exist; ({}, why) when it exists but
    is not a readable JSON object (the reason names the file)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}, None
    except (OSError, UnicodeDecodeError) as e:
        return {}, f"{path.name}: unreadable ({getattr(e, 'strerror', None) or e})"
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        return {}, f"{path.name}: not JSON (line {e.lineno}: {e.msg})"
    if not isinstance(obj, dict):
        return {}, f"{path.name}: {type(obj).__name__} where an object of settings belongs"
    return obj, None


# the fields a run listing reads, with the types it reads them as (hand-edited or foreign files get them wrong)
SHAPES: dict[str, dict[str, type | tuple[type, ...]]] = {
    CONFIG_FILE: {"variant": str, "tasks": list, "epochs": int},
    STATUS_FILE: {"epoch": int, "epochs": int, "step": int, "total_steps": int, "started": (int, float),
                  "updated": (int, float), "message": str},
}


def shape_problems(name: str, obj: dict) -> list[str]:
    """What in ``obj`` (the contents of run file ``name``) has the wrong type, as 'FILE: KEY is a T'."""
    out = []
    for key, kind in SHAPES[name].items():
        value = obj.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            out.append(f"{name}: {key} is a {type(value).__name__}")
    return out


def dev_history(epochs: list[dict]) -> list[float]:
    """Each ``epoch`` record's mean over its numeric dev values (a run's trend, e.g. for a sparkline)."""
    out = []
    for r in epochs:
        dev = r.get("dev")
        if not isinstance(dev, dict):
            continue
        values = [v for v in dev.values() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if values:
            out.append(sum(values) / len(values))
    return out


def load_run(run_dir: str | Path, metrics: bool = True) -> RunInfo:
    """One run folder as a list shows it: state, progress and times from status.json, variant and tasks from
    config.json, the last dev metrics, their trend and the pace from metrics.jsonl (not read without
    ``metrics``: the monitor reads it incrementally). State ``damaged`` (with ``reason``) when config.json or
    status.json is not JSON, not an object, or holds a listed field of the wrong type."""
    folder = RunFolder(run_dir)
    run_dir = folder.path
    status, status_problem = read_object(folder.status_file)
    config, config_problem = read_object(folder.config_file)
    problems = [p for p in (config_problem, status_problem) if p]
    problems += shape_problems(CONFIG_FILE, config) + shape_problems(STATUS_FILE, status)
    if problems:
        return RunInfo(path=run_dir, name=run_dir.name, state=RunState.DAMAGED, reason="; ".join(problems),
                       variant=str(config.get("variant", "?")), config=config if not config_problem else {})
    records = read_metrics(run_dir) if metrics else []
    epochs = [r for r in records if r.get("kind") == "epoch"]
    last = epochs[-1] if epochs else {}
    secs = [r["seconds"] for r in epochs if isinstance(r.get("seconds"), (int, float))]
    state = run_state(status)
    message = status.get("message")
    if state == RunState.FAILED and status.get("state") == RunState.RUNNING:
        message = message or "the training process is gone (crashed or killed)"
    dev = last.get("dev")
    dev = dev if isinstance(dev, dict) else {}
    return RunInfo(
        path=run_dir, name=run_dir.name, state=state, variant=str(config.get("variant", "?")),
        tasks=[str(t) for t in config.get("tasks", [])], epoch=int(status.get("epoch", 0) or 0),
        epochs=int(status.get("epochs", config.get("epochs", 0)) or 0), step=int(status.get("step", 0) or 0),
        total_steps=int(status.get("total_steps", 0) or 0), started=status.get("started"),
        updated=status.get("updated"), message=message,
        dev={k: v for k, v in dev.items() if isinstance(v, (int, float))},
        seconds_per_epoch=sum(secs) / len(secs) if secs else None, config=config,
        phase=status.get("phase") if state == RunState.RUNNING else None, pace=pace(records) if metrics else None,
        history=dev_history(epochs),
        evaluating_since=status.get("evaluating_since") if isinstance(status.get("evaluating_since"), float) else None,
    )


def list_runs(runs_dir: str | Path) -> list[RunInfo]:
    """Every run folder (one with a config.json or status.json) under ``runs_dir``, newest first."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    runs = [load_run(p) for p in runs_dir.iterdir() if p.is_dir() and RunFolder(p).is_run()]
    return sorted(runs, key=lambda r: r.started or 0, reverse=True)


ARCHIVE = ".archive"  # RUNS_DIR/.archive/NAME: runs put aside (listings skip folders starting with a dot)


def archive_run(run_dir: str | Path) -> Path:
    """Move a run folder into ``RUNS_DIR/.archive/`` (a rename: nothing is deleted; a taken name gets a suffix);
    returns its new folder. A run that a process is writing (its lock held) is refused."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"{run_dir}: no such run folder")
    lock = RunLock(run_dir)
    if (run_dir / LOCK_FILE).exists():
        lock.acquire()  # raises while a training process holds it
        lock.release()
    folder = run_dir.parent / ARCHIVE
    folder.mkdir(exist_ok=True)
    dest, i = folder / run_dir.name, 1
    while dest.exists():
        dest, i = folder / f"{run_dir.name}-{i}", i + 1
    os.rename(run_dir, dest)
    return dest


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
    if p.is_file():
        raise RunError(f"{p}: a file, not a run or checkpoint folder (give the folder that holds it)")
    pointer = read_json(folder.pointer_file(which)) or read_json(folder.pointer_file("last"))
    if not p.is_dir():
        raise RunError(f"{p}: no such run or checkpoint folder")
    if not isinstance(pointer, dict) or not isinstance(pointer.get("path"), str) \
            or not (p / pointer["path"] / CKPT_META).is_file():
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
