"""The runs list's keys: confirmations before destructive keys, the footer and the palette, notes with tags."""

from __future__ import annotations

import json

from support.runfolders import failed_launch, make_run, select_run
from support.tui import BIG, scanned, screen_text, text_of, wait_for
from textual.widgets import DataTable

from core.launch import LAUNCH_DIR
from walkless_tui.app import WalklessApp
from walkless_tui.screens.confirm import ConfirmScreen
from walkless_tui.screens.runs import RunsScreen


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

