"""Evaluate in a worker: a progress bar, a cap on examples, a cancel key, no empty CFIMDB headings."""

from __future__ import annotations

from support.tui import LONG, scanned, wait_for

from walkless_tui.app import WalklessApp


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

