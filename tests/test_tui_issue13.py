"""Issue 13, "walkless-tui as people use it", driven with Pilot: failures shown where they happen, confirmations
before destructive keys, Compare and Monitor live, the launch form, Evaluate's labels, 80x24 layouts, the footer
and the palette.

Most runs here are hand-written run folders (status.json, config.json, metrics.jsonl) so the tests are quick;
the failed resume is a real ``walkless train --resume`` process that dies.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from options_support import other_values
from rich.console import Console
from textual.widgets import DataTable, Input, Log, Select
from tui_support import opened_compare, scanned, screen_text, text_of, wait_for

from core import launch
from core.config import as_text
from core.launch import LAUNCH_DIR, resume_training
from core.report import compare_table
from core.runs import RunError
from walkless_tui.app import WalklessApp
from walkless_tui.screens.confirm import ConfirmScreen
from walkless_tui.screens.evaluate import epoch_checkpoint
from walkless_tui.screens.launch import VARIANTS, LaunchScreen
from walkless_tui.screens.monitor import MonitorScreen
from walkless_tui.screens.runs import RunsScreen
from walkless_tui.widgets.plots import CurvePlot

BIG, SMALL = (180, 50), (80, 24)
SST_LABELS = ["negative", "somewhat negative", "neutral", "somewhat positive", "positive"]


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


def sst_report(epoch: int) -> dict:
    return {"kind": "report", "task": "sst", "epoch": epoch, "labels": SST_LABELS,
            "confusion": [[5 if i == j else 1 for j in range(5)] for i in range(5)], "precision": [0.5] * 5,
            "recall": [0.5] * 5, "f1": [0.5, 0.4, 0.3, 0.6, 0.7], "support": [9] * 5}


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


# --- failures shown where they happen --------------------------------------------------------------------
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


@pytest.fixture
def resumed_pids():
    yield
    for pid in list(launch._children):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    launch.reap()


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


# --- confirmations ---------------------------------------------------------------------------------------
async def test_d_asks_before_dismissing_a_failed_launch(tmp_path, notes):
    runs = tmp_path / "runs"
    failed_launch(runs, "oops", "error: no such encoder")
    make_run(runs, "kept")
    record = runs / LAUNCH_DIR / "oops.json"
    app = WalklessApp(runs)
    async with app.run_test(size=BIG) as pilot:
        await select_run(pilot, "oops")
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen) and "oops" in text_of(app.screen.query_one("#confirm-question"))
        await pilot.press("n")
        assert record.exists() and isinstance(app.screen, RunsScreen)
        await pilot.press("d", "y")
        assert not record.exists() and not (runs / LAUNCH_DIR / "oops.log").exists()
        await select_run(pilot, "kept")
        await pilot.press("d")  # a run folder is never deleted: a message, no dialog
        assert isinstance(app.screen, RunsScreen) and (runs / "kept" / "status.json").exists()
        assert "deletes no run folder" in notes[-1]


async def test_q_warns_while_runs_train(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    make_run(runs, "training", state="running", step=2, total=10)
    make_run(runs, "done")
    exits: list[bool] = []
    app = WalklessApp(runs)
    async with app.run_test(size=BIG) as pilot:
        monkeypatch.setattr(app, "exit", lambda *a, **k: exits.append(True))  # recorded, not done
        await scanned(pilot, {"training", "done"})
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen) and not exits
        question = text_of(app.screen.query_one("#confirm-question"))
        assert "1 run still training (training)" in question and "go on after the app closes" in question
        await pilot.press("n")
        assert isinstance(app.screen, RunsScreen) and not exits
        await pilot.press("q", "y")
        assert exits == [True]
        (runs / "training" / "status.json").write_text(json.dumps({"state": "stopped", "epoch": 1, "epochs": 2}))
        await scanned(pilot)
        await scanned(pilot)
        await pilot.press("q")  # nothing trains: quits at once
        assert exits == [True, True] and not isinstance(app.screen, ConfirmScreen)
        monkeypatch.undo()


# --- footer and palette ----------------------------------------------------------------------------------
async def test_footer_shows_monitor_resume_and_dismiss_and_the_palette_has_no_twins(tmp_path):
    runs = tmp_path / "runs"
    make_run(runs, "one")
    app = WalklessApp(runs)
    async with app.run_test(size=(200, 30)) as pilot:
        await scanned(pilot, {"one"})
        await wait_for(pilot, lambda: "Monitor" in screen_text(app).splitlines()[-1], what="the footer drawn")
        footer = screen_text(app).splitlines()[-1]
        for shown in ("Monitor", "Resume", "Dismiss failed launch", "New from this", "x Stop"):
            assert shown in footer, shown
        titles = [c.title for c in app.get_system_commands(app.screen)]
        dupes = [t for t in titles if titles.count(t) > 1]
        assert not dupes
        for name in ("Compare", "Evaluate", "Score", "Table 2"):
            assert name in titles and not any(t.startswith(f"{name} (") for t in titles), name
        compare = next(c for c in app.get_system_commands(app.screen) if c.title == "Compare")
        assert "key c" in compare.help  # the screen's own key, with the marked runs


# --- Monitor ---------------------------------------------------------------------------------------------
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


# --- Compare live ----------------------------------------------------------------------------------------
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


# --- the launch form -------------------------------------------------------------------------------------
def test_the_form_offers_every_valid_variant():
    from core.variants import BASES, MODIFIERS, parse_variant

    valid = set()
    for base in BASES:
        for n in range(len(MODIFIERS) + 1):
            for mods in itertools.combinations(MODIFIERS, n):
                name = "+".join([base, *mods])
                with contextlib.suppress(ValueError):
                    valid.add(parse_variant(name).name)
    assert set(VARIANTS) == valid and len(VARIANTS) == len(valid)
    assert {"rrobin-pre", "rrobin+rlayer", "rrobin-full+rlayer+smart"} <= set(VARIANTS)


async def test_launch_form_name_follows_variant_remembers_and_clones(tmp_path, demo_data):
    runs = tmp_path / "runs"
    make_run(runs, "source", variant="rrobin-full+rlayer", lr=1e-4, epochs=3, batch_size=32, log_every=5,
             max_dev=20, lr_schedule="linear", warmup=0.1, layer_decay=0.9, data_dir=None, encoder="minilm-l6")
    app = WalklessApp(runs, demo_data)
    async with app.run_test(size=BIG) as pilot:
        await scanned(pilot, {"source"})
        await pilot.press("n")
        form = app.screen
        assert isinstance(form, LaunchScreen)
        name = form.query_one("#name", Input)
        assert name.value.startswith("rrobin-")
        form.query_one("#variant", Select).value = "finetune"
        await pilot.pause()
        assert name.value.startswith("finetune-")  # the generated name follows the variant
        form.query_one("#variant", Select).value = "rrobin-full+rlayer+smart"
        await pilot.pause()
        assert name.value.startswith("rrobin-full_rlayer_smart-") and form.query_one("#smart-fields").display
        form.query_one("#epochs", Input).value = "2"
        form.query_one("#max_dev", Input).value = "16"
        form.query_one("#log_every", Input).value = "1"
        _, config, problems = form.form()
        assert not problems and (config.max_dev, config.log_every, config.epochs) == (16, 1, 2)
        name.value = "mine"
        form.query_one("#variant", Select).value = "annealed"
        await pilot.pause()
        assert name.value == "mine"  # edited by the user: kept
        await pilot.press("escape")
        await pilot.press("n")  # the form comes back as it was left
        form = app.screen
        await pilot.pause()
        assert form.query_one("#variant", Select).value == "annealed"
        assert form.query_one("#max_dev", Input).value == "16" and form.query_one("#epochs", Input).value == "2"
        assert form.query_one("#name", Input).value.startswith("annealed-")
        await pilot.press("escape")

        await select_run(pilot, "source")
        await pilot.press("N")  # a new run from this one
        form = app.screen
        assert isinstance(form, LaunchScreen)
        await pilot.pause()
        assert form.query_one("#variant", Select).value == "rrobin-full+rlayer"
        assert form.query_one("#name", Input).value.startswith("rrobin-full_rlayer-")
        assert [form.query_one(f"#{k}", Input).value for k in ("epochs", "batch_size", "lr", "max_dev")] == \
            ["3", "32", "0.0001", "20"]
        assert "New run from source" in text_of(form.query_one("#launch-template"))
        _, config, problems = form.form()
        assert not problems  # every setting of the source run comes along, the ones under "more options" too
        assert (config.lr_schedule, config.warmup, config.layer_decay) == ("linear", 0.1, 0.9)


async def test_the_launch_form_has_a_field_for_every_training_option(tmp_path, demo_data):
    """The form is generated from TrainConfig: every option but the run's folder and name has a field, and what
    is typed in them is what the run gets."""
    app = WalklessApp(tmp_path / "runs", demo_data)
    values = {k: v for k, v in other_values().items() if k not in ("runs_dir", "name")}
    values["per_task_step"] = True  # --sst-lr (not its default here) needs one step per task
    values["pair_input"] = "bi"  # --pair-symmetric (not its default here) needs bi-encoded pairs
    values["grad_surgery"] = "none"  # --grad-surgery needs the summed step (--no-per-task-step)
    async with app.run_test(size=BIG) as pilot:
        await pilot.press("n")
        form = app.screen
        await pilot.pause()
        form.fill({k: as_text(v) for k, v in values.items()})
        await pilot.pause()
        assert set(form.values()) == set(values)
        _, config, problems = form.form()
        assert not problems
        values["data_dir"] = str(Path(values["data_dir"]).absolute())
        assert {k: config.flat()[k] for k in values} == values
        assert config.runs_dir == str(tmp_path / "runs")


# --- Evaluate --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [SMALL, BIG])
async def test_evaluate_keeps_sst_labels_whole_at_any_size(tmp_path, size):
    runs = tmp_path / "runs"
    run = make_run(runs, "ev", variant="finetune", task="sst", records=[
        sst_report(1), epoch_record(1, 0.5), sst_report(2), epoch_record(2, 0.6)])
    (run / "best.json").write_text(json.dumps({"epoch": 2, "path": "checkpoints/best"}))
    app = WalklessApp(runs)
    async with app.run_test(size=size) as pilot:
        app.open_evaluate(run)
        await pilot.pause()
        screen = app.screen
        await wait_for(pilot, lambda: screen.shown > 0 and screen.reports, what="the reports")
        screen.query_one("#eval-epoch", Select).value = 1
        await wait_for(pilot, lambda: "epoch 1 (from" in screen.source, what="epoch 1")
        await wait_for(pilot, lambda: "3 somewhat positive" in screen_text(app), what="the epoch-1 matrix drawn")
        text = screen_text(app)
        assert "epoch 1" in text  # the epoch dropdown on one line, not one letter per line
        for label in ("1 somewhat negative", "3 somewhat positive"):
            assert label in text, label  # the confusion matrix's rows
        scores = screen.query_one("#scores-sst", DataTable)
        classes = [str(scores.get_cell(str(i), "class")) for i in range(5)]
        assert classes == SST_LABELS and scores.columns["class"].get_render_width(scores) >= len("somewhat negative")


def test_ctrl_r_evaluates_the_chosen_epochs_checkpoint(tmp_path):
    run = tmp_path / "run"
    for folder, epoch in (("best", 2), ("step-00000002", 1), ("step-00000004", 2)):
        (run / "checkpoints" / folder).mkdir(parents=True)
        (run / "checkpoints" / folder / "walkless.json").write_text(json.dumps({"epoch": epoch, "epoch_done": True}))
    (run / "best.json").write_text(json.dumps({"epoch": 2, "path": "checkpoints/best"}))
    assert epoch_checkpoint(run, 2) == (run / "checkpoints" / "best", "best checkpoint of epoch 2")
    assert epoch_checkpoint(run, 1) == (run / "checkpoints" / "step-00000002", "checkpoint of epoch 1")
    path, which = epoch_checkpoint(run, 3)
    assert path == run and "no checkpoint of epoch 3 is kept" in which


# --- 80x24 -----------------------------------------------------------------------------------------------
async def test_runs_list_shows_its_metrics_at_80x24(tmp_path):
    runs = tmp_path / "runs"
    make_run(runs, "rrobin_smart-20260101-120000", variant="rrobin+smart",
             records=[{"kind": "epoch", "epoch": 1, "step": 2, "dev": {"sst/acc": 0.41, "para/acc": 0.7}}])
    app = WalklessApp(runs)
    async with app.run_test(size=SMALL) as pilot:
        await scanned(pilot, {"rrobin_smart-20260101-120000"})
        await wait_for(pilot, lambda: "0.410" in screen_text(app) and "metrics:" in screen_text(app),
                       what="the row and its detail drawn")
        text = screen_text(app)
        assert "SST" in text and "0.410" in text and "Quora" in text  # short headers under 110 columns
        assert "metrics: the last epoch's dev values" in text  # which numbers these are (Compare: best per column)


def test_walkless_compare_keeps_the_variant_whole_at_80_columns():
    rows = [{"name": "rrobin-full_rlayer_smart-20260101-120000", "variant": "rrobin-full+rlayer+smart",
             "sst/acc": 0.41, "para/acc": 0.7, "sts/pearson": 0.5, "seconds": 12.0,
             "settings": {"lr": 1e-4, "smart": {"lam": 5.0}, "train_sizes": {"sst": 8544, "para": 141506}}},
            {"name": "ft", "variant": "finetune", "sst/acc": 0.45, "seconds": 3.0,
             "settings": {"lr": 1e-5, "train_sizes": {"sst": 8544}}}]
    for width in (80, 160):
        buf = io.StringIO()
        console = Console(file=buf, width=width)
        console.print(compare_table(rows, width=width))
        lines = buf.getvalue().splitlines()
        assert max(len(line) for line in lines) <= width
        assert any("rrobin-full+rlayer+smart" in line and "0.410" in line and "12.0" in line for line in lines)
        assert sum("lr 0.0001" in line for line in lines) == 1  # the settings that differ, once, not wrapped away


async def test_launch_hints_are_not_cut_at_80x24(tmp_path, demo_data):
    app = WalklessApp(tmp_path / "runs", demo_data)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("n")
        form = app.screen
        await pilot.pause()
        checked = 0
        for hint in form.query(".form-hint"):
            plain = text_of(hint)
            if hint.parent.size.width and plain:  # a laid-out row (the SMART rows are hidden for rrobin)
                assert hint.size.width >= 10 and hint.size.width * hint.size.height >= len(plain), plain
                assert hint.parent.size.width <= 80
                checked += 1
        assert checked >= 10


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


async def test_a_note_with_tags_is_kept_in_the_run_folder_and_filtered_on(tmp_path):
    runs = tmp_path / "runs"
    make_run(runs, "one")
    make_run(runs, "two")
    app = WalklessApp(runs)
    async with app.run_test(size=BIG) as pilot:
        screen = await select_run(pilot, "two")
        await pilot.press("a")
        await pilot.press(*"#best lr sweep", "enter")
        assert (runs / "two" / "notes.txt").read_text() == "#best lr sweep\n"
        await wait_for(pilot, lambda: screen.notes.get("two") == "#best lr sweep", what="the note")
        assert "note: #best lr sweep" in text_of(screen.query_one("#run-detail"))
        table = screen.query_one("#runs-table", DataTable)
        assert str(table.get_cell("two", "note")) == "#best lr sweep"
        await pilot.press("slash", *"#best", "enter")
        assert [str(k.value) for k in table.rows] == ["two"]
        await pilot.press("slash", "escape")
        await select_run(pilot, "two")
        await pilot.press("a", "escape")  # escape leaves it as it was
        assert (runs / "two" / "notes.txt").exists()


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
