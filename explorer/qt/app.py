"""Starts the window: `python main.py [STACK]`, or `--screenshot PNG [STACK]` to render it offscreen."""

from __future__ import annotations

import ctypes.util
import os
import sys
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
    if reference.lower().endswith(".keras"):   # a trained model: read in the engine once the window is up
        if screenshot:
            from ..core.errors import SpecError
            raise SpecError("", "--screenshot takes a stack file or preset:NAME, not a .keras model")
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
    from PySide6.QtCore import QTimer, qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    from .errors import install_hooks, setup_logging, teardown_logging
    from .layout import fit_to_screen
    from .main_window import MainWindow
    from .recovery import offer_recovery
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
                                confirm_trust=lambda expressions: False)
            reporter.watch(window.runs.requests)
            if scale:
                window.window_layout.set_scale(scale, announce=False)
            return take_screenshot(app, window, screenshot, size=size or WINDOW_SIZE)
        window = MainWindow(spec, trusted=presets.is_preset(reference), source=None if model else reference,
                            settings=open_settings())
        reporter.watch(window.runs.requests)
        if scale:
            window.window_layout.set_scale(scale)
        if size:
            window.resize(*size)
            fit_to_screen(window)
        elif not window.preferences.restored_geometry:
            screen = app.primaryScreen().availableGeometry() if app.primaryScreen() else None
            if screen is not None and (screen.width() < WINDOW_SIZE[0] or screen.height() < WINDOW_SIZE[1]):
                window.resize(min(WINDOW_SIZE[0], int(screen.width() * 0.95)),
                              min(WINDOW_SIZE[1], int(screen.height() * 0.92)))
            else:
                window.resize(*WINDOW_SIZE)
        window.show()
        if model:
            window.open_path(model)
        QTimer.singleShot(0, lambda: offer_recovery(window.session, window.autosaver, window.files, parent=window))   # work autosaved by a session that crashed
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
    signal.signal(signal.SIGINT, lambda number, frame: QTimer.singleShot(0, window.files.quit_action.trigger))
    timer = QTimer(window)
    timer.timeout.connect(lambda: None)
    timer.start(interval_ms)
    return timer


def _check_model_file(path: str) -> str:
    """A .keras file named on the command line must at least be a readable zip archive (else exit 2)."""
    import zipfile

    from ..core.errors import SpecError
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


def take_screenshot(app, window, path: str, timeout_s: float = SCREENSHOT_TIMEOUT_S,
                    size: tuple[int, int] = WINDOW_SIZE) -> int:
    """Shows `window` at `size`, waits for its first run to be plotted (and the gates and gradients when the
    Inside the cell tab is open), saves it as a PNG. 0, or 2 with an error
    line (also when the window cannot be made that small)."""
    from PySide6.QtCore import QEventLoop, QTimer

    window.resize(*size)
    window.show()
    loop = QEventLoop()
    finished = []

    def done(reply) -> None:
        finished.append(reply)
        loop.quit()

    if window.runs.settled and window.runs.last_reply is not None:
        finished.append(window.runs.last_reply)        # refused before running: nothing to wait for
    else:
        window.runs.runFinished.connect(done)
        QTimer.singleShot(int(timeout_s * 1000), loop.quit)
        loop.exec()
    try:
        if not finished:
            print(f"error: the first run did not finish within {timeout_s:.0f} s; no screenshot taken",
                  file=sys.stderr)
            return 2
        window.resize(*size)                     # again: the docks are arranged for the screen once shown
        for _ in range(5):                       # let the plots lay themselves out and paint
            app.processEvents()
        if window.cell_panel.waiting:            # a lesson that opens Inside the cell: wait for its numbers too
            window.cell_panel.answered.connect(loop.quit)
            QTimer.singleShot(int(timeout_s * 1000), loop.quit)
            loop.exec()
        QTimer.singleShot(100, loop.quit)
        loop.exec()
        app.processEvents()
        if (window.width(), window.height()) != tuple(size):
            print(f"error: the window cannot be {size[0]}x{size[1]} (it needs at least "
                  f"{window.minimumSizeHint().width()}x{window.minimumSizeHint().height()} at this scale)",
                  file=sys.stderr)
            return 2
        if not window.grab().save(path, "PNG"):
            print(f"error: cannot write the screenshot to {path}", file=sys.stderr)
            return 2
        return 0
    finally:
        window.close()
