"""The app shows failures where they happen: a resume without a checkpoint, a failed launch's real reason, a resume that dies, one still booting (hand-written run folders; one real process that dies)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from support.runfolders import failed_launch, make_run, select_run
from support.tui import BIG, text_of, wait_for
from textual.widgets import DataTable, Log

from core import launch
from core.launch import LAUNCH_DIR, resume_training
from core.runs import RunError
from walkless_tui.app import WalklessApp
from walkless_tui.screens.confirm import ConfirmScreen
from walkless_tui.screens.monitor import MonitorScreen


@pytest.fixture
def resumed_pids():
    yield
    for pid in list(launch._children):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    launch.reap()


async def test_resume_of_a_run_without_checkpoint_says_so(tmp_path, notes):
    runs = tmp_path / "runs"
    make_run(runs, "killme", state="stopped", step=3, total=18)
    with pytest.raises(RunError, match="no checkpoint"):
        resume_training(runs / "killme")  # refused before any process starts
    assert not (runs / LAUNCH_DIR).exists()
    app = WalklessApp(runs)
    async with app.run_test(size=BIG) as pilot:
        await select_run(pilot, "killme")
        await pilot.press("r")
        assert not isinstance(app.screen, ConfirmScreen)  # nothing to confirm: it cannot resume
        assert any("killme has no checkpoint" in n for n in notes)
        assert not any("resuming" in n for n in notes)
        app.open_monitor(runs / "killme")  # r in Monitor says the same
        await pilot.pause()
        await pilot.press("r")
        assert isinstance(app.screen, MonitorScreen)
        assert sum("has no checkpoint" in n for n in notes) == 2


async def test_r_on_a_failed_launch_gives_the_real_reason(tmp_path, notes):
    runs = tmp_path / "runs"
    failed_launch(runs, "bad-run", "error: --batch-size 0: must be at least 1")
    app = WalklessApp(runs)
    async with app.run_test(size=BIG) as pilot:
        screen = await select_run(pilot, "bad-run")
        row = screen.query_one("#runs-table", DataTable)
        assert "--batch-size 0" in str(row.get_cell("bad-run", "note"))  # the launch log, on its row
        await pilot.press("r")
        said = [n for n in notes if "bad-run" in n]
        assert said and "never began" in said[-1] and "--batch-size 0: must be at least 1" in said[-1]
        assert "only a stopped or failed run" not in said[-1]
        app.open_monitor(runs / "bad-run")  # Monitor: the failure in its title, the launch log in its tail
        await pilot.pause()
        monitor = app.screen
        await wait_for(pilot, lambda: monitor.polls > 0 and monitor.query_one("#train-log", Log).line_count > 0,
                       what="the monitor")
        assert "--batch-size 0" in text_of(monitor.query_one("#monitor-title"))
        assert any("--batch-size 0" in line for line in monitor.query_one("#train-log", Log).lines)


async def test_a_resume_that_fails_shows_on_its_row_and_in_monitor(tmp_path, notes, resumed_pids):
    runs = tmp_path / "runs"
    run = make_run(runs, "broken", state="stopped", variant="finetune", task="sst")
    (run / "checkpoints" / "step-00000002").mkdir(parents=True)  # a checkpoint folder with nothing in it
    (run / "last.json").write_text(json.dumps({"path": "checkpoints/step-00000002"}))
    app = WalklessApp(runs)
    async with app.run_test(size=BIG) as pilot:
        screen = await select_run(pilot, "broken")
        await pilot.press("r")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")  # a real `walkless train --resume`, which cannot load the checkpoint
        assert any("resuming broken" in n for n in notes)

        def row() -> str:
            r = next(x for x in screen.runs if x.name == "broken")
            return f"{r.state}: {r.message}"

        await wait_for(pilot, lambda: row().startswith("failed: resume failed"), timeout=120,
                       what="the resume to fail")
        assert "checkpoint" in row()  # the trainer's own words from the launch log
        note = str(screen.query_one("#runs-table", DataTable).get_cell("broken", "note"))
        assert note.startswith("resume failed")
        await pilot.press("enter")
        monitor = app.screen
        assert isinstance(monitor, MonitorScreen)
        await wait_for(pilot, lambda: monitor.polls > 0 and monitor.info.state == "failed", what="the monitor")
        assert "resume failed" in text_of(monitor.query_one("#monitor-title"))


async def test_a_resume_still_booting_is_listed_as_starting_and_x_stops_it(tmp_path):
    runs = tmp_path / "runs"
    run = make_run(runs, "boot", state="stopped")
    os.utime(run / "status.json", (time.time() - 100, time.time() - 100))
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        (runs / LAUNCH_DIR).mkdir()
        (runs / LAUNCH_DIR / "boot.resume.json").write_text(json.dumps(
            {"pid": proc.pid, "host": socket.gethostname(), "started": time.time(), "log_offset": 0}))
        app = WalklessApp(runs)
        async with app.run_test(size=BIG) as pilot:
            screen = await select_run(pilot, "boot")
            run_info = next(r for r in screen.runs if r.name == "boot")
            assert run_info.state == "starting" and "resuming" in run_info.message
            await pilot.press("x")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("y")
            assert proc.wait(timeout=10) == -signal.SIGTERM
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()

