"""Live progress: the ETA from the logged steps' rate, the evaluation phase, a Table 2 row being trained, resume lines in train.log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.tui import scanned, wait_for
from textual.widgets import DataTable

from core.config import TrainConfig
from core.train import train
from walkless_tui.app import WalklessApp


def logged(steps_per_second: float, upto: int, start: float = 1000.0, every: int = 10, tasks: int = 3,
           epoch_end: int | None = None, eval_seconds: float = 0.0) -> list[dict]:
    """The step records a run writes (``tasks`` records at each flush, one time), every ``every`` steps, and an
    epoch record ``eval_seconds`` after step ``epoch_end``; later steps come that much later."""
    out, t = [], start
    for step in range(every, upto + 1, every):
        t = start + step / steps_per_second + (eval_seconds if epoch_end and step > epoch_end else 0.0)
        out += [{"kind": "step", "step": step, "time": t, "task": str(k)} for k in range(tasks)]
        if step == epoch_end:
            out.append({"kind": "epoch", "step": step, "time": t + eval_seconds})
    return out


def fake_running_run(runs: Path, name: str, records: list[dict], **status) -> Path:
    """A run folder that reads as training (this process's pid on this host), with ``records`` logged."""
    import os
    import socket
    import time

    run = runs / name
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"variant": "rrobin", "tasks": ["sst", "para", "sts"], "epochs": 2}))
    (run / "status.json").write_text(json.dumps({"state": "running", "pid": os.getpid(), "host": socket.gethostname(),
                                                 "started": time.time() - 100, "epochs": 2, **status}))
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return run


def test_eta_comes_from_the_logged_rate_and_counts_down_with_the_clock():
    from core.runs import pace

    records = logged(2.0, upto=60)  # 2 steps/s, 60 of 200 steps done at t = 1030
    p = pace(records)
    assert p.rate == pytest.approx(2.0) and p.step == 60 and p.time == pytest.approx(1030.0)
    eta = p.eta(total_steps=200, epochs=1, now=1030.0)
    assert eta == pytest.approx(70.0)  # 140 steps at 2 / s
    assert p.eta(200, 1, now=1040.0) == pytest.approx(60.0)  # a stale status step cannot make it jump up
    # a slow stretch moves the smoothed rate part of the way, not all of it
    slow = records + [{"kind": "step", "step": 70, "time": 1030.0 + 10.0, "task": "0"}]
    assert 1.0 < pace(slow).rate < 2.0


def test_eta_counts_the_dev_evaluations_left_and_the_one_under_way():
    from core.runs import pace

    records = logged(1.0, upto=60, epoch_end=50, eval_seconds=20.0)  # epoch 1 of 2 ended at step 50, eval 20 s
    p = pace(records)
    assert p.eval_seconds == pytest.approx(20.0) and p.evals_done == 1
    assert p.rate == pytest.approx(1.0)  # the interval across the evaluation is not a slow stretch
    last = records[-1]["time"]
    assert p.eta(100, 2, now=last) == pytest.approx(40.0 + 20.0)  # 40 steps and the last evaluation
    done = pace(logged(1.0, upto=100, epoch_end=50, eval_seconds=20.0))
    t = done.time
    assert done.eta(100, 2, now=t + 5, evaluating_since=t) == pytest.approx(15.0)  # the final evaluation, 5 s in
    assert done.eta(100, 2, now=t + 60, evaluating_since=t) == 0.0  # overdue: 0, never negative


def test_a_pause_between_logged_steps_is_not_taken_as_the_pace():
    from core.runs import pace

    records = logged(1.0, upto=50)
    resumed = [{"kind": "step", "step": 60, "time": records[-1]["time"] + 3600.0, "task": "0"}]  # stopped an hour
    assert pace(records + resumed).rate == pytest.approx(1.0)


def test_a_sweep_row_being_trained_is_training_in_table2_json(tiny_encoder, demo_data, tmp_path):
    from core.table2 import Table2Config, read_table2, write_table2

    t = Table2Config(runs_dir=str(tmp_path), rows=("finetune", "rrobin"), encoder=str(tiny_encoder), max_train=16,
                     max_dev=8, max_steps=2)
    write_table2(t, training="finetune")
    states = {r["row"]: r["state"] for r in read_table2(tmp_path)["rows"]}
    assert states == {"finetune": "training", "rrobin": "not run"}


def test_a_resumed_run_says_so_in_train_log(tiny_encoder, demo_data, tmp_path, caplog):
    """The Monitor's log tail follows train.log: the resume line must be there, not only in the launch log."""
    import logging
    import os

    caplog.set_level(logging.INFO)  # as `walkless train` sets it
    from core.train import resume

    cfg = TrainConfig(variant="finetune", task="sst", encoder=str(tiny_encoder), runs_dir=str(tmp_path), name="r",
                      epochs=1, batch_size=4, max_train=16, max_dev=8, lr=1e-3, log_every=1, threads=1)

    def stop(epoch: int, it: int, n: int) -> None:
        if it == 2:
            os.kill(os.getpid(), 15)

    run = train(cfg, progress=stop)
    resume(run)
    log = (run / "train.log").read_text()
    assert "resumed from checkpoint step-00000002 (epoch 1, step 2)" in log


async def test_monitor_and_runs_show_the_evaluation_and_an_eta_from_the_logged_pace(tmp_path):
    import time

    from walkless_tui.screens.monitor import MonitorScreen

    now = time.time()
    # 100 of 200 steps at 1 step/s, the last logged step 4 s ago, the dev evaluation under way for 3 s (epoch 1)
    records = logged(1.0, upto=100, start=now - 104)
    fake_running_run(tmp_path, "evaluating", records, epoch=1, step=100, total_steps=200, phase="evaluating",
                     evaluating_since=now - 3)
    app = WalklessApp(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await scanned(pilot, {"evaluating"})
        table = screen.query_one("#runs-table", DataTable)
        assert "evaluating" in str(table.get_cell("evaluating", "progress"))
        eta = screen.runs[0].eta
        assert eta is not None and 95 <= eta <= 101  # 100 steps at 1/s; no evaluation timed yet
        app.open_monitor(tmp_path / "evaluating")
        await pilot.pause()
        monitor = app.screen
        assert isinstance(monitor, MonitorScreen)
        await wait_for(pilot, lambda: monitor.polls > 0, what="the monitor")
        times = str(monitor.query_one("#monitor-times").render())
        assert "evaluating the dev sets for 0:0" in times, times
        assert any(f"ETA 1:{s}" in times for s in range(36, 42)), times  # 100 steps left at 1 step/s

