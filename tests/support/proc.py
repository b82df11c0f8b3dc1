"""What tests that start a Python child process share."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def checkout_first(env: dict[str, str]) -> dict[str, str]:
    """ENV with this checkout first on PYTHONPATH. A child that runs a file under tests/ as a script starts its
    sys.path at tests/, so without this it imports whatever copy of `core` is installed, wherever that is."""
    return {**env, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)}
