"""What several screens of the app share: run-state colours, the runs table's columns, metric headers,
and how a long run name is cut to fit a cell. Pure data and text helpers (no widgets)."""

from __future__ import annotations

from core.report import COLUMNS as METRICS
from core.runs import RunState

STATE_STYLE = {RunState.RUNNING: "bold yellow", RunState.FINISHED: "green", RunState.FAILED: "bold red",
               RunState.STOPPED: "magenta", RunState.STARTING: "cyan", RunState.DAMAGED: "bold red reverse",
               "training": "bold yellow"}  # a Table 2 sweep's row being trained
# the metrics right after state and progress, before the wide, less needed columns, so that an 80-column
# terminal still shows SST, Quora and STS; trend: a sparkline of the dev metrics' mean per epoch
COLUMNS = [("mark", " "), ("name", "run"), ("state", "state"), ("progress", "progress"),
           *METRICS, ("trend", "trend"), ("variant", "variant"), ("elapsed", "elapsed"), ("eta", "ETA"), ("note", "note")]
METRIC_HEADERS = {**dict(METRICS), "cfimdb/acc": "CFIMDB acc"}
NAME_WIDTH = {"wide": 40, "narrow": 18, "small": 12}  # the runs table's name cells: 110+, 80+, fewer columns
SHORT_HEADERS = {"sst/acc": "SST", "para/acc": "Quora", "sts/pearson": "STS r"}  # under 110 columns


def middle_cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, cut in the middle (``rrobin-f…0-153012``): generated names
    differ at their start (the variant) and their end (the time), so both are kept."""
    if len(text) <= width:
        return text
    if width < 3:
        return text[:width]
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head):]
