"""The Compare screen: chosen runs' curves of one metric, the report's Table 2, differing settings.

Opened on a ``table2.json`` (``walkless table2``), its table is the sweep's: each row's numbers beside the
report's, with the machine, settings and commands under it, re-read whenever the sweep rewrites the file;
the curves are those of the rows' run folders (the folder holding ``table2.json``).
"""

from __future__ import annotations

import os
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Footer, Header, Select, SelectionList, Static
from textual.widgets.selection_list import Selection

from core.report import COLUMNS, ENCODER_NOTE, compare_rows
from core.runs import (
    METRICS_FILE,
    POINTERS,
    STATUS_FILE,
    RunError,
    RunFolder,
    RunInfo,
    RunState,
    read_metrics,
)
from core.table2 import METRICS as SWEEP_METRICS
from core.table2 import ROWS as SWEEP_ROWS
from core.table2 import read_table2
from walkless_tui.constants import STATE_STYLE, middle_cut
from walkless_tui.runindex import RunIndex, stamp
from walkless_tui.screens.base import WIDE, WalklessScreen
from walkless_tui.series import (
    config_differences,
    dev_series,
    display_path,
    ema,
    fmt_duration,
    fmt_value,
    loss_series,
)
from walkless_tui.widgets.checklist import CheckList
from walkless_tui.widgets.plots import CurvePlot
from walkless_tui.widgets.tables import fill_sized

LOSS_PREFIX = "loss: "
UNREAD = ("not read yet",)  # table2.json's stamp before the first read (None: the file is missing)
LOSS_SMOOTHING = 0.8


def metric_choices(records: dict[str, list[dict]]) -> list[str]:
    """Dev metrics (per epoch) found in any run, headline ones first, then training losses per task."""
    dev = {k for recs in records.values() for r in recs if r.get("kind") == "epoch" for k in (r.get("dev") or {})}
    head = [k for k, _ in COLUMNS if k in dev]
    tasks = sorted({str(r.get("task")) for recs in records.values() for r in recs if r.get("kind") == "step"})
    return head + sorted(dev - set(head)) + [LOSS_PREFIX + t for t in tasks]


def curves(records: dict[str, list[dict]], metric: str) -> dict[str, tuple[list, list]]:
    """``{run: (xs, ys)}`` of ``metric`` for each run (dev metrics by epoch, losses by step, smoothed)."""
    out = {}
    for run, recs in records.items():
        if metric.startswith(LOSS_PREFIX):
            xs, ys = loss_series(recs).get(metric[len(LOSS_PREFIX):], ([], []))
            ys = ema(ys, LOSS_SMOOTHING)
        else:
            xs, ys = dev_series(recs, metric)
        if xs:
            out[run] = (xs, ys)
    return out


def _number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def is_minilm(encoder: object) -> bool:
    return str(encoder or "").lower().startswith(("minilm", "all-minilm"))


def sweep_rows(table: dict) -> list[dict]:
    return [r for r in table.get("rows") or [] if isinstance(r, dict) and r.get("row") is not None]


def sweep_best(rows: list[dict]) -> dict[str, float | None]:
    """Our best value per metric column, when two or more rows have one (a lone value is not marked)."""
    best: dict[str, float | None] = {}
    for k, _ in SWEEP_METRICS:
        values = [r[k] for r in rows if _number(r.get(k))]
        best[k] = max(values) if len(values) > 1 else None
    return best


def sweep_cell(ours: object, report: object, best: bool = False) -> Text:
    """``0.493  (0.501)``: our value (★ when best in its column) beside the report's, dim."""
    text = Text(justify="right")
    if not _number(ours):
        text.append("-    ")
    elif best:
        text.append(f"{ours:.3f}★", style="bold green")
    else:
        text.append(f"{ours:.3f} ")
    text.append(f" ({report:.3f})" if _number(report) else " (-)", style="dim")
    return text


def sweep_seconds(ours: object, report: object) -> Text:
    text = Text("-" if not _number(ours) else f"{ours:,.1f}", justify="right")
    text.append(f" ({report:,.0f})" if _number(report) else " (-)", style="dim")
    return text


def sweep_cells(row: dict, best: dict[str, float | None]) -> tuple:
    """The sweep table's cells for one row of ``table2.json``: row, the three metrics, s/epoch, epochs, state."""
    rep = row.get("report") if isinstance(row.get("report"), dict) else {}
    metrics = [sweep_cell(row.get(k), rep.get(k), best.get(k) is not None and row.get(k) == best[k])
               for k, _ in SWEEP_METRICS]
    done, total = row.get("epochs_done"), row.get("epochs")
    epochs = "-" if done is None else (f"{done}/{total}" if total is not None else str(done))
    state = str(row.get("state", "?"))
    return (str(row["row"]), *metrics, sweep_seconds(row.get("seconds_per_epoch"), rep.get("seconds")),
            Text(epochs, justify="right"), Text(state, style=STATE_STYLE.get(state, "dim")))


def sweep_caption(table: dict) -> Text:
    """What the sweep's numbers are, the settings, the machine, the commands, and the encoder caveat."""
    settings = table.get("settings") if isinstance(table.get("settings"), dict) else {}
    m = table.get("machine") if isinstance(table.get("machine"), dict) else {}
    text = Text()
    text.append("ours: each row's best checkpoint on the dev sets (single-task rows chosen by SST); (report): "
                "BERT-base, 10 epochs, seconds per epoch on a GPU\n", style="dim")
    shown = ", ".join(f"{k} {v}" for k, v in settings.items() if v is not None)
    if settings.get("data_dir") is None:
        shown += ", demo data" if shown else "demo data"
    text.append("settings: ", style="bold")
    text.append(shown + "\n")
    if m:
        gpu = f", GPU {m['gpu']}" if m.get("gpu") else ", no GPU"
        text.append("machine: ", style="bold")
        text.append(f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores, torch {m.get('torch', '?')} "
                    f"(threads: {m.get('threads', '?')}){gpu}")
        wall = table.get("wall_seconds")
        if _number(wall):
            text.append(f"; training wall time {fmt_duration(wall)}")
        text.append("\n")
    for command in table.get("commands") or []:
        text.append("command: ", style="bold")
        text.append(f"{command}\n")
    if is_minilm(settings.get("encoder")):
        text.append(ENCODER_NOTE, style="dim")
    return text


class CompareScreen(WalklessScreen):
    POLL_SECONDS = 2.0  # how often a Table 2 sweep's table2.json is checked for a rewrite

    def __init__(self, selected: list[Path], table2: Path | None = None):
        super().__init__()
        self.selected = [Path(p) for p in selected]
        # A Table 2 sweep: its table2.json (the table shown), its folder (the runs listed).
        self.table2_path = Path(table2).absolute() if table2 is not None else None
        self.sweep: dict | None = None  # the table2.json last read
        self.sweep_reads = 0  # completed reads of table2.json (tests wait on it)
        self._sweep_stamp: tuple | None = UNREAD
        self._run_stamps: dict[str, tuple] = {}  # the chosen runs' files at their last read (see poll_runs)
        self._row_runs: set[str] | None = None  # the row folders listed so far (None: not listed yet)
        self._listed: dict[str, str] = {}  # run folder name -> its value in the runs list
        self.index: RunIndex | None = None
        self.records: dict[str, list[dict]] = {}
        self._cache: dict[Path, tuple[int, list[dict]]] = {}
        self.rows: list[dict] = []
        self.differences: dict[str, dict] = {}
        self.updates = 0  # completed updates (tests wait on it)
        self._choices: list[str] = []  # the metric dropdown's options

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="compare-body"):
            with Vertical(id="compare-side"):
                yield Static("runs (space: X chooses)", classes="section-title")
                yield CheckList(id="compare-runs")
                yield Static("metric", classes="section-title")
                yield Select([], prompt="metric", id="compare-metric")
            with VerticalScroll(id="compare-main"):
                yield CurvePlot("", "epoch", "", empty="choose runs and a metric", id="compare-plot")
                title = ("Table 2 sweep: ours (the report's) per row, its best dev checkpoint (★ best per column)"
                         if self.table2_path else
                         "Table 2 layout: each column's best dev value over the epochs (★ best per column)")
                yield Static(title, classes="section-title", id="table2-title")
                yield DataTable(id="table2", cursor_type="row", zebra_stripes=True)
                yield Static("", id="compare-note")
                yield Static("hyperparameters that differ", classes="section-title")
                yield DataTable(id="differences", cursor_type="row", zebra_stripes=True)
        yield Footer()

    @property
    def runs_root(self) -> Path:
        """The folder whose runs are listed: the sweep's folder for a Table 2 sweep, else the runs folder."""
        return self.table2_path.parent if self.table2_path else self.wapp.runs_dir

    def on_mount(self) -> None:
        self.index = RunIndex(self.runs_root)
        self.set_interval(self.POLL_SECONDS, self.poll_runs)  # live while the chosen runs train
        if self.table2_path is None:
            self.sub_title = "compare"
            self._list_runs()
            return
        self.sub_title = f"table 2 · {display_path(self.table2_path)}"
        self.add_class("sweep")
        self.poll_sweep()  # the runs are listed once the rows are known
        self.set_interval(self.POLL_SECONDS, self.poll_sweep)

    @work(thread=True, exit_on_error=False, name="listing runs")
    def _list_runs(self) -> None:
        runs = [r for r in self.index.scan() if RunFolder(r.path).config_file.exists() and r.state != RunState.DAMAGED
                ] if self.index else []
        self.from_thread(self._show_runs, runs)

    def _show_runs(self, runs: list[RunInfo]) -> None:
        chosen = {p.resolve() for p in self.selected}
        box = self.query_one("#compare-runs", SelectionList)
        first = not self._listed
        if self.table2_path is not None:  # the report's row order
            order = {name.replace("+", "_"): i for i, name in enumerate(SWEEP_ROWS)}
            runs = sorted(runs, key=lambda r: (order.get(r.name, len(order)), r.name))
        highlighted = box.highlighted
        box.clear_options()
        box.add_options([Selection(self._run_label(r), str(r.path), r.path.resolve() in chosen) for r in runs])
        if runs:  # a run highlighted at once: space chooses it without an arrow key first
            box.highlighted = min(highlighted or 0, len(runs) - 1)
        self._listed = {r.name: str(r.path) for r in runs}
        if not runs and self.table2_path is None:
            self.notify("No runs to compare yet.", severity="warning")
        if first:
            box.focus()
        self.reload()

    def _run_label(self, run: RunInfo) -> str:
        if self.table2_path is not None and run.name == run.variant.replace("+", "_"):  # a sweep's row: its name
            return f"{run.variant}  [dim]{run.state}[/]"
        # cut in the middle: two long generated names of one variant differ in their time, at the end
        width = 22 if self.app.size.width >= WIDE else 14  # the list is 26 columns wide under 110
        return f"{middle_cut(run.name, width)}  [dim]{run.variant} · {run.state}[/]"

    def _chosen_stamps(self) -> dict[str, tuple]:
        return {value: stamp(Path(value), (STATUS_FILE, METRICS_FILE, POINTERS["best"]))
                for value in self.query_one("#compare-runs", SelectionList).selected}

    def poll_runs(self) -> None:
        """Re-read the chosen runs when one of them wrote new metrics or status since the last read (timer)."""
        if self._chosen_stamps() != self._run_stamps:
            self.reload()

    @on(SelectionList.SelectedChanged, "#compare-runs")
    def reload(self) -> None:
        self._run_stamps = self._chosen_stamps()  # before reading: a write from now on is seen by the next poll
        paths = [Path(v) for v in self.query_one("#compare-runs", SelectionList).selected]
        if self._listed:  # the user's choice, kept when the list is made again
            self.selected = paths
        self._load(paths)

    @on(Select.Changed, "#compare-metric")
    def _metric_changed(self) -> None:
        self._plot()

    def chosen_metric(self) -> str | None:
        value = self.query_one("#compare-metric", Select).value
        return None if value is Select.NULL else str(value)

    # --- loading (worker) ---------------------------------------------------------------------------
    def _records(self, path: Path) -> list[dict]:
        try:
            size = os.path.getsize(RunFolder(path).metrics_file)
        except OSError:
            size = -1
        cached = self._cache.get(path)
        if cached is None or cached[0] != size:
            cached = (size, read_metrics(path))
            self._cache[path] = cached
        return cached[1]

    @work(thread=True, exclusive=True, exit_on_error=False, name="reading the chosen runs")
    def _load(self, paths: list[Path]) -> None:
        records = {p.name: self._records(p) for p in paths}
        rows = compare_rows(paths)
        diffs = config_differences({row["name"]: row["config"] for row in rows}) if len(rows) > 1 else {}
        self.from_thread(self._loaded, records, rows, diffs)

    def _loaded(self, records: dict[str, list[dict]], rows: list[dict], diffs: dict) -> None:
        self.records, self.rows, self.differences = records, rows, diffs
        choices, current = metric_choices(records), self.chosen_metric()
        if choices != self._choices:  # refilled only when they changed: an open dropdown stays open
            self._choices = choices
            self.fill_select("#compare-metric", [(c, c) for c in choices],
                             current if current in choices else choices[0] if choices else None)
        self._plot()
        if self.table2_path is None:
            self._table2()
        self._differences()
        self.updates += 1

    # --- a Table 2 sweep (table2.json) -------------------------------------------------------------
    def poll_sweep(self) -> None:
        """Re-read table2.json when it changed (the sweep rewrites it after every row); from the timer."""
        if self.table2_path is not None and not self.busy("sweep"):
            self._read_sweep(self.table2_path)

    @work(thread=True, group="sweep", exit_on_error=False, name="reading table2.json")
    def _read_sweep(self, path: Path) -> None:
        try:
            st = os.stat(path)
            now: tuple | None = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            now = None
        if now == self._sweep_stamp:
            return  # unchanged (and an unreadable file is reported once, not every poll)
        self._sweep_stamp = now
        if now is None:
            data, error = None, f"{path}: no such file (`walkless table2` writes it after its first row)"
        else:
            try:
                data, error = read_table2(path), None
            except RunError as e:
                data, error = None, str(e)
        self.from_thread(self._sweep_read, data, error)

    def _sweep_read(self, data: dict | None, error: str | None) -> None:
        self.sweep_reads += 1
        if data is None:
            self.notify(error or "table2.json could not be read", title="Table 2", severity="error", timeout=8)
            if self.sweep is None:
                self.query_one("#compare-note", Static).update(Text(error or "", style="red"))
            if self._row_runs is None:
                self._row_runs = set()
                self._list_runs()
            return
        self.sweep = data
        self._show_sweep()
        rows = {str(r["run"]) for r in sweep_rows(data) if r.get("state") != "not run" and r.get("run")}
        if rows != self._row_runs:  # a row started: list it, chosen for the curves
            box = self.query_one("#compare-runs", SelectionList)
            chosen = self.selected if self._row_runs is None else [Path(v) for v in box.selected]
            self.selected = chosen + [self.runs_root / name for name in sorted(rows - (self._row_runs or set()))]
            self._row_runs = rows
            self._list_runs()
        else:
            self.reload()  # new epochs in the chosen runs' curves

    def _show_sweep(self) -> None:
        assert self.sweep is not None
        rows = sweep_rows(self.sweep)
        table = self.query_one("#table2", DataTable)
        cursor = table.cursor_row
        best = sweep_best(rows)
        first: dict[str, dict] = {}  # a row number once (it keys the table's row), at its first entry
        for r in rows:
            first.setdefault(str(r["row"]), r)
        fill_sized(table, [("row", "row"), *SWEEP_METRICS, ("seconds", "s/epoch"), ("epochs", "epochs"),
                           ("state", "state")], [sweep_cells(r, best) for r in first.values()], list(first))
        if rows and cursor:
            table.move_cursor(row=min(cursor, table.row_count - 1))
        note = sweep_caption(self.sweep)
        if not rows:
            note = Text("No rows in table2.json yet.\n", style="dim") + note
        self.query_one("#compare-note", Static).update(note)

    @on(DataTable.RowSelected, "#table2")
    def _sweep_row_chosen(self, event: DataTable.RowSelected) -> None:
        """Enter on a sweep row: add its run to the curves, or take it away."""
        if self.sweep is None:
            return
        row = next((r for r in sweep_rows(self.sweep) if str(r["row"]) == event.row_key.value), None)
        value = self._listed.get(str(row.get("run"))) if row else None
        if value is None:
            self.notify(f"Row {event.row_key.value} has no run folder yet.", severity="warning")
            return
        self.query_one("#compare-runs", SelectionList).toggle(value)

    # --- showing ------------------------------------------------------------------------------------
    def _plot(self) -> None:
        metric = self.chosen_metric()
        plot = self.query_one("#compare-plot", CurvePlot)
        if metric is None or not self.records:
            plot.set_series({}, title="choose runs on the left")
            return
        xlabel = "step" if metric.startswith(LOSS_PREFIX) else "epoch"
        plot.xlabel = xlabel
        suffix = f" (EMA {LOSS_SMOOTHING})" if metric.startswith(LOSS_PREFIX) else " (dev, per epoch)"
        plot.set_series(curves(self.records, metric), title=metric + suffix, ylabel=metric)

    def _table2(self) -> None:
        table = self.query_one("#table2", DataTable)
        # ★ only where two or more runs have a value to compete with
        values = {k: [r[k] for r in self.rows if isinstance(r.get(k), (int, float))] for k, _ in COLUMNS}
        best = {k: max(v) if len(v) > 1 else None for k, v in values.items()}
        rows: list[list[Text]] = []
        for r in self.rows:
            cells = []
            for k, _ in COLUMNS:
                v = r.get(k)
                if not isinstance(v, (int, float)):
                    cells.append(Text("-", justify="right"))
                elif v == best[k]:
                    cells.append(Text(f"{v:.3f} ★", style="bold green", justify="right"))
                else:
                    cells.append(Text(f"{v:.3f}  ", justify="right"))
            sec = r.get("seconds")
            rows.append([Text(r["name"]), Text(r["variant"]), *cells,
                         Text("-" if sec is None else f"{sec:,.1f}", justify="right")])
        # widths from the cells (fill_sized): a refresh every 2 s could leave auto widths at the headers' ("rro")
        fill_sized(table, [("run", "run"), ("variant", "variant"), *COLUMNS, ("seconds", "s/epoch")], rows,
                   [r["name"] for r in self.rows])
        note = ENCODER_NOTE if any(is_minilm(r["config"].get("encoder")) for r in self.rows) else ""
        if not self.rows:
            note = "Choose runs on the left (space)."
        self.query_one("#compare-note", Static).update(Text(note, style="dim"))

    def _differences(self) -> None:
        table = self.query_one("#differences", DataTable)
        names = [r["name"] for r in self.rows]
        columns = [("setting", "setting"), *[(n, n) for n in names]]
        if len(names) < 2 or not self.differences:
            why = "choose two or more runs" if len(names) < 2 else "no differences (besides the name)"
            fill_sized(table, columns, [[Text(why, style="dim"), *[""] * len(names)]])
            return
        fill_sized(table, columns, [[key, *[fmt_value(values.get(n), 4) for n in names]]
                                    for key, values in self.differences.items()], list(self.differences))

