"""A valid value other than the default for every training option (tests of the CLI and the launch form)."""

from __future__ import annotations

from typing import Any

from core.config import check_value, default_of, option_fields

CANDIDATES: dict[type, list[Any]] = {int: [3, 1, 0], float: [0.25, 0.5, 2.0, 1.0], str: ["rrobin", "cpu"]}


def other_values() -> dict[str, Any]:
    """{flat option name: a valid value that is not its default}, for every option ``option_fields`` lists."""
    out = {}
    for name, f, kind, _ in option_fields():
        default = default_of(f)
        choices = f.metadata["choices"] or ([not default] if kind is bool else CANDIDATES[kind])
        out[name] = next(v for v in choices if v != default and check_value(f, kind, v) is None)
    out["variant"] = "rrobin-full"  # the one schedule that takes every option (--sst-passes)
    return out
