"""The app's Compare screen on a Table 2 sweep (``walkless table2``'s table2.json), driven with Pilot.

A real two-row sweep is trained here (tiny encoder, demo data, two steps a row); the screen is opened with
the Runs screen's key, from the command line (``--table2``) and the palette, refreshes when the sweep
rewrites its table2.json, and says where it looked when there is none.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support.tui import screen_text, text_of, wait_for, withhold_idle_widths
from textual.widgets import DataTable, SelectionList, Static

from core.report import ENCODER_NOTE
from core.runs import write_json_atomic
from core.table2 import Table2Config, read_table2, run_table2, write_table2
from walkless_tui import app as app_module
from walkless_tui.app import WalklessApp
from walkless_tui.runindex import find_table2
from walkless_tui.screens.compare import CompareScreen, sweep_caption, sweep_cells
from walkless_tui.screens.runs import RunsScreen
from walkless_tui.widgets.plots import CurvePlot

SIZE = (140, 42)
COMMAND = "walkless table2 --runs-dir sweep --max-train 16 --max-dev 8 --max-steps 2 --rows finetune,rrobin"


def sweep_config(runs_dir: Path, tiny_encoder: Path, rows: tuple[str, ...] = ("finetune", "rrobin")) -> Table2Config:
    return Table2Config(runs_dir=str(runs_dir), rows=rows, encoder=str(tiny_encoder), max_train=16, max_dev=8,
                        max_steps=2, command=COMMAND)


@pytest.fixture(scope="module")
def sweep(tiny_encoder, demo_data, tmp_path_factory) -> Path:
    """``runs/table2``: a finished sweep of two rows (finetune, rrobin), as `walkless table2` leaves it."""
    runs = tmp_path_factory.mktemp("tui-table2") / "runs"
    run_table2(sweep_config(runs / "table2", tiny_encoder))
    return runs / "table2"


@pytest.fixture
def sweep_copy(sweep, tmp_path) -> Path:
    """A copy of the sweep a test may rewrite."""
    return Path(shutil.copytree(sweep, tmp_path / "table2"))


def cell(table: DataTable, row: str, column: str) -> str:
    return str(table.get_cell(row, column))


async def shown_sweep(pilot, rows: int) -> CompareScreen:
    screen = pilot.app.screen
    assert isinstance(screen, CompareScreen) and screen.table2_path is not None
    await wait_for(pilot, lambda: screen.sweep_reads > 0 and screen.updates > 0
                   and screen.query_one("#table2", DataTable).row_count == rows, what="the Table 2 sweep")
    return screen


# --- opening it ------------------------------------------------------------------------------------
async def test_table2_key_shows_our_numbers_beside_the_reports(sweep):
    data = read_table2(sweep)
    ours = {r["row"]: r for r in data["rows"]}
    app = WalklessApp(sweep)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        assert "Table 2" in commands and "Table 2 (t)" not in commands  # one entry, naming its key
        assert "key t" in commands["Table 2"].help
        await pilot.press("t")
        screen = await shown_sweep(pilot, rows=2)
        assert screen.table2_path == sweep / "table2.json" and screen.runs_root == sweep
        table = screen.query_one("#table2", DataTable)
        assert [str(k.value) for k in table.rows] == ["finetune", "rrobin"]
        assert [str(c.label) for c in table.columns.values()] == [
            "row", "SST acc", "Quora acc", "STS r", "s/epoch", "epochs", "state"]
        for row, report in (("finetune", (0.525, 0.522, 0.240, 25)), ("rrobin", (0.524, 0.726, 0.583, 67))):
            for key, rep in zip(("sst/acc", "para/acc", "sts/pearson"), report, strict=False):
                text = cell(table, row, key)
                assert f"{ours[row][key]:.3f}" in text and f"({rep:.3f})" in text
            assert cell(table, row, "seconds").endswith(f"({report[3]})")
            assert cell(table, row, "epochs") == "1/1" and cell(table, row, "state") == "finished"
        sts = {row: cell(table, row, "sts/pearson") for row in ours}  # best STS r of the two marked ★
        best = max(ours, key=lambda r: ours[r]["sts/pearson"])
        assert "★" in sts[best] and sum("★" in v for v in sts.values()) == 1
        note = text_of(screen.query_one("#compare-note", Static))
        assert f"command: {COMMAND}" in note and "machine:" in note and "max_train 16" in note
        assert ENCODER_NOTE not in note  # a tiny encoder, not MiniLM
        # the curves are the rows' runs, chosen
        box = screen.query_one("#compare-runs", SelectionList)
        assert {Path(v).name for v in box.selected} == {"finetune", "rrobin"}
        plot = screen.query_one("#compare-plot", CurvePlot)
        assert set(plot.series) == {"finetune", "rrobin"}
        # enter on a row takes its run off the curves (and puts it back)
        table.focus()
        table.move_cursor(row=1)
        n = screen.updates
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.updates > n and set(plot.series) == {"finetune"}, what="rrobin off")
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)


async def test_sweep_and_differences_tables_show_whole_cells_without_waiting_for_their_idle(sweep, monkeypatch):
    """A DataTable widens auto-width columns on its next idle, which a busy machine delays; the sweep table (refilled
    when table2.json changes) and the differences table set their widths when they are filled."""
    withhold_idle_widths(monkeypatch, "table2", "differences")
    app = WalklessApp(sweep)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("t")
        screen = await shown_sweep(pilot, rows=2)
        await pilot.pause(0.2)
        shown = screen_text(app)
        table = screen.query_one("#table2", DataTable)
        for row in ("finetune", "rrobin"):
            assert all(str(c) in shown for c in table.get_row(row)), shown
        differences = screen.query_one("#differences", DataTable)
        assert [str(k.value) for k in differences.rows] == ["variant"]  # the two rows differ only there
        assert "setting  finetune  rrobin" in shown and "variant  finetune  rrobin" in shown


async def test_table2_key_finds_the_sweep_under_the_runs_folder_and_the_palette_opens_it(sweep):
    app = WalklessApp(sweep.parent)  # runs/, the sweep in runs/table2 (the command's default)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("t")
        screen = await shown_sweep(pilot, rows=2)
        assert screen.table2_path == sweep / "table2.json"
        app.pop_screen()
        app.open_table2()  # what the palette's "Table 2" command calls
        await pilot.pause()
        await shown_sweep(pilot, rows=2)


async def test_no_table2_json_is_a_notification_saying_where_it_looked(tmp_path, notes):
    (tmp_path / "runs").mkdir()
    app = WalklessApp(tmp_path / "runs")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("t")
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen) and len(app.screen_stack) == 1
        said = [n for n in notes if "No table2.json" in n]
        assert len(said) == 1
        for where in (tmp_path / "runs" / "table2.json", tmp_path / "table2.json"):
            assert str(where) in said[0]


def test_find_table2_and_the_command_line(sweep, tmp_path, monkeypatch):
    target = sweep / "table2.json"
    assert find_table2(sweep)[0] == target and find_table2(target)[0] == target
    assert find_table2(sweep / "rrobin")[0] == target  # a row folder: the sweep above it
    assert find_table2(sweep.parent)[0] == target  # runs/ holding runs/table2
    found, looked = find_table2(tmp_path)
    assert found is None and tmp_path / "table2.json" in looked

    with pytest.raises(SystemExit):  # --table2 where there is none: an argparse error
        app_module.main(["--table2", str(tmp_path)])
    made = []
    monkeypatch.setattr(WalklessApp, "run", lambda self: made.append(self))
    app_module.main(["--table2", str(sweep)])
    assert made[0].table2 == target and made[0].runs_dir == sweep  # the runs folder: the sweep's
    app_module.main(["--table2", str(target), "--runs-dir", str(tmp_path)])
    assert made[1].runs_dir == tmp_path.absolute()


# --- refreshing --------------------------------------------------------------------------------------
async def test_table_refreshes_when_the_sweep_rewrites_table2_json(sweep_copy, tiny_encoder, monkeypatch):
    monkeypatch.setattr(CompareScreen, "POLL_SECONDS", 0.2)
    app = WalklessApp(sweep_copy.parent, table2=sweep_copy)  # walkless-tui --table2 PATH
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen), what="the Compare screen")
        screen = await shown_sweep(pilot, rows=2)
        table = screen.query_one("#table2", DataTable)

        # the sweep's next row written as not run yet (what `walkless table2` writes before training it)
        write_table2(sweep_config(sweep_copy, tiny_encoder, rows=("finetune", "rrobin", "rrobin+smart")))
        await wait_for(pilot, lambda: table.row_count == 3, what="the rewritten table")
        assert [str(k.value) for k in table.rows] == ["finetune", "rrobin", "rrobin+smart"]
        assert cell(table, "rrobin+smart", "state") == "not run"
        assert cell(table, "rrobin+smart", "sst/acc").endswith("(0.532)")
        assert cell(table, "rrobin+smart", "epochs") == "-"

        # numbers change (a better finetune row) and the encoder is MiniLM: its caveat shows
        data = read_table2(sweep_copy)
        data["rows"][0]["sst/acc"] = 0.777
        data["settings"]["encoder"] = "minilm-l6"
        write_json_atomic(sweep_copy / "table2.json", data)
        await wait_for(pilot, lambda: "0.777" in cell(table, "finetune", "sst/acc"), what="the new numbers")
        assert "★" in cell(table, "finetune", "sst/acc") and "★" not in cell(table, "rrobin", "sst/acc")
        assert ENCODER_NOTE in text_of(screen.query_one("#compare-note", Static))
        reads = screen.sweep_reads
        await pilot.pause(0.6)  # unchanged file: not read again
        assert screen.sweep_reads == reads


def test_sweep_cells_and_caption_of_partial_rows():
    best = {"sst/acc": 0.5, "para/acc": None, "sts/pearson": None}
    cells = sweep_cells({"row": "rrobin", "run": "rrobin", "state": "running", "epochs_done": 1, "epochs": 3,
                         "sst/acc": 0.5, "para/acc": None, "seconds_per_epoch": 12.34,
                         "report": {"sst/acc": 0.524, "para/acc": 0.726, "sts/pearson": 0.583, "seconds": 67}}, best)
    assert [str(c) for c in cells] == ["rrobin", "0.500★ (0.524)", "-     (0.726)", "-     (0.583)",
                                       "12.3 (67)", "1/3", "running"]
    assert str(sweep_cells({"row": "pretrain", "state": "not run"}, best)[1]) == "-     (-)"
    caption = str(sweep_caption({"rows": [], "settings": {"encoder": "all-MiniLM-L6-v2", "data_dir": None}}))
    assert "demo data" in caption and ENCODER_NOTE in caption and "machine" not in caption
