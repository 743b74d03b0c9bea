"""Starts the window: `python main.py [STACK]`, or `--screenshot PNG [STACK]` to render it offscreen."""

from __future__ import annotations

import ctypes.util
import os
import sys
from pathlib import Path
from typing import Callable, Mapping

WINDOW_SIZE = (1600, 1000)
SCREENSHOT_TIMEOUT_S = 120
SIGNAL_POLL_MS = 200            # how often Python gets to see a signal (Ctrl-C) while Qt waits
XCB_LIBRARIES = {"xcb-cursor": "libxcb-cursor0", "xcb-icccm": "libxcb-icccm4", "xcb-keysyms": "libxcb-keysyms1"}
INSTALL = "sudo apt-get install " + " ".join(XCB_LIBRARIES.values())


def display_problem(env: Mapping[str, str] | None = None, platform: str | None = None,
                    find_library: Callable[[str], str | None] = ctypes.util.find_library) -> str | None:
    """Why Qt could not open a window here (it would abort the process), or None when it can."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if not platform.startswith("linux"):
        return None
    qpa = env.get("QT_QPA_PLATFORM", "").strip()
    if qpa and not qpa.startswith("xcb"):
        return None                      # offscreen, wayland, vnc …: Qt's own business
    wayland = bool(env.get("WAYLAND_DISPLAY")) and env.get("XDG_SESSION_TYPE", "") == "wayland"
    if not qpa and wayland:
        return None                      # Qt picks its Wayland plugin
    if not env.get("DISPLAY"):
        return ("there is no display to open the window on (DISPLAY is not set): run it on a desktop, or use "
                "`--screenshot PNG` (or QT_QPA_PLATFORM=offscreen) to render it without one")
    missing = [package for library, package in XCB_LIBRARIES.items() if not find_library(library)]
    if missing:
        return f"Qt needs system libraries that are missing ({', '.join(missing)}): {INSTALL}"
    return None


def open_window(stack: str | None = None, screenshot: str | None = None, size: tuple[int, int] | None = None,
                scale: float | None = None, backend: str | None = None) -> int:
    """Opens the explorer on `stack` (a file or preset:NAME; default the default preset), at `size` (pixels) and
    presentation `scale` when given, with Keras's `backend` in the engine process. Returns the exit status."""
    from ..core import presets
    reference = stack or presets.PREFIX + presets.DEFAULT
    model = None
    if presets.is_keras_model(reference):   # a trained model: read in the engine once the window is up
        if screenshot:
            from ..core.errors import SpecError
            raise SpecError("", "--screenshot takes a stack file or preset:NAME, not a Keras model")
        model = _check_model_file(reference)
        reference = presets.PREFIX + presets.DEFAULT
    spec = presets.load_stack(reference)     # a bad file: ExplorerError → `error: …`, exit 2
    if screenshot:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    else:
        problem = display_problem()
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
    from ..requests import start_engine
    start_engine(backend)            # the engine loads Keras in its own process while the window is built
    from PySide6.QtCore import qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    from .errors import install_hooks, setup_logging, teardown_logging
    from .main_window import MainWindow, show_at_start, take_screenshot
    from .settings import open_settings
    qInstallMessageHandler(_qt_message)
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "rnn-explorer"])
    app.setApplicationName("RNN Shape Explorer")
    from .theme import DESKTOP_NAME, app_icon, follow_system
    app.setDesktopFileName(DESKTOP_NAME)       # assets/rnn-explorer.desktop: the icon in docks and task bars
    app.setWindowIcon(app_icon())
    follow_system(app)                         # light or dark, as the system says, and when it changes
    reporter = install_hooks(setup_logging())   # a bug is logged and shown; the window keeps working
    try:
        if screenshot:
            window = MainWindow(spec, trusted=presets.is_preset(reference), source=reference,
                                confirm_trust=lambda expressions: False, reporter=reporter, scale=scale)
            return take_screenshot(app, window, screenshot, timeout_s=SCREENSHOT_TIMEOUT_S, size=size or WINDOW_SIZE)
        window = MainWindow(spec, trusted=presets.is_preset(reference), source=None if model else reference,
                            settings=open_settings(), reporter=reporter, scale=scale)
        show_at_start(window, size=size, default_size=WINDOW_SIZE, model=model)
        watch = quit_on_interrupt(window)
        try:
            return app.exec()
        finally:
            watch.stop()
            import signal
            signal.signal(signal.SIGINT, signal.default_int_handler)
    finally:
        reporter.uninstall()
        teardown_logging()


def quit_on_interrupt(window, interval_ms: int = SIGNAL_POLL_MS):
    """Ctrl-C in the terminal (SIGINT) closes `window` as Quit does (unsaved changes are asked about). Python
    handles a signal only when it runs, so a timer lets it run while Qt waits. Returns the timer."""
    import signal

    from PySide6.QtCore import QTimer
    signal.signal(signal.SIGINT, lambda number, frame: QTimer.singleShot(0, window.close))
    timer = QTimer(window)
    timer.timeout.connect(lambda: None)
    timer.start(interval_ms)
    return timer


def _check_model_file(path: str) -> str:
    """A .keras file named on the command line must at least be a readable zip archive, an .h5 one an HDF5 file
    (else exit 2)."""
    import zipfile

    from ..core.errors import SpecError
    from ..core.keras_archive import is_hdf5
    if not path.lower().endswith(".keras") and Path(path).is_file():
        if not is_hdf5(path):
            raise SpecError("", f"{path} is not an HDF5 model file")
        return path
    try:
        with zipfile.ZipFile(path) as archive:
            archive.getinfo("config.json")
    except FileNotFoundError:
        raise SpecError("", f"cannot read {path}: no such file") from None
    except (OSError, zipfile.BadZipFile, KeyError) as error:
        raise SpecError("", f"{path} is not a .keras model file ({error})") from None
    return path


_QT_NOISE = ("This plugin does not support propagateSizeHints()",)


def _qt_message(mode, context, message: str) -> None:
    """Qt's own warnings, minus the offscreen plugin's noise that means nothing to users."""
    if message not in _QT_NOISE:
        print(message, file=sys.stderr)
