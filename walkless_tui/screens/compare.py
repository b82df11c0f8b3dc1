"""The Compare screen: chosen runs' curves of one metric, the report's Table 2, differing settings."""

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
from core.runs import RunInfo, read_metrics
from walkless_tui.runindex import RunIndex
from walkless_tui.screens.base import WalklessScreen
from walkless_tui.series import config_differences, dev_series, ema, fmt_value, loss_series
from walkless_tui.widgets.plots import CurvePlot

LOSS_PREFIX = "loss: "
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


class CompareScreen(WalklessScreen):
    def __init__(self, selected: list[Path]):
        super().__init__()
        self.selected = [Path(p) for p in selected]
        self.index: RunIndex | None = None
        self.records: dict[str, list[dict]] = {}
        self._cache: dict[Path, tuple[int, list[dict]]] = {}
        self.rows: list[dict] = []
        self.differences: dict[str, dict] = {}
        self.updates = 0  # completed updates (tests wait on it)

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="compare-body"):
            with Vertical(id="compare-side"):
                yield Static("runs (space to choose)", classes="section-title")
                yield SelectionList[str](id="compare-runs")
                yield Static("metric", classes="section-title")
                yield Select([], prompt="metric", id="compare-metric")
            with VerticalScroll(id="compare-main"):
                yield CurvePlot("", "epoch", "", empty="choose runs and a metric", id="compare-plot")
                yield Static("Table 2 layout: best dev value per run (★ best per column)", classes="section-title")
                yield DataTable(id="table2", cursor_type="row", zebra_stripes=True)
                yield Static("", id="compare-note")
                yield Static("hyperparameters that differ", classes="section-title")
                yield DataTable(id="differences", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "compare"
        self.index = RunIndex(self.wapp.runs_dir)
        self._list_runs()

    @work(thread=True, exit_on_error=False, name="listing runs")
    def _list_runs(self) -> None:
        runs = [r for r in self.index.scan() if (r.path / "config.json").exists()] if self.index else []
        self.from_thread(self._show_runs, runs)

    def _show_runs(self, runs: list[RunInfo]) -> None:
        chosen = {p.resolve() for p in self.selected}
        box = self.query_one("#compare-runs", SelectionList)
        box.clear_options()
        box.add_options([Selection(f"{r.name}  [dim]{r.variant} · {r.state}[/]", str(r.path),
                                   r.path.resolve() in chosen) for r in runs])
        if not runs:
            self.notify("No runs to compare yet.", severity="warning")
        box.focus()
        self.reload()

    @on(SelectionList.SelectedChanged, "#compare-runs")
    def reload(self) -> None:
        paths = [Path(v) for v in self.query_one("#compare-runs", SelectionList).selected]
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
            size = os.path.getsize(path / "metrics.jsonl")
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
        choices = metric_choices(records)
        select = self.query_one("#compare-metric", Select)
        current = self.chosen_metric()
        with self.prevent(Select.Changed):
            select.set_options([(c, c) for c in choices])
            if choices:
                select.value = current if current in choices else choices[0]
        self._plot()
        self._table2()
        self._differences()
        self.updates += 1

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
        table.clear(columns=True)
        table.add_column("run", key="run")
        table.add_column("variant", key="variant")
        for key, header in COLUMNS:
            table.add_column(header, key=key)
        table.add_column("s/epoch", key="seconds")
        best = {k: max((r[k] for r in self.rows if isinstance(r.get(k), (int, float))), default=None)
                for k, _ in COLUMNS}
        for r in self.rows:
            cells = []
            for k, _ in COLUMNS:
                v = r.get(k)
                if not isinstance(v, (int, float)):
                    cells.append(Text("-", justify="right"))
                elif v == best[k] and len(self.rows) > 1:
                    cells.append(Text(f"{v:.3f} ★", style="bold green", justify="right"))
                else:
                    cells.append(Text(f"{v:.3f}  ", justify="right"))
            sec = r.get("seconds")
            table.add_row(r["name"], r["variant"], *cells,
                          Text("-" if sec is None else f"{sec:,.1f}", justify="right"), key=r["name"])
        encoders = {str(r["config"].get("encoder", "")).lower() for r in self.rows}
        note = ENCODER_NOTE if any(e.startswith(("minilm", "all-minilm")) for e in encoders) else ""
        if not self.rows:
            note = "Choose runs on the left (space)."
        self.query_one("#compare-note", Static).update(Text(note, style="dim"))

    def _differences(self) -> None:
        table = self.query_one("#differences", DataTable)
        table.clear(columns=True)
        names = [r["name"] for r in self.rows]
        table.add_column("setting", key="setting")
        for n in names:
            table.add_column(n, key=n)
        if len(names) < 2:
            table.add_row(Text("choose two or more runs", style="dim"), *[""] * len(names))
            return
        if not self.differences:
            table.add_row(Text("no differences (besides the name)", style="dim"), *[""] * len(names))
        for key, values in self.differences.items():
            table.add_row(key, *[fmt_value(values.get(n), 4) for n in names], key=key)

