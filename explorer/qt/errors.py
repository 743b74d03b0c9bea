"""Errors never crash the window: a bug is logged with its traceback, said in the window, and work goes on.

`setup_logging()` sends the `explorer` loggers to `<state dir>/explorer.log` (rotated) and warnings to
stderr. `install_hooks()` replaces `sys.excepthook` (Python exceptions in Qt slots and event handlers
land there) and `threading.excepthook` (other threads): each exception is logged and reported to the
open windows — a line in the status bar and a non-modal message box — through a queued signal, so a
report from any thread is shown on the GUI thread. A window hears the messages by connecting to
`REPORTS` (held weakly: a closed window drops out); the reporter never reaches into a window.
`ErrorReporter.watch(requests)` also shows the engine's internal errors (`Reply.internal`), whose
tracebacks the engine client has logged already.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
import threading
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QApplication, QMainWindow, QMessageBox

from ..core.errors import strip_ansi
from ..session import Event
from .settings import state_dir

if TYPE_CHECKING:
    from ..requests import Reply, Requests

LOG_FILE = "explorer.log"
LOGGER = "explorer"
log = logging.getLogger(LOGGER)
REPORTS = Event("reports")       # (message): an internal error, for every window's status line


def setup_logging(directory: Path | None = None) -> Path | None:
    """Logs the explorer's messages to `directory/explorer.log` (and warnings to stderr). Returns the path,
    or None when the folder cannot be written (then stderr only). Calling it again changes nothing."""
    logger = logging.getLogger(LOGGER)
    for handler in logger.handlers:
        if getattr(handler, "explorer_log", None) is not None:
            return handler.explorer_log
    path: Path | None = (directory or state_dir()) / LOG_FILE
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        file_handler: logging.Handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=1_000_000, backupCount=3, encoding="utf-8")
        file_handler.setFormatter(formatter)
        file_handler.setLevel(logging.INFO)
        file_handler.explorer_log = path
        logger.addHandler(file_handler)
    except OSError as error:
        print(f"warning: cannot write the log to {path}: {error}", file=sys.stderr)
        path = None
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(logging.WARNING)
    stderr.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    stderr.explorer_log = path
    logger.addHandler(stderr)
    logger.setLevel(logging.INFO)
    return path


def teardown_logging() -> None:
    """Removes what setup_logging added (tests)."""
    logger = logging.getLogger(LOGGER)
    for handler in list(logger.handlers):
        if hasattr(handler, "explorer_log"):
            logger.removeHandler(handler)
            handler.close()


def main_windows() -> list[QMainWindow]:
    app = QApplication.instance()
    if app is None:
        return []
    return [widget for widget in app.topLevelWidgets() if isinstance(widget, QMainWindow)]


class ErrorReporter(QObject):
    """Logs unexpected exceptions and shows them in the windows; lives on the GUI thread."""

    reported = Signal(str, str)     # the one-line message, the traceback

    def __init__(self, log_path: Path | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.log_path = log_path
        self.messages: list[str] = []          # what was shown, newest last
        self.box: QMessageBox | None = None
        self._previous = None
        self.reported.connect(self._show, Qt.ConnectionType.QueuedConnection)

    def summary(self, exc_type, exc) -> str:
        text = " ".join(strip_ansi(str(exc)).split())[:300]
        where = f"; details in {self.log_path}" if self.log_path else ""
        return f"internal error ({exc_type.__name__}): {text or 'no message'} — the window keeps working{where}"

    def report(self, exc_type, exc, tb, thread: str | None = None) -> None:
        """Any thread: logs the traceback and queues the message for the windows."""
        details = "".join(traceback.format_exception(exc_type, exc, tb))
        log.error("unexpected error%s:\n%s", f" in thread {thread}" if thread else "", details)
        self.reported.emit(self.summary(exc_type, exc), details)

    def watch(self, requests: Requests) -> None:
        """Shows the engine's internal errors (bugs caught there) of a window's request layer too."""
        requests.internal.connect(self._reply)

    def _reply(self, reply: Reply) -> None:
        if reply.internal:
            where = f"; details in {self.log_path}" if self.log_path else ""
            self._show(f"{reply.error} — the window keeps working{where}", "")

    def _show(self, message: str, details: str) -> None:
        try:
            self.messages.append(message)
            REPORTS.emit(message)
            windows = main_windows()
            parent = next((w for w in windows if w.isVisible()), windows[0] if windows else None)
            if parent is None:
                return
            if self.box is None or self.box.parent() is not parent:
                self.box = QMessageBox(QMessageBox.Icon.Critical, "Something went wrong", "",
                                       QMessageBox.StandardButton.Ok, parent)
                self.box.setWindowModality(Qt.WindowModality.NonModal)
            self.box.setText(message)
            self.box.setDetailedText(details)
            if parent.isVisible():
                self.box.show()
        except Exception:  # never report the reporter: that could loop
            log.exception("could not show an error")

    # --- hooks ---

    def install(self) -> None:
        if self._previous is not None:
            return
        self._previous = (sys.excepthook, threading.excepthook)

        def excepthook(exc_type, exc, tb):
            if issubclass(exc_type, KeyboardInterrupt):
                sys.__excepthook__(exc_type, exc, tb)
                return
            self.report(exc_type, exc, tb)

        def thread_excepthook(args):
            if args.exc_type is SystemExit:
                return
            self.report(args.exc_type, args.exc_value, args.exc_traceback,
                        thread=args.thread.name if args.thread else None)

        sys.excepthook = excepthook
        threading.excepthook = thread_excepthook

    def uninstall(self) -> None:
        if self._previous is not None:
            sys.excepthook, threading.excepthook = self._previous
            self._previous = None


def install_hooks(log_path: Path | None = None) -> ErrorReporter:
    """Installs the hooks for the whole application; keep the returned reporter alive."""
    reporter = ErrorReporter(log_path, QApplication.instance())
    reporter.install()
    return reporter
