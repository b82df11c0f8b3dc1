"""walkless-tui: watch, launch, compare and probe runs.

    walkless-tui [--runs-dir runs] [--data-dir DIR] [--encoder minilm-l6] [--table2 PATH]

``--table2`` opens straight on a Table 2 sweep (``walkless table2``): its ``table2.json`` or a folder holding it.

The app only reads run folders (``core.runs``) and starts ``walkless train`` processes
(``core.launch``); it never trains in its own process, so closing it leaves training running.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import AwaitMount

from core.demo import ensure_demo_data
from core.launch import resume_problem, resume_training, stop_run
from core.runs import RunError, RunState
from walkless_tui.runindex import find_table2
from walkless_tui.screens.base import WIDE
from walkless_tui.screens.compare import CompareScreen
from walkless_tui.screens.confirm import ConfirmScreen
from walkless_tui.screens.evaluate import EvaluateScreen
from walkless_tui.screens.help import HelpScreen
from walkless_tui.screens.launch import LaunchScreen
from walkless_tui.screens.monitor import MonitorScreen
from walkless_tui.screens.runs import RunsScreen
from walkless_tui.screens.score import ScoreScreen
from walkless_tui.series import display_path

LAUNCH_FORM = "launch"  # the name the app's launch form is installed under
PREMAKE_FORM_AFTER = 1.0  # seconds after start: the launch form is made off screen then (the first screen is up)
FORM_MOUNT_WAIT = 10.0  # seconds at most that closing the app waits for the off-screen form to finish mounting
STYLES = ["app", "runs", "launch", "monitor", "compare", "score", "evaluate"]


class WalklessApp(App):
    TITLE = "walkless"
    CSS_PATH = [f"styles/{name}.tcss" for name in STYLES]
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (WIDE, "-wide")]  # screens get a class the styles adapt to
    BINDINGS = [
        Binding("question_mark,f1", "help", "Help"),
        Binding("f2", "export_svg", "Export SVG", show=False),
        Binding("ctrl+q", "quit", "Quit", show=False),
    ]

    def __init__(self, runs_dir: str | Path = "runs", data_dir: str | Path | None = None,
                 encoder: str = "minilm-l6", table2: str | Path | None = None):
        super().__init__()
        self.runs_dir = Path(runs_dir).expanduser().absolute()
        if data_dir is None:
            data_dir = ensure_demo_data()  # = core.data.demo_data_dir(), without importing torch
        self.data_dir = Path(data_dir).expanduser().absolute()
        self.encoder = encoder
        self.focus_run: str | None = None  # a run the Runs screen should highlight when it appears
        self.last_form: dict[str, str] = {}  # the launch form's fields when it was last left (restored next time)
        self.table2 = Path(table2).expanduser().absolute() if table2 is not None else None  # open on it
        self.export_dir = Path.cwd()  # where f2 saves the screen as SVG
        self._premake_timer: Timer | None = None
        self._form_mounting: AwaitMount | None = None  # the off-screen form's mount, until closing has waited for it

    def get_default_screen(self) -> Screen:
        return RunsScreen()

    def on_mount(self) -> None:
        self._warm_up()
        self._premake_timer = self.set_timer(PREMAKE_FORM_AFTER, self._premake_launch_form)
        if self.table2 is not None:
            self.open_table2(self.table2)

    @work(thread=True, exit_on_error=False, name="importing torch")
    def _warm_up(self) -> None:
        """Import the torch-backed modules and the tokenizer in the background, so scoring and evaluation start
        fast."""
        import core.checkpoint  # noqa: F401
        import core.evaluate  # noqa: F401
        import core.scoring  # noqa: F401
        from core.encoders import tokenizer_class

        tokenizer_class()

    def _premake_launch_form(self) -> None:
        """Make and mount the app's launch form off screen, once the first screen is up, so that its first opening
        costs what the later ones do (making its ~100 widgets is most of an opening). Textual mounts an installed
        screen only when it is first shown; ``_get_screen`` is the step of ``push_screen`` that does it. Where a
        Textual lacks it, the form is made at its first opening as before (on a form already shown it does
        nothing). Closing the app waits for that mount (``_shutdown``)."""
        if not self.is_running:  # closing already: a form made now would be closed half-mounted
            return
        self._install_launch_form()
        mount = getattr(self, "_get_screen", None)
        if mount is not None:
            self._form_mounting = mount(LAUNCH_FORM)[1]

    async def _shutdown(self) -> None:
        """Textual closes the screens on its stacks top down, then any other node in the order it was made. The
        off-screen form is on no stack: closed while it still mounts, its widgets end before their mount handlers
        run, which then fail (NoMatches at exit); and widgets started once closing has begun never mount. So the app
        lets that mount finish before it starts to close (both ways out, ``exit`` and ``run_test``, come here)."""
        if self._premake_timer is not None:
            self._premake_timer.stop()
        if self._form_mounting is not None:
            mounting, self._form_mounting = self._form_mounting, None
            try:
                await asyncio.wait_for(mounting(), FORM_MOUNT_WAIT)
            except asyncio.TimeoutError:  # (TimeoutError from 3.11 on) closed half-mounted, as before
                pass
        await super()._shutdown()

    def _install_launch_form(self) -> None:
        if not self.is_screen_installed(LAUNCH_FORM):
            self.install_screen(LaunchScreen(), LAUNCH_FORM)

    # --- navigation (screens call these) ----------------------------------------------------------
    def open_monitor(self, run_dir: Path) -> None:
        self.push_screen(MonitorScreen(run_dir))

    def open_launch(self, template: dict | None = None) -> None:
        """The launch form; ``template`` (a run's config.json) prefills a form of its own: a new run from that one.
        Without one, the app's one form (made off screen soon after start, or here if asked for sooner), shown
        again as it was left."""
        if template is not None:
            self.push_screen(LaunchScreen(template))
            return
        self._install_launch_form()
        self.push_screen(LAUNCH_FORM)

    def open_compare(self, run_dirs: list[Path] | None = None) -> None:
        self.push_screen(CompareScreen(run_dirs or []))

    def open_table2(self, path: Path | None = None) -> bool:
        """Compare on a Table 2 sweep: ``path`` (default the runs folder) is its table2.json, the folder holding
        it, a row folder in it, or a folder above it; a notification says where it looked when none is found."""
        found, looked = find_table2(path if path is not None else self.runs_dir)
        if found is None:
            where = ", ".join(display_path(p) for p in looked)
            self.notify(f"No table2.json found (looked for {where}). `walkless table2 --runs-dir DIR` writes one.",
                        title="Table 2", severity="warning", timeout=10)
            return False
        self.push_screen(CompareScreen([], table2=found))
        return True

    def open_score(self, run_dir: Path | None = None) -> None:
        self.push_screen(ScoreScreen(run_dir))

    def open_evaluate(self, run_dir: Path | None = None) -> None:
        self.push_screen(EvaluateScreen(run_dir))

    def go_runs(self) -> None:
        while len(self.screen_stack) > 1 and not isinstance(self.screen, RunsScreen):
            self.pop_screen()

    def action_export_svg(self) -> None:
        """Save what the screen shows (its plots and tables, as drawn) as an SVG file in ``export_dir``."""
        screen = (self.screen.sub_title or type(self.screen).__name__).split(" · ")[0].replace(" ", "-")
        name = f"walkless-{screen}-{time.strftime('%Y%m%d-%H%M%S')}.svg"
        try:
            path = self.save_screenshot(filename=name, path=str(self.export_dir))
        except OSError as e:
            self.notify(f"cannot write {self.export_dir / name}: {e}", title="export", severity="error")
            return
        self.notify(f"saved {display_path(path)}", title="export")

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def stop(self, run_dir: Path, state: RunState | None = None,
             after: Callable[[], None] | None = None) -> None:
        """Stop the run after a yes: SIGTERM its process (it stops after the current step), the outcome
        notified; when ``state`` says that the run is not training, a message says so instead."""
        if state is not None and not state.active:
            self.notify(f"Run {run_dir.name} is {state}, not running.", severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.notify(stop_run(run_dir), title="stopping")
            except (RunError, OSError) as e:
                self.notify(str(e), severity="error")
            if after is not None:
                after()

        self.push_screen(ConfirmScreen(f"Stop run {run_dir.name} after its current step?"), answered)

    def resume(self, run_dir: Path, after: Callable[[], None] | None = None) -> None:
        """Resume a stopped or failed run after a yes; when it cannot be, say why (no checkpoint, never began…).
        A resume that then fails shows on the run's row and in Monitor (``core.launch.resume_outcome``)."""
        problem = resume_problem(run_dir)
        if problem:
            self.notify(problem, title="cannot resume", severity="warning", timeout=10)
            return

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            try:
                pid = resume_training(run_dir)
            except (RunError, OSError) as e:
                self.notify(str(e), title="cannot resume", severity="error", timeout=10)
                return
            self.notify(f"resuming {run_dir.name} from its last checkpoint (pid {pid})", title="resume")
            if after is not None:
                after()

        self.push_screen(ConfirmScreen(f"Resume run {run_dir.name} from its last checkpoint?"), answered)

    def listed_runs(self) -> list:
        """The runs the Runs screen (at the bottom of the stack) listed at its last scan."""
        listing = next((s for s in self.screen_stack if isinstance(s, RunsScreen)), None)
        return listing.runs if listing else []

    async def action_quit(self) -> None:
        """Quit; while runs train (as Runs last saw them), first say that they go on training and ask."""
        training = [r.name for r in self.listed_runs() if r.state.active]
        if not training:
            self.exit()
            return
        if isinstance(self.screen, ConfirmScreen):
            return
        names = ", ".join(training[:3]) + (f" and {len(training) - 3} more" if len(training) > 3 else "")
        question = (f"{len(training)} run{'s' if len(training) > 1 else ''} still training ({names}): "
                    f"they go on after the app closes (x stops a run). Quit?")
        self.push_screen(ConfirmScreen(question), lambda yes: self.exit() if yes else None)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        commands: list[tuple[str, str, Callable]] = [
            ("Runs", "List every run (live)", self.go_runs),
            ("Launch", "Start a new training run", self.open_launch),
            ("Compare", "Overlay curves and Table 2 for chosen runs", self.open_compare),
            ("Table 2", "A `walkless table2` sweep (table2.json): our rows beside the report's", self.open_table2),
            ("Score", "Score a sentence or a pair with a checkpoint", self.open_score),
            ("Evaluate", "Confusion matrices, per-class F1, STS distributions", self.open_evaluate),
            ("Help", "Keys and what each screen shows", self.action_help),
        ]
        bound = {title: (key, callback) for title, key, callback in self.binding_commands(screen)}
        for title, help_text, callback in commands:
            if title in bound:  # the screen's key for it (Compare: the marked runs): one entry, not two
                key, callback = bound.pop(title)
                help_text += f" (key {key} here)"
            yield SystemCommand(title, help_text, callback)
        where = f"key on the {screen.sub_title or 'current'} screen"
        for title, (key, callback) in bound.items():
            yield SystemCommand(f"{title} ({key})", where, callback)
        for run in self.listed_runs()[:30]:
            yield SystemCommand(f"Monitor {run.name}", f"{run.variant}, {run.state}",
                                lambda p=run.path: self.open_monitor(p))

    def binding_commands(self, screen: Screen) -> Iterable[tuple[str, str, Callable]]:
        """The screen's own key bindings (those in its footer): (description, key, callback)."""
        seen = set()
        for active in screen.active_bindings.values():
            b = active.binding
            if not (b.show and b.description and active.enabled) or active.node is self or b.action in seen:
                continue
            seen.add(b.action)
            yield b.description, self.get_key_display(b), partial(self.run_action, b.action, active.node)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="walkless-tui", description="Watch, launch, compare and probe walkless runs.")
    p.add_argument("--runs-dir", default=None, help="folder of run folders (default ./runs, or the folder of "
                                                    "--table2)")
    p.add_argument("--data-dir", default=None, help="CS224N data folder for launches and evaluation "
                                                    "(default: the demo data)")
    p.add_argument("--encoder", default="minilm-l6", help="default encoder of the launch form")
    p.add_argument("--table2", default=None, metavar="PATH",
                   help="open on a Table 2 sweep: its table2.json or the folder holding it (`walkless table2`)")
    return p


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    a = parser.parse_args(argv)
    runs_dir, table2 = a.runs_dir, None
    if a.table2 is not None:
        table2, looked = find_table2(a.table2)
        if table2 is None:
            parser.error(f"--table2: no table2.json found (looked for {', '.join(map(str, looked))})")
        runs_dir = runs_dir or table2.parent
    WalklessApp(runs_dir or "runs", a.data_dir, a.encoder, table2=table2).run()


if __name__ == "__main__":
    main()
