"""Widgets of the app: plots, score bars, report tables."""
