"""How long the app's screens take to open: key press -> the first frame drawn with the new screen.

Runs the app headless (``App.run_test``) on an empty runs folder at 160x48, opens each screen ``--repeat`` times
(escape between) and prints the first opening, then the median and the worst of the others (the app keeps its
launch form: the first opening makes it, the others show it again). The floor is a screen holding only a header, one line and
a footer: what any screen costs this app on this machine. Compare two commits side by side by running it from a
worktree of each (``PYTHONPATH=WORKTREE python WORKTREE/benchmarks/tui_open.py``) on a quiet machine.

    python benchmarks/tui_open.py [--repeat 9] [--size 160x48] [--out tui-open.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time

from textual.app import App
from textual.widgets import Footer, Header, Static

from walkless_tui.app import WalklessApp
from walkless_tui.screens.base import WalklessScreen

FRAMES: list[tuple[float, str]] = []  # (time, screen class) of every frame the app draws
_display = App._display


def _recording_display(self: App, screen, renderable) -> None:
    FRAMES.append((time.perf_counter(), type(screen).__name__))
    _display(self, screen, renderable)


class Floor(WalklessScreen):
    def compose(self):
        yield Header()
        yield Static("the floor: a header, this line and a footer")
        yield Footer()


async def open_times(app: WalklessApp, pilot, key: str | None, screen: str, repeat: int) -> list[float]:
    """Seconds from pressing ``key`` (or pushing the floor screen) to the first frame of ``screen``."""
    out = []
    for _ in range(repeat):
        FRAMES.clear()
        t0 = time.perf_counter()
        if key is None:
            app.push_screen(Floor())
        else:
            await pilot.press(key)
        while not any(name == screen for _, name in FRAMES):
            await asyncio.sleep(0.002)
        out.append(next(t for t, name in FRAMES if name == screen) - t0)
        await pilot.pause(0.5)  # let it settle before leaving
        await pilot.press("escape")
        await pilot.pause(0.5)
    return out


async def main(repeat: int, size: tuple[int, int], out: str | None) -> None:
    App._display = _recording_display
    app = WalklessApp(tempfile.mkdtemp(prefix="walkless-bench-"))
    async with app.run_test(size=size) as pilot:
        await pilot.pause(5)  # the runs screen's first scan and the background imports (torch, transformers) done
        rows = []
        for label, key, screen in [("floor (header, a line, footer)", None, "Floor"),
                                   ("launch form (n)", "n", "LaunchScreen"),
                                   ("help (?)", "question_mark", "HelpScreen")]:
            first, *times = await open_times(app, pilot, key, screen, repeat + 1)
            print(f"{label:32s} first {first * 1000:5.0f} ms   then median {statistics.median(times) * 1000:5.0f} ms,"
                  f" worst {max(times) * 1000:5.0f} ms   ({repeat} opens)")
            rows.append({"screen": label, "first_ms": round(first * 1000), "then_ms": [round(t * 1000) for t in times],
                         "then_median_ms": round(statistics.median(times) * 1000)})
    if out:
        from core.bench import machine

        with open(out, "w") as f:
            json.dump({"size": list(size), "repeat": repeat, "machine": machine(), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=9)
    p.add_argument("--size", default="160x48")
    p.add_argument("--out", help="also write the figures to this JSON file")
    a = p.parse_args()
    w, h = (int(v) for v in a.size.split("x"))
    asyncio.run(main(a.repeat, (w, h), a.out))
