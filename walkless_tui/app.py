"""Placeholder app until the full TUI lands."""

from textual.app import App, ComposeResult
from textual.widgets import Footer, Header, Static


class WalklessApp(App):
    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("walkless-tui")
        yield Footer()


def main() -> None:
    WalklessApp().run()
