"""Pure helpers of the app: curve smoothing and downsampling, run-record grouping, text formatting.

Nothing here touches Textual, so it is tested without an app.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from core.runs import RunState

MAX_POINTS = 500  # what a plot draws per curve; the stored records are never thinned


def ema(values: Sequence[float], alpha: float) -> list[float]:
    """Exponential moving average with bias correction (TensorBoard-style): ``alpha`` 0 = raw values,
    0.9 = heavy smoothing. Non-finite values are carried over, not mixed in."""
    if alpha <= 0:
        return list(values)
    out, avg, weight = [], 0.0, 0.0
    for v in values:
        if not math.isfinite(v):
            out.append(v)
            continue
        avg = alpha * avg + (1 - alpha) * v
        weight = alpha * weight + (1 - alpha)
        out.append(avg / weight)
    return out


def downsample(xs: Sequence[float], ys: Sequence[float], max_points: int = MAX_POINTS) -> tuple[list, list]:
    """At most ``max_points`` points: consecutive buckets averaged (x = the bucket's last x), so a long
    curve keeps its shape and its end point."""
    n = len(xs)
    if n <= max_points:
        return list(xs), list(ys)
    size = math.ceil(n / max_points)
    out_x, out_y = [], []
    for i in range(0, n, size):
        chunk = ys[i: i + size]
        out_x.append(xs[min(i + size, n) - 1])
        out_y.append(sum(chunk) / len(chunk))
    return out_x, out_y


def loss_series(records: Iterable[dict], x: str = "step") -> dict[str, tuple[list, list[float]]]:
    """``{"task": ([steps], [losses])}`` from metrics records of kind ``step``; ``x="time"``: the records'
    wall-clock times instead of the steps (records without one are left out)."""
    out: dict[str, tuple[list, list[float]]] = {}
    for r in records:
        if r.get("kind") != "step" or not isinstance(r.get("loss"), (int, float)):
            continue
        if x == "time" and not isinstance(r.get("time"), (int, float)):
            continue
        xs, ys = out.setdefault(str(r.get("task", "?")), ([], []))
        xs.append(float(r["time"]) if x == "time" else int(r.get("step", len(xs))))
        ys.append(float(r["loss"]))
    return out


def dev_series(records: Iterable[dict], metric: str) -> tuple[list[int], list[float]]:
    """``([epochs], [values])`` of one dev metric from the ``epoch`` records."""
    xs, ys = [], []
    for r in records:
        v = (r.get("dev") or {}).get(metric) if r.get("kind") == "epoch" else None
        if isinstance(v, (int, float)):
            xs.append(int(r.get("epoch", len(xs) + 1)))
            ys.append(float(v))
    return xs, ys


def smooth_for_plot(series: dict[str, tuple[list, list]], alpha: float,
                    max_points: int = MAX_POINTS) -> dict[str, tuple[list, list]]:
    """EMA over all stored points, then downsampled to what a plot draws."""
    return {k: downsample(xs, ema(ys, alpha), max_points) for k, (xs, ys) in series.items() if xs}


def reports_by_epoch(records: Iterable[dict]) -> dict[int, dict[str, dict]]:
    """``{epoch: {task: report}}`` from the ``report`` records of metrics.jsonl."""
    out: dict[int, dict[str, dict]] = {}
    for r in records:
        if r.get("kind") == "report" and "task" in r:
            out.setdefault(int(r.get("epoch", 0)), {})[str(r["task"])] = r
    return out


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """``{"smart": {"lam": 5}}`` -> ``{"smart.lam": 5}``."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


IGNORED_KEYS = ("name", "runs_dir", "tasks")  # tasks follow from variant and task
IGNORED_PREFIXES = ("schedule_plan.", "data_sizes.")  # derived from the data and the schedule, not settings
FIRST_KEYS = ("variant", "task", "tasks", "encoder", "lr", "batch_size", "epochs", "seed", "max_train", "dropout")


def config_differences(configs: dict[str, dict]) -> dict[str, dict[str, Any]]:
    """``{key: {run: value}}`` for the configuration keys whose values are not all equal."""
    flat = {run: flatten(c) for run, c in configs.items()}
    found = {k for c in flat.values() for k in c if not k.startswith(IGNORED_PREFIXES)} - set(IGNORED_KEYS)
    keys = [k for k in FIRST_KEYS if k in found] + sorted(  # the usual suspects first, then SMART, then the rest
        found - set(FIRST_KEYS), key=lambda k: (not k.startswith("smart."), k))
    out = {}
    for k in keys:
        values = {run: c.get(k, "—") for run, c in flat.items()}
        if len({repr(v) for v in values.values()}) > 1:
            out[k] = values
    return out


def display_path(path: str | Path) -> str:
    """A path as the user would type it: relative to the working folder when inside it."""
    p = Path(path)
    try:
        return str(p.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(p)


def fmt_duration(seconds: float | None) -> str:
    """``3725`` -> ``1:02:05``, ``65`` -> ``1:05``, None -> ``-``."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    s = int(round(seconds))
    h, m, s = s // 3600, s // 60 % 60, s % 60
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def fmt_value(v: Any, digits: int = 3) -> str:
    if isinstance(v, float):
        return f"{v:.{digits}g}" if (abs(v) < 1e-3 and v) or abs(v) >= 1e5 else f"{v:.{digits}f}"
    return "-" if v is None else str(v)


def progress_fraction(step: int, total: int, state: RunState) -> float:
    if state == RunState.FINISHED:
        return 1.0
    return min(1.0, step / total) if total else 0.0


def bar(fraction: float, width: int = 10) -> str:
    """A text progress bar: ``█████░░░░░``."""
    filled = int(round(max(0.0, min(1.0, fraction)) * width))
    return "█" * filled + "░" * (width - filled)


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int = 8) -> str:
    """The last ``width`` values as ``▁▃▅█`` (scaled between their own min and max; flat: all ``▄``)."""
    values = [v for v in values if math.isfinite(v)][-width:]
    if not values:
        return ""
    lo, hi = min(values), max(values)
    if hi == lo:
        return SPARKS[3] * len(values)
    return "".join(SPARKS[round((v - lo) / (hi - lo) * (len(SPARKS) - 1))] for v in values)
