"""Starting ``walkless train`` as a detached process (the app's launch form), and stopping runs.

The caller picks the run name up front; the CLI creates ``RUNS_DIR/NAME`` itself (``--name`` of an
existing folder is an error). Until the run writes its ``status.json`` it exists only as a launch
record in ``RUNS_DIR/.launches``::

    NAME.json         {"name", "pid", "host", "started", "argv", "config"} (+ "returncode" once reaped)
    NAME.config.json  the run's options (``TrainConfig.to_dict()``): the process is ``walkless train --config``
    NAME.log    the process's stdout and stderr (tracebacks of a run that dies while starting)

``launches`` turns those records into ``RunInfo`` rows with state ``starting`` (process alive) or
``failed`` (process gone before the run began, message = last line of its log). The process runs in its
own session, so it keeps training when the app exits.

A resume (``resume_training``) appends to the same log and leaves ``NAME.resume.json`` (pid, host, started,
the log's size when it began): until the resumed process rewrites ``status.json`` the run reads as
``starting``, and as ``failed`` with the log's error when that process dies first (``resume_outcome``).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from core.config import TrainConfig
from core.runs import (
    RunError,
    RunFolder,
    RunInfo,
    RunState,
    _pid_alive,
    load_run,
    read_json,
    run_state,
    tail_lines,
    write_json_atomic,
)

LAUNCH_DIR = ".launches"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$")

# Popen objects of the processes this interpreter started: polling them reaps a finished child, which
# would otherwise stay a zombie that ``kill(pid, 0)`` reports as alive.
_children: dict[int, tuple[subprocess.Popen, Path]] = {}  # pid -> (process, its launch or resume record)


def check_name(runs_dir: str | Path, name: str) -> str | None:
    """Why ``name`` cannot be a new run name (None when it can)."""
    if not NAME_RE.match(name):
        return f"run name {name!r}: use letters, digits and . _ + - (up to 100, not starting with a symbol)"
    if (Path(runs_dir) / name).exists() or (Path(runs_dir) / LAUNCH_DIR / f"{name}.json").exists():
        return f"run name {name!r}: {Path(runs_dir) / name} is taken"
    return None


def new_run_name(runs_dir: str | Path, variant: str) -> str:
    """A free name like ``rrobin_smart-20240101-120000``."""
    base = f"{variant.replace('+', '_')}-{time.strftime('%Y%m%d-%H%M%S')}"
    for i in range(1000):
        name = base + (f"-{i}" if i else "")
        if check_name(runs_dir, name) is None:
            return name
    raise RunError(f"runs folder {runs_dir}: could not find a free run name")


def start_training(config: TrainConfig, python: str = sys.executable) -> dict:
    """Start ``walkless train --config`` for ``config`` (its ``runs_dir`` and ``name`` set) in its own session;
    returns the launch record, written before this returns so that the run is listed (as ``starting``) at once.
    """
    runs_dir, name = Path(config.runs_dir).absolute(), str(config.name)
    problem = check_name(runs_dir, name)
    if problem:
        raise RunError(problem)
    folder = runs_dir / LAUNCH_DIR
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunError(f"runs folder {runs_dir}: cannot create ({e.strerror or e})") from e
    options = {**config.to_dict(), "runs_dir": str(runs_dir)}
    write_json_atomic(folder / f"{name}.config.json", options)
    argv = [python, "-m", "core.cli", "train", "--config", str(folder / f"{name}.config.json")]
    with open(folder / f"{name}.log", "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    _children[proc.pid] = proc, folder / f"{name}.json"
    record = {"name": name, "pid": proc.pid, "host": socket.gethostname(), "started": time.time(),
              "argv": argv, "config": options}
    write_json_atomic(folder / f"{name}.json", record)
    return record


def resume_problem(run_dir: str | Path) -> str | None:
    """Why ``run_dir`` cannot be resumed now (None when it can), in words for the user."""
    run_dir = Path(run_dir)
    name = run_dir.name
    folder = RunFolder(run_dir)
    status = read_json(folder.status_file)
    if not isinstance(status, dict) or not folder.config_file.is_file():
        why = _last_message(launch_log(run_dir))
        return (f"run {name} never began (no status.json), so there is nothing to resume"
                + (f"; its launch log says: {why}" if why else "") + ". Launch it again.")
    outcome = resume_outcome(run_dir)
    state = outcome[0] if outcome else run_state(status)
    if state.active:
        return f"run {name} is already {state}"
    if state == RunState.FINISHED:
        return f"run {name} finished: nothing to resume (`walkless train --resume DIR --epochs N` extends it)"
    if not folder.has_checkpoint():
        return f"run {name} has no checkpoint to resume from (it stopped before saving one); launch it again"
    return None


def resume_training(run_dir: str | Path, python: str = sys.executable) -> int:
    """Continue a stopped or failed run from its last checkpoint (``walkless train --resume``) in a
    detached process; its output is appended to the run's launch log. Returns the process id."""
    run_dir = Path(run_dir).absolute()
    problem = resume_problem(run_dir)
    if problem:
        raise RunError(problem)
    log_path = launch_log(run_dir)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        offset = log.tell()
        proc = subprocess.Popen([python, "-m", "core.cli", "train", "--resume", str(run_dir)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    _children[proc.pid] = proc, resume_record(run_dir)
    write_json_atomic(resume_record(run_dir), {"pid": proc.pid, "host": socket.gethostname(),
                                               "started": time.time(), "log_offset": offset})
    return proc.pid


def resume_record(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    return run_dir.parent / LAUNCH_DIR / f"{run_dir.name}.resume.json"


def resume_outcome(run_dir: str | Path) -> tuple[RunState, str] | None:
    """(state, message) of the app's last resume of ``run_dir`` while its process has not yet rewritten
    ``status.json``: ``starting`` while it is alive, ``failed`` (with the log's error) once it is gone;
    None when there was no such resume or the resumed run took over its status."""
    run_dir = Path(run_dir)
    rec = read_json(resume_record(run_dir))
    if not isinstance(rec, dict) or not isinstance(rec.get("started"), (int, float)):
        return None
    try:
        if RunFolder(run_dir).status_file.stat().st_mtime >= rec["started"]:
            return None  # the resumed process wrote its status: the run speaks for itself
    except OSError:
        return None
    pid, code = rec.get("pid"), rec.get("returncode")
    alive = code is None and (rec.get("host") != socket.gethostname() or (isinstance(pid, int) and _pid_alive(pid)))
    if alive:
        return RunState.STARTING, f"resuming from its last checkpoint (pid {pid})"
    why = _last_message(launch_log(run_dir), int(rec.get("log_offset") or 0))
    gone = f"the process exited before training (exit code {code})" if code is not None else \
        "the process ended before training (stopped, killed or crashed)"
    return RunState.FAILED, f"resume failed: {why or gone}"


def reap() -> None:
    """Collect the exit codes of finished children (and write them into their launch or resume records)."""
    for pid, (proc, path) in list(_children.items()):
        code = proc.poll()
        if code is None:
            continue
        del _children[pid]
        record = read_json(path)
        if isinstance(record, dict) and record.get("pid") == pid:
            write_json_atomic(path, {**record, "returncode": code})


def _last_message(log_path: Path, offset: int = 0) -> str | None:
    """The log's last error line (else its last line) after byte ``offset``."""
    lines = [ln.strip() for ln in tail_lines(log_path, 50, start=offset) if ln.strip()]
    errors = [ln for ln in lines if ln.startswith(("error:", "Traceback")) or "Error" in ln.split(":")[0]]
    found = errors or lines
    return found[-1] if found else None


def launches(runs_dir: str | Path) -> list[RunInfo]:
    """Runs started by ``start_training`` that have not written their ``status.json`` yet."""
    reap()
    folder = Path(runs_dir) / LAUNCH_DIR
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("*.json")):
        rec = None if path.name.endswith((".config.json", ".resume.json")) else read_json(path)
        if not isinstance(rec, dict) or "name" not in rec:
            continue
        run_dir = Path(runs_dir) / rec["name"]
        if RunFolder(run_dir).status_file.exists():
            continue  # the run has begun: it is listed from its own folder
        pid, same_host = rec.get("pid"), rec.get("host") == socket.gethostname()
        alive = rec.get("returncode") is None and (not same_host or (isinstance(pid, int) and _pid_alive(pid)))
        config = rec.get("config") or {}
        info = RunInfo(path=run_dir, name=rec["name"], state=RunState.STARTING if alive else RunState.FAILED,
                       variant=str(config.get("variant", "?")), epochs=int(config.get("epochs") or 0),
                       started=rec.get("started"), config=config)
        if not alive:
            info.updated = path.stat().st_mtime
            code = rec.get("returncode")
            info.message = _last_message(folder / f"{rec['name']}.log") or (
                f"the training process exited before the run began (exit code {code})")
        out.append(info)
    return out


def launch_log(run_dir: str | Path) -> Path:
    """Where the process that trains ``run_dir`` writes its stdout and stderr."""
    run_dir = Path(run_dir)
    return run_dir.parent / LAUNCH_DIR / f"{run_dir.name}.log"


def forget_launch(run_dir: str | Path) -> None:
    """Delete the launch record and log of a run that never began."""
    run_dir = Path(run_dir)
    for suffix in (".json", ".config.json", ".log", ".resume.json"):
        (run_dir.parent / LAUNCH_DIR / f"{run_dir.name}{suffix}").unlink(missing_ok=True)


def stop_run(run_dir: str | Path) -> str:
    """Ask a running run to stop: SIGTERM to its process, which ends after the current step with state
    ``stopped``. A run still starting is terminated outright. Returns what was done."""
    run_dir = Path(run_dir)
    status = read_json(RunFolder(run_dir).status_file)
    if not isinstance(status, dict):
        rec = read_json(run_dir.parent / LAUNCH_DIR / f"{run_dir.name}.json")
        if not isinstance(rec, dict) or not isinstance(rec.get("pid"), int):
            raise RunError(f"run {run_dir.name}: no status.json and no launch record, nothing to stop")
        status = {"state": RunState.RUNNING, "pid": rec["pid"], "host": rec.get("host")}
    state = run_state(status)
    resuming = read_json(resume_record(run_dir))
    if state != RunState.RUNNING and isinstance(resuming, dict) and \
            (resume_outcome(run_dir) or (None,))[0] == RunState.STARTING:
        status, state = resuming, RunState.RUNNING  # a resume booting: its record holds the pid and host
    if state != RunState.RUNNING:
        raise RunError(f"run {run_dir.name} is {state}, not running")
    if status.get("host") != socket.gethostname():
        raise RunError(f"run {run_dir.name} runs on host {status.get('host')}; stop it there")
    pid = status.get("pid")
    if not isinstance(pid, int):
        raise RunError(f"run {run_dir.name}: status.json has no process id")
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError as e:
        raise RunError(f"run {run_dir.name}: process {pid} is already gone") from e
    except PermissionError as e:
        raise RunError(f"run {run_dir.name}: not allowed to signal process {pid}") from e
    return f"asked run {run_dir.name} (pid {pid}) to stop after its current step"


def unreadable(run_dir: Path, error: Exception) -> RunInfo:
    return RunInfo(path=run_dir, name=run_dir.name, state=RunState.FAILED,
                   message=f"{run_dir}: status.json or config.json has unexpected values ({error})")


def with_resume(info: RunInfo) -> RunInfo:
    """``info`` as the app's last resume of it left it: ``starting`` while the resumed process boots,
    ``failed`` with the launch log's error when it died before training (a copy; the cached info stays)."""
    if not info.state.ended:
        return info
    outcome = resume_outcome(info.path)
    if outcome is None:
        return info
    return replace(info, state=outcome[0], message=outcome[1])


def quick_info(run_dir: Path) -> RunInfo:
    """A run as the app's monitor shows it, as its last resume left it (``with_resume``); a launch still starting
    (or that died while starting) from its launch record; a folder whose files hold unexpected values as failed,
    with a message naming them."""
    try:
        if isinstance(read_json(RunFolder(run_dir).status_file), dict):
            return with_resume(load_run(run_dir, metrics=False))  # metrics.jsonl: the monitor reads it itself
        pending = [r for r in launches(run_dir.parent) if r.name == run_dir.name]
        return with_resume(pending[0] if pending else RunInfo(
            path=run_dir, name=run_dir.name, state=RunState.FAILED,
            message=f"{run_dir}: no status.json (not a run folder, or its process died at once)"))
    except (ValueError, TypeError, AttributeError) as e:
        return unreadable(run_dir, e)
