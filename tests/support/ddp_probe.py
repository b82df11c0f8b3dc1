"""Run ``walkless train`` (under torchrun) and record which training examples this rank computed losses for.

    torchrun --nproc_per_node=2 tests/support/ddp_probe.py OUT_DIR CLI_ARGS...

writes ``OUT_DIR/rank-R.json``: the example indices of every training batch this rank collated, in order.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from pathlib import Path

import core.trainer
from core.cli import main

seen: list[list[int]] = []


def probe() -> None:
    collate = core.trainer.collate

    def patched(data, index, *rest):
        seen.append(list(index))
        return collate(data, index, *rest)

    core.trainer.collate = patched


if __name__ == "__main__":
    out, *argv = sys.argv[1:]
    probe()
    atexit.register(lambda: (Path(out) / f"rank-{os.environ.get('RANK', '0')}.json").write_text(json.dumps(seen)))
    sys.exit(main(argv))
