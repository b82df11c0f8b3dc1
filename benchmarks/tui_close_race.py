"""Does the app close cleanly while it makes its launch form off screen (about a second after start)?

Starts the app headless (``App.run_test``, 160x48) on an empty runs folder, leaves it after d seconds for
d = 0.90, 0.92, ... (``--count`` values) and prints each exit that raised, then how many did. Before bf3beff an exit
during that mount raised ``NoMatches`` from the form's widgets. Compare two commits by running it from a worktree of
each (``PYTHONPATH=WORKTREE python benchmarks/tui_close_race.py``).

    python benchmarks/tui_close_race.py [--count 40]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from walkless_tui.app import WalklessApp


async def close_after(delay: float) -> str | None:
    """Start the app, leave it after ``delay`` seconds; what it raised on the way out, or None."""
    with tempfile.TemporaryDirectory() as tmp:
        app = WalklessApp(Path(tmp) / "runs")
        try:
            async with app.run_test(size=(160, 48)) as pilot:
                await pilot.pause(delay)
        except Exception as error:  # what a handler raised while the app closed, re-raised by run_test
            return f"{type(error).__name__}: {str(error)[:80]}"
    return None


async def main(count: int) -> None:
    failed = 0
    for i in range(count):
        delay = 0.9 + 0.02 * i
        error = await close_after(delay)
        if error is not None:
            failed += 1
            print(f"{delay:.2f} s: {error}", flush=True)
    print(f"{failed} of {count} exits raised")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=40, help="exits to try, 0.02 s apart from 0.90 s after start")
    asyncio.run(main(p.parse_args().count))
