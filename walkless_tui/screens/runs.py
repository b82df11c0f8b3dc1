"""The Runs screen: every run under the runs folder, live, with filter and sort."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Header, Input, Static

from core.launch import forget_launch
from core.report import COLUMNS as METRICS
from core.runs import RunFolder, RunInfo, RunState
from walkless_tui.runindex import RunIndex, stamp
from walkless_tui.screens.base import WIDE, WalklessScreen
from walkless_tui.screens.confirm import ConfirmScreen
from walkless_tui.screens.note import NOTES, NoteScreen, read_note, write_note
from walkless_tui.series import bar, display_path, fmt_duration, progress_fraction

STATE_STYLE = {RunState.RUNNING: "bold yellow", RunState.FINISHED: "green", RunState.FAILED: "bold red",
               RunState.STOPPED: "magenta", RunState.STARTING: "cyan"}
# the metrics before the wide, less needed columns, so that an 80-column terminal still shows them
COLUMNS = [("mark", " "), ("name", "run"), ("state", "state"), ("progress", "progress"),
           *METRICS, ("variant", "variant"), ("elapsed", "elapsed"), ("eta", "ETA"),
           ("note", "note")]
SORTS: dict[str, Callable[[RunInfo], object]] = {
    "started": lambda r: r.started or 0,
    "name": lambda r: r.name,
    "variant": lambda r: r.variant,
    "state": lambda r: r.state,
    "progress": lambda r: progress_fraction(r.step, r.total_steps, r.state),
    "elapsed": lambda r: r.elapsed or 0,
    **{m: (lambda r, m=m: r.dev.get(m, float("-inf"))) for m, _ in METRICS},
}


def run_matches(run: RunInfo, query: str, note: str = "") -> bool:
    """Every word of ``query`` is in the run's name, variant, state, tasks or note (case-insensitive)."""
    hay = " ".join([run.name, run.variant, run.state, *run.tasks, note]).lower()
    return all(w in hay for w in query.lower().split())


def same_cell(a: object, b: object) -> bool:
    if isinstance(a, Text) and isinstance(b, Text):
        return a.plain == b.plain and a.style == b.style
    return a == b


def row_cells(run: RunInfo, marked: bool, bar_width: int = 10, user_note: str = "") -> tuple:
    frac = progress_fraction(run.step, run.total_steps, run.state)
    if run.state == RunState.STARTING:
        progress = "starting…"
    elif run.epochs:
        progress = f"{run.epoch}/{run.epochs} {bar(frac, bar_width)} {frac:4.0%}"
    else:
        progress = "-"
    note = (run.message or "").splitlines()[0][:70] if run.message else user_note[:70]
    return (
        Text("●" if marked else " ", style="bold cyan"),
        run.name,
        Text(run.state, style=STATE_STYLE.get(run.state, "")),
        progress,
        *[Text(f"{run.dev[m]:.3f}", justify="right") if m in run.dev else Text("-", justify="right")
          for m, _ in METRICS],
        run.variant,
        fmt_duration(run.elapsed),
        fmt_duration(run.eta),
        Text(note, style="red" if run.state == RunState.FAILED else "dim" if run.message else "italic"),
    )


class RunsTable(DataTable):
    """The runs table; its ``enter`` (open Monitor) is shown in the footer."""

    BINDINGS = [Binding("enter", "select_cursor", "Monitor")]


class RunsScreen(WalklessScreen):
    BINDINGS = [
        Binding("n", "launch", "New run"),
        Binding("N", "clone", "New from this"),
        Binding("x", "stop", "Stop run"),
        Binding("r", "resume", "Resume"),
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare"),
        Binding("t", "table2", "Table 2"),
        Binding("s", "score", "Score"),
        Binding("e", "evaluate", "Evaluate"),
        Binding("slash", "filter", "Filter"),
        Binding("o", "sort", "Sort"),
        Binding("R", "reverse", "Reverse", show=False),
        Binding("a", "note", "Note"),
        Binding("d", "dismiss_launch", "Dismiss failed launch"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("q", "app.quit", "Quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.index: RunIndex | None = None
        self.runs: list[RunInfo] = []
        self.notes: dict[str, str] = {}  # run name -> its notes.txt
        self._note_cache: dict[Path, tuple[tuple, str]] = {}  # run folder -> (stamp of notes.txt, its note)
        self.marked: set[str] = set()
        self.sort_key, self.sort_reverse = "started", True
        self.query_text = ""
        self._keys: list[str] = []
        self._cells: dict[str, tuple] = {}
        self.scans = 0  # completed scans (tests wait on it)

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="runs-bar"):
            yield Input(placeholder="filter runs: name, variant, state, task…", id="filter")
            yield Static("", id="sort-label")
        yield Static("", id="runs-empty")
        table = RunsTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        yield table
        yield Static("", id="run-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.index = RunIndex(self.wapp.runs_dir)
        self.sub_title = display_path(self.wapp.runs_dir)
        self._show_sort()
        self.query_one("#runs-table").focus()
        self.rescan()
        self.set_interval(1.0, self.rescan)

    def on_screen_resume(self) -> None:
        self.rescan()

    # --- data -----------------------------------------------------------------------------------
    def rescan(self) -> None:
        if not self.busy("scan"):
            self._scan()

    @work(thread=True, group="scan", exit_on_error=False, name="reading the runs folder")
    def _scan(self) -> None:
        runs = self.index.scan() if self.index else []
        notes = {r.name: note for r in runs if (note := self._note(r.path))}
        self.from_thread(self.show_runs, runs, notes)

    def _note(self, run_dir: Path) -> str:
        """The run's note, read again only when its notes.txt changed since the last scan."""
        now = stamp(run_dir, (NOTES,))
        cached = self._note_cache.get(run_dir)
        if cached is None or cached[0] != now:
            cached = self._note_cache[run_dir] = (now, read_note(run_dir))
        return cached[1]

    def show_runs(self, runs: list[RunInfo], notes: dict[str, str] | None = None) -> None:
        self.runs = runs
        self.notes = notes or {}
        self.scans += 1
        self._render_table()

    def visible_runs(self) -> list[RunInfo]:
        rows = [r for r in self.runs if run_matches(r, self.query_text, self.notes.get(r.name, ""))]
        return sorted(rows, key=SORTS[self.sort_key], reverse=self.sort_reverse)

    def _render_table(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        rows = self.visible_runs()
        keys = [r.name for r in rows]
        width = 10 if self.app.size.width >= WIDE else 4  # the progress bar's cells
        cells = {r.name: row_cells(r, r.name in self.marked, width, self.notes.get(r.name, "")) for r in rows}
        if keys != self._keys:
            current = self.current_run()
            focus = self.wapp.focus_run or (current.name if current else None)
            table.clear()
            for k in keys:
                table.add_row(*cells[k], key=k)
            if focus in keys:
                table.move_cursor(row=keys.index(focus))
                self.wapp.focus_run = None
        else:
            for k in keys:
                old = self._cells.get(k) or (None,) * len(COLUMNS)
                for (col, _), new, prev in zip(COLUMNS, cells[k], old, strict=True):
                    if not same_cell(new, prev):
                        table.update_cell(k, col, new)
        self._keys, self._cells = keys, cells
        self._show_empty(len(rows))
        self._show_detail()

    def _show_empty(self, visible: int) -> None:
        label = self.query_one("#runs-empty", Static)
        runs_dir = self.wapp.runs_dir
        if not runs_dir.is_dir():
            text = f"No runs folder at {display_path(runs_dir)} yet. Press n to launch a run (it creates the folder)."
        elif not self.runs:
            text = (f"No runs in {display_path(runs_dir)} yet. Press n to launch one, "
                    f"or run `walkless train --runs-dir {display_path(runs_dir)}`.")
        elif not visible:
            text = f"No run matches the filter {self.query_text!r} ({len(self.runs)} runs hidden)."
        else:
            text = ""
        label.update(text)
        label.display = bool(text)

    def current_run(self) -> RunInfo | None:
        table = self.query_one("#runs-table", DataTable)
        if not self._keys or table.cursor_row is None or not 0 <= table.cursor_row < len(self._keys):
            return None
        name = self._keys[table.cursor_row]
        return next((r for r in self.runs if r.name == name), None)

    def _show_detail(self) -> None:
        run = self.current_run()
        detail = self.query_one("#run-detail", Static)
        if run is None:
            detail.update("")
            return
        c = run.config
        parts = [f"[b]{escape(run.name)}[/]  {escape(display_path(run.path))}", f"tasks {', '.join(run.tasks) or '-'}"]
        for key in ("encoder", "epochs", "batch_size", "lr", "seed"):
            if c.get(key) is not None:
                parts.append(f"{key} {c[key]}")
        if run.total_steps:
            parts.append(f"step {run.step}/{run.total_steps}")
        if run.dev:
            parts.append("metrics: the last epoch's dev values")
        text = Text.from_markup("  ·  ".join(parts))
        if run.name in self.notes:
            text.append("\nnote: " + self.notes[run.name], style="italic")
        if run.message:
            text.append("\n" + run.message, style="red" if run.state == RunState.FAILED else "dim")
        detail.update(text)

    @on(DataTable.RowHighlighted, "#runs-table")
    def _highlighted(self) -> None:
        self._show_detail()

    @on(DataTable.RowSelected, "#runs-table")
    def _selected(self) -> None:
        self.action_monitor()

    @on(DataTable.HeaderSelected, "#runs-table")
    def _header(self, event: DataTable.HeaderSelected) -> None:
        key = str(event.column_key.value)
        if key in SORTS:
            self.sort_reverse = not self.sort_reverse if key == self.sort_key else key != "name"
            self.sort_key = key
            self._show_sort()
            self._render_table()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.query_text = event.value
        self._render_table()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.query_one("#runs-table").focus()

    def _show_sort(self) -> None:
        arrow = "↓" if self.sort_reverse else "↑"
        self.query_one("#sort-label", Static).update(f"sort: {self.sort_key} {arrow}  (o / R)")

    # --- actions --------------------------------------------------------------------------------
    def _need_run(self) -> RunInfo | None:
        run = self.current_run()
        if run is None:
            self.notify("No run selected.", severity="warning")
        return run

    def action_monitor(self) -> None:
        if run := self._need_run():
            self.wapp.open_monitor(run.path)

    def action_launch(self) -> None:
        self.wapp.open_launch()

    def action_mark(self) -> None:
        if run := self._need_run():
            self.marked ^= {run.name}
            self._cells.pop(run.name, None)
            self._render_table()

    def action_compare(self) -> None:
        names = [k for k in self._keys if k in self.marked]
        if len(names) < 2 and (run := self.current_run()) and run.name not in names:
            names.append(run.name)
        self.wapp.open_compare([self.wapp.runs_dir / n for n in names])

    def action_table2(self) -> None:
        self.wapp.open_table2()

    def action_score(self) -> None:
        self.wapp.open_score(run.path if (run := self.current_run()) else None)

    def action_evaluate(self) -> None:
        self.wapp.open_evaluate(run.path if (run := self.current_run()) else None)

    def action_filter(self) -> None:
        self.query_one("#filter").focus()

    def action_clear_filter(self) -> None:
        self.query_one("#filter", Input).value = ""
        self.query_one("#runs-table").focus()

    def action_sort(self) -> None:
        keys = list(SORTS)
        self.sort_key = keys[(keys.index(self.sort_key) + 1) % len(keys)]
        self.sort_reverse = self.sort_key != "name"
        self._show_sort()
        self._render_table()

    def action_reverse(self) -> None:
        self.sort_reverse = not self.sort_reverse
        self._show_sort()
        self._render_table()

    def action_stop(self) -> None:
        if run := self._need_run():
            self.wapp.stop(run.path, run.state, after=self.rescan)

    def action_resume(self) -> None:
        if run := self._need_run():
            self.wapp.resume(run.path, after=self.rescan)

    def action_note(self) -> None:
        """Write a note (#tags too) into the run's folder (notes.txt); the filter finds its words."""
        run = self._need_run()
        if run is None:
            return
        if not run.path.is_dir():
            self.notify(f"Run {run.name} has no folder yet (it never began): nowhere to keep a note.",
                        severity="warning")
            return

        def answered(text: str | None) -> None:
            if text is None:
                return
            try:
                write_note(run.path, text)
            except OSError as e:
                self.notify(f"cannot write the note of {run.name}: {e}", severity="error")
                return
            self.rescan()

        self.app.push_screen(NoteScreen(run.name, self.notes.get(run.name, "")), answered)

    def action_clone(self) -> None:
        """The launch form filled with the highlighted run's settings (a new name): a new run from this one."""
        if run := self._need_run():
            self.wapp.open_launch(run.config or {"variant": run.variant})

    def action_dismiss_launch(self) -> None:
        run = self._need_run()
        if run is None:
            return
        if run.state != RunState.FAILED or RunFolder(run.path).status_file.exists():
            self.notify(f"Run {run.name} is a run folder ({run.state}): only a launch that failed before its run "
                        f"began can be dismissed; the app deletes no run folder.", severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                forget_launch(run.path)
                self.notify(f"dismissed the failed launch {run.name} (its record and log)", title="dismissed")
                self.rescan()

        self.app.push_screen(ConfirmScreen(f"Dismiss the failed launch {run.name}? Its launch record and log "
                                           f"(.launches/{run.name}.log) are deleted."), answered)
