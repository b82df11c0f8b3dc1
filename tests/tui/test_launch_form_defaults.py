"""The launch form says what it will run: the app's data dir when the field is empty, lr and batch that follow the variant, fewer widgets at open."""

from __future__ import annotations

import shutil

from support.tui import LONG, choose_variant, scanned, wait_for
from textual.widgets import DataTable

from walkless_tui.app import WalklessApp


async def test_an_empty_data_dir_is_the_apps_and_the_runs_data_is_shown(runs, tmp_path, demo_data):
    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    app = WalklessApp(runs, data)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await scanned(pilot, {LONG})
        await pilot.press("n")
        await pilot.pause()
        form = app.screen
        form.query_one("#data_dir").value = ""
        _, config, problems = form.form()
        assert not problems and config.data_dir == str(data)  # not the demo data
        assert str(data) in form.query_one("#data_dir").placeholder
        await pilot.press("escape")
        table = screen.query_one("#runs-table", DataTable)
        table.move_cursor(row=screen._keys.index(LONG))
        await pilot.pause()
        assert "(the demo data)" in str(screen.query_one("#run-detail").render())  # trained on demo_data


async def test_lr_and_batch_follow_the_variant_unless_typed(runs):
    from textual.widgets import Input, Select, Static

    app = WalklessApp(runs)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await scanned(pilot, {"ft"})
        screen.query_one("#runs-table", DataTable).move_cursor(row=screen._keys.index("ft"))
        await pilot.press("N")  # a new run from ft (finetune, lr 1e-3 and batch 16 as trained)
        await pilot.pause()
        form = app.screen
        lr, batch = form.query_one("#lr", Input), form.query_one("#batch_size", Input)
        assert (lr.value, batch.value) == ("0.001", "16")
        await choose_variant(pilot, form, "rrobin+smart")
        assert (lr.value, batch.value) == ("1e-05", "16")  # the source's values followed the variant
        about = str(form.query_one("#variant-about", Static).render())
        assert "SST, Quora, STS in turn" in about and "SMART" in about
        form.query_one("#variant", Select).value = "rrobin"
        await pilot.pause()
        assert (lr.value, batch.value) == ("1e-05", "64")
        lr.value = "3e-05"  # typed: kept from now on
        form.query_one("#variant", Select).value = "pretrain"
        await pilot.pause()
        assert (lr.value, batch.value) == ("3e-05", "64")
        _, config, problems = form.form()
        assert not problems and config.lr == 3e-05 and config.variant == "pretrain"


async def test_the_form_opens_with_fewer_widgets_and_keeps_every_option(runs):
    """The "more options" and SMART rows are made when first shown; their values (a template's) still launch."""
    from textual.widgets import Collapsible

    app = WalklessApp(runs)
    async with app.run_test(size=(160, 48)) as pilot:
        await scanned(pilot, {LONG})
        app.open_launch({"variant": "rrobin+smart", "lr_schedule": "linear", "warmup": 0.1,
                         "smart": {"lam": 2.0}})
        await pilot.pause()
        form = app.screen
        assert not form.query("#lr_schedule")  # not made yet
        _, config, problems = form.form()
        assert not problems and (config.lr_schedule, config.warmup, config.smart.lam) == ("linear", 0.1, 2.0)
        form.query_one("#more-options", Collapsible).collapsed = False
        await wait_for(pilot, lambda: not form.pending, what="the more options rows")
        assert str(form.query_one("#lr_schedule").value) == "linear" and form.query_one("#warmup").value == "0.1"



async def test_the_app_keeps_one_form_and_takes_over_what_another_form_launched(runs):
    """`n` shows the same form again (making it is most of the time the form takes to open) as it was left, with
    a fresh name and no old errors; the fields a "new run from this one" form launched with are taken over."""
    from textual.widgets import Input, Select

    app = WalklessApp(runs)
    async with app.run_test(size=(160, 48)) as pilot:
        await scanned(pilot, {LONG})
        await pilot.press("n")
        await pilot.pause()
        form = app.screen
        form.query_one("#epochs", Input).value = "3"
        form.query_one("#name", Input).value = ""
        form.action_launch()  # an empty name: refused, the error shown
        await wait_for(pilot, lambda: "-error" in form.query_one("#launch-errors").classes, what="the error")
        await pilot.press("escape")
        await pilot.press("n")
        await pilot.pause()
        assert app.screen is form and form.query_one("#epochs", Input).value == "3"
        assert form.query_one("#name", Input).value.startswith("rrobin-")
        assert "-error" not in form.query_one("#launch-errors").classes
        await pilot.press("escape")
        app.last_form = {**form.values(), "variant": "finetune", "epochs": "5"}  # what a launched template form leaves
        await pilot.press("n")
        await pilot.pause()
        assert app.screen is form and form.query_one("#variant", Select).value == "finetune"
        assert form.query_one("#epochs", Input).value == "5" and form.query_one("#name", Input).value.startswith("finetune-")


async def test_the_form_is_made_off_screen_soon_after_start_and_shown_by_the_first_n(runs, tmp_path, demo_data):
    """The first `n` shows a form already mounted (made about a second after start, while the runs screen stays
    in front), holding what the app was started with."""
    from textual.widgets import Input

    from walkless_tui.app import LAUNCH_FORM, PREMAKE_FORM_AFTER

    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    app = WalklessApp(runs, data)
    async with app.run_test(size=(160, 48)) as pilot:
        runs_screen = await scanned(pilot, {LONG})
        await pilot.pause(PREMAKE_FORM_AFTER)
        await wait_for(pilot, lambda: app.is_screen_installed(LAUNCH_FORM) and app.get_screen(LAUNCH_FORM).is_mounted,
                       what="the form made off screen")
        premade = app.get_screen(LAUNCH_FORM)
        assert app.screen is runs_screen  # made, not shown
        await pilot.press("n")
        await pilot.pause()
        assert app.screen is premade and app.focused is premade.query_one("#variant")
        assert premade.query_one("#name", Input).value.startswith("rrobin-")
        assert str(data) in premade.query_one("#data_dir", Input).placeholder


async def test_closing_while_the_form_is_made_off_screen_waits_for_it(runs, monkeypatch):
    """The app may close while its off-screen form is still mounting (a quick quit, a test that ends about a
    second after start): it lets the form finish first, instead of closing widgets whose mount handlers then fail
    (NoMatches from Select, Header and the form at exit). Each delay closes at another point of that mount; before
    the fix the first (made at once, closed at once) failed every time, the others now and then."""
    import asyncio

    import walkless_tui.app
    from walkless_tui.app import LAUNCH_FORM

    monkeypatch.setattr(walkless_tui.app, "PREMAKE_FORM_AFTER", 600.0)  # the test starts the form itself
    for delay in (0.0, 0.05, 0.15, 0.3):
        app = WalklessApp(runs)
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.pause()
            assert not app.is_screen_installed(LAUNCH_FORM)
            app._premake_launch_form()
            await asyncio.sleep(delay)  # leaving run_test re-raises what a handler raised while the app closed
