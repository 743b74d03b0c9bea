"""The window that `explorer.explore()` opens from a script or a notebook."""

from __future__ import annotations

import sys
from typing import Callable

from ..core.errors import ExplorerError
from .app import WINDOW_SIZE, display_problem

_open_windows: list = []      # windows returned to a notebook stay alive while open, even if not kept


def open_explorer(prepared, *, keras_path: str | None = None, arrived: Callable | None = None, trust: bool = False):
    """Shows a MainWindow on `prepared` (a library.Prepared), or reads `keras_path` in the engine and shows the
    Prepared that `arrived(spec)` makes of its stack. Returns (window, QApplication); the caller runs the loop."""
    problem = display_problem()
    if problem:
        raise ExplorerError(problem)
    from PySide6.QtWidgets import QApplication

    from ..core import presets
    from .layout import fit_to_screen
    from .main_window import MainWindow, show_from_library
    from .theme import app_icon, follow_system
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv and sys.argv[0] else "rnn-explorer"])
    app.setApplicationName("RNN Shape Explorer")
    app.setWindowIcon(app_icon())
    follow_system(app)
    spec = prepared.spec if prepared is not None else presets.load_preset(presets.DEFAULT)
    window = MainWindow(spec, trusted=prepared.trust if prepared is not None else True)
    window.resize(*WINDOW_SIZE)
    fit_to_screen(window)
    show_from_library(window, prepared, keras_path=keras_path, arrived=arrived, trust=trust)
    _open_windows.append(window)
    return window, app
