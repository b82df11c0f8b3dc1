"""The runs list: damaged folders with their reason, archiving, opening any sweep, every metric at 80x24 and 60x20, names cut in the middle, columns that widen, the trend sparkline."""

from __future__ import annotations

import json
from pathlib import Path

from support.tui import LONG, scanned, screen_text, wait_for, withhold_idle_widths
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

from core.runs import RunState, list_runs, load_run
from walkless_tui.app import WalklessApp
from walkless_tui.constants import middle_cut


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


async def test_a_wider_value_shows_whole_without_waiting_for_the_tables_idle(runs_copy, monkeypatch):
    """A DataTable widens an auto-width column on its next idle, which a busy machine delays (CI saw "-0.06" after a
    rescan); the runs list sets its widths when it fills or updates the rows."""
    withhold_idle_widths(monkeypatch, "runs-table")
    app = WalklessApp(runs_copy)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await scanned(pilot, {LONG})
        sts = screen.query_one("#runs-table", DataTable).columns[ColumnKey("sts/pearson")]
        assert sts.content_width == 5  # "STS r" and "0.8xx": as wide as its cells from the first fill

        def epoch(n: int, r: float) -> None:
            with open(runs_copy / LONG / "metrics.jsonl", "a") as f:
                f.write(json.dumps({"kind": "epoch", "epoch": n, "step": 99, "time": 1.0,
                                    "dev": {"sst/acc": 0.5, "para/acc": 0.5, "sts/pearson": r}}) + "\n")

        epoch(3, -0.066)
        await wait_for(pilot, lambda: any(r.dev.get("sts/pearson") == -0.066 for r in screen.runs), what="a rescan")
        await pilot.pause(0.2)
        assert "-0.066" in screen_text(app) and sts.content_width == 6
        epoch(4, 0.5)  # and narrows again
        await wait_for(pilot, lambda: any(r.dev.get("sts/pearson") == 0.5 for r in screen.runs), what="a rescan")
        assert sts.content_width == 5


async def test_60x20_still_shows_the_three_metrics(runs):
    app = WalklessApp(runs)
    async with app.run_test(size=(60, 20)) as pilot:
        await scanned(pilot, {LONG})
        await pilot.pause(0.2)
        header = next(line for line in screen_text(app).splitlines() if "progress" in line)
        assert all(label in header for label in ("SST", "Quora", "STS")), header


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



async def test_the_detail_line_shows_encoder_and_data_folders_alike(tmp_path, monkeypatch):
    """Both folders as the user would type them: relative to the working folder when inside it."""
    from support.runfolders import make_run

    monkeypatch.chdir(tmp_path)
    (tmp_path / "enc").mkdir()
    (tmp_path / "data").mkdir()
    make_run(tmp_path / "runs", "mine", encoder=str(tmp_path / "enc"), data_dir=str(tmp_path / "data"))
    app = WalklessApp(tmp_path / "runs")
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await scanned(pilot, {"mine"})
        await pilot.pause()
        detail = str(screen.query_one("#run-detail").render())
        assert "encoder enc" in detail and "data data" in detail and str(tmp_path) not in detail.split("·", 1)[1]
