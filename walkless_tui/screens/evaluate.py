"""The Evaluate screen: confusion matrices, per-class scores (Table 3), STS distributions (Figure 3).

Reports come from a run's ``metrics.jsonl`` (one set per epoch, written by the trainer), or from
evaluating the run's best checkpoint on the dev files of a chosen data folder (``core.evaluate``).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Footer, Header, Input, ProgressBar, Select, Static, TabbedContent, TabPane

from core.config import AT_LEAST_1
from core.runs import CKPT_META, RunFolder, read_json, read_metrics
from walkless_tui.screens.base import WalklessScreen
from walkless_tui.series import reports_by_epoch
from walkless_tui.widgets.plots import HistogramPlot
from walkless_tui.widgets.reports import ClassScoresTable, ConfusionTable

CLASS_TASKS = [("sst", "SST"), ("para", "Quora"), ("cfimdb", "CFIMDB")]


class Cancelled(Exception):
    """The user cancelled an evaluation (raised from its progress callback, between batches)."""


def parse_cap(text: str) -> int | None:
    """The examples-per-task cap field: empty = every example; else a positive integer (a ValueError says so)."""
    text = text.strip()
    if not text:
        return None
    try:
        cap = int(text)
    except ValueError:
        raise ValueError(f"cap {text!r}: must be a whole number of examples per task (or empty for all)") from None
    if not AT_LEAST_1[0](cap):
        raise ValueError(f"cap {cap}: must be {AT_LEAST_1[1]}")
    return cap


def epoch_checkpoint(run_dir: Path, epoch: int | None) -> tuple[Path, str]:
    """The checkpoint ctrl+r evaluates: the one saved at the end of ``epoch`` when the run still keeps it, else
    the best; with a note saying which (the run folder itself stands for its best checkpoint)."""
    if epoch is None:
        return run_dir, "best checkpoint"
    run = RunFolder(run_dir)
    best_folder = run.pointed("best")
    folders = [best_folder] if best_folder else []  # the best first: it is named so when it is that epoch's
    for folder in folders + run.checkpoints():
        meta = read_json(folder / CKPT_META) or {}
        if meta.get("epoch") == epoch and meta.get("epoch_done", True):
            return folder, f"{'best checkpoint' if folder == best_folder else 'checkpoint'} of epoch {epoch}"
    return run_dir, f"best checkpoint (no checkpoint of epoch {epoch} is kept)"


def pearson(a: list[float], b: list[float]) -> float | None:
    n = len(a)
    if n < 2 or n != len(b):
        return None
    ma, mb = sum(a) / n, sum(b) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    va, vb = sum((x - ma) ** 2 for x in a), sum((y - mb) ** 2 for y in b)
    return cov / (va * vb) ** 0.5 if va and vb else None


class EvaluateScreen(WalklessScreen):
    BINDINGS = [
        Binding("ctrl+r", "evaluate", "Evaluate checkpoint"),
        Binding("x", "cancel", "Cancel evaluation"),
        Binding("1", "tab('sst')", "SST", show=False),
        Binding("2", "tab('para')", "Quora", show=False),
        Binding("3", "tab('cfimdb')", "CFIMDB", show=False),
        Binding("4", "tab('sts')", "STS", show=False),
    ]

    def __init__(self, run_dir: Path | None = None):
        super().__init__()
        self.run_dir = Path(run_dir) if run_dir else None
        self.epoch_reports: dict[int, dict[str, dict]] = {}
        self.epoch_metrics: dict[int, dict[str, float]] = {}
        self.reports: dict[str, dict] = {}  # what is shown
        self.source = ""
        self.shown = 0  # completed displays (tests wait on it)
        self.cancel = threading.Event()  # set by x: the running evaluation stops after its current batch
        self.evaluating = False

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="eval-source"):
            yield Select([], prompt="run", id="eval-run")
            yield Select([], prompt="epoch (from metrics.jsonl)", id="eval-epoch")
            yield Input(str(self.wapp.data_dir), placeholder="data folder", id="eval-data")
            yield Input("", placeholder="cap: all", id="eval-cap", tooltip="at most this many dev examples per task "
                        "(the first ones of each file); empty: all of them")
            yield Button("Evaluate (ctrl+r)", id="eval-go", tooltip="evaluate the chosen epoch's checkpoint "
                         "(the best one when that epoch's is not kept) on the data folder")
        yield Static("choose a run", id="eval-info")
        yield ProgressBar(id="eval-progress", show_eta=True)
        with TabbedContent(id="eval-tabs"):
            for task, title in CLASS_TASKS:
                with TabPane(f"{title} ({CLASS_TASKS.index((task, title)) + 1})", id=f"tab-{task}"):
                    with VerticalScroll():
                        yield Static("", id=f"missing-{task}", classes="missing")
                        yield Static("confusion matrix (rows: true class, columns: predicted)",
                                     classes=f"section-title heading-{task}")
                        yield ConfusionTable(id=f"conf-{task}")
                        yield Static("per-class scores (the report's Table 3)", classes=f"section-title heading-{task}")
                        yield ClassScoresTable(id=f"scores-{task}")
            with TabPane("STS (4)", id="tab-sts"):
                yield Static("", id="missing-sts", classes="missing")
                with Horizontal(id="sts-plots"):
                    yield HistogramPlot("(a) true STS scores", id="sts-true")
                    yield HistogramPlot("(b) predicted STS scores", id="sts-pred")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "evaluate"
        self.query_one("#eval-progress").display = False
        self.list_runs("#eval-run",
                       lambda r: RunFolder(r.path).metrics_file.exists() or RunFolder(r.path).pointer_file("best").exists(),
                       lambda r: f"{r.name} ({r.variant}, {r.state})", self.run_dir)
        if self.run_dir is not None:
            self._read_run(self.run_dir)
        else:
            self._show({}, "choose a run")

    @on(Select.Changed, "#eval-run")
    def _run_chosen(self, event: Select.Changed) -> None:
        if event.value is not Select.NULL:
            self.run_dir = Path(str(event.value))
            self._read_run(self.run_dir)

    # --- reports from metrics.jsonl -----------------------------------------------------------------
    @work(thread=True, exclusive=True, group="read", exit_on_error=False, name="reading the run's reports")
    def _read_run(self, run_dir: Path) -> None:
        records = read_metrics(run_dir)
        reports = reports_by_epoch(records)
        metrics = {int(r.get("epoch", 0)): r.get("dev") or {} for r in records if r.get("kind") == "epoch"}
        best = (RunFolder(run_dir).pointer("best") or {}).get("epoch")
        self.from_thread(self._run_read, run_dir, reports, metrics, best)

    def _run_read(self, run_dir: Path, reports: dict, metrics: dict, best: int | None) -> None:
        self.epoch_reports, self.epoch_metrics = reports, metrics
        epochs = sorted(reports)
        self.fill_select("#eval-epoch", [(f"epoch {e}" + (" ★" if e == best else ""), e) for e in epochs],
                         best if best in reports else epochs[-1] if epochs else None)
        if epochs:
            self._show_epoch(int(self.query_one("#eval-epoch", Select).value))
        else:
            self._show({}, f"{run_dir.name}: no evaluation reports in metrics.jsonl yet (no epoch finished); "
                           f"ctrl+r evaluates its checkpoint if it has one")

    @on(Select.Changed, "#eval-epoch")
    def _epoch_chosen(self, event: Select.Changed) -> None:
        if event.value is not Select.NULL:
            self._show_epoch(int(event.value))

    def _show_epoch(self, epoch: int) -> None:
        metrics = self.epoch_metrics.get(epoch, {})
        summary = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, (int, float)))
        name = self.run_dir.name if self.run_dir else "?"
        self._show(self.epoch_reports.get(epoch, {}), f"{name}, epoch {epoch} (from metrics.jsonl)  {summary}")

    def action_tab(self, task: str) -> None:
        self.query_one("#eval-tabs", TabbedContent).active = f"tab-{task}"

    # --- evaluating a checkpoint --------------------------------------------------------------------
    @on(Button.Pressed, "#eval-go")
    def action_evaluate(self) -> None:
        if self.run_dir is None:
            self.notify("Choose a run first.", severity="warning")
            return
        if self.evaluating:
            self.notify("An evaluation is running (x cancels it).", severity="warning")
            return
        data_dir = Path(self.query_one("#eval-data", Input).value.strip() or self.wapp.data_dir).expanduser()
        try:
            cap = parse_cap(self.query_one("#eval-cap", Input).value)
        except ValueError as e:
            self._failed(str(e))
            return
        value = self.query_one("#eval-epoch", Select).value
        epoch = None if value is Select.NULL else int(value)
        scope = f"the first {cap} dev examples per task" if cap else "every dev example"
        self.query_one("#eval-info", Static).update(Text(f"loading {self.run_dir.name}'s checkpoint to evaluate on "
                                                         f"{scope} of {data_dir} … (x cancels)", style="yellow"))
        self.cancel.clear()
        self.evaluating = True
        self._evaluate(self.run_dir, data_dir, epoch, cap)

    def action_cancel(self) -> None:
        if self.evaluating:
            self.cancel.set()
            self.query_one("#eval-info", Static).update(Text("cancelling after the current batch …", style="yellow"))

    @work(thread=True, exclusive=True, group="evaluate", exit_on_error=False, name="evaluating")
    def _evaluate(self, run_dir: Path, data_dir: Path, epoch: int | None = None, cap: int | None = None) -> None:
        from core.checkpoint import load_checkpoint
        from core.data import load_task
        from core.evaluate import evaluate

        t0 = time.perf_counter()
        try:
            checkpoint, which = epoch_checkpoint(run_dir, epoch)
            model, meta, tok = load_checkpoint(checkpoint)
            dev = {t: load_task(data_dir, t, "dev", tok) for t in model.heads.tasks}
            if cap:
                dev = {t: d.select(list(range(min(cap, len(d))))) for t, d in dev.items()}
            total = sum(len(d) for d in dev.values() if d.labels is not None)
            done, last = 0, 0.0
            self.from_thread(self._progress, 0, total)

            def on_batch(n: int) -> None:
                nonlocal done, last
                if self.cancel.is_set():
                    raise Cancelled
                done += n
                if time.perf_counter() - last > 0.1 or done == total:  # a redraw at most ten times a second
                    last = time.perf_counter()
                    self.from_thread(self._progress, done, total)

            metrics, reports = evaluate(model, dev, on_batch=on_batch)
        except Cancelled:
            self.from_thread(self._cancelled, run_dir)
            return
        except Exception as e:  # the UI boundary: bad data or checkpoint becomes a message
            msg = str(e) if isinstance(e, ValueError) else f"{type(e).__name__}: {e}"
            self.from_thread(self._failed, f"cannot evaluate {run_dir.name}: {msg}")
            return
        summary = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        scope = f"the first {cap} per task of " if cap else ""
        source = (f"{run_dir.name}, {which}: epoch {meta.get('epoch', '?')}, step {meta.get('step', '?')}, "
                  f"on {scope}{data_dir} in {time.perf_counter() - t0:.1f}s  {summary}")
        self.from_thread(self._evaluated, reports, source)

    def _progress(self, done: int, total: int) -> None:
        bar = self.query_one("#eval-progress", ProgressBar)
        bar.display = True
        bar.update(total=total, progress=done)
        if done == 0:
            self.query_one("#eval-info", Static).update(Text(f"evaluating {total} dev examples … (x cancels)",
                                                             style="yellow"))

    def _evaluated(self, reports: dict[str, dict], source: str) -> None:
        self.evaluating = False
        self.query_one("#eval-progress").display = False
        self._show(reports, source)

    def _cancelled(self, run_dir: Path) -> None:
        self.evaluating = False
        self.query_one("#eval-progress").display = False
        self.query_one("#eval-info", Static).update(Text(f"evaluation of {run_dir.name} cancelled; the reports "
                                                         f"shown are the earlier ones", style="yellow"))
        self.notify("evaluation cancelled", title="evaluate")

    def _failed(self, message: str) -> None:
        self.evaluating = False
        self.query_one("#eval-progress").display = False
        self.query_one("#eval-info", Static).update(Text(message, style="bold red"))
        self.notify(message, severity="error", timeout=8)

    # --- showing ------------------------------------------------------------------------------------
    def _show(self, reports: dict[str, dict], source: str) -> None:
        self.reports, self.source = reports, source
        self.query_one("#eval-info", Static).update(source)
        for task, title in CLASS_TASKS:
            report = reports.get(task)
            missing = self.query_one(f"#missing-{task}", Static)
            conf = self.query_one(f"#conf-{task}", ConfusionTable)
            scores = self.query_one(f"#scores-{task}", ClassScoresTable)
            try:
                if report is None:
                    raise KeyError(f"no {title} report here")
                conf.set_report(report)
                scores.set_report(report)
                missing.display, conf.display, scores.display = False, True, True
            except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError) as e:
                text = str(e).strip("'") if report is None else f"the {title} report is malformed ({e})"
                missing.update(Text(text, style="dim"))
                missing.display, conf.display, scores.display = True, False, False
            for heading in self.query(f".heading-{task}"):  # no headings over tables that are not shown
                heading.display = conf.display
        sts = reports.get("sts") or {}
        true, pred = list(sts.get("true") or []), list(sts.get("pred") or [])
        self.query_one("#sts-true", HistogramPlot).set_values(true)
        self.query_one("#sts-pred", HistogramPlot).set_values(pred)
        r = pearson(true, pred)
        missing = self.query_one("#missing-sts", Static)
        missing.update(Text(f"n = {len(true)}  Pearson r = {r:.4f}" if r is not None else "no STS report here",
                            style="" if r is not None else "dim"))
        present = [t for t, _ in CLASS_TASKS if t in reports] + (["sts"] if true else [])
        tabs = self.query_one("#eval-tabs", TabbedContent)
        if present and tabs.active.removeprefix("tab-") not in present:
            tabs.active = f"tab-{present[0]}"
        self.shown += 1
