"""Make the README screenshots (SVG) of the app from a real tiny run.

    python -m walkless_tui.screenshots [--out assets] [--encoder ENCODER]

Trains a short rrobin run and a short finetune run on the demo data (a tiny random encoder unless
``--encoder`` is given), then drives the app headless at 160×48 and at 80×24 and saves ``runs.svg``,
``monitor.svg``, ``compare.svg``, ``score.svg`` and ``evaluate.svg`` (160×48) and the same names with
``-80x24`` (the smallest terminal the app is laid out for) into ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SIZES = {"": (160, 48), "-80x24": (80, 24)}  # file-name suffix -> terminal size


def make_runs(runs_dir: Path, encoder: str) -> None:
    import logging

    from core.config import TrainConfig
    from core.train import train

    logging.getLogger().setLevel(logging.INFO)  # so train.log gets the epoch lines, as with the CLI
    common = dict(encoder=encoder, runs_dir=str(runs_dir), lr=1e-3, log_every=1, batch_size=8, threads=1)
    train(TrainConfig(variant="rrobin", name="rrobin-demo", epochs=3, **common))
    train(TrainConfig(variant="finetune", task="sst", name="finetune-sst-demo", epochs=3, **common))


async def _until(pilot, condition, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the app did not get there in time")
        await pilot.pause(0.1)


async def shoot(runs_dir: Path, out: Path, size: tuple[int, int] = SIZES[""], suffix: str = "") -> list[Path]:
    from walkless_tui.app import WalklessApp

    app = WalklessApp(runs_dir)
    saved = []

    async def save(name: str, ready: Callable[[Any], object], pop: bool = True) -> None:
        """Wait until the current screen is ``ready`` (given the screen), then save it and go back."""
        await pilot.pause()
        screen = app.screen
        await _until(pilot, lambda: ready(screen))
        await pilot.pause(0.3)
        app.save_screenshot(f"{name}{suffix}.svg", str(out))
        saved.append(out / f"{name}{suffix}.svg")
        if pop:
            app.pop_screen()

    async with app.run_test(size=size) as pilot:
        await _until(pilot, lambda: len(app.screen.runs) == 2)
        await pilot.press("down")
        await pilot.pause(0.7)
        await save("runs", lambda runs: True, pop=False)
        app.open_monitor(runs_dir / "rrobin-demo")
        await save("monitor", lambda monitor: monitor.polls > 0 and monitor.epochs)
        app.open_compare([runs_dir / "rrobin-demo", runs_dir / "finetune-sst-demo"])
        await save("compare", lambda compare: compare.updates > 0 and len(compare.rows) == 2)
        app.open_score(runs_dir / "rrobin-demo")
        await pilot.pause()
        await _until(pilot, lambda: app.screen.scorer is not None)
        await pilot.press(*"The acting is brilliant from start to finish .")
        await pilot.press("tab", *"How can I learn python?", "tab", *"What is the best way to learn python?")
        await save("score", lambda score: score.sentiment_result and score.pair_result
                   and score.pair_result["b"].endswith("python?"))
        app.open_evaluate(runs_dir / "rrobin-demo")
        await save("evaluate", lambda evaluate: evaluate.shown > 0 and evaluate.reports, pop=False)
    return saved


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m walkless_tui.screenshots", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="assets", help="folder for the SVG files (default: assets)")
    p.add_argument("--encoder", default=None, help="encoder for the demo runs (default: a tiny random one)")
    a = p.parse_args(argv)
    out = Path(a.out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    home = Path.cwd()
    if a.encoder and Path(a.encoder).exists():
        a.encoder = str(Path(a.encoder).absolute())
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # the screens show paths relative to here: "runs/rrobin-demo", not /tmp/...
        try:
            encoder = a.encoder
            if encoder is None:
                from core.tiny import write_tiny_encoder

                write_tiny_encoder("tiny-bert")
                encoder = "tiny-bert"
            make_runs(Path("runs"), encoder)
            for suffix, size in SIZES.items():
                for path in asyncio.run(shoot(Path("runs"), out, size, suffix)):
                    print(path)
        finally:
            os.chdir(home)


if __name__ == "__main__":
    main()
