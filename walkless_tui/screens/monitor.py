"""The Monitor screen: one run, live: loss curves per task, dev metrics per epoch, the log's tail."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Header, Log, ProgressBar, Static

from core.launch import launch_log, quick_info
from core.report import COLUMNS
from core.runs import RunFolder, RunInfo, RunState, pace, read_json, read_metrics_since
from walkless_tui.constants import METRIC_HEADERS as HEADERS
from walkless_tui.constants import STATE_STYLE
from walkless_tui.runindex import TextFollower
from walkless_tui.screens.base import WalklessScreen
from walkless_tui.series import fmt_duration, fmt_value, loss_series, smooth_for_plot
from walkless_tui.system import SystemSampler
from walkless_tui.widgets.plots import CurvePlot
from walkless_tui.widgets.tables import fill_sized

SMOOTHING = [0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.99]


class MonitorScreen(WalklessScreen):
    BINDINGS = [
        Binding("x", "stop", "Stop run"),
        Binding("r", "resume", "Resume"),
        Binding("plus,equals_sign", "smooth(1)", "Smoother"),
        Binding("minus", "smooth(-1)", "Rougher"),
        Binding("l", "log_scale", "Log scale"),
        Binding("t", "x_axis", "Step/time"),
        Binding("s", "score", "Score"),
        Binding("e", "evaluate", "Evaluate"),
    ]

    def __init__(self, run_dir: Path):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.info: RunInfo | None = None
        self.metrics_offset = 0
        self.losses: dict[str, tuple[list, list]] = {}  # by step
        self.losses_t: dict[str, tuple[list, list]] = {}  # by wall-clock time
        self.x_axis = "step"  # or "time" (minutes since the first logged step)
        self.epochs: list[dict] = []
        self.timed: list[dict] = []  # the step and epoch records' kind, step and time (for the pace and ETA)
        self.smoothing = 2  # index into SMOOTHING
        self.log_follower = TextFollower(RunFolder(self.run_dir).log_file)
        self.launch_follower = TextFollower(launch_log(self.run_dir))
        self._replot = True  # smoothing changed: redraw even without new steps
        self.polls = 0  # completed polls (tests wait on it)
        self.system = SystemSampler()

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="monitor-head"):
            yield Static("", id="monitor-title")
            with Horizontal(id="monitor-progress-row"):
                yield ProgressBar(id="monitor-progress", show_eta=False)
                yield Static("", id="monitor-times")
            yield Static("", id="monitor-system")
        with Horizontal(id="monitor-main"):
            yield CurvePlot("training loss", "step", "loss", empty="no training steps logged yet",
                            id="loss-plot")
            with Vertical(id="monitor-side"):
                yield Static("dev metrics per epoch", classes="section-title")
                yield DataTable(id="dev-table", cursor_type="none", zebra_stripes=True)
        yield Log(id="train-log", max_lines=2000, highlight=False)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"monitor · {self.run_dir.name}"
        self.poll()
        self.set_interval(1.0, self.poll)

    # --- reading ----------------------------------------------------------------------------------
    def poll(self) -> None:
        if not self.busy("read"):
            self._read()

    @work(thread=True, group="read", exit_on_error=False, name="reading the run")
    def _read(self) -> None:
        replot, self._replot = self._replot, False
        info = quick_info(self.run_dir)
        records, self.metrics_offset = read_metrics_since(self.run_dir, self.metrics_offset)
        new_losses = loss_series(records)
        for store, new in ((self.losses, new_losses), (self.losses_t, loss_series(records, x="time"))):
            for task, (xs, ys) in new.items():
                old = store.setdefault(task, ([], []))
                old[0].extend(xs)
                old[1].extend(ys)
        new_epochs = [r for r in records if r.get("kind") == "epoch"]
        self.epochs.extend(new_epochs)
        self.timed += [{k: r.get(k) for k in ("kind", "step", "time")} for r in records
                       if r.get("kind") in ("step", "epoch")]
        info.pace = pace(self.timed)
        curves = None
        if new_losses or replot:
            curves = smooth_for_plot(self.plotted_losses(), SMOOTHING[self.smoothing])
        lines = self.log_follower.read()
        if not self.log_follower.path.exists() or (info.message or "").startswith("resum"):
            lines += self.launch_follower.read()  # starting, or died before its log began or its resume ran
        self.from_thread(self._apply, info, curves, bool(new_epochs) or self.polls == 0, lines, self._system(info))

    def _system(self, info: RunInfo) -> str:
        """The system line: the machine's CPU and memory, the training process's while it runs here, the GPU."""
        status = read_json(self.run_dir / "status.json", {}) or {}
        here = status.get("host") == socket.gethostname() and info.state == RunState.RUNNING
        pid = status.get("pid") if here and isinstance(status.get("pid"), int) else None
        return "system: " + self.system.line(pid)

    def _apply(self, info: RunInfo, curves: dict | None, epochs_changed: bool, lines: list[str],
               system: str = "") -> None:
        self.query_one("#monitor-system", Static).update(system)
        ended = self.info is not None and self.info.state.active and info.state != self.info.state
        self.info = info
        self.polls += 1
        self._show_head(info)
        if curves is not None:
            alpha = SMOOTHING[self.smoothing]
            plot = self.query_one("#loss-plot", CurvePlot)
            plot.xlabel = "step" if self.x_axis == "step" else "minutes"
            scale = ", log scale" if plot.log_y else ""
            plot.set_series(curves, title=f"training loss per task (EMA {alpha:g}{scale}; +/- l t to change)")
        if epochs_changed:
            self._show_epochs()
        if lines:
            self.query_one("#train-log", Log).write_lines(lines)
        if ended:  # train.log may say nothing when a run stops or dies: the log tail says it here
            self.query_one("#train-log", Log).write_line(
                f"── run {info.state} at step {info.step}" + (f": {info.message}" if info.message else ""))

    def _show_head(self, info: RunInfo) -> None:
        title = Text.assemble((info.name, "bold"), "  ", info.variant, "  ",
                              (info.state, STATE_STYLE.get(info.state, "")))
        if info.tasks:
            title.append(f"  tasks {', '.join(info.tasks)}", style="dim")
        if info.message:
            title.append("\n" + info.message, style="red" if info.state == RunState.FAILED else "dim")
        if info.state.ended and RunFolder(info.path).has_checkpoint():
            title.append("  (r resumes it here)", style="bold")
        self.query_one("#monitor-title", Static).update(title)
        bar = self.query_one("#monitor-progress", ProgressBar)
        # status.json is written every few steps; the logged losses may be ahead of it (say after a stop)
        step = max([info.step] + [xs[-1] for xs, _ in self.losses.values() if xs])
        if info.total_steps:
            done = info.total_steps if info.state == RunState.FINISHED else min(step, info.total_steps)
            bar.update(total=info.total_steps, progress=done)
        doing = ""
        if info.phase == "evaluating" and info.state == RunState.RUNNING:
            since = f" for {fmt_duration(time.time() - info.evaluating_since)}" if info.evaluating_since else ""
            doing = f"evaluating the dev sets{since}  "
        times = f"epoch {info.epoch}/{info.epochs or '?'}  step {step}/{info.total_steps or '?'}  {doing}" \
                f"elapsed {fmt_duration(info.elapsed)}  ETA {fmt_duration(info.eta)}"
        self.query_one("#monitor-times", Static).update(times)
        self._show_empty_plot(info)

    def _show_empty_plot(self, info: RunInfo) -> None:
        """What the loss plot says before its first point: the same step as the bar, and why nothing yet."""
        plot = self.query_one("#loss-plot", CurvePlot)
        every = info.config.get("log_every")
        if info.state == RunState.STARTING:
            empty = "the run is starting (no step yet)"
        elif info.step and not self.losses:
            empty = (f"step {info.step}/{info.total_steps or '?'}: no loss logged yet"
                     + (f" (losses are logged every {every} steps)" if every else ""))
        else:
            empty = "no training steps logged yet"
        if empty != plot.empty:
            plot.empty = empty
            plot.refresh()

    def _show_epochs(self) -> None:
        table = self.query_one("#dev-table", DataTable)
        found = {k for r in self.epochs for k in (r.get("dev") or {})}
        # the report's headline metrics first (short names), then any other accuracy; macro F1 is in Evaluate
        metrics = [k for k, _ in COLUMNS if k in found] + sorted(
            k for k in found if k.endswith("/acc") and k not in dict(COLUMNS))
        columns = [("epoch", "epoch"), ("step", "step"), ("seconds", "s"), *[(m, HEADERS.get(m, m)) for m in metrics]]
        fill_sized(table, columns, self._epoch_rows(metrics))
        if not self.epochs:
            table.add_columns("(no epoch finished yet)")

    def _epoch_rows(self, metrics: list[str]) -> list[list]:
        """One row of cells per finished epoch: epoch, step, seconds, then each metric (the best in bold green)."""
        best = {m: max((r["dev"][m] for r in self.epochs if isinstance((r.get("dev") or {}).get(m), (int, float))),
                       default=None) for m in metrics}
        rows = []
        for r in self.epochs:
            dev = r.get("dev") or {}
            cells = [Text(f"{dev[m]:.4f}", style="bold green" if dev[m] == best[m] and len(self.epochs) > 1 else "")
                     if isinstance(dev.get(m), (int, float)) else "-" for m in metrics]
            rows.append([str(r.get("epoch", "?")), str(r.get("step", "?")), fmt_value(r.get("seconds"), 1), *cells])
        return rows

    # --- actions ----------------------------------------------------------------------------------
    def plotted_losses(self) -> dict[str, tuple[list, list]]:
        """The stored losses against the chosen x axis: steps, or minutes since the first logged step."""
        if self.x_axis == "step":
            return self.losses
        t0 = min((xs[0] for xs, _ in self.losses_t.values() if xs), default=0.0)
        return {task: ([(x - t0) / 60 for x in xs], ys) for task, (xs, ys) in self.losses_t.items()}

    def action_log_scale(self) -> None:
        plot = self.query_one("#loss-plot", CurvePlot)
        plot.log_y = not plot.log_y
        self.redraw()

    def action_x_axis(self) -> None:
        self.x_axis = "time" if self.x_axis == "step" else "step"
        self.redraw()

    def action_smooth(self, delta: int) -> None:
        self.smoothing = max(0, min(len(SMOOTHING) - 1, self.smoothing + delta))
        self.redraw()

    def redraw(self) -> None:
        """Redraw the losses at the next read, new steps or not (the plot's settings changed)."""
        self._replot = True
        self.poll()

    def action_stop(self) -> None:
        self.wapp.stop(self.run_dir, self.info.state if self.info else None)

    def action_resume(self) -> None:
        self.wapp.resume(self.run_dir, after=self.poll)

    def action_score(self) -> None:
        self.wapp.open_score(self.run_dir)

    def action_evaluate(self) -> None:
        self.wapp.open_evaluate(self.run_dir)
