"""Text snapshots of the app's screens: what the terminal shows, line by line, against a committed file.

A snapshot is the composed screen as plain text (``support.tui.screen_text``), so a widget that moves, wraps,
is cut off or disappears changes it, and the diff a failure prints reads like the terminal. Colours are not
compared. ``pytest --snapshot-update`` rewrites the files; review them with ``git diff`` before committing.
On a mismatch the test writes what it saw (``NAME.actual.txt`` and ``NAME.svg``) beside the snapshot.

Runs and Table 2 sweeps get fixed numbers and times (``freeze_run``, ``freeze_table2``) so the screens are the
same on every machine; what still varies (latency, numbers computed by a model, absolute paths) is masked by the
test that shows it.
"""

from __future__ import annotations

import difflib
import io
import json
import math
import re
import time
from collections.abc import Iterable
from pathlib import Path

import pytest
from rich.console import Console

from core.table2 import ROWS, Table2Config, row_dir_name, write_table2

SNAPSHOTS = Path(__file__).resolve().parents[1] / "tui" / "snapshots"
T0 = 1_796_000_000.0  # 2026-11-30 00:53 UTC: every frozen run starts here


def masked(text: str, patterns: Iterable[str] = (), paths: Iterable[Path | str] = ()) -> str:
    """``text`` with each absolute path replaced by ``<path>`` and every match of ``patterns`` by ``#``s of its
    length (so columns keep their widths)."""
    for path in sorted((str(p) for p in paths), key=len, reverse=True):
        text = text.replace(path, "<path>".ljust(len(path))[: max(len(path), 6)])
    for pattern in patterns:
        text = re.sub(pattern, lambda m: "#" * len(m.group()), text)
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"


def screen_text(app) -> str:
    """The screen as the terminal shows it, in plain text: the composition ``App.export_screenshot`` renders."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True, record=True,
                      color_system="truecolor", legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text(styles=False)


async def settled_text(pilot, timeout: float = 10.0) -> str:
    """The screen once it has stopped changing and its footer is drawn (the footer fills in after the screen
    mounts, later on a busy machine)."""
    end = time.monotonic() + timeout
    seen = [screen_text(pilot.app)]
    while True:
        await pilot.pause(0.25)
        seen = [*seen[-2:], screen_text(pilot.app)]
        same = len(seen) == 3 and seen[0] == seen[1] == seen[2]  # unchanged for half a second
        if (same and seen[-1].rstrip("\n").splitlines()[-1].strip()) or time.monotonic() > end:
            return seen[-1]


async def assert_snapshot(pilot, name: str, update: bool, patterns: Iterable[str] = (),
                          paths: Iterable[Path | str] = ()) -> None:
    """The app's screen equals ``snapshots/NAME.txt`` (after masking); with ``update``, (re)write it."""
    app = pilot.app
    got = masked(await settled_text(pilot), patterns, paths)
    path = SNAPSHOTS / f"{name}.txt"
    if update:
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(got)
        return
    if not path.is_file():
        raise AssertionError(f"no snapshot {path}: run pytest --snapshot-update and review the new file")
    want = path.read_text()
    if got != want:
        (SNAPSHOTS / f"{name}.actual.txt").write_text(got)
        app.save_screenshot(f"{name}.svg", str(SNAPSHOTS))
        diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True), f"{name}.txt", "now"))
        raise AssertionError(f"screen {name} differs from its snapshot ({name}.actual.txt, {name}.svg):\n{diff}")


def _loss(task: str, step: int) -> float:
    """A smooth, falling, slightly noisy curve per task: the same on every machine."""
    start = {"sst": 1.6, "para": 0.7, "sts": 2.5, "cfimdb": 0.7}.get(task, 1.0)
    return round(start * (0.45 + 0.55 * math.exp(-step / 50)) + 0.04 * ((step * 37) % 11) / 11, 4)


def _dev(dev: dict[str, float], epoch: int, offset: float) -> dict[str, float]:
    """Fixed dev metrics that rise with the epoch (same keys as the run wrote)."""
    return {k: round(min(0.95, 0.35 + offset + 0.08 * epoch + 0.01 * i), 4) for i, k in enumerate(sorted(dev))}


def freeze_run(run: Path, offset: float = 0.0, seconds_per_step: float = 0.5) -> None:
    """Give a finished run fixed losses, dev metrics and times, keeping the files' shapes as training wrote them."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    last_step = 0
    for r in records:
        last_step = max(last_step, r.get("step", 0))
        r["time"] = T0 + seconds_per_step * r.get("step", 0)
        if r["kind"] == "step":
            r["loss"] = _loss(r.get("task", ""), r["step"])
        elif r["kind"] == "epoch":
            r["seconds"] = 12.5
            r["dev"] = _dev(r["dev"], r["epoch"], offset)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    epochs = [r for r in records if r["kind"] == "epoch"]
    if (run / "best.json").is_file() and epochs:
        best = json.loads((run / "best.json").read_text())
        best["dev"] = next(r["dev"] for r in epochs if r["epoch"] == best["epoch"])
        (run / "best.json").write_text(json.dumps(best, indent=2))
    status = json.loads((run / "status.json").read_text())
    status.update(started=T0, updated=T0 + seconds_per_step * last_step + 30, host="vm", pid=None)
    (run / "status.json").write_text(json.dumps(status, indent=2))
    log = run / "train.log"
    if log.is_file():
        stamp = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}", re.M)
        log.write_text(stamp.sub("2026-11-30 00:53:20,000", log.read_text()))


# The machine a frozen Table 2 sweep says it ran on. The real one (CPU model name, cores, torch build) differs
# between machines, and the caption wraps it onto more or fewer lines: masking its text keeps the visible lines
# equal, but the screen's height below them changes, and with it the scrollbar thumb.
FROZEN_MACHINE = {"cpu": "a 2-core test CPU", "cores": 2, "threads": 1, "torch": "2.13.0+cpu", "gpu": None,
                  "python": "3.11.0"}


def freeze_table2(t: Table2Config) -> None:
    """Give a finished ``walkless table2`` sweep fixed numbers and times (each row's run as ``freeze_run``), then
    rewrite its ``table2.json`` and ``table2.md`` from the frozen rows as the sweep does, on a fixed machine."""
    root = Path(t.runs_dir)
    for i, row in enumerate(r for r in ROWS if (root / row_dir_name(r) / "metrics.jsonl").is_file()):
        freeze_run(root / row_dir_name(row), offset=0.05 * i)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("core.bench.machine", lambda: dict(FROZEN_MACHINE))
        write_table2(t)
