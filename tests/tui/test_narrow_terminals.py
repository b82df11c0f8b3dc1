"""80-column terminals: the runs list's metrics, walkless compare's variant column."""

from __future__ import annotations

import io

from rich.console import Console
from support.runfolders import make_run
from support.tui import SMALL, scanned, screen_text, wait_for

from core.report import compare_table
from walkless_tui.app import WalklessApp


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

