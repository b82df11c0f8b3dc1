"""walkless-tui: the Textual app over run folders and the ``core`` library."""
