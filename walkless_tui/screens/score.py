"""The Score screen: load a checkpoint, type a sentence or a pair, see the model's scores."""

from __future__ import annotations

import threading
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import Button, Footer, Header, Input, Select, Static

from core.runs import POINTERS, RunFolder, RunInfo
from walkless_tui.screens.base import WalklessScreen
from walkless_tui.series import display_path
from walkless_tui.widgets.bars import ScoreBars

DEBOUNCE_S = 0.2
SENTIMENT_LABELS = {"sst": ["negative", "somewhat negative", "neutral", "somewhat positive", "positive"],
                    "cfimdb": ["negative", "positive"]}


def has_checkpoint(run: RunInfo) -> bool:
    return any(RunFolder(run.path).pointer_file(which).exists() for which in POINTERS)


class ScoreScreen(WalklessScreen):
    def __init__(self, run_dir: Path | None = None):
        super().__init__()
        self.run_dir = Path(run_dir) if run_dir else None
        self.scorer = None
        self.loaded_from: Path | None = None
        self.error: str | None = None
        self.sentiment_result: dict | None = None
        self.pair_result: dict | None = None
        self._lock = threading.Lock()  # one forward pass at a time on the shared model
        self._debounce_timers: dict[str, Timer] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="score-body"):
            with Horizontal(id="score-source"):
                yield Select([], prompt="a run's best checkpoint", id="score-run")
                yield Input(placeholder="…or a run / checkpoint folder, then Enter", id="score-path")
                yield Button("Load", id="score-load")
            yield Static("no checkpoint loaded", id="score-info")
            with Vertical(classes="score-box"):
                yield Static("sentiment: type a sentence", classes="section-title")
                yield Input(placeholder="e.g. A lovely film with lovely performances.", id="sentence")
                yield ScoreBars(id="sentiment-bars")
                yield Static("", id="sentiment-info", classes="latency")
            with Vertical(classes="score-box"):
                yield Static("paraphrase and similarity: type a pair", classes="section-title")
                yield Input(placeholder="first sentence", id="pair-a")
                yield Input(placeholder="second sentence (Enter to score)", id="pair-b")
                yield ScoreBars(id="pair-bars")
                yield Static("", id="pair-info", classes="latency")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "score"
        self.list_runs("#score-run", has_checkpoint, lambda r: f"{r.name} ({r.variant})", self.run_dir)
        if self.run_dir is not None:
            self.load(self.run_dir)
            self.query_one("#sentence").focus()
        else:
            self.query_one("#score-run").focus()

    # --- loading ------------------------------------------------------------------------------------
    @on(Select.Changed, "#score-run")
    def _run_chosen(self, event: Select.Changed) -> None:
        if event.value is not Select.NULL:
            self.query_one("#score-path", Input).value = ""  # the box names what is typed, not the last path
            self.load(Path(str(event.value)))

    @on(Input.Submitted, "#score-path")
    @on(Button.Pressed, "#score-load")
    def _path_entered(self) -> None:
        text = self.query_one("#score-path", Input).value.strip()
        if text:
            self.load(Path(text).expanduser())
        else:
            self.notify("Type a run or checkpoint folder first.", severity="warning")

    def load(self, path: Path) -> None:
        """Load ``path`` in a worker; the checkpoint loaded before stays in use until it succeeds."""
        self.error = None
        self.query_one("#score-info", Static).update(Text(f"loading {display_path(path)} …", style="yellow"))
        self._load(path)

    @work(thread=True, exclusive=True, group="load", exit_on_error=False, name="loading the checkpoint")
    def _load(self, path: Path) -> None:
        from core.scoring import Scorer

        try:
            scorer, error = Scorer.load(path), None
        except Exception as e:  # the UI boundary: any unreadable checkpoint becomes a message
            scorer, error = None, str(e) if isinstance(e, ValueError) else f"{type(e).__name__}: {e}"
        self.from_thread(self._loaded, path, scorer, error)

    def _loaded(self, path: Path, scorer, error: str | None) -> None:
        info = self.query_one("#score-info", Static)
        if scorer is None:  # a bad path leaves the loaded checkpoint in use
            self.error = error
            kept = f" (still scoring with {display_path(self.loaded_from)})" if self.scorer and self.loaded_from else ""
            info.update(Text(f"cannot load {display_path(path)}: {error}{kept}", style="bold red"))
            self.notify(error or "cannot load", title="checkpoint", severity="error", timeout=8)
            if self.loaded_from is not None:
                self._name_source(self.loaded_from)
            else:
                self.rescore()  # the bars say that there is no checkpoint
            return
        self.scorer, self.error, self.loaded_from = scorer, None, path
        self._name_source(path)
        m = scorer.meta
        dev = "  ".join(f"{k} {v:.3f}" for k, v in (m.get("dev") or {}).items() if isinstance(v, (int, float)))
        info.update(Text.assemble(("loaded ", "green"), (display_path(path), "bold"), f"  variant {m.get('variant', '?')}",
                                  f"  heads {', '.join(scorer.tasks)}  encoder {m.get('encoder', '?')}",
                                  f"  epoch {m.get('epoch', '?')}, step {m.get('step', '?')}",
                                  (f"\n{dev}" if dev else "", "dim")))
        self.rescore()

    def _name_source(self, path: Path) -> None:
        """The run dropdown names the run loaded, or nothing when a folder typed in is not one of its runs."""
        select = self.query_one("#score-run", Select)
        same = [v for _, v in select._options if v is not Select.NULL and Path(str(v)).resolve() == path.resolve()]
        with self.prevent(Select.Changed):
            if same:
                select.value = same[0]
            else:
                select.clear()

    def rescore(self) -> None:
        self._score_sentence()
        self._score_pair()

    # --- scoring ------------------------------------------------------------------------------------
    @on(Input.Submitted, "#sentence")
    def _sentence_submitted(self) -> None:
        self._score_sentence()

    @on(Input.Changed, "#sentence")
    def _sentence_changed(self) -> None:
        self._debounce("sentence", self._score_sentence)

    @on(Input.Submitted, "#pair-a")
    @on(Input.Submitted, "#pair-b")
    def _pair_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "pair-a":
            self.query_one("#pair-b").focus()
        self._score_pair()

    @on(Input.Changed, "#pair-a")
    @on(Input.Changed, "#pair-b")
    def _pair_changed(self) -> None:
        self._debounce("pair", self._score_pair)

    def _debounce(self, key: str, callback) -> None:
        """Score as you type, but only once typing pauses (one forward pass, not one per key)."""
        timer = self._debounce_timers.pop(key, None)
        if timer is not None:
            timer.stop()
        self._debounce_timers[key] = self.set_timer(DEBOUNCE_S, callback)

    def _cannot_score(self, kind: str, heads: tuple[str, ...], no_input: str | None) -> bool:
        """When there is nothing to score (no checkpoint, no head for ``kind``, ``no_input``: what to type),
        say why in ``kind``'s bars and blank its result line (what an earlier model or input said)."""
        if self.scorer is None:
            loading = self.error is None and self.busy("load")
            why = ("no checkpoint (see above)" if self.error else
                   "loading the checkpoint…" if loading else "load a checkpoint first")
        elif not set(heads) & set(self.scorer.tasks):
            what = "sentiment head" if kind == "sentiment" else "pair heads"
            why = f"this checkpoint has no {what} (heads: {', '.join(self.scorer.tasks)})"
        elif no_input is not None:
            why = no_input
        else:
            return False
        self.query_one(f"#{kind}-bars", ScoreBars).clear_rows(why)
        self.query_one(f"#{kind}-info", Static).update("")
        if kind == "sentiment":
            self.sentiment_result = None
        else:
            self.pair_result = None
        return True

    def _score_sentence(self) -> None:
        text = self.query_one("#sentence", Input).value.strip()
        if not self._cannot_score("sentiment", ("sst", "cfimdb"), None if text else ""):
            task = next(t for t in ("sst", "cfimdb") if t in self.scorer.tasks)
            self._run_sentence(self.scorer, task, text)

    @work(thread=True, exclusive=True, group="sentence", exit_on_error=False, name="scoring the sentence")
    def _run_sentence(self, scorer, task: str, text: str) -> None:
        with self._lock:
            result = scorer.sentiment(text, task=task)
        self.from_thread(self._show_sentence, scorer, task, text, result)

    def _show_sentence(self, scorer, task: str, text: str, result: dict) -> None:
        if scorer is not self.scorer or text != self.query_one("#sentence", Input).value.strip():
            return  # another checkpoint loaded, or typed on since: a newer result is coming
        self.sentiment_result = {"task": task, "text": text, **result}
        labels = SENTIMENT_LABELS[task]
        self.query_one("#sentiment-bars", ScoreBars).set_rows(
            [(f"{i} {labels[i]}", p, 1.0) for i, p in enumerate(result["probs"])], highlight=result["label"])
        self.query_one("#sentiment-info", Static).update(
            f"{task}: predicted {result['label']} {labels[result['label']]}  ·  {result['ms']:.1f} ms")

    def _score_pair(self) -> None:
        a = self.query_one("#pair-a", Input).value.strip()
        b = self.query_one("#pair-b", Input).value.strip()
        if not self._cannot_score("pair", ("para", "sts"), None if a and b else "type both sentences"):
            self._run_pair(self.scorer, a, b)

    @work(thread=True, exclusive=True, group="pair", exit_on_error=False, name="scoring the pair")
    def _run_pair(self, scorer, a: str, b: str) -> None:
        with self._lock:
            result = scorer.pair(a, b)
        self.from_thread(self._show_pair, scorer, a, b, result)

    def _show_pair(self, scorer, a: str, b: str, result: dict) -> None:
        if scorer is not self.scorer:
            return  # scored by a checkpoint that is no longer loaded (a thread worker runs to its end)
        if (a, b) != (self.query_one("#pair-a", Input).value.strip(), self.query_one("#pair-b", Input).value.strip()):
            return
        self.pair_result = {"a": a, "b": b, **result}
        rows, parts = [], []
        if "paraphrase" in result:
            rows.append(("paraphrase probability", result["paraphrase"], 1.0))
            parts.append("paraphrase" if result["paraphrase"] >= 0.5 else "not a paraphrase")
        if "similarity" in result:
            rows.append(("similarity (0–5)", result["similarity"], 5.0))
        self.query_one("#pair-bars", ScoreBars).set_rows(rows)
        self.query_one("#pair-info", Static).update("  ·  ".join([*parts, f"{result['ms']:.1f} ms"]))
