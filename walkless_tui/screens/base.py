"""What every screen of the app shares: a way back, and failed workers reported instead of raised."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState

if TYPE_CHECKING:
    from walkless_tui.app import WalklessApp


class WalklessScreen(Screen):
    BINDINGS = [Binding("escape", "back", "Back")]

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
