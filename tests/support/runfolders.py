"""Hand-written run folders (config.json, status.json, metrics.jsonl) and launch records for the app's tests,
and a run selected in the runs list."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from textual.widgets import DataTable

from core.launch import LAUNCH_DIR
from support.tui import scanned
from walkless_tui.screens.runs import RunsScreen


def make_run(runs: Path, name: str, state: str = "finished", step: int = 4, total: int = 4, epochs: int = 2,
             variant: str = "rrobin", records: list[dict] | None = None, **config) -> Path:
    run = runs / name
    run.mkdir(parents=True)
    status = {"state": state, "epoch": 1, "epochs": epochs, "step": step, "total_steps": total,
              "started": time.time() - 60, "updated": time.time() - 30}
    if state == "running":
        status.update(pid=os.getpid(), host=socket.gethostname())  # alive: this process
    (run / "status.json").write_text(json.dumps(status))
    tasks = [config.get("task", "sst")] if variant in ("finetune", "pretrain") else ["sst", "para", "sts"]
    (run / "config.json").write_text(json.dumps({"variant": variant, "tasks": tasks, "epochs": epochs,
                                                 "name": name, **config}))
    with open(run / "metrics.jsonl", "w") as f:
        for r in records or []:
            f.write(json.dumps(r) + "\n")
    return run


def epoch_record(epoch: int, sst: float) -> dict:
    return {"kind": "epoch", "epoch": epoch, "step": 2 * epoch, "seconds": 1.0, "dev": {"sst/acc": sst}}


def failed_launch(runs: Path, name: str, error: str) -> None:
    folder = runs / LAUNCH_DIR
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps({
        "name": name, "pid": 1 << 22, "host": socket.gethostname(), "started": time.time() - 5, "returncode": 2,
        "config": {"variant": "rrobin", "epochs": 1}}))
    (folder / f"{name}.log").write_text(f"usage: walkless train ...\n{error}\n")


async def select_run(pilot, name: str) -> RunsScreen:
    screen = await scanned(pilot, {name})
    screen.query_one("#runs-table", DataTable).move_cursor(row=screen._keys.index(name))
    await pilot.pause()
    return screen

