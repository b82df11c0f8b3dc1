"""Helpers shared by the Pilot tests of the app."""

from __future__ import annotations

import time

from textual.widgets import Static


def text_of(widget: Static) -> str:
    return str(widget.render())


async def wait_for(pilot, condition, timeout: float = 20.0, what: str = "condition") -> None:
    """Let the app run until ``condition()`` holds (workers run in threads; this is not a speed test)."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def screen_text(app) -> str:
    """What the terminal shows now, as plain text lines (the composed screen, modal dialogs included)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())
