"""Compare: the first run highlighted, choices and an open dropdown kept across refreshes, boxes readable without colour, a star only where two or more runs compete."""

from __future__ import annotations

from support.tui import LONG, scanned, screen_text, wait_for
from textual.widgets import DataTable

from walkless_tui.app import WalklessApp


async def test_compare_highlights_keeps_choices_and_marks_only_contested_bests(runs):
    from support.tui import opened_compare
    from textual.widgets import Select, SelectionList

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

