"""What every screen of the app shares: a way back, and failed workers reported instead of raised."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from textual import work
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Select
from textual.worker import Worker, WorkerState

from core.runs import RunInfo
from walkless_tui.runindex import RunIndex

if TYPE_CHECKING:
    from walkless_tui.app import WalklessApp

WIDE = 110  # terminal columns from which screens get the -wide class (-narrow below), see the app's breakpoints


class WalklessScreen(Screen):
    BINDINGS = [Binding("escape", "back", "Back")]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The app's breakpoint class from the start: Textual adds it at the screen's first resize otherwise, which
        # restyles every widget of the screen before it is drawn (0.1 s of the launch form's opening under cProfile).
        try:
            app = self.app
        except RuntimeError:  # made outside a running app (a test): Textual sets it at the first resize
            return
        steps = sorted(app.HORIZONTAL_BREAKPOINTS or [])
        current = [name for at, name in steps if at <= app.size.width][-1:]
        for _, name in steps:
            self.set_class(name in current, name, update=False)

    @property
    def wapp(self) -> WalklessApp:
        return cast("WalklessApp", self.app)

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Workers run with exit_on_error=False: an unexpected error becomes a message, not a dead app.
        if event.state == WorkerState.ERROR:
            err = event.worker.error
            self.notify(f"{event.worker.name or 'background task'} failed: {type(err).__name__}: {err}",
                        severity="error", timeout=8)

    def busy(self, group: str) -> bool:
        """Whether a worker of this screen in ``group`` is still at work (a timer must not pile reads up)."""
        return any(w.node is self and w.group == group and not w.is_finished for w in self.workers)

    def from_thread(self, callback, *args) -> None:
        """Run ``callback(*args)`` on the app's thread (from a worker thread). Dropped when the screen has
        been closed meanwhile (a slow load finishing after the user went back) or the app is exiting."""

        def guarded() -> None:
            if self.is_attached:
                callback(*args)

        try:
            self.app.call_from_thread(guarded)
        except RuntimeError:  # the app is no longer running
            pass

    @work(thread=True, exit_on_error=False, name="listing runs")
    def list_runs(self, select: str, keep: Callable[[RunInfo], bool], label: Callable[[RunInfo], str],
                  chosen: Path | None) -> None:
        """Fill the ``select`` dropdown with the runs that ``keep`` lets through (values: their folders),
        ``chosen`` selected when it is one of them."""
        runs = [r for r in RunIndex(self.wapp.runs_dir).scan() if keep(r)]
        value = next((str(r.path) for r in runs if chosen and r.path.resolve() == chosen.resolve()), None)
        self.from_thread(self.fill_select, select, [(label(r), str(r.path)) for r in runs], value)

    def fill_select(self, select: str, options: list[tuple[str, Any]], value: Any = None) -> None:
        """Put ``options`` into the ``select`` dropdown, ``value`` chosen unless None (no Select.Changed)."""
        widget = self.query_one(select, Select)
        with self.prevent(Select.Changed):
            widget.set_options(options)
            if value is not None:
                widget.value = value
