"""Every screen of the app at 160×48 and 80×24 against its committed text snapshot (``snapshots/``).

A layout regression (a column cut off, a footer key hidden, a widget pushed off screen) fails here. The runs are
real tiny runs with frozen numbers and times (``support.snapshots.freeze_run``); Score and Evaluate show a tiny
random model's outputs, whose digits are masked. ``pytest --snapshot-update`` rewrites the snapshots.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.snapshots import assert_snapshot, freeze_run, freeze_table2
from support.tui import screen_text, wait_for

from core.config import TrainConfig
from core.train import train
from walkless_tui.app import WalklessApp

SIZES = {"160x48": (160, 48), "80x24": (80, 24)}
DIGITS = [r"\d"]
STAMP = [r"\d{8}-\d{6}"]  # the generated run name's date and time


@pytest.fixture(scope="module")
def home(tiny_encoder, demo_data) -> Iterator[Path]:
    """A folder holding ``runs/`` (a 3-epoch rrobin run and a 2-epoch SST finetune run, numbers frozen), the encoder
    and the data. Its path has the same length on every machine (``mkdtemp``'s suffix is fixed-length), so a path
    the screens show, masked, takes the same room everywhere."""
    home = Path(tempfile.mkdtemp(prefix="walkless-snapshots-", dir="/tmp"))
    shutil.copytree(tiny_encoder, home / "tiny-bert")
    shutil.copytree(demo_data, home / "data")
    common = dict(encoder=str(home / "tiny-bert"), data_dir=str(home / "data"), runs_dir=str(home / "runs"),
                  batch_size=16, lr=1e-3, log_every=1, max_train=48, threads=1)
    train(TrainConfig(variant="rrobin", name="rrobin-demo", epochs=3, **common))
    train(TrainConfig(variant="finetune", task="sst", name="finetune-sst-demo", epochs=2, **common))
    freeze_run(home / "runs" / "rrobin-demo")
    freeze_run(home / "runs" / "finetune-sst-demo", offset=0.05)
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def shot(home, monkeypatch, request):
    """``await shot(pilot, name, patterns)``: compare the screen, the home folder's path masked."""
    monkeypatch.chdir(home)  # the screens show paths relative to here: "runs/rrobin-demo"
    update = request.config.getoption("--snapshot-update")

    async def compare(pilot, name: str, patterns=()) -> None:
        await assert_snapshot(pilot, name, update, patterns, paths=[home])

    return compare


def walkless_app(home: Path) -> WalklessApp:
    return WalklessApp(home / "runs", data_dir=home / "data")


@pytest.mark.parametrize("size", SIZES)
async def test_runs_monitor_compare(shot, home, size):
    app = walkless_app(home)
    async with app.run_test(size=SIZES[size]) as pilot:
        await wait_for(pilot, lambda: len(app.screen.runs) == 2, what="two runs listed")
        await pilot.pause(0.3)
        await shot(pilot, f"runs-{size}")
        app.open_monitor(home / "runs" / "rrobin-demo")
        await wait_for(pilot, lambda: app.screen.polls > 0 and app.screen.epochs, what="monitor polled")
        # The dev table's rows drawn in full (a loaded CI machine once caught its columns as wide as their headers,
        # the frozen 12.5 seconds shown as "1", when the table still sized them on its idle; the screen sets them).
        await wait_for(pilot, lambda: "  12.5  0." in screen_text(app), what="dev table sized")
        await pilot.pause(0.3)
        await shot(pilot, f"monitor-{size}", [r"system: .*"])  # this machine's CPU and memory, now
        app.pop_screen()
        app.open_compare([home / "runs" / "rrobin-demo", home / "runs" / "finetune-sst-demo"])
        await wait_for(pilot, lambda: app.screen.updates > 0 and len(app.screen.rows) == 2, what="compare")
        if size == "160x48":  # the Table 2 layout sizes its columns to the names once both runs are read
            await wait_for(pilot, lambda: "finetune-sst-demo  finetune" in screen_text(app), what="columns sized")
        await pilot.pause(0.3)
        await shot(pilot, f"compare-{size}")


@pytest.mark.parametrize("size", SIZES)
async def test_launch_and_help(shot, home, size):
    app = walkless_app(home)
    async with app.run_test(size=SIZES[size]) as pilot:
        app.open_launch()
        await pilot.pause(0.5)
        await shot(pilot, f"launch-{size}", STAMP)
        app.pop_screen()
        await pilot.press("question_mark")
        await pilot.pause(0.3)
        await shot(pilot, f"help-{size}")


@pytest.mark.parametrize("size", SIZES)
async def test_score_and_evaluate(shot, home, size):
    app = walkless_app(home)
    async with app.run_test(size=SIZES[size]) as pilot:
        app.open_score(home / "runs" / "rrobin-demo")
        await wait_for(pilot, lambda: app.screen.scorer is not None, timeout=60, what="checkpoint loaded")
        await pilot.press(*"The acting is brilliant .", "tab", *"How can I learn python?", "tab",
                          *"What is the best way to learn python?")
        await wait_for(pilot, lambda: app.screen.sentiment_result and app.screen.pair_result
                       and app.screen.pair_result["b"].endswith("python?"), what="scored")
        await pilot.pause(0.3)
        await shot(pilot, f"score-{size}", [r"\d[\d.]* ms *", *DIGITS])  # a latency and the spaces after it
        app.pop_screen()
        app.open_evaluate(home / "runs" / "rrobin-demo")
        await wait_for(pilot, lambda: app.screen.shown > 0 and app.screen.reports, timeout=60, what="evaluated")
        await pilot.pause(0.3)
        await shot(pilot, f"evaluate-{size}", DIGITS)


@pytest.fixture(scope="module")
def sweep(home) -> Path:
    """A finished two-row `walkless table2` sweep (two steps a row) beside the runs, numbers, times and machine
    frozen."""
    from core.table2 import Table2Config, run_table2

    config = Table2Config(runs_dir=str(home / "table2"), rows=("finetune", "rrobin"), encoder=str(home / "tiny-bert"),
                          data_dir=str(home / "data"),
                          max_train=16, max_dev=8, max_steps=2,
                          command="walkless table2 --runs-dir table2 --max-train 16 --max-dev 8 --max-steps 2")
    run_table2(config)
    freeze_table2(config)
    return home / "table2"


@pytest.mark.parametrize("size", SIZES)
async def test_table2_and_a_confirmation(shot, home, sweep, size):
    app = walkless_app(home)
    async with app.run_test(size=SIZES[size]) as pilot:
        await wait_for(pilot, lambda: len(app.screen.runs) == 2, what="two runs listed")
        app.stop(home / "runs" / "rrobin-demo")
        await pilot.pause(0.3)
        await shot(pilot, f"confirm-{size}")
        await pilot.press("escape")
        assert app.open_table2(sweep)
        await wait_for(pilot, lambda: app.screen.sweep_reads > 0 and app.screen.updates > 0, what="the sweep")
        await pilot.pause(0.3)
        await shot(pilot, f"table2-{size}")  # numbers, times and machine frozen
