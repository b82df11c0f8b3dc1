"""The Runs screen: every run under the runs folder, live, with filter and sort."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Header, Input, Static
from textual.widgets.data_table import ColumnKey

from core.demo import ensure_demo_data
from core.launch import forget_launch
from core.runs import RunError, RunFolder, RunInfo, RunState, archive_run
from walkless_tui.constants import COLUMNS, METRICS, NAME_WIDTH, SHORT_HEADERS, STATE_STYLE, middle_cut
from walkless_tui.runindex import RunIndex, stamp
from walkless_tui.screens.ask import AskScreen
from walkless_tui.screens.base import WIDE, WalklessScreen
from walkless_tui.screens.confirm import ConfirmScreen
from walkless_tui.screens.note import NOTES, NoteScreen, read_note, write_note
from walkless_tui.series import bar, display_path, fmt_duration, progress_fraction, sparkline
from walkless_tui.widgets.tables import fit_widths

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


@cache
def demo_dir() -> Path:
    return ensure_demo_data().resolve()


def data_label(config: dict) -> str:
    """A run's data folder as its detail line shows it: the path, or "the demo data" (a run on the synthetic
    demo set is not comparable with runs on the real CS224N files)."""
    data_dir = config.get("data_dir")
    if not data_dir:
        return "the demo data" if config else "?"
    try:  # this checkout's demo data, or another checkout's or the cache's (a folder named demo-data)
        demo = Path(data_dir).resolve() == demo_dir() or Path(data_dir).name == "demo-data"
    except OSError:
        demo = False
    return f"{display_path(data_dir)} (the demo data)" if demo else display_path(data_dir)


def progress_cell(run: RunInfo, bar_width: int) -> str:
    """``2/3 █████░░░░░  52%``; during a dev evaluation ``2/3 evaluating``; no bar when ``bar_width`` is 0."""
    if run.state == RunState.STARTING:
        return "starting…"
    if not run.epochs:
        return "-"
    if run.phase == "evaluating":
        return f"{run.epoch}/{run.epochs} evaluating"
    frac = progress_fraction(run.step, run.total_steps, run.state)
    return f"{run.epoch}/{run.epochs} " + (f"{bar(frac, bar_width)} " if bar_width else "") + f"{frac:4.0%}"


def row_note(run: RunInfo, user_note: str) -> Text:
    """The note cell: why a damaged run cannot be read, else the run's message, else the user's note."""
    if run.state == RunState.DAMAGED:
        return Text(run.reason or "damaged", style="red")
    if run.message:
        return Text(run.message.splitlines()[0][:70], style="red" if run.state == RunState.FAILED else "dim")
    return Text(user_note[:70], style="italic")


def row_cells(run: RunInfo, marked: bool, bar_width: int = 10, user_note: str = "",
              name_width: int = NAME_WIDTH["wide"]) -> tuple:
    return (
        Text("●" if marked else " ", style="bold cyan"),
        middle_cut(run.name, name_width),
        Text(run.state, style=STATE_STYLE.get(run.state, "")),
        progress_cell(run, bar_width),
        *[Text(f"{run.dev[m]:.3f}", justify="right") if m in run.dev else Text("-", justify="right")
          for m, _ in METRICS],
        Text(sparkline(run.history), style="cyan"),
        run.variant,
        fmt_duration(run.elapsed),
        fmt_duration(run.eta),
        row_note(run, user_note),
    )


class RunsTable(DataTable):
    """The runs table; its ``enter`` (open Monitor) is shown in the footer."""

    BINDINGS = [Binding("enter", "select_cursor", "Monitor")]


class RunsScreen(WalklessScreen):
    # the most used keys first: an 80-column footer shows about six of them (? lists them all)
    BINDINGS = [
        Binding("n", "launch", "New"),
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare"),
        Binding("t", "table2", "Table 2"),
        Binding("s", "score", "Score"),
        Binding("e", "evaluate", "Evaluate"),
        Binding("x", "stop", "Stop"),
        Binding("r", "resume", "Resume"),
        Binding("slash", "filter", "Filter"),
        Binding("N", "clone", "New from this"),
        Binding("a", "note", "Note"),
        Binding("A", "archive", "Archive"),
        Binding("T", "open_sweep", "Open sweep"),
        Binding("o", "sort", "Sort"),
        Binding("R", "reverse", "Reverse", show=False),
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
        self._wide: tuple | None = None  # (wide, name width) the rows were laid out for
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

    def on_resize(self) -> None:
        if self._wide is not None:
            self._render_table()  # names, progress cells and headers for the new width (when it changed)

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
        wide = self.app.size.width >= WIDE
        bar_width, name_width = (10, NAME_WIDTH["wide"]) if wide else (0, NAME_WIDTH["narrow"])
        if self.app.size.width < 80:
            name_width = NAME_WIDTH["small"]
        cells = {r.name: row_cells(r, r.name in self.marked, bar_width, self.notes.get(r.name, ""), name_width)
                 for r in rows}
        if keys != self._keys or (wide, name_width) != self._wide:
            current = self.current_run()
            focus = self.wapp.focus_run or (current.name if current else None)
            table.clear()
            for key, label in METRICS:  # short headers below 110 columns keep the three metrics in view
                table.columns[ColumnKey(key)].label = Text(label if wide else SHORT_HEADERS.get(key, label))
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
        fit_widths(table, [cells[k] for k in keys])  # a wider value widens its column ("-0.066", a longer note)
        self._keys, self._cells, self._wide = keys, cells, (wide, name_width)
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
        parts = [f"[b]{escape(run.name)}[/]  {escape(display_path(run.path))}", f"tasks {', '.join(run.tasks) or '-'}",
                 f"data {escape(data_label(c))}"]
        for key in ("encoder", "epochs", "batch_size", "lr", "seed"):
            if c.get(key) is not None:  # an encoder folder shown as the data folder is (a name stays a name)
                value = display_path(c[key]) if key == "encoder" else str(c[key])
                parts.append(f"{key} {escape(value)}")
        if run.total_steps:
            parts.append(f"step {run.step}/{run.total_steps}")
        if run.dev:
            parts.append("metrics: the last epoch's dev values")
        text = Text.from_markup("  ·  ".join(parts))
        if run.name in self.notes:
            text.append("\nnote: " + self.notes[run.name], style="italic")
        if run.message:
            text.append("\n" + run.message, style="red" if run.state == RunState.FAILED else "dim")
        if run.reason:
            text.append(f"\ndamaged: {run.reason} (a archives it to .archive/)", style="red")
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

    def action_open_sweep(self) -> None:
        """Ask for any Table 2 sweep (``walkless table2``'s folder or its table2.json) and open it in Compare."""

        def answered(path: str | None) -> None:
            if path and path.strip():
                self.wapp.open_table2(Path(path.strip()).expanduser())

        self.app.push_screen(AskScreen("Open a Table 2 sweep: its folder or table2.json (enter opens, esc cancels)",
                                       display_path(self.wapp.runs_dir), "e.g. /work/runs/table2"), answered)

    def action_archive(self) -> None:
        """Move the highlighted run to RUNS/.archive/ after a yes (nothing is deleted; move it back by hand)."""
        run = self._need_run()
        if run is None:
            return
        if run.state.active or not run.path.is_dir():
            self.notify(f"Run {run.name} is {run.state}: only a run that is not training can be archived.",
                        severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            try:
                dest = archive_run(run.path)
            except (RunError, OSError) as e:
                self.notify(f"cannot archive {run.name}: {e}", severity="error", timeout=10)
                return
            self.marked.discard(run.name)
            self.notify(f"moved {run.name} to {display_path(dest)}", title="archived")
            self.rescan()

        self.app.push_screen(ConfirmScreen(f"Archive run {run.name}? Its folder moves to "
                                           f"{display_path(self.wapp.runs_dir / '.archive')}/ (nothing is deleted)."),
                             answered)

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
        if (run := self._need_run()) and run.state == RunState.DAMAGED:
            self.notify(f"Run {run.name} is damaged ({run.reason}): nothing to resume; A archives it.",
                        severity="warning", timeout=10)
        elif run:
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
