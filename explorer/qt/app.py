"""Starts the window (built in a later step)."""

import sys


def open_window(stack: str | None = None, screenshot: str | None = None) -> int:
    print("the window is not built yet; use `python main.py run preset:average_pooling`", file=sys.stderr)
    return 2
