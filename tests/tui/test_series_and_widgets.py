"""The app's pure helpers and the core pieces it relies on (no Textual app running)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from core.cli import build_parser, train_config
from core.config import SmartConfig, TrainConfig
from core.launch import LAUNCH_DIR, check_name, launches, start_training, stop_run
from core.runs import RunError, read_metrics_since, tail_lines
from walkless_tui.series import (
    MAX_POINTS,
    config_differences,
    downsample,
    ema,
    fmt_duration,
    loss_series,
    reports_by_epoch,
    smooth_for_plot,
)


def test_the_apps_first_screen_appears_without_importing_torch(tmp_path):
    """The Runs screen lists runs and the launch form offers every variant before torch is loaded (the import-linter
    contracts in pyproject.toml keep core.config, core.variants, core.runs and core.launch free of it; this checks
    the app itself, which imports torch in a background worker once its first screen is up)."""
    (tmp_path / "runs" / "listed").mkdir(parents=True)
    (tmp_path / "runs" / "listed" / "status.json").write_text(json.dumps({"state": "finished"}))
    (tmp_path / "runs" / "listed" / "config.json").write_text(json.dumps({"variant": "rrobin"}))
    code = f"""
import asyncio, sys
from walkless_tui.app import WalklessApp
WalklessApp._warm_up = lambda self: None  # it imports torch in the background once the app is up; not here
async def main():
    app = WalklessApp({str(tmp_path / "runs")!r}, {str(tmp_path)!r})
    async with app.run_test() as pilot:
        for _ in range(50):
            await pilot.pause(0.1)
            if app.screen.runs:
                break
        names = [r.name for r in app.screen.runs]
        await pilot.press("n")
        await pilot.pause()
        print(type(app.screen).__name__, names, sorted({{'torch', 'transformers'}} & set(sys.modules)))
asyncio.run(main())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "LaunchScreen ['listed'] []"


def test_ema_smooths_and_is_bias_corrected():
    assert ema([1.0, 2.0, 3.0], 0.0) == [1.0, 2.0, 3.0]
    out = ema([4.0, 4.0, 4.0], 0.9)
    assert out == pytest.approx([4.0, 4.0, 4.0])  # no drift towards 0 at the start
    noisy = [1.0 if i % 2 else 3.0 for i in range(200)]
    smooth = ema(noisy, 0.9)
    assert max(smooth[100:]) - min(smooth[100:]) < 0.25 < max(noisy) - min(noisy)


def test_downsample_caps_points_keeps_shape_and_end():
    xs = list(range(1, 100_001))
    ys = [float(x) for x in xs]
    dx, dy = downsample(xs, ys, 500)
    assert len(dx) <= 500 and len(dx) == len(dy)
    assert dx[-1] == 100_000  # the newest step is always drawn
    assert dy == sorted(dy)  # a rising curve stays rising
    assert dy[0] == pytest.approx(sum(range(1, 201)) / 200)  # buckets are averaged
    assert downsample([1, 2], [3.0, 4.0], 500) == ([1, 2], [3.0, 4.0])


def test_smooth_for_plot_draws_at_most_max_points_per_task():
    records = [{"kind": "step", "step": s, "task": t, "loss": 1.0 / s} for s in range(1, 20_001)
               for t in ("sst", "para")]
    series = loss_series(records)
    assert len(series["sst"][0]) == 20_000
    drawn = smooth_for_plot(series, 0.6)
    assert set(drawn) == {"sst", "para"} and all(len(xs) <= MAX_POINTS for xs, _ in drawn.values())


def test_config_differences_flattens_and_ignores_the_name():
    diffs = config_differences({
        "a": {"name": "a", "lr": 1e-3, "epochs": 1, "smart": {"lam": 5.0, "eps": 1e-5}},
        "b": {"name": "b", "lr": 1e-5, "epochs": 1, "smart": {"lam": 1.0, "eps": 1e-5}, "extra": 2},
    })
    assert diffs == {"lr": {"a": 1e-3, "b": 1e-5}, "smart.lam": {"a": 5.0, "b": 1.0},
                     "extra": {"a": "—", "b": 2}}


def test_reports_by_epoch_and_durations():
    recs = [{"kind": "report", "epoch": 1, "task": "sst", "confusion": [[1]]},
            {"kind": "report", "epoch": 2, "task": "sts", "true": [1.0]}, {"kind": "epoch", "epoch": 2}]
    assert set(reports_by_epoch(recs)) == {1, 2} and "sts" in reports_by_epoch(recs)[2]
    assert [fmt_duration(s) for s in (None, 5, 65, 3725)] == ["-", "0:05", "1:05", "1:02:05"]


def test_read_metrics_since_reads_only_whole_new_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"kind": "step", "step": 1}\nnot json\n{"kind": "step", "st')
    recs, offset = read_metrics_since(tmp_path, 0)
    assert [r["step"] for r in recs] == [1]  # the damaged line skipped, the half line left for later
    with open(path, "a") as f:
        f.write('ep": 2}\n')
    recs, offset2 = read_metrics_since(tmp_path, offset)
    assert [r["step"] for r in recs] == [2] and offset2 == path.stat().st_size
    assert read_metrics_since(tmp_path, offset2) == ([], offset2)
    path.write_text('{"kind": "step", "step": 9}\n')  # replaced by a shorter file: start over
    assert [r["step"] for r in read_metrics_since(tmp_path, offset2)[0]] == [9]
    assert read_metrics_since(tmp_path / "missing", 0) == ([], 0)


def test_tail_lines(tmp_path):
    path = tmp_path / "log"
    path.write_text("".join(f"line {i}\n" for i in range(1000)))
    assert tail_lines(path, 3) == ["line 997", "line 998", "line 999"]
    assert tail_lines(path, 5, max_bytes=30)[-1] == "line 999"
    assert tail_lines(tmp_path / "nope") == []


def test_a_launch_hands_its_config_to_walkless_train_and_names_are_checked(tmp_path):
    config = TrainConfig(variant="rrobin+smart", epochs=2, bucket=False, runs_dir=str(tmp_path), name="r1",
                         smart=SmartConfig(lam=1.5))
    record = start_training(config, python="true")  # `true` ignores its arguments and exits
    assert record["argv"][1:] == ["-m", "core.cli", "train", "--config",
                                  str(tmp_path.absolute() / LAUNCH_DIR / "r1.config.json")]
    assert train_config(build_parser().parse_args(record["argv"][3:])) == config  # the CLI reads it back whole
    assert check_name(tmp_path, "ok-name_1.2+x") is None
    assert "use letters" in check_name(tmp_path, "../evil")
    assert "taken" in check_name(tmp_path, "r1")  # the launch record holds the name until the run begins
    (tmp_path / "taken").mkdir()
    assert "taken" in check_name(tmp_path, "taken")


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_launch_that_dies_before_its_run_begins_is_listed_as_failed(tmp_path):
    folder = tmp_path / LAUNCH_DIR
    folder.mkdir()
    (folder / "boot.json").write_text(json.dumps({"name": "boot", "pid": _dead_pid(), "host": socket.gethostname(),
                                                  "started": time.time(), "config": {"variant": "rrobin"}}))
    (folder / "boot.log").write_text("INFO loading\nerror: data folder /nope: missing ids-sst-train.csv\n")
    (run,) = launches(tmp_path)
    assert run.name == "boot" and run.state == "failed" and run.variant == "rrobin"
    assert run.message == "error: data folder /nope: missing ids-sst-train.csv"


def test_stop_run_refuses_runs_that_are_not_running(tmp_path):
    run = tmp_path / "done"
    run.mkdir()
    (run / "status.json").write_text(json.dumps({"state": "finished", "pid": os.getpid(),
                                                 "host": socket.gethostname()}))
    with pytest.raises(RunError, match="finished, not running"):
        stop_run(run)
    with pytest.raises(RunError, match="nothing to stop"):
        stop_run(tmp_path / "never")
