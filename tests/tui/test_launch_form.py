"""The launch form: every valid variant, the name that follows the variant, a field for every training option, hints not cut at 80x24."""

from __future__ import annotations

import contextlib
import itertools
from pathlib import Path

from support.options import other_values
from support.runfolders import make_run, select_run
from support.tui import BIG, SMALL, choose_variant, scanned, text_of
from textual.widgets import Input, Select

from core.config import as_text
from walkless_tui.app import WalklessApp
from walkless_tui.screens.launch import VARIANTS, LaunchScreen


def test_the_form_offers_every_valid_variant():
    from core.variants import BASES, MODIFIERS, parse_variant

    valid = set()
    for base in BASES:
        for n in range(len(MODIFIERS) + 1):
            for mods in itertools.combinations(MODIFIERS, n):
                name = "+".join([base, *mods])
                with contextlib.suppress(ValueError):
                    valid.add(parse_variant(name).name)
    assert set(VARIANTS) == valid and len(VARIANTS) == len(valid)
    assert {"rrobin-pre", "rrobin+rlayer", "rrobin-full+rlayer+smart"} <= set(VARIANTS)


async def test_launch_form_name_follows_variant_remembers_and_clones(tmp_path, demo_data):
    runs = tmp_path / "runs"
    make_run(runs, "source", variant="rrobin-full+rlayer", lr=1e-4, epochs=3, batch_size=32, log_every=5,
             max_dev=20, lr_schedule="linear", warmup=0.1, layer_decay=0.9, data_dir=None, encoder="minilm-l6")
    app = WalklessApp(runs, demo_data)
    async with app.run_test(size=BIG) as pilot:
        await scanned(pilot, {"source"})
        await pilot.press("n")
        form = app.screen
        assert isinstance(form, LaunchScreen)
        name = form.query_one("#name", Input)
        assert name.value.startswith("rrobin-")
        form.query_one("#variant", Select).value = "finetune"
        await pilot.pause()
        assert name.value.startswith("finetune-")  # the generated name follows the variant
        await choose_variant(pilot, form, "rrobin-full+rlayer+smart")
        assert name.value.startswith("rrobin-full_rlayer_smart-") and form.query_one("#smart-fields").display
        form.query_one("#epochs", Input).value = "2"
        form.query_one("#max_dev", Input).value = "16"
        form.query_one("#log_every", Input).value = "1"
        _, config, problems = form.form()
        assert not problems and (config.max_dev, config.log_every, config.epochs) == (16, 1, 2)
        name.value = "mine"
        form.query_one("#variant", Select).value = "annealed"
        await pilot.pause()
        assert name.value == "mine"  # edited by the user: kept
        await pilot.press("escape")
        await pilot.press("n")  # the form comes back as it was left
        form = app.screen
        await pilot.pause()
        assert form.query_one("#variant", Select).value == "annealed"
        assert form.query_one("#max_dev", Input).value == "16" and form.query_one("#epochs", Input).value == "2"
        assert form.query_one("#name", Input).value.startswith("annealed-")
        await pilot.press("escape")

        await select_run(pilot, "source")
        await pilot.press("N")  # a new run from this one
        form = app.screen
        assert isinstance(form, LaunchScreen)
        await pilot.pause()
        assert form.query_one("#variant", Select).value == "rrobin-full+rlayer"
        assert form.query_one("#name", Input).value.startswith("rrobin-full_rlayer-")
        assert [form.query_one(f"#{k}", Input).value for k in ("epochs", "batch_size", "lr", "max_dev")] == \
            ["3", "32", "0.0001", "20"]
        assert "New run from source" in text_of(form.query_one("#launch-template"))
        _, config, problems = form.form()
        assert not problems  # every setting of the source run comes along, the ones under "more options" too
        assert (config.lr_schedule, config.warmup, config.layer_decay) == ("linear", 0.1, 0.9)


async def test_the_launch_form_has_a_field_for_every_training_option(tmp_path, demo_data):
    """The form is generated from TrainConfig: every option but the run's folder and name has a field, and what
    is typed in them is what the run gets."""
    app = WalklessApp(tmp_path / "runs", demo_data)
    values = {k: v for k, v in other_values().items() if k not in ("runs_dir", "name")}
    values["per_task_step"] = True  # --sst-lr (not its default here) needs one step per task
    values["pair_input"] = "bi"  # --pair-symmetric (not its default here) needs bi-encoded pairs
    values["grad_surgery"] = "none"  # --grad-surgery needs the summed step (--no-per-task-step)
    async with app.run_test(size=BIG) as pilot:
        await pilot.press("n")
        form = app.screen
        await pilot.pause()
        form.fill({k: as_text(v) for k, v in values.items()})
        await pilot.pause()
        assert set(form.values()) == set(values)
        _, config, problems = form.form()
        assert not problems
        values["data_dir"] = str(Path(values["data_dir"]).absolute())
        assert {k: config.flat()[k] for k in values} == values
        assert config.runs_dir == str(tmp_path / "runs")


async def test_launch_hints_are_not_cut_at_80x24(tmp_path, demo_data):
    app = WalklessApp(tmp_path / "runs", demo_data)
    async with app.run_test(size=SMALL) as pilot:
        await pilot.press("n")
        form = app.screen
        await pilot.pause()
        checked = 0
        for hint in form.query(".form-hint"):
            plain = text_of(hint)
            if hint.parent.size.width and plain:  # a laid-out row (the SMART rows are hidden for rrobin)
                assert hint.size.width >= 10 and hint.size.width * hint.size.height >= len(plain), plain
                assert hint.parent.size.width <= 80
                checked += 1
        assert checked >= 10

