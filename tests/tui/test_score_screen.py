"""Score: a bad path keeps the loaded checkpoint; picking a run clears the path box."""

from __future__ import annotations

from support.tui import LONG, scanned, wait_for

from walkless_tui.app import WalklessApp


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

