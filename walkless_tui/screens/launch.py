"""The Launch screen: a validated form that starts ``walkless train`` as a detached process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.validation import Integer, Number
from textual.widget import Widget
from textual.widgets import Button, Footer, Header, Input, Label, Select, Static

from core.config import SmartConfig, TrainConfig
from core.launch import check_name, new_run_name, start_training
from core.runs import RunError
from core.variants import MULTITASK, all_variants, parse_variant
from walkless_tui.screens.base import WalklessScreen
from walkless_tui.series import display_path

VARIANTS = all_variants()
TASK_CHOICES = [("sst (SST-5 sentiment)", "sst"), ("cfimdb (movie reviews, 2 classes)", "cfimdb"),
                ("para (Quora paraphrase)", "para"), ("sts (STS-B similarity)", "sts")]
# (input id, label, validators, hint); the SMART ones only count for +smart variants
NUMBERS: list[tuple[str, str, list, str]] = [
    ("epochs", "epochs", [Integer(minimum=1, maximum=10_000)], "≥ 1"),
    ("batch_size", "batch size", [Integer(minimum=1, maximum=65_536)], "per task batch"),
    ("lr", "learning rate", [Number(minimum=0)], "blank: 1e-3 pretrain, 1e-5 otherwise"),
    ("seed", "seed", [Integer()], ""),
    ("max_train", "max train examples", [Integer(minimum=1)], "per task; blank: all"),
    ("max_dev", "max dev examples", [Integer(minimum=1)], "per task; blank: all"),
    ("max_steps", "max steps per epoch", [Integer(minimum=1)], "iterations; blank: whole epoch"),
    ("log_every", "log every", [Integer(minimum=1)], "steps between logged losses"),
    ("dropout", "dropout", [Number(minimum=0, maximum=0.99)], "head dropout p (report: 0.3)"),
    ("threads", "CPU threads", [Integer(minimum=1, maximum=1024)], "blank: torch's default"),
]
SMART_FIELDS: list[tuple[str, str, list, str]] = [
    ("smart_lam", "SMART λ", [Number(minimum=0)], "weight of the adversarial term"),
    ("smart_eps", "SMART ε", [Number(minimum=0)], "perturbation radius"),
    ("smart_sigma", "SMART σ", [Number(minimum=0)], "initial noise std"),
    ("smart_eta", "SMART η", [Number(minimum=0)], "ascent step size"),
    ("smart_beta", "SMART β", [Number(minimum=0, maximum=1)], "teacher momentum, 0..1"),
    ("smart_mu", "SMART μ", [Number(minimum=0)], "weight of the Bregman term"),
]
OPTIONAL = ("lr", "max_train", "max_dev", "max_steps", "threads")
INTEGERS = ("epochs", "batch_size", "seed", "max_train", "max_dev", "max_steps", "log_every", "threads")
# settings of a run's config.json the form has no field for: a new run from that one keeps them (same CLI flags)
CARRIED = ("encoder_dropout", "clip_grad", "lr_schedule", "warmup", "ema", "layer_decay", "rrobin_subset",
           "pair_input", "eval_all", "max_length", "temperature", "pre_epochs", "checkpoint_every", "keep_last")
SELECTS = ("variant", "task", "pooling", "smart_mode")
POOLING = [("the encoder's own (mean for MiniLM)", ""), ("mean of the tokens", "mean"), ("[CLS] token", "cls")]
SMART_MODES = [("the report's: dropout off, one ascent step (~3.3x a plain step)", "report"),
               ("fast: same dropout masks, no ascent (~2.3x)", "fast")]


def is_multitask(variant: str) -> bool:
    return parse_variant(variant).multitask


def defaults() -> dict[str, str]:
    c, s = TrainConfig(), SmartConfig()
    out = {"epochs": str(c.epochs), "batch_size": str(c.batch_size), "lr": "", "seed": str(c.seed), "max_train": "",
           "max_dev": "", "max_steps": "", "log_every": str(c.log_every), "dropout": str(c.dropout), "threads": ""}
    out.update({f"smart_{k}": str(getattr(s, k)) for k in ("lam", "eps", "sigma", "eta", "beta", "mu")})
    return out


def from_config(config: dict) -> tuple[dict[str, str], dict[str, Any]]:
    """A run's config.json -> (the form's values, the other settings to carry over as CLI options)."""
    values = {"variant": str(config.get("variant") or "rrobin"), "task": str(config.get("task") or "sst"),
              "pooling": str(config.get("pooling") or "")}
    for key in ("encoder", "data_dir", *[k for k, _, _, _ in NUMBERS]):
        if key in config:  # a setting the run does not record keeps the form's default
            values[key] = "" if config[key] is None else str(config[key])
    smart = config.get("smart") if isinstance(config.get("smart"), dict) else {}
    for key in ("lam", "eps", "sigma", "eta", "beta", "mu"):
        if smart.get(key) is not None:
            values[f"smart_{key}"] = str(smart[key])
    values["smart_mode"] = "fast" if smart.get("same_masks") and smart.get("steps") == 0 else "report"
    base = TrainConfig().to_dict()
    extra = {k: config[k] for k in CARRIED if k in config and config[k] != base.get(k)}
    if config.get("per_task_step") is False:
        extra["summed_step"] = True
    if config.get("bucket") is False:
        extra["no_bucket"] = True
    return values, extra


def data_problems(data_dir: Path, tasks: tuple[str, ...]) -> list[str]:
    """Missing files of the CS224N layout for ``tasks`` (train and dev splits)."""
    from core.data import TASKS

    if not data_dir.is_dir():
        return [f"data folder {data_dir}: not a folder"]
    missing = [f"{TASKS[t].stem}-{split}.csv" for t in tasks for split in ("train", "dev")
               if not (data_dir / f"{TASKS[t].stem}-{split}.csv").is_file()]
    return [f"data folder {data_dir}: missing {', '.join(missing)}"] if missing else []


def row(label: str, widget: Widget, hint: str = "") -> Horizontal:
    return Horizontal(Label(label, classes="form-label"), widget, Static(hint, classes="form-hint"),
                      classes="form-row")


class LaunchScreen(WalklessScreen):
    """The launch form: filled from ``template`` (a run's config.json: a new run from that one), else with
    what the form last held in this app (``WalklessApp.last_form``), else the defaults."""

    BINDINGS = [Binding("ctrl+s", "launch", "Launch"), Binding("escape", "back", "Cancel")]

    def __init__(self, template: dict | None = None) -> None:
        super().__init__()
        self.template = template
        self.generated_name = ""  # the name the form made up; the run name follows the variant until edited
        self.extra: dict[str, Any] = {}  # settings carried over from the template that the form does not show
        self.launched: dict | None = None

    @property
    def name_edited(self) -> bool:
        return self.query_one("#name", Input).value != self.generated_name

    def compose(self) -> ComposeResult:
        app = self.wapp
        d = defaults()
        yield Header()
        with VerticalScroll(id="launch-form"):
            yield Static(f"New run in [b]{escape(display_path(app.runs_dir))}[/]", id="launch-title")
            yield Static("", id="launch-template")
            yield row("variant", Select([(v, v) for v in VARIANTS], value="rrobin", allow_blank=False, id="variant", compact=True),
                      "+smart SMART · +rlayer relational layer")
            yield row("task", Select(TASK_CHOICES, value="sst", allow_blank=False, id="task", compact=True),
                      "single-task variants only")
            yield row("run name", Input("", id="name", compact=True), "a new folder name")
            yield row("encoder", Input(app.encoder, id="encoder", compact=True), "minilm-l6 or a BERT folder")
            yield row("data folder", Input(str(app.data_dir), id="data_dir", compact=True), "CS224N files")
            for key, label, validators, hint in NUMBERS:
                yield row(label, Input(d[key], id=key, validators=validators, valid_empty=key in OPTIONAL, compact=True), hint)
            yield row("pooling", Select(POOLING, value="", allow_blank=False, id="pooling", compact=True),
                      "sentence embedding")
            with Vertical(id="smart-fields"):
                yield row("SMART mode", Select(SMART_MODES, value="report", allow_blank=False, id="smart_mode",
                                               compact=True), "--smart-fast: see the README")
                for key, label, validators, hint in SMART_FIELDS:
                    yield row(label, Input(d[key], id=key, validators=validators, compact=True), hint)
            yield Static("", id="launch-errors")
            with Horizontal(id="launch-buttons"):
                yield Button("Launch (ctrl+s)", variant="success", id="launch")
                yield Button("Cancel (esc)", id="cancel")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "launch"
        if self.template is not None:
            values, self.extra = from_config(self.template)
            note = f"New run from {self.template.get('name') or 'a run'}'s settings"
            if self.extra:
                note += "; also kept: " + ", ".join(f"{k} {v}" for k, v in self.extra.items())
            self.query_one("#launch-template", Static).update(Text(note))
        else:
            values = dict(self.wapp.last_form)
        self.query_one("#launch-template").display = self.template is not None
        self.fill(values)
        self._variant_changed()
        self.query_one("#variant").focus()

    def fill(self, values: dict[str, str]) -> None:
        """Put ``values`` (field id -> text) into the form; unknown ids and invalid choices are skipped."""
        for key, value in values.items():
            found = self.query(f"#{key}")
            if key == "name" or not found:
                continue
            widget = found.first()
            if isinstance(widget, Input):
                widget.value = value
            elif isinstance(widget, Select) and any(v == value for _, v in widget._options):
                widget.value = value

    def values(self) -> dict[str, str]:
        """The form's fields as text (what ``fill`` puts back), the run name left out."""
        out = {w.id: w.value for w in self.query(Input) if w.id and w.id != "name"}
        out.update({k: str(self.query_one(f"#{k}", Select).value) for k in SELECTS})
        return out

    @on(Select.Changed, "#variant")
    def _variant_changed(self) -> None:
        variant = str(self.query_one("#variant", Select).value)
        self.query_one("#task", Select).disabled = is_multitask(variant)
        self.query_one("#smart-fields").display = "smart" in variant.split("+")[1:]
        if not self.name_edited:
            self.generated_name = new_run_name(self.wapp.runs_dir, variant)
            self.query_one("#name", Input).value = self.generated_name

    @on(Button.Pressed, "#launch")
    def _launch_pressed(self) -> None:
        self.action_launch()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_back()

    def action_back(self) -> None:
        if self.template is None:
            self.wapp.last_form = self.values()  # the next form starts from here
        super().action_back()

    # --- reading and checking the form --------------------------------------------------------------
    def form(self) -> tuple[str, dict[str, Any], list[str]]:
        """(run name, CLI options, problems) from the form's current values."""
        variant = str(self.query_one("#variant", Select).value)
        smart = "smart" in variant.split("+")[1:]
        text = {w.id: w.value.strip() for w in self.query(Input) if w.id}
        problems = []
        fields = NUMBERS + (SMART_FIELDS if smart else [])
        for key, label, _, _ in fields:
            if key in OPTIONAL and not text[key]:
                continue
            result = self.query_one(f"#{key}", Input).validate(text[key])
            if not text[key]:
                problems.append(f"{label}: required")
            elif result is not None and not result.is_valid:
                problems.append(f"{label}: {'; '.join(result.failure_descriptions)}")
        options: dict[str, Any] = {"variant": variant}
        if not is_multitask(variant):
            options["task"] = str(self.query_one("#task", Select).value)
        options["encoder"] = text["encoder"] or self.wapp.encoder
        options["data_dir"] = str(Path(text["data_dir"]).expanduser().absolute()) if text["data_dir"] else None
        options["pooling"] = str(self.query_one("#pooling", Select).value) or None
        options["smart_fast"] = smart and self.query_one("#smart_mode", Select).value == "fast"
        options.update(self.extra)
        if not problems:
            for key, _, _, _ in fields:
                if text[key]:
                    options[key] = int(text[key]) if key in INTEGERS else float(text[key])
        name = text["name"]
        problems += [p for p in [check_name(self.wapp.runs_dir, name)] if p]
        return name, options, problems

    def action_launch(self) -> None:
        name, options, problems = self.form()
        errors = self.query_one("#launch-errors", Static)
        errors.update("checking…")
        self._check_and_start(name, options, problems)

    @work(thread=True, exclusive=True, exit_on_error=False, name="launching the run")
    def _check_and_start(self, name: str, options: dict[str, Any], problems: list[str]) -> None:
        # the checks import core.data / core.encoders (torch), so they run off the UI thread
        from core.encoders import resolve_encoder

        try:
            parse_variant(options["variant"])
        except ValueError as e:
            problems.append(str(e))
        try:
            resolve_encoder(options["encoder"])
        except (ValueError, OSError) as e:
            problems.append(str(e))
        tasks = (options["task"],) if "task" in options else MULTITASK
        data_dir = Path(options["data_dir"]) if options["data_dir"] else self.wapp.data_dir
        problems += data_problems(data_dir, tasks)
        record = None
        if not problems:
            try:
                record = start_training(self.wapp.runs_dir, name, options)
            except (RunError, OSError) as e:
                problems.append(str(e))
        self.from_thread(self._started, name, record, problems)

    def _started(self, name: str, record: dict | None, problems: list[str]) -> None:
        errors = self.query_one("#launch-errors", Static)
        if problems:
            errors.update("\n".join(f"• {p}" for p in problems))
            errors.add_class("-error")
            self.notify(problems[0], title="cannot launch", severity="error")
            return
        self.launched = record
        errors.update("")
        self.notify(f"started {name} (pid {record['pid']}); it keeps running when the app closes",
                    title="launched")
        self.wapp.focus_run = name
        self.wapp.last_form = self.values()
        self.app.pop_screen()
