"""The Textual app driven with ``App.run_test`` and Pilot on real tiny runs (demo data, tiny encoder).

Each screen on runs trained here, a real detached launch watched to the end, and the failure cases: a
crashed run, a half-written metrics line, an empty or missing runs folder, a checkpoint that does not
match its config (another encoder's weights).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support.tui import choose_variant, opened_compare, scanned, text_of, wait_for
from textual.widgets import DataTable, Input, Log, Select, Static

from core import launch
from core.config import TrainConfig
from core.launch import LAUNCH_DIR, start_training
from core.tiny import write_tiny_encoder
from core.train import train
from walkless_tui.app import WalklessApp
from walkless_tui.screens.compare import CompareScreen
from walkless_tui.screens.help import HelpScreen
from walkless_tui.screens.launch import LaunchScreen
from walkless_tui.screens.monitor import MonitorScreen
from walkless_tui.screens.runs import RunsScreen
from walkless_tui.widgets.bars import ScoreBars
from walkless_tui.widgets.plots import CurvePlot, HistogramPlot

SIZE = (140, 42)




@pytest.fixture(scope="module")
def runs(tiny_encoder, demo_data, tmp_path_factory) -> Path:
    """A runs folder with a 2-epoch rrobin run and a 1-epoch SST finetune run (trained in this process)."""
    runs = tmp_path_factory.mktemp("tui-runs")
    common = dict(encoder=str(tiny_encoder), data_dir=str(demo_data), runs_dir=str(runs), batch_size=16, lr=1e-3,
                  log_every=1, max_train=48)
    train(TrainConfig(variant="rrobin", name="rr", epochs=2, **common))
    train(TrainConfig(variant="finetune", task="sst", name="ft", epochs=1, **common))
    return runs


@pytest.fixture
def launched_runs(tmp_path):
    """A runs folder whose detached training processes are killed at the end of the test, pass or fail."""
    runs = tmp_path / "runs"
    yield runs
    pids = [json.loads(r.read_text()).get("pid") for r in (runs / LAUNCH_DIR).glob("*.json")]
    for pid in [p for p in pids if p] + list(launch._children):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    launch.reap()


def table_column(table: DataTable, key: str) -> list:
    return [table.get_cell(row, key) for row in table.rows]


# --- Runs ----------------------------------------------------------------------------------------------
async def test_runs_lists_filters_sorts_and_marks(runs):
    app = WalklessApp(runs)
    async with app.run_test(size=SIZE) as pilot:
        screen = await scanned(pilot)
        table = screen.query_one("#runs-table", DataTable)
        assert sorted(str(n) for n in table_column(table, "name")) == ["ft", "rr"]
        assert {str(s) for s in table_column(table, "state")} == {"finished"}
        rr = next(r for r in screen.runs if r.name == "rr")
        assert rr.epoch == rr.epochs == 2 and 0 <= rr.dev["sts/pearson"] <= 1
        assert not screen.query_one("#runs-empty").display

        await pilot.press("slash", *"finetune", "enter")
        assert [str(n) for n in table_column(table, "name")] == ["ft"]
        await pilot.press("slash", "escape")  # escape clears the filter
        screen.sort_key, screen.sort_reverse = "name", False
        screen._render_table()
        assert [str(n) for n in table_column(table, "name")] == ["ft", "rr"]

        await pilot.press("space", "down", "space")
        assert screen.marked == {"ft", "rr"}
        await pilot.press("c")
        assert isinstance(app.screen, CompareScreen)
        assert {p.name for p in app.screen.selected} == {"ft", "rr"}


async def test_empty_and_missing_runs_folders_say_so(tmp_path):
    app = WalklessApp(tmp_path / "not-yet")
    async with app.run_test(size=SIZE) as pilot:
        screen = await scanned(pilot)
        assert "No runs folder at" in text_of(screen.query_one("#runs-empty"))
        await pilot.press("enter", "s", "escape", "e", "escape", "x")  # no run: messages, no crash
        assert isinstance(app.screen, RunsScreen)
    (tmp_path / "empty").mkdir()
    app = WalklessApp(tmp_path / "empty")
    async with app.run_test(size=SIZE) as pilot:
        screen = await scanned(pilot)
        assert "No runs in" in text_of(screen.query_one("#runs-empty"))
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Launch", "Compare", "Score", "Evaluate", "Runs", "New (n)", "Stop (x)"} <= titles


# --- Launch, Monitor and Stop on real detached processes -------------------------------------------------
async def test_launch_a_real_run_watch_it_finish_and_stop_another(tiny_encoder, demo_data, tmp_path,
                                                                   launched_runs):
    runs = launched_runs
    # a long run to stop later, started first so that both processes boot at the same time
    start_training(TrainConfig(variant="finetune", task="sst", encoder=str(tiny_encoder), data_dir=str(demo_data),
                               epochs=500, batch_size=8, lr=1e-3, log_every=1, threads=1, runs_dir=str(runs),
                               name="long"))
    app = WalklessApp(runs, demo_data, str(tiny_encoder))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n")
        form = app.screen
        assert isinstance(form, LaunchScreen)
        form.query_one("#epochs").value = "0"
        form.query_one("#data_dir").value = str(tmp_path / "no-data")
        await pilot.press("ctrl+s")
        errors = form.query_one("#launch-errors", Static)
        await wait_for(pilot, lambda: "epochs" in text_of(errors), what="form errors")
        assert "data folder" in text_of(errors) and form.launched is None and app.screen is form

        form.query_one("#variant", Select).value = "finetune"
        await pilot.pause()
        assert not form.query_one("#task", Select).disabled and not form.query_one("#smart-fields").display
        await choose_variant(pilot, form, "rrobin+smart")  # the SMART rows are made when a SMART variant is first chosen
        form.query_one("#name").value = "from-the-app"
        for key, value in [("epochs", "1"), ("batch_size", "16"), ("lr", "1e-3"), ("data_dir", str(demo_data)),
                           ("max_train", "64"), ("max_steps", "3"), ("dropout", "0.1"), ("threads", "1"),
                           ("smart_lam", "1.0")]:
            form.query_one(f"#{key}").value = value
        form.query_one("#pooling", Select).value = "cls"
        form.query_one("#smart_preset", Select).value = "fast"
        await pilot.pause()
        assert form.query_one("#smart_lam", Input).value == "1.0"  # the preset keeps what was typed
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), what="the launch")
        launched = form.launched["config"]
        assert launched["smart"]["lam"] == 1.0 and launched["max_train"] == 64 and launched["pooling"] == "cls"
        assert launched["smart"]["same_masks"] and launched["smart"]["steps"] == 0  # the fast preset

        screen = await scanned(pilot)  # listed at once, before the process has made its folder
        run = next(r for r in screen.runs if r.name == "from-the-app")
        assert run.state in ("starting", "running")
        await pilot.press("enter")
        monitor = app.screen
        assert isinstance(monitor, MonitorScreen) and monitor.run_dir.name == "from-the-app"
        await wait_for(pilot, lambda: monitor.info is not None and monitor.info.state == "finished", timeout=120,
                       what="the launched run to finish")
        await wait_for(pilot, lambda: monitor.epochs and monitor.query_one("#loss-plot", CurvePlot).series,
                       what="the final records")
        assert set(monitor.query_one("#loss-plot", CurvePlot).series) == {"sst", "para", "sts"}
        assert monitor.query_one("#dev-table", DataTable).row_count == 1
        await wait_for(pilot, lambda: monitor.query_one("#train-log", Log).line_count > 0, what="the log tail")
        config = json.loads((runs / "from-the-app" / "config.json").read_text())
        assert config["variant"] == "rrobin+smart" and config["smart"]["lam"] == 1.0
        assert config["smart"]["same_masks"] and config["smart"]["steps"] == 0  # the fast mode
        assert (config["dropout"], config["max_steps"], config["pooling"]) == (0.1, 3, "cls")

        app.pop_screen()
        app.open_monitor(runs / "long")
        await pilot.pause()
        monitor = app.screen
        await wait_for(pilot, lambda: monitor.info is not None and monitor.info.state == "running" and
                       monitor.info.step > 0, timeout=120, what="the long run to start training")
        await pilot.press("x")
        await pilot.press("y")  # confirm: SIGTERM, the trainer stops after its current step
        await wait_for(pilot, lambda: monitor.info.state == "stopped", timeout=60, what="the run to stop")
        assert "stopped on request" in (monitor.info.message or "") and monitor.info.epoch < 500
        stopped_at = monitor.info.step

        app.pop_screen()  # back to Runs: resume it from its last checkpoint (a new detached process)
        screen = await scanned(pilot)
        screen.query_one("#runs-table", DataTable).move_cursor(row=screen._keys.index("long"))
        await pilot.press("r", "y")
        await wait_for(pilot, lambda: (r := next(x for x in screen.runs if x.name == "long")).state == "running"
                       and r.step > stopped_at, timeout=120, what="the resumed run to train on")
        await pilot.press("x", "y")
        await wait_for(pilot, lambda: next(x for x in screen.runs if x.name == "long").state == "stopped",
                       timeout=60, what="the resumed run to stop")


# --- Monitor -------------------------------------------------------------------------------------------
async def test_monitor_shows_curves_metrics_and_log(runs):
    app = WalklessApp(runs)
    async with app.run_test(size=SIZE) as pilot:
        app.open_monitor(runs / "rr")
        await pilot.pause()
        monitor = app.screen
        await wait_for(pilot, lambda: monitor.polls > 0 and monitor.query_one("#loss-plot", CurvePlot).series)
        plot = monitor.query_one("#loss-plot", CurvePlot)
        steps = sum(len(xs) for xs, _ in monitor.losses.values())
        assert set(plot.series) == {"sst", "para", "sts"} and plot.points_drawn == steps  # short run: all drawn
        assert monitor.query_one("#dev-table", DataTable).row_count == 2
        assert monitor.info.state == "finished"
        before = plot.series["sst"][1]
        await pilot.press("minus", "minus", "minus")  # no smoothing: the raw losses
        await wait_for(pilot, lambda: plot.series["sst"][1] != before, what="a replot")
        assert plot.series["sst"][1] == monitor.losses["sst"][1]
        await pilot.press("x")  # a finished run cannot be stopped: a message, no dialog
        assert app.screen is monitor


async def test_monitor_downsamples_a_long_run(tmp_path):
    run = tmp_path / "long"
    run.mkdir()
    (run / "status.json").write_text(json.dumps({"state": "finished", "epoch": 1, "epochs": 1, "step": 60_000,
                                                 "total_steps": 60_000, "started": 1.0, "updated": 2.0}))
    (run / "config.json").write_text(json.dumps({"variant": "rrobin", "tasks": ["sst", "para", "sts"]}))
    with open(run / "metrics.jsonl", "w") as f:
        for s in range(1, 20_001):
            for t in ("sst", "para", "sts"):
                f.write(json.dumps({"kind": "step", "step": 3 * s, "task": t, "loss": 1.0 + 1.0 / s}) + "\n")
    app = WalklessApp(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        app.open_monitor(run)
        await pilot.pause()
        monitor = app.screen
        await wait_for(pilot, lambda: monitor.query_one("#loss-plot", CurvePlot).series, what="the plot")
        plot = monitor.query_one("#loss-plot", CurvePlot)
        assert len(monitor.losses["sst"][0]) == 20_000  # everything stored
        assert all(len(xs) <= 500 for xs, _ in plot.series.values()) and plot.series["sst"][0][-1] == 60_000


# --- Compare -------------------------------------------------------------------------------------------
async def test_compare_two_runs(runs):
    app = WalklessApp(runs)
    async with app.run_test(size=SIZE) as pilot:
        screen = await opened_compare(pilot, [runs / "rr", runs / "ft"])
        table2 = screen.query_one("#table2", DataTable)
        assert table2.row_count == 2
        sst = {str(table2.get_cell(name, "run")): str(table2.get_cell(name, "sst/acc")) for name in ("rr", "ft")}
        assert sum("★" in v for v in sst.values()) >= 1  # the best SST accuracy is marked
        assert str(table2.get_cell("ft", "para/acc")).strip() == "-"  # no Quora head on the SST run
        assert {"variant", "epochs"} <= set(screen.differences)
        assert not any(k == "tasks" or k.startswith(("schedule_plan.", "data_sizes.")) for k in screen.differences)
        assert screen.differences["epochs"] == {"rr": 2, "ft": 1}
        metric = screen.query_one("#compare-metric", Select)
        assert metric.value == "sst/acc"
        plot = screen.query_one("#compare-plot", CurvePlot)
        assert set(plot.series) == {"rr", "ft"} and plot.series["rr"][0] == [1, 2]
        metric.value = "loss: sst"
        await wait_for(pilot, lambda: plot.xlabel == "step", what="the loss curves")
        assert set(plot.series) == {"rr", "ft"}


# --- Score ---------------------------------------------------------------------------------------------
async def test_score_a_sentence_and_a_pair(runs):
    app = WalklessApp(runs)
    async with app.run_test(size=SIZE) as pilot:
        app.open_score(runs / "rr")
        await pilot.pause()
        await pilot.press("escape")  # gone before its checkpoint loaded: the late result is dropped
        app.open_score(runs / "rr")
        await pilot.pause()
        screen = app.screen
        await wait_for(pilot, lambda: screen.scorer is not None, timeout=60, what="the checkpoint to load")
        assert screen.focused.id == "sentence"
        await pilot.press(*"A lovely film.")
        await wait_for(pilot, lambda: screen.sentiment_result and screen.sentiment_result["text"] == "A lovely film.",
                       what="the sentiment")
        bars = screen.query_one("#sentiment-bars", ScoreBars)
        assert len(bars.rows) == 5 and sum(v for _, v, _ in bars.rows) == pytest.approx(1.0, abs=1e-4)
        assert "ms" in text_of(screen.query_one("#sentiment-info"))
        await pilot.press("tab", *"How do I cook rice?", "enter", *"What is the best way to cook rice?", "enter")
        await wait_for(pilot, lambda: screen.pair_result and screen.pair_result["b"].endswith("rice?"),
                       what="the pair")
        r = screen.pair_result
        assert 0 <= r["paraphrase"] <= 1 and 0 <= r["similarity"] <= 5 and r["ms"] > 0
        assert [label for label, _, _ in screen.query_one("#pair-bars", ScoreBars).rows] == \
            ["paraphrase probability", "similarity (0–5)"]


async def test_score_names_what_it_loaded_and_drops_stale_scores(runs, tmp_path):
    """Issue 13: the step loaded is shown; a folder typed in is not named as the dropdown's old run; a checkpoint
    without pair heads, or one that cannot load, leaves no old result on screen."""
    app = WalklessApp(runs)
    async with app.run_test(size=SIZE) as pilot:
        app.open_score(runs / "rr")
        await pilot.pause()
        screen = app.screen
        await wait_for(pilot, lambda: screen.scorer is not None, timeout=60, what="rr to load")
        step = json.loads((runs / "rr" / "best.json").read_text())["step"]
        assert f"step {step}" in text_of(screen.query_one("#score-info"))
        await wait_for(pilot, lambda: screen.query_one("#score-run", Select).value == str(runs / "rr"),
                       what="the dropdown to name rr")
        await pilot.press(*"A lovely film.", "tab", *"How do I cook rice?", "tab", *"How to cook rice?", "enter")
        await wait_for(pilot, lambda: screen.pair_result and screen.sentiment_result, what="both scores")
        assert "ms" in text_of(screen.query_one("#pair-info"))

        copy = shutil.copytree(runs / "ft", tmp_path / "ft-copy")  # an SST-only checkpoint, typed in
        screen.query_one("#score-path").value = str(copy)
        screen.query_one("#score-path").focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.loaded_from == copy, timeout=60, what="the copy to load")
        await pilot.pause(0.1)
        assert screen.query_one("#score-run", Select).value is Select.NULL  # no longer says rr
        assert text_of(screen.query_one("#pair-info")) == "" and screen.pair_result is None
        assert "no pair heads" in str(screen.query_one("#pair-bars", ScoreBars).render())

        screen.query_one("#score-path").value = str(tmp_path / "nowhere")
        screen.query_one("#score-path").focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.error is not None, timeout=60, what="the bad path to fail")
        await pilot.pause(0.1)
        # issue 41: a bad path leaves the loaded checkpoint in use, and the info line says which one scores
        assert screen.loaded_from == copy and screen.scorer is not None
        info = text_of(screen.query_one("#score-info"))
        assert "cannot load" in info and "nowhere" in info and f"still scoring with {copy}" in info


async def test_a_checkpoint_that_does_not_match_its_config_is_a_message(runs, tmp_path):
    other = write_tiny_encoder(tmp_path / "other", hidden=48)  # another encoder's weights
    bad = {}
    for name in ("old", "new"):  # "old": a checkpoint without manifest.json; "new": with one
        bad[name] = tmp_path / name
        shutil.copytree(runs / "ft", bad[name])
        ckpt = bad[name] / json.loads((bad[name] / "best.json").read_text())["path"]
        shutil.copy(other / "model.safetensors", ckpt / "model.safetensors")
        if name == "old":
            (ckpt / "manifest.json").unlink(missing_ok=True)
    app = WalklessApp(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        app.open_score(bad["old"])
        await pilot.pause()
        screen = app.screen
        await wait_for(pilot, lambda: screen.error is not None, timeout=60, what="the load to fail")
        assert "another encoder" in screen.error and screen.scorer is None
        assert "cannot load" in text_of(screen.query_one("#score-info"))
        await pilot.press(*"still alive")
        bars = screen.query_one("#sentiment-bars", ScoreBars)
        await wait_for(pilot, lambda: "no checkpoint" in str(bars.render()), what="the sentence to be refused")

        screen.query_one("#score-path").value = str(bad["new"])
        screen.query_one("#score-path").focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.error is not None and str(bad["new"]) in screen.error, timeout=60,
                       what="the second load to fail")
        assert "model.safetensors" in screen.error and screen.scorer is None
        app.pop_screen()

        app.open_evaluate(bad["old"])
        await pilot.pause()
        ev = app.screen
        await wait_for(pilot, lambda: ev.shown > 0, what="the stored reports")
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: "cannot evaluate" in text_of(ev.query_one("#eval-info")), timeout=60,
                       what="the evaluation to fail")


# --- Evaluate ------------------------------------------------------------------------------------------
async def test_evaluate_shows_confusion_tables_and_sts_distributions(runs, demo_data):
    app = WalklessApp(runs, demo_data)
    async with app.run_test(size=SIZE) as pilot:
        app.open_evaluate(runs / "rr")
        await pilot.pause()
        screen = app.screen
        await wait_for(pilot, lambda: screen.shown > 0 and screen.reports, what="the reports")
        conf = screen.query_one("#conf-sst", DataTable)
        report = screen.reports["sst"]
        assert conf.row_count == 5 and screen.query_one("#conf-para", DataTable).row_count == 2
        counts = [[int(str(conf.get_cell(str(i), str(j)))) for j in range(5)] for i in range(5)]
        assert counts == report["confusion"] and sum(map(sum, counts)) == 105  # every SST dev sentence
        assert screen.query_one("#scores-sst", DataTable).row_count == 6  # 5 classes + macro average
        assert len(screen.query_one("#sts-true", HistogramPlot).values) == 84
        assert sum(screen.query_one("#sts-pred", HistogramPlot).counts()) == 84
        assert screen.query_one("#eval-epoch", Select).value == 2 or screen.query_one("#eval-epoch").value == 1
        await pilot.press("4")
        assert screen.query_one("#eval-tabs").active == "tab-sts"

        shown = screen.shown
        await pilot.press("ctrl+r")  # evaluate the chosen epoch's checkpoint on the data folder, in a worker
        await wait_for(pilot, lambda: screen.shown > shown, timeout=60, what="the evaluation")
        assert "checkpoint" in screen.source and sum(map(sum, screen.reports["sst"]["confusion"])) == 105
        epoch = screen.query_one("#eval-epoch", Select).value
        assert f"of epoch {epoch}" in screen.source and f": epoch {epoch}, step" in screen.source

        screen.query_one("#eval-epoch", Select).value = 1  # issue 13: the epoch chosen is the one ctrl+r scores
        await wait_for(pilot, lambda: "epoch 1 (from metrics.jsonl)" in screen.source, what="epoch 1")
        shown = screen.shown
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: screen.shown > shown, timeout=60, what="the evaluation of epoch 1")
        assert "checkpoint of epoch 1: epoch 1, step" in screen.source or "no checkpoint of epoch 1" in screen.source


# --- Failure cases -------------------------------------------------------------------------------------
def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


async def test_crashed_run_and_half_written_metrics_line(runs, tmp_path):
    crashed = tmp_path / "crashed"
    shutil.copytree(runs / "rr", crashed)
    status = json.loads((crashed / "status.json").read_text())
    status.update(state="running", pid=_dead_pid(), host=socket.gethostname())
    (crashed / "status.json").write_text(json.dumps(status))
    with open(crashed / "metrics.jsonl", "a") as f:
        f.write('{"kind": "step", "step": 999, "task": "sst", "lo')  # the process died mid-line
    nan = tmp_path / "nan"
    shutil.copytree(runs / "ft", nan)
    status = json.loads((nan / "status.json").read_text())
    status.update(state="failed", message="TrainingError: loss is nan at step 7 on task sst")
    (nan / "status.json").write_text(json.dumps(status))
    (tmp_path / "junk").mkdir()  # not a run folder: ignored
    (tmp_path / "odd").mkdir()  # a hand-edited status.json
    (tmp_path / "odd" / "status.json").write_text('{"state": "finished", "epoch": "three"}')

    app = WalklessApp(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        screen = await scanned(pilot)
        by_name = {r.name: r for r in screen.runs}
        assert set(by_name) == {"crashed", "nan", "odd"}
        assert by_name["odd"].state == "damaged" and "status.json: epoch is a str" in by_name["odd"].reason
        assert by_name["crashed"].state == "failed" and "process is gone" in by_name["crashed"].message
        assert "loss is nan" in str(screen.query_one("#runs-table", DataTable).get_cell("nan", "note"))
        for name in ("crashed", "nan"):
            app.open_monitor(tmp_path / name)
            await pilot.pause()
            monitor = app.screen
            await wait_for(pilot, lambda m=monitor: m.polls > 0 and m.epochs, what="the monitor")
            assert monitor.info.state == "failed"
            assert max(monitor.losses["sst"][0]) < 999  # the half line is not read
            app.pop_screen()
        app.open_evaluate(tmp_path / "crashed")
        await pilot.pause()
        await wait_for(pilot, lambda: app.screen.shown > 0 and app.screen.reports, what="reports")
        app.pop_screen()
        app.open_compare([tmp_path / "crashed", tmp_path / "nan"])
        await pilot.pause()
        await wait_for(pilot, lambda: app.screen.updates > 0 and len(app.screen.rows) == 2, what="comparison")
