"""Helpers shared by the Pilot tests of the app."""

from __future__ import annotations

import time

from textual.widgets import DataTable, Select, Static

BIG, SMALL = (180, 50), (80, 24)  # a roomy terminal and the smallest the app is laid out for
LONG = "rrobin-full_rlayer-20261204-153012"  # a generated-style run name, longer than the runs list's column


def text_of(widget: Static) -> str:
    return str(widget.render())


async def wait_for(pilot, condition, timeout: float = 20.0, what: str = "condition") -> None:
    """Let the app run until ``condition()`` holds (workers run in threads; this is not a speed test)."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


async def choose_variant(pilot, form, variant: str) -> None:
    """Choose ``variant`` in the launch form and let the form follow it: name, defaults, and the SMART rows, which
    are mounted, and their choices set (a Select holds Select.NULL until its own mount), a few events after the
    choice on a busy machine."""
    done = form.variant_changes
    select = form.query_one("#variant", Select)
    if select.value == variant:
        return
    select.value = variant
    await wait_for(pilot, lambda: form.variant_changes > done and Select.NULL not in [
        s.value for s in form.query("#smart-fields Select")], what=f"the form following {variant}")


def screen_text(app) -> str:
    """What the terminal shows now, as plain text lines (the composed screen, modal dialogs included)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def runs_screen(app):
    """The Runs screen at the bottom of the app's stack."""
    from walkless_tui.screens.runs import RunsScreen

    return next(s for s in app.screen_stack if isinstance(s, RunsScreen))


async def scanned(pilot, names: set[str] | None = None):
    """Wait for the Runs screen's next scan of the runs folder (listing ``names``, when given); returns it."""
    screen = runs_screen(pilot.app)
    n = screen.scans
    await wait_for(pilot, lambda: screen.scans > n and (names is None or names <= {r.name for r in screen.runs}),
                   what="a scan of the runs folder")
    return screen


async def opened_compare(pilot, run_dirs: list):
    """Open Compare on ``run_dirs`` and wait until it shows them all; returns the screen."""
    app = pilot.app
    app.open_compare(run_dirs)
    await pilot.pause()
    screen = app.screen
    await wait_for(pilot, lambda: screen.updates > 0 and len(screen.rows) == len(run_dirs), what="the comparison")
    return screen


def withhold_idle_widths(monkeypatch, *table_ids: str) -> None:
    """The DataTables with these ids do their idle work (row heights, scroll size) but never fit their auto-width
    columns to the cells there, as when a busy machine puts that idle off: a table that relies on it shows its
    columns as wide as their headers ("-0.066" as "-0.06")."""
    update_dimensions, update_column_widths = DataTable._update_dimensions, DataTable._update_column_widths

    def dimensions_only(self, new_rows) -> None:
        if self.id not in table_ids:
            return update_dimensions(self, new_rows)
        widths = {key: column.content_width for key, column in self.columns.items()}
        update_dimensions(self, new_rows)
        for key, width in widths.items():
            self.columns[key].content_width = width

    def no_fitting(self, updated_cells) -> None:
        if self.id not in table_ids:
            update_column_widths(self, updated_cells)

    monkeypatch.setattr(DataTable, "_update_dimensions", dimensions_only)
    monkeypatch.setattr(DataTable, "_update_column_widths", no_fitting)
