"""A one-line note (and #tags) for a run, kept in its folder as ``notes.txt``."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from core.runs import write_bytes_atomic

NOTES = "notes.txt"


def read_note(run_dir: Path) -> str:
    """The run's note ("" when it has none or it cannot be read)."""
    try:
        return (Path(run_dir) / NOTES).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return ""


def write_note(run_dir: Path, text: str) -> None:
    """Store the note (an empty one removes the file)."""
    path = Path(run_dir) / NOTES
    if text.strip():
        write_bytes_atomic(path, [text.strip().encode("utf-8") + b"\n"])
    else:
        path.unlink(missing_ok=True)


class NoteScreen(ModalScreen[str | None]):
    """Edit a run's note: enter keeps it, escape leaves it as it was."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, run_name: str, note: str):
        super().__init__()
        self.run_name, self.note = run_name, note

    def compose(self) -> ComposeResult:
        with Vertical(id="note-box"):
            yield Label(f"Note for {self.run_name} (#words are tags the filter finds; enter saves, esc cancels)")
            yield Input(self.note, placeholder="e.g. #baseline lr sweep, best so far", id="note-input")

    @on(Input.Submitted, "#note-input")
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
