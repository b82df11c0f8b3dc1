"""Walkless core: minBERT, multitask heads, data, SMART, schedules, training, evaluation, run storage.

This package never imports Textual; the app in ``walkless_tui`` drives it.
"""

__version__ = "0.1.0"
