"""Run ``walkless train`` and freeze it at a chosen point, so that a test can SIGKILL the real process there.

    python tests/support/killable.py step N MARKER CLI_ARGS...   freeze right after optimizer step N
    python tests/support/killable.py save N MARKER CLI_ARGS...   freeze half-way through saving checkpoint step-N
                                                          (model.safetensors written, trainer state not yet)

Freezing = creating the file MARKER, then sleeping; nothing else in the training code is changed.
Tests call ``run_and_kill``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script by run_and_kill: make `support` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import core.checkpoint
import core.trainer
from core.cli import main
from support.proc import REPO, checkout_first  # noqa: E402


def freeze(marker: Path) -> None:
    marker.touch()
    time.sleep(600)  # the test kills us long before this ends


def at_step(n: int, marker: Path) -> None:
    record = core.trainer.Trainer.record

    def patched(self, task, loss, *rest):
        record(self, task, loss, *rest)
        if self.step == n:
            freeze(marker)

    core.trainer.Trainer.record = patched


def mid_save(n: int, marker: Path) -> None:
    save_file = core.checkpoint.save_file

    def patched(tensors, filename, *args, **kwargs):
        save_file(tensors, filename, *args, **kwargs)
        if f".tmp-step-{n:08d}-" in str(filename) and str(filename).endswith("model.safetensors"):
            freeze(marker)

    core.checkpoint.save_file = patched


def run_and_kill(mode: str, n: int, argv: list[str], tmp: Path) -> None:
    """Start ``walkless train ARGV`` in a real process, wait until it is frozen at (mode, n), SIGKILL it."""
    marker = tmp / f"frozen-{mode}-{n}"
    proc = subprocess.Popen([sys.executable, __file__, mode, str(n), str(marker), *argv], cwd=REPO,
                            env=checkout_first(dict(os.environ)), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            if proc.poll() is not None:
                raise AssertionError(f"training ended before {mode} {n}: {proc.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"training never reached {mode} {n}")
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


if __name__ == "__main__":
    mode, n, marker, *argv = sys.argv[1:]
    {"step": at_step, "save": mid_save}[mode](int(n), Path(marker))
    sys.exit(main(argv))
