"""The runs folder as the app sees it: finished runs read once, live ones re-read, launches merged in.

``RunIndex.scan`` runs in a worker thread every second, so it avoids re-reading a run folder whose
``status.json``, ``config.json`` and ``metrics.jsonl`` have not changed.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.launch import launches, unreadable, with_resume
from core.runs import LISTED_FILES, RunFolder, RunInfo, RunState, load_run, read_json, run_state
from core.table2 import TABLE2_FILE


def stamp(run_dir: Path, names: tuple[str, ...] = LISTED_FILES) -> tuple:
    """(mtime, size) of each file named (None when missing): it changes when one of them is rewritten."""
    out = []
    for name in names:
        try:
            st = os.stat(run_dir / name)
            out.append((st.st_mtime_ns, st.st_size))
        except OSError:
            out.append(None)
    return tuple(out)


class RunIndex:
    def __init__(self, runs_dir: str | Path):
        self.runs_dir = Path(runs_dir)
        self._cache: dict[Path, tuple[tuple, RunInfo]] = {}

    def load(self, run_dir: Path) -> RunInfo:
        return with_resume(self._load(run_dir))

    def _load(self, run_dir: Path) -> RunInfo:
        now = stamp(run_dir)
        cached = self._cache.get(run_dir)
        if cached and cached[0] == now:
            info = cached[1]
            if info.state != RunState.RUNNING:
                return info
            # unchanged files, but the process may have died since: recheck only the state
            if run_state(read_json(RunFolder(run_dir).status_file, {}) or {}) == RunState.RUNNING:
                return info
        try:
            info = load_run(run_dir)
        except (ValueError, TypeError, AttributeError) as e:  # a hand-edited or foreign status/config file
            info = unreadable(run_dir, e)
        self._cache[run_dir] = (now, info)
        return info

    def scan(self) -> list[RunInfo]:
        """Every run and every launch still starting (or that failed to start), newest first."""
        if not self.runs_dir.is_dir():
            return []
        pending = {r.name: r for r in launches(self.runs_dir)}
        runs = []
        for p in self.runs_dir.iterdir():
            if p.name.startswith(".") or not p.is_dir() or p.name in pending:
                continue
            if RunFolder(p).is_run():
                runs.append(self.load(p))
        runs += pending.values()
        return sorted(runs, key=lambda r: r.started or 0, reverse=True)


def find_table2(path: str | Path) -> tuple[Path | None, list[Path]]:
    """The ``table2.json`` of a Table 2 sweep (``walkless table2``) for ``path``: the file itself, or the one in
    the folder, in the folder above it (``path`` is one of the sweep's row folders), or in a subfolder
    (``runs/table2``, the sweep's default, under ``runs``; the newest when several). Returns the file or
    None, and the places looked (for the message when none is found)."""
    p = Path(path).expanduser().absolute()
    if p.is_file():
        return p, [p]
    looked = [p / TABLE2_FILE, p.parent / TABLE2_FILE]
    for candidate in looked:
        if candidate.is_file():
            return candidate, looked
    looked.append(p / "*" / TABLE2_FILE)
    found = []
    if p.is_dir():
        for candidate in p.glob(f"*/{TABLE2_FILE}"):
            try:
                found.append((candidate.stat().st_mtime, candidate))
            except OSError:
                continue
    return (max(found)[1] if found else None), looked


class TextFollower:
    """New complete lines of a growing text file (a log), starting with its last ``first`` lines."""

    def __init__(self, path: Path, first: int = 200):
        self.path, self.first = Path(path), first
        self.offset: int | None = None

    def read(self) -> list[str]:
        try:
            size = os.path.getsize(self.path)
        except OSError:
            return []
        if self.offset is None or size < self.offset:
            from core.runs import tail_lines

            self.offset = size
            return tail_lines(self.path, self.first)
        if size == self.offset:
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(size - self.offset)
        end = data.rfind(b"\n") + 1
        self.offset += end
        return data[:end].decode("utf-8", errors="replace").splitlines()
