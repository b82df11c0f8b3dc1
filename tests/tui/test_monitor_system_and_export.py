"""Monitor's system line (CPU, memory, the run's process) and f2's SVG export of the screen."""

from __future__ import annotations

import pytest
from support.tui import LONG, scanned, wait_for

from walkless_tui.app import WalklessApp


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

