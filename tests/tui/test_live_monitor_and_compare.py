"""Monitor and Compare while runs train: the step before the first logged loss, live refreshes, the legend, log scale and time axis."""

from __future__ import annotations

import json

import pytest
from support.runfolders import epoch_record, make_run
from support.tui import BIG, opened_compare, screen_text, text_of, wait_for, withhold_idle_widths
from textual.widgets import DataTable, Log

from walkless_tui.app import WalklessApp
from walkless_tui.widgets.plots import CurvePlot


async def test_monitor_says_which_step_before_the_first_logged_loss(tmp_path):
    runs = tmp_path / "runs"
    run = make_run(runs, "short", state="running", step=3, total=18, log_every=10)
    app = WalklessApp(runs)
    async with app.run_test(size=BIG) as pilot:
        app.open_monitor(run)
        await pilot.pause()
        monitor = app.screen
        await wait_for(pilot, lambda: monitor.polls > 0, what="the monitor")
        plot = str(monitor.query_one("#loss-plot", CurvePlot).render())
        assert "step 3/18: no loss logged yet (losses are logged every 10 steps)" in plot
        assert "no training steps logged yet" not in screen_text(app)
        # the losses run ahead of status.json (say after a stop): the bar follows the losses
        with open(run / "metrics.jsonl", "a") as f:
            for step in (5, 10, 15):
                f.write(json.dumps({"kind": "step", "step": step, "task": "sst", "loss": 1.0}) + "\n")
        await wait_for(pilot, lambda: monitor.query_one("#loss-plot", CurvePlot).series, what="the losses")
        await wait_for(pilot, lambda: "step 15/18" in text_of(monitor.query_one("#monitor-times")),
                       what="the bar at the last logged step")
        # the run stops (its process writes status.json and a checkpoint): the log tail and the title say so
        (run / "last.json").write_text(json.dumps({"path": "checkpoints/step-00000015"}))
        status = json.loads((run / "status.json").read_text())
        status.update(state="stopped", step=15, message="stopped on request; `walkless train --resume` goes on")
        (run / "status.json").write_text(json.dumps(status))
        log = monitor.query_one("#train-log", Log)
        await wait_for(pilot, lambda: any(line.startswith("── run stopped at step 15") for line in log.lines),
                       what="the stop in the log tail")
        assert "(r resumes it here)" in text_of(monitor.query_one("#monitor-title"))


async def test_compare_refreshes_while_a_run_trains(tmp_path):
    runs = tmp_path / "runs"
    a = make_run(runs, "a", state="running", records=[epoch_record(1, 0.30)], schedule_plan={"iterations": 3},
                 data_sizes={"sst": {"train": 10}})
    make_run(runs, "b", records=[epoch_record(1, 0.40)], schedule_plan={"iterations": 4},
             data_sizes={"sst": {"train": 12}}, lr=1e-4)
    app = WalklessApp(runs)
    async with app.run_test(size=BIG) as pilot:
        screen = await opened_compare(pilot, [runs / "a", runs / "b"])
        table = screen.query_one("#table2", DataTable)
        assert str(table.get_cell("a", "sst/acc")).strip() == "0.300"
        assert set(screen.differences) == {"lr"}  # not tasks, schedule_plan.*, data_sizes.*
        with open(a / "metrics.jsonl", "a") as f:  # the run finishes its second epoch
            f.write(json.dumps(epoch_record(2, 0.55)) + "\n")
        await wait_for(pilot, lambda: "0.550" in str(table.get_cell("a", "sst/acc")), timeout=10,
                       what="the new epoch in Compare")
        assert "★" in str(table.get_cell("a", "sst/acc"))
        assert screen.query_one("#compare-plot", CurvePlot).series["a"][0] == [1, 2]
        await wait_for(pilot, lambda: "each column's best dev value over the epochs" in screen_text(app),
                       what="what the values are")


async def test_the_legend_sits_under_the_plot_not_on_its_points(tmp_path):
    runs = tmp_path / "runs"
    make_run(runs, "first-run", records=[epoch_record(1, 0.30)])  # one point, at the top left of the canvas
    make_run(runs, "second-run", records=[epoch_record(1, 0.20), epoch_record(2, 0.25)])
    app = WalklessApp(runs)
    async with app.run_test(size=BIG) as pilot:
        screen = await opened_compare(pilot, [runs / "first-run", runs / "second-run"])
        plot = screen.query_one("#compare-plot", CurvePlot)
        await pilot.pause(0.1)
        lines = str(plot.render()).splitlines()
        assert len(lines) == plot.size.height
        canvas, legend = lines[:-1], lines[-1]
        assert "first-run" in legend and "second-run" in legend
        assert not any("first-run" in line or "second-run" in line for line in canvas)


async def test_monitor_log_scale_and_x_axis_by_time(tmp_path):
    runs = tmp_path / "runs"
    records = [{"kind": "step", "step": s, "task": "sst", "loss": 2.0 / s, "time": 1000.0 + 60 * (s - 1)}
               for s in (1, 2, 3)]
    run = make_run(runs, "timed", records=records)
    app = WalklessApp(runs)
    async with app.run_test(size=BIG) as pilot:
        app.open_monitor(run)
        await pilot.pause()
        monitor = app.screen
        plot = monitor.query_one("#loss-plot", CurvePlot)
        await wait_for(pilot, lambda: plot.series, what="the losses")
        assert plot.series["sst"][0] == [1, 2, 3] and plot.xlabel == "step" and not plot.log_y
        await pilot.press("l")
        await wait_for(pilot, lambda: "log scale" in plot.title, what="the log scale")
        assert plot.log_y
        await pilot.press("t")
        await wait_for(pilot, lambda: plot.xlabel == "minutes", what="the time axis")
        assert plot.series["sst"][0] == pytest.approx([0.0, 1.0, 2.0])
        await pilot.press("t", "l")
        await wait_for(pilot, lambda: plot.xlabel == "step" and "log scale" not in plot.title, what="back")
        assert plot.series["sst"][0] == [1, 2, 3]


async def test_monitor_dev_table_fits_its_cells_without_waiting_for_its_idle(tmp_path, monkeypatch):
    """A DataTable fits auto-width columns to their rows on its next idle, which a busy machine delays; the dev table's
    columns are set wide enough when it is filled, so a slow idle never shows "1234.5" seconds as "1"."""
    runs = tmp_path / "runs"
    records = [{**epoch_record(e, 0.4 + e / 100), "seconds": 1234.5, "dev": {"sts/pearson": 0.8123}} for e in (1, 2)]
    run = make_run(runs, "slow-epochs", records=records)
    withhold_idle_widths(monkeypatch, "dev-table")
    app = WalklessApp(runs)
    async with app.run_test(size=BIG) as pilot:
        app.open_monitor(run)
        await wait_for(pilot, lambda: app.screen.polls > 0, what="the monitor")
        await pilot.pause(0.3)
        text = screen_text(app)
        assert "1234.5  0.8123" in text and "2      4     1234.5" in text, text
