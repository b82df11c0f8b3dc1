"""Issue 41 (the app's second pass), driven with Pilot on tiny real runs: the runs list at 80x24 (every metric,
names cut in the middle, the most used keys in the footer), damaged run folders, archiving, opening any sweep,
live progress (ETA from the logged steps, the evaluation phase), the launch form, Compare's selections and
Evaluate in a worker."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from textual.widgets import DataTable
from tui_support import scanned, screen_text, wait_for

from core.config import TrainConfig
from core.runs import RunState, list_runs, load_run
from core.train import train
from walkless_tui.app import WalklessApp
from walkless_tui.constants import middle_cut

LONG = "rrobin-full_rlayer-20261204-153012"


@pytest.fixture(scope="module")
def runs(tiny_encoder, demo_data, tmp_path_factory) -> Path:
    """A runs folder with a 2-epoch multitask run under a long generated-style name, and a single-task run."""
    runs = tmp_path_factory.mktemp("tui41-runs")
    common = dict(encoder=str(tiny_encoder), data_dir=str(demo_data), runs_dir=str(runs), batch_size=16, lr=1e-3,
                  log_every=1, max_train=32, max_dev=16)
    train(TrainConfig(variant="rrobin", name=LONG, epochs=2, **common))
    train(TrainConfig(variant="finetune", task="sst", name="ft", epochs=1, **common))
    return runs


@pytest.fixture
def runs_copy(runs, tmp_path) -> Path:
    return Path(shutil.copytree(runs, tmp_path / "runs"))


def damage(runs: Path) -> dict[str, str]:
    """Run folders broken in the ways a hand edit or another tool breaks them -> a word of each reason."""
    cases = {
        "half-config": ('{"variant": "rrobin", ', "not JSON"),
        "list-config": ("[1, 2]", "list where an object"),
        "tasks-text": (json.dumps({"variant": "rrobin", "tasks": "sst"}), "tasks is a str"),
    }
    for name, (text, _) in cases.items():
        (runs / name).mkdir()
        (runs / name / "config.json").write_text(text)
        (runs / name / "status.json").write_text(json.dumps({"state": "finished", "started": 1.0}))
    (runs / "status-list").mkdir()
    (runs / "status-list" / "config.json").write_text(json.dumps({"variant": "rrobin"}))
    (runs / "status-list" / "status.json").write_text("[]")
    return {**{n: why for n, (_, why) in cases.items()}, "status-list": "status.json: list"}


def test_load_run_names_what_is_damaged(tmp_path):
    expected = damage(tmp_path)
    listed = {r.name: r for r in list_runs(tmp_path)}
    assert set(listed) == set(expected)
    for name, why in expected.items():
        assert listed[name].state == RunState.DAMAGED, name
        assert why in listed[name].reason, (name, listed[name].reason)
        assert not listed[name].state.active and not listed[name].state.ended  # neither stoppable nor resumable


def test_a_good_run_is_not_damaged(runs):
    info = load_run(runs / LONG)
    assert info.state == RunState.FINISHED and info.reason is None and info.variant == "rrobin"


def test_middle_cut_keeps_both_ends():
    cut = middle_cut(LONG, 18)
    assert len(cut) == 18 and cut.startswith("rrobin-f") and cut.endswith("153012") and "…" in cut
    assert middle_cut("short", 18) == "short"


async def test_80x24_shows_every_metric_of_the_runs_and_the_main_keys(runs):
    app = WalklessApp(runs)
    async with app.run_test(size=(80, 24)) as pilot:
        await scanned(pilot, {LONG, "ft"})
        await pilot.pause(0.2)
        text = screen_text(app)
        header = next(line for line in text.splitlines() if "state" in line and "progress" in line)
        for label in ("SST", "Quora", "STS"):
            assert label in header, header
        rr = load_run(runs / LONG)
        row = next(line for line in text.splitlines() if "rrobin-" in line and "finished" in line)
        for metric in ("sst/acc", "para/acc", "sts/pearson"):
            assert f"{rr.dev[metric]:.3f}" in row, (metric, row)
        assert middle_cut(LONG, 18) in row  # cut in the middle: the variant and the time both show
        footer = text.splitlines()[-1]
        for key in ("Monitor", "n New", "space Mark", "c Compare", "t Table 2", "s Score"):
            assert key in footer, footer
        await pilot.resize_terminal(160, 48)
        await pilot.pause(0.3)
        assert LONG in screen_text(app)  # wide again: the whole name


async def test_damaged_runs_are_listed_as_damaged_with_their_reason(runs_copy):
    expected = damage(runs_copy)
    app = WalklessApp(runs_copy)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await scanned(pilot, set(expected))
        table = screen.query_one("#runs-table", DataTable)
        for name, why in expected.items():
            assert str(table.get_cell(name, "state")) == "damaged"
            assert why in str(table.get_cell(name, "note"))
        table.move_cursor(row=screen._keys.index("list-config"))
        await pilot.pause()
        assert "damaged: config.json: list" in str(screen.query_one("#run-detail").render())
        await pilot.press("r")  # not resumable: a message, no crash
        assert app.screen is screen
        app.open_compare([])  # nothing to compare in a damaged folder: not offered
        await pilot.pause()
        box = app.screen.query_one("#compare-runs")
        await wait_for(pilot, lambda: box.option_count > 0, what="the run list")
        assert {str(box.get_option_at_index(i).value).rsplit("/", 1)[-1] for i in range(box.option_count)} == \
            {LONG, "ft"}


async def test_archive_moves_a_run_to_the_archive_after_a_yes(runs_copy, notes):
    app = WalklessApp(runs_copy)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await scanned(pilot, {"ft"})
        table = screen.query_one("#runs-table", DataTable)
        table.move_cursor(row=screen._keys.index("ft"))
        await pilot.press("A", "n")  # no: nothing moves
        assert (runs_copy / "ft").is_dir()
        await pilot.press("A", "y")
        await wait_for(pilot, lambda: "ft" not in {r.name for r in screen.runs}, what="the run to leave the list")
        assert not (runs_copy / "ft").exists()
        assert (runs_copy / ".archive" / "ft" / "config.json").is_file()  # moved whole, nothing deleted
        assert any("archived" in n or ".archive" in n for n in notes)


# --- item 1: progress and ETA from the logged steps ------------------------------------------------------
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


# --- item 2: the launch form says what it will run ----------------------------------------------------
async def test_an_empty_data_dir_is_the_apps_and_the_runs_data_is_shown(runs, tmp_path, demo_data):
    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    app = WalklessApp(runs, data)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await scanned(pilot, {LONG})
        await pilot.press("n")
        await pilot.pause()
        form = app.screen
        form.query_one("#data_dir").value = ""
        _, config, problems = form.form()
        assert not problems and config.data_dir == str(data)  # not the demo data
        assert str(data) in form.query_one("#data_dir").placeholder
        await pilot.press("escape")
        table = screen.query_one("#runs-table", DataTable)
        table.move_cursor(row=screen._keys.index(LONG))
        await pilot.pause()
        assert "(the demo data)" in str(screen.query_one("#run-detail").render())  # trained on demo_data


async def test_lr_and_batch_follow_the_variant_unless_typed(runs):
    from textual.widgets import Input, Select, Static

    app = WalklessApp(runs)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await scanned(pilot, {"ft"})
        screen.query_one("#runs-table", DataTable).move_cursor(row=screen._keys.index("ft"))
        await pilot.press("N")  # a new run from ft (finetune, lr 1e-3 and batch 16 as trained)
        await pilot.pause()
        form = app.screen
        lr, batch = form.query_one("#lr", Input), form.query_one("#batch_size", Input)
        assert (lr.value, batch.value) == ("0.001", "16")
        form.query_one("#variant", Select).value = "rrobin+smart"
        await pilot.pause()
        assert (lr.value, batch.value) == ("1e-05", "16")  # the source's values followed the variant
        about = str(form.query_one("#variant-about", Static).render())
        assert "SST, Quora, STS in turn" in about and "SMART" in about
        form.query_one("#variant", Select).value = "rrobin"
        await pilot.pause()
        assert (lr.value, batch.value) == ("1e-05", "64")
        lr.value = "3e-05"  # typed: kept from now on
        form.query_one("#variant", Select).value = "pretrain"
        await pilot.pause()
        assert (lr.value, batch.value) == ("3e-05", "64")
        _, config, problems = form.form()
        assert not problems and config.lr == 3e-05 and config.variant == "pretrain"


async def test_the_form_opens_with_fewer_widgets_and_keeps_every_option(runs):
    """The "more options" and SMART rows are made when first shown; their values (a template's) still launch."""
    from textual.widgets import Collapsible

    app = WalklessApp(runs)
    async with app.run_test(size=(160, 48)) as pilot:
        await scanned(pilot, {LONG})
        app.open_launch({"variant": "rrobin+smart", "lr_schedule": "linear", "warmup": 0.1,
                         "smart": {"lam": 2.0}})
        await pilot.pause()
        form = app.screen
        assert not form.query("#lr_schedule")  # not made yet
        _, config, problems = form.form()
        assert not problems and (config.lr_schedule, config.warmup, config.smart.lam) == ("linear", 0.1, 2.0)
        form.query_one("#more-options", Collapsible).collapsed = False
        await wait_for(pilot, lambda: not form.pending, what="the more options rows")
        assert str(form.query_one("#lr_schedule").value) == "linear" and form.query_one("#warmup").value == "0.1"


# --- item 4: Compare ---------------------------------------------------------------------------------------
async def test_compare_highlights_keeps_choices_and_marks_only_contested_bests(runs):
    from textual.widgets import Select, SelectionList
    from tui_support import opened_compare

    app = WalklessApp(runs)
    async with app.run_test(size=(160, 48)) as pilot:
        await scanned(pilot, {LONG, "ft"})
        screen = await opened_compare(pilot, [runs / LONG, runs / "ft"])
        box = screen.query_one("#compare-runs", SelectionList)
        assert box.highlighted == 0 and box.option_count == 2
        # ★: SST has two values to compare, Quora and STS only the rrobin run's
        table = screen.query_one("#table2", DataTable)
        cells = {k: [str(table.get_cell(r, k)) for r in (LONG, "ft")] for k in ("sst/acc", "para/acc", "sts/pearson")}
        sst = [float(c.rstrip(" ★")) for c in cells["sst/acc"]]
        assert ["★" in c for c in cells["sst/acc"]] == [v == max(sst) for v in sst]  # the best (ties: both)
        assert not any("★" in c for c in cells["para/acc"] + cells["sts/pearson"]), cells
        # chosen and not chosen differ without colour: X, or an empty box
        await pilot.press("space")  # the highlighted first run: unchosen now
        await wait_for(pilot, lambda: len(box.selected) == 1, what="the choice")
        await pilot.pause(0.2)
        boxes = [line[line.index("▐"):line.index("▌") + 1] for line in screen_text(app).splitlines() if "▐" in line]
        assert sorted(boxes) == ["▐ ▌", "▐X▌"], boxes
        # a refresh keeps the choice and an open metric dropdown
        metric = screen.query_one("#compare-metric", Select)
        metric.expanded = True
        n = screen.updates
        screen._run_stamps = {}  # as if a chosen run wrote new metrics
        screen.poll_runs()
        await wait_for(pilot, lambda: screen.updates > n, what="a refresh")
        assert metric.expanded and len(box.selected) == 1
        screen._show_runs(list(screen.index.scan()))  # the list made again
        await pilot.pause()
        assert len(box.selected) == 1


# --- item 5: Evaluate in a worker: progress, cap, cancel; no empty headings -------------------------------
async def test_evaluate_shows_progress_takes_a_cap_and_can_be_cancelled(runs, demo_data, monkeypatch):
    from textual.widgets import Input, ProgressBar

    import core.checkpoint

    app = WalklessApp(runs, demo_data)
    async with app.run_test(size=(160, 48)) as pilot:
        await scanned(pilot, {LONG})
        app.open_evaluate(runs / LONG)
        await pilot.pause()
        screen = app.screen
        await wait_for(pilot, lambda: screen.shown > 0, what="the run's reports")
        for heading in screen.query(".heading-cfimdb"):  # no CFIMDB report in this run: no headings over nothing
            assert not heading.display
        assert all(h.display for h in screen.query(".heading-sst"))

        seen: list[tuple] = []
        progress = screen._progress
        monkeypatch.setattr(screen, "_progress", lambda d, t: (seen.append((d, t)), progress(d, t)))
        screen.query_one("#eval-cap", Input).value = "5"
        n = screen.shown
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: screen.shown > n, timeout=60, what="the evaluation")
        assert sum(screen.reports["sst"]["support"]) == 5 and len(screen.reports["sts"]["true"]) == 5
        assert seen[0] == (0, 15) and seen[-1] == (15, 15)  # 5 each of SST, Quora, STS
        assert "first 5 per task" in screen.source and not screen.query_one("#eval-progress", ProgressBar).display

        load = core.checkpoint.load_checkpoint

        def load_then_cancel(path):  # x pressed while the checkpoint loads: stopped before the first batch ends
            out = load(path)
            screen.cancel.set()
            return out

        monkeypatch.setattr(core.checkpoint, "load_checkpoint", load_then_cancel)
        before = screen.reports
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: not screen.evaluating, timeout=60, what="the cancel")
        assert "cancelled" in str(screen.query_one("#eval-info").render()) and screen.reports is before
        screen.query_one("#eval-cap", Input).value = "zero"
        await pilot.press("ctrl+r")
        assert "cap 'zero'" in str(screen.query_one("#eval-info").render()) and not screen.evaluating


# --- item 1 in the app: Monitor shows the evaluation phase and an ETA from the logged pace ---------------
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


async def test_a_wider_value_widens_its_column(runs_copy):
    app = WalklessApp(runs_copy)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await scanned(pilot, {LONG})
        with open(runs_copy / LONG / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"kind": "epoch", "epoch": 3, "step": 99, "time": 1.0,
                                "dev": {"sst/acc": 0.5, "para/acc": 0.5, "sts/pearson": -0.066}}) + "\n")
        await wait_for(pilot, lambda: any(r.dev.get("sts/pearson") == -0.066 for r in screen.runs), what="a rescan")
        await pilot.pause(0.2)
        assert "-0.066" in screen_text(app)


# --- item 3: 60x20 ------------------------------------------------------------------------------------------
async def test_60x20_still_shows_the_three_metrics(runs):
    app = WalklessApp(runs)
    async with app.run_test(size=(60, 20)) as pilot:
        await scanned(pilot, {LONG})
        await pilot.pause(0.2)
        header = next(line for line in screen_text(app).splitlines() if "progress" in line)
        assert all(label in header for label in ("SST", "Quora", "STS")), header


async def test_score_keeps_its_checkpoint_when_a_path_is_bad_and_clears_the_path_box(runs, tmp_path):
    from textual.widgets import Input, Select

    app = WalklessApp(runs)
    async with app.run_test(size=(60, 20)) as pilot:
        await scanned(pilot, {"ft"})
        app.open_score(runs / "ft")
        await pilot.pause()
        screen = app.screen
        await wait_for(pilot, lambda: screen.scorer is not None, timeout=60, what="the checkpoint")
        loaded = screen.scorer
        load = screen.query_one("#score-load")
        assert load.region.right <= 60 and load.size.width >= 6  # the Load button is not clipped at 60 columns
        screen.query_one("#score-path", Input).value = str(tmp_path / "nothing")
        await pilot.click("#score-load")
        await wait_for(pilot, lambda: screen.error is not None, timeout=60, what="the bad path")
        assert screen.scorer is loaded and "still scoring with" in str(screen.query_one("#score-info").render())
        await wait_for(pilot, lambda: len(screen.query_one("#score-run", Select)._options) > 1, what="the runs")
        screen.query_one("#score-run", Select).value = str(runs / LONG)
        await pilot.pause()
        assert screen.query_one("#score-path", Input).value == ""


# --- item 6: open any sweep folder ---------------------------------------------------------------------
async def test_T_opens_a_sweep_folder_typed_in(runs, tmp_path, tiny_encoder):
    from core.table2 import Table2Config, write_table2
    from walkless_tui.screens.compare import CompareScreen

    sweep = tmp_path / "elsewhere" / "my-sweep"
    sweep.mkdir(parents=True)
    write_table2(Table2Config(runs_dir=str(sweep), rows=("finetune",), encoder=str(tiny_encoder)))
    app = WalklessApp(runs)
    async with app.run_test(size=(160, 48)) as pilot:
        await scanned(pilot, {LONG})
        await pilot.press("T")
        ask = app.screen.query_one("#ask-input")
        ask.value = str(sweep)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, CompareScreen) and app.screen.table2_path == sweep / "table2.json"


# --- item 7 (part): a sparkline of each run's dev metrics in the runs list ----------------------------------
def test_sparkline_scales_between_its_own_min_and_max():
    from walkless_tui.series import sparkline

    assert sparkline([0.1, 0.2, 0.3]) == "▁▅█"
    assert sparkline([0.5, 0.5]) == "▄▄" and sparkline([]) == ""
    assert len(sparkline(list(range(20)), width=8)) == 8


async def test_the_runs_list_draws_each_runs_dev_trend(runs):
    from walkless_tui.series import sparkline

    info = load_run(runs / LONG)
    assert len(info.history) == 2  # two epochs, each the mean of its dev metrics
    app = WalklessApp(runs)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await scanned(pilot, {LONG})
        cell = str(screen.query_one("#runs-table", DataTable).get_cell(LONG, "trend"))
        assert cell == sparkline(info.history) and len(cell) == 2


# --- item 7: Monitor's system line, SVG export ---------------------------------------------------------------
def test_the_system_line_reads_cpu_memory_and_the_run_process(tmp_path):
    import os

    from walkless_tui.system import SystemSampler, memory

    if memory() is None:
        pytest.skip("no /proc/meminfo (not Linux)")
    s = SystemSampler()
    first = s.line(os.getpid())
    assert "memory" in first and "GiB" in first and "run RSS" in first and ("GPU" in first)
    sum(i * i for i in range(200_000))  # some CPU time between the samples
    second = s.line(os.getpid())
    assert "CPU " in second and "run CPU" in second
    fake = tmp_path / "proc"
    fake.mkdir()  # nothing readable: says so instead of failing
    assert SystemSampler(proc=fake).line(12345).startswith("CPU n/a  memory n/a")


async def test_monitor_shows_the_system_line_and_f2_exports_the_screen(runs, tmp_path):
    app = WalklessApp(runs)
    app.export_dir = tmp_path
    async with app.run_test(size=(160, 48)) as pilot:
        await scanned(pilot, {LONG})
        app.open_monitor(runs / LONG)
        await pilot.pause()
        monitor = app.screen
        await wait_for(pilot, lambda: monitor.polls > 0, what="the monitor")
        assert "system: " in str(monitor.query_one("#monitor-system").render())
        await pilot.press("f2")
        await pilot.pause()
        files = list(tmp_path.glob("walkless-monitor-*.svg"))
        assert len(files) == 1 and "<svg" in files[0].read_text()[:2000]
