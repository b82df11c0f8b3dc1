"""Widgets of the app: plots, score bars, report tables, and filling a table sized to its cells."""
