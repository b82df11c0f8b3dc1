"""The Launch screen: a form generated from the training options (``core.config``) that hands a ``TrainConfig``
to ``walkless train --config`` in a detached process."""

from __future__ import annotations

from dataclasses import Field
from pathlib import Path

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.validation import ValidationResult, Validator
from textual.widget import Widget
from textual.widgets import Button, Collapsible, Footer, Header, Input, Label, Select, Static

from core.config import FAST_SMART, SmartConfig, TrainConfig, as_text, default_of, option_fields, parse_option
from core.launch import check_name, new_run_name, start_training
from core.runs import RunError
from core.variants import all_variants, describe_variant, parse_variant, train_tasks, variant_defaults
from walkless_tui.screens.base import WalklessScreen
from walkless_tui.series import display_path

VARIANTS = all_variants()
SMART_PRESETS = {"report": SmartConfig(), "fast": SmartConfig.fast()}  # the preset select fills the SMART fields


def from_config(config: dict) -> dict[str, str]:
    """A run's config.json (or a launch record's config) -> the form's values, every option it records."""
    flat = TrainConfig.from_dict(config).flat()
    return {name: as_text(flat[name]) for name, *_ in option_fields() if name in config or name.startswith("smart_")}


def data_problems(data_dir: Path, tasks: tuple[str, ...]) -> list[str]:
    """Missing files of the CS224N layout for ``tasks`` (train and dev splits)."""
    from core.tasks import task_file

    if not data_dir.is_dir():
        return [f"data folder {data_dir}: not a folder"]
    missing = [task_file(data_dir, t, split).name for t in tasks for split in ("train", "dev")
               if not task_file(data_dir, t, split).is_file()]
    return [f"data folder {data_dir}: missing {', '.join(missing)}"] if missing else []


class OptionText(Validator):
    """An input's text must parse as its option and be in range (``core.config.parse_option``)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.option = name

    def validate(self, value: str) -> ValidationResult:
        try:
            parse_option(self.option, value)
        except ValueError as e:
            return self.failure(str(e))
        return self.success()


def option_widget(name: str, f: Field, kind: type, optional: bool, value: str | None = None) -> Widget:
    """The form's widget of one option holding ``value`` (its default when None or not a choice), its id the
    option's flat name."""
    choices = VARIANTS if name == "variant" else f.metadata["choices"]
    default = as_text(default_of(f))
    if kind is bool:
        choices, optional = ("yes", "no"), False  # a yes/no option is never left to a default
    if choices:
        options = [("default", "")] * optional + [(c, c) for c in choices]
        chosen = value if any(v == value for _, v in options) else default
        return Select(options, value=chosen, allow_blank=False, id=name, compact=True)
    return Input(default if value is None else value, id=name, validators=[OptionText(name)],
                 placeholder="default" if optional else "", compact=True)


LAZY = ("more", "smart")  # form sections whose rows are made when first shown (the form opens faster)
OPTION_SECTION = {name: f.metadata["form"] for name, f, *_ in option_fields()}  # option -> its form section
HINTS: dict[str, str] = {}  # field id -> its whole hint (the line under the form shows the focused field's)


def row(label: str, widget: Widget, hint: str = "") -> Horizontal:
    """A form row: label, widget, the hint's first clause (on one line cut with … on a wide screen, wrapped on a
    narrow one; the whole hint is the widget's tooltip and the help line's text while it has the focus)."""
    widget.tooltip = Text(hint) if hint else None
    if widget.id:
        HINTS[widget.id] = hint
    short = Text(hint.split("; ")[0])
    return Horizontal(Label(label, classes="form-label"), widget, Static(short, classes="form-hint"), classes="form-row")


def option_rows(section: str, values: dict[str, str] | None = None) -> list[Horizontal]:
    """The rows of the options in ``section`` ("main", "more", "smart") in the order the fields declare them,
    holding ``values`` (field id -> text; the defaults where missing)."""
    out, values = [], values or {}
    for name, f, kind, optional in option_fields():
        if f.metadata["form"] == section:
            label = f.metadata["label"] or name.removeprefix("smart_").replace("_", " ")
            widget = option_widget(name, f, kind, optional, values.get(name))
            out.append(row(("SMART " if section == "smart" else "") + label, widget, f.metadata["help"]))
    return out


class LaunchScreen(WalklessScreen):
    """The launch form: filled from ``template`` (a run's config.json: a new run from that one), else with
    what the form last held in this app (``WalklessApp.last_form``), else the defaults."""

    BINDINGS = [Binding("ctrl+s", "launch", "Launch"), Binding("escape", "back", "Cancel")]
    AUTO_FOCUS = "#variant"

    def __init__(self, template: dict | None = None) -> None:
        super().__init__()
        self.template = template
        self.generated_name = ""  # the name the form made up; the run name follows the variant until edited
        self.launched: dict | None = None
        self.preset = "report"  # the SMART preset last applied
        self.pending: dict[str, str] = {}  # values of the "more options" fields, mounted when that section opens
        self.variant_shown: str | None = None  # the variant whose defaults (lr, batch) the form holds
        self.variant_changes = 0  # completed variant changes, SMART rows mounted (tests wait on it)
        self.auto: dict[str, str] = {}  # lr and batch size as the form (not the user) last filled them
        self.seen_form: dict[str, str] | None = None  # the app's last_form this form holds (see on_screen_resume)

    @property
    def name_edited(self) -> bool:
        return self.query_one("#name", Input).value != self.generated_name

    def initial_values(self) -> dict[str, str]:
        """What the form opens with: the defaults (variant rrobin and its lr and batch size, the app's encoder and
        data), then the template's settings or the form as last left."""
        values = {"variant": "rrobin", "encoder": self.wapp.encoder, "data_dir": str(self.wapp.data_dir),
                  **{k: as_text(v) for k, v in variant_defaults(parse_variant("rrobin")).items()}}
        values.update(from_config(self.template) if self.template is not None else self.wapp.last_form)
        return values

    def compose(self) -> ComposeResult:
        # The widgets are made holding their values (not filled after mounting): every change after mounting
        # restyles, and the form must open in a fraction of a second.
        values = self.initial_values()
        self.seen_form = self.wapp.last_form if self.template is None else None
        variant = values["variant"] if values["variant"] in VARIANTS else "rrobin"
        smart = parse_variant(variant).smart
        lazy = set(LAZY) - ({"smart"} if smart else set())  # a SMART variant's rows are made now
        self.pending = {k: v for k, v in values.items() if OPTION_SECTION.get(k) in lazy}
        self._follow_variant(variant)
        if self.template is not None:  # the source run's lr and batch follow a change of variant too
            self.auto = {k: values.get(k, v) for k, v in self.auto.items()}
        yield Header()
        with VerticalScroll(id="launch-form"):
            yield Static(f"New run in [b]{escape(display_path(self.wapp.runs_dir))}[/]", id="launch-title")
            yield Static(self._template_note(), id="launch-template")
            yield row("run name", Input(self._fresh_name(variant), id="name", compact=True), "a new folder name")
            main = option_rows("main", values)
            names = [name for name, section in OPTION_SECTION.items() if section == "main"]
            at = 1 + names.index("variant")  # what the variant does, right under it
            yield from main[:at]
            yield Static(Text(describe_variant(variant)), id="variant-about")
            yield from main[at:]
            with Vertical(id="smart-fields"):  # its rows are made when a SMART variant is first chosen
                if smart:
                    yield from self._smart_rows(values)
            # its rows are made when it first opens: the form opens fast (31 rows fewer to lay out)
            yield Collapsible(title="more options", id="more-options")
            yield Static("", id="launch-errors")
            with Horizontal(id="launch-buttons"):
                yield Button("Launch (ctrl+s)", variant="success", id="launch")
                yield Button("Cancel (esc)", id="cancel")
        yield Static("", id="field-help")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "launch"
        self.query_one("#launch-template").display = self.template is not None
        self._show_variant_fields(str(self.query_one("#variant", Select).value))
        data_dir = self.query_one("#data_dir", Input)
        data_dir.placeholder = f"empty: {display_path(self.wapp.data_dir)} (the app's)"
        data_dir.parent.query_one(".form-hint", Static).update(Text(
            f"empty: the app's --data-dir, {display_path(self.wapp.data_dir)}"))

    def on_screen_resume(self) -> None:
        """Shown (again: the app keeps its form): a fresh run name (a typed one is not kept, as the name is not
        among the fields remembered), no old errors, and the fields another form launched with (a new run from a
        run's) when that happened since."""
        if self.template is None and self.wapp.last_form is not self.seen_form:
            self.seen_form = self.wapp.last_form
            self.fill(self.seen_form)
        self.query_one("#name", Input).value = self._fresh_name(str(self.query_one("#variant", Select).value))
        errors = self.query_one("#launch-errors", Static)
        errors.update("")
        errors.remove_class("-error")

    def _template_note(self) -> Text | str:
        if self.template is None:
            return ""
        return Text(f"New run from {self.template.get('name') or 'a run'}'s settings (all of them, under more options)")

    def _fresh_name(self, variant: str) -> str:
        """A new free run name for ``variant``, remembered as the form's own (it follows the variant until edited)."""
        self.generated_name = new_run_name(self.wapp.runs_dir, variant)
        return self.generated_name

    def _show_variant_fields(self, variant: str) -> None:
        """The task only for single-task variants; the SMART section only for SMART ones."""
        self.query_one("#task", Select).disabled = parse_variant(variant).multitask
        self.query_one("#smart-fields").display = parse_variant(variant).smart

    def fill(self, values: dict[str, str]) -> None:
        """Put ``values`` (field id -> text) into the form; unknown ids and invalid choices are skipped; those of
        the "more options" rows wait in ``pending`` until the section is opened."""
        for key, value in values.items():
            found = self.query(f"#{key}")
            if key == "name":
                continue
            if not found:
                if OPTION_SECTION.get(key) in LAZY:
                    self.pending[key] = value
                continue
            widget = found.first()
            if isinstance(widget, Input):
                widget.value = value
            elif isinstance(widget, Select) and any(v == value for _, v in widget._options):
                widget.value = value

    def values(self) -> dict[str, str]:
        """The form's fields as text (what ``fill`` puts back), the run name left out; the "more options" not
        opened yet as they wait in ``pending``."""
        shown = {w.id: str(w.value) for w in self.query("Input, Select")
                 if w.id not in (None, "name", "smart_preset", "ask-input")}
        return {**shown, **self.pending}  # a waiting value wins until its row has been filled

    @on(Collapsible.Expanded, "#more-options")
    async def _more_opened(self) -> None:
        await self._mount_section("more", self.query_one("#more-options", Collapsible).query_one(Collapsible.Contents))

    async def _mount_section(self, section: str, box: Widget) -> None:
        """Make the rows of a ``LAZY`` section in ``box`` (once), filled with the values waiting for them."""
        if box.children:
            return
        waiting = {k: v for k, v in self.pending.items() if OPTION_SECTION[k] == section}
        await box.mount_all(self._smart_rows(waiting) if section == "smart" else option_rows(section, waiting))
        self.pending = {k: v for k, v in self.pending.items() if k not in waiting}  # the rows hold them now

    def _smart_rows(self, values: dict[str, str]) -> list[Horizontal]:
        """The SMART section: its preset, then its options holding ``values``."""
        preset = Select([(k, k) for k in SMART_PRESETS], value=self.preset, allow_blank=False, id="smart_preset",
                        compact=True)
        hint = "report: dropout off, one ascent step (about 3.3x a plain step); fast: about 2.3x"
        return [row("SMART preset", preset, hint), *option_rows("smart", values)]

    def on_descendant_focus(self, event) -> None:
        """The focused field's whole hint on the line above the footer."""
        hint = HINTS.get(event.widget.id or "", "")
        self.query_one("#field-help", Static).update(Text(hint))

    @on(Select.Changed, "#variant")
    async def _variant_changed(self) -> None:
        variant = str(self.query_one("#variant", Select).value)
        self._show_variant_fields(variant)
        self.query_one("#variant-about", Static).update(Text(describe_variant(variant)))
        self._follow_variant(variant)
        if not self.name_edited:
            self.query_one("#name", Input).value = self._fresh_name(variant)
        if parse_variant(variant).smart:
            await self._mount_section("smart", self.query_one("#smart-fields"))
        self.variant_changes += 1

    def _follow_variant(self, variant: str) -> None:
        """The variant-dependent fields (lr, batch size) take the new variant's defaults unless the user typed
        another value: one equal to the previous variant's default, or put there by the form (a template, the
        last form), follows the variant."""
        if variant == self.variant_shown:
            return
        new = {k: as_text(v) for k, v in variant_defaults(parse_variant(variant)).items()}
        if self.variant_shown is not None:
            old = {k: as_text(v) for k, v in variant_defaults(parse_variant(self.variant_shown)).items()}
            for key, value in new.items():
                field = self.query_one(f"#{key}", Input)
                if field.value.strip() in ("", old[key], self.auto.get(key)):
                    field.value = value
        self.variant_shown = variant
        self.auto = dict(new)

    @on(Select.Changed, "#smart_preset")
    def _preset_changed(self, event: Select.Changed) -> None:
        if str(event.value) == self.preset:
            return
        self.preset = str(event.value)
        chosen = SMART_PRESETS[self.preset]
        self.fill({f"smart_{k}": as_text(getattr(chosen, k)) for k in FAST_SMART})  # the fields the presets differ in

    @on(Button.Pressed, "#launch")
    def _launch_pressed(self) -> None:
        self.action_launch()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_back()

    def action_back(self) -> None:
        if self.template is None:
            self.wapp.last_form = self.seen_form = self.values()  # the next form starts from here
        super().action_back()

    # --- reading and checking the form --------------------------------------------------------------
    def form(self) -> tuple[str, TrainConfig | None, list[str]]:
        """(run name, the run's TrainConfig or None, problems) from the form's current values."""
        text = self.values()
        name = self.query_one("#name", Input).value.strip()
        flat, problems = {}, []
        for option, *_ in option_fields():
            if option in text:
                try:
                    flat[option] = parse_option(option, text[option])
                except ValueError as e:
                    problems.append(f"{option.replace('_', ' ')}: {e}")
        flat["encoder"] = flat.get("encoder") or self.wapp.encoder
        # an empty data dir is the app's (--data-dir, or the demo data it was started on), never a silent default
        flat["data_dir"] = str(Path(flat.get("data_dir") or self.wapp.data_dir).expanduser().absolute())
        problems += [p for p in [check_name(self.wapp.runs_dir, name)] if p]
        if problems:
            return name, None, problems
        try:
            config = TrainConfig().updated({**flat, "runs_dir": str(self.wapp.runs_dir), "name": name}).validate()
        except ValueError as e:
            return name, None, [str(e)]
        return name, config, []

    def action_launch(self) -> None:
        name, config, problems = self.form()
        text = self.values()
        tasks = train_tasks(parse_variant(text["variant"]), text["task"], config is not None and config.cfimdb)
        data_dir = Path(text["data_dir"]).expanduser() if text["data_dir"].strip() else self.wapp.data_dir
        self.query_one("#launch-errors", Static).update("checking…")
        self._check_and_start(name, config, problems, text["encoder"].strip() or self.wapp.encoder, data_dir, tasks)

    @work(thread=True, exclusive=True, exit_on_error=False, name="launching the run")
    def _check_and_start(self, name: str, config: TrainConfig | None, problems: list[str], encoder: str,
                         data_dir: Path, tasks: tuple[str, ...]) -> None:
        # the checks import core.data / core.encoders (torch), so they run off the UI thread
        from core.encoders import resolve_encoder

        record = None
        try:
            resolve_encoder(encoder)
        except (ValueError, OSError) as e:
            problems.append(str(e))
        problems += data_problems(data_dir, tasks)
        if config is not None and not problems:
            try:
                record = start_training(config)
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
        self.wapp.last_form = self.seen_form = self.values()
        self.app.pop_screen()
