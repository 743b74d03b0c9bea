"""Cancel and progress of a run: a Cancel action (Esc) while a run is in flight, a progress bar for long runs.

`RunControl(runs)` follows the run scheduler: `runStarted(token)` when a run is sent to the worker,
`runProgress(token, fraction)` from the worker (queued to the GUI thread; the engine reports after each
slice of rows), and `runFinished` / `runCancelled` when it ends. Cancel asks the scheduler to drop the
run (the session says "cancelled" at once) and the service to stop it (on TensorFlow the running call
is cancelled in flight; elsewhere the engine checks between slices of rows). The progress bar appears
only for runs that last longer than `PROGRESS_DELAY_MS`. The window places `cancel_action` next to Run
and `progress_bar` in its status bar.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QProgressBar

if TYPE_CHECKING:
    from .runs import RunScheduler

PROGRESS_DELAY_MS = 500
STEPS = 1000


class RunControl(QObject):
    progressShown = Signal()

    def __init__(self, runs: RunScheduler, parent: QObject | None = None):
        super().__init__(parent)
        self.runs = runs
        self._token: object | None = None
        self.cancel_action = QAction("■ Cancel", self)
        self.cancel_action.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        self.cancel_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.cancel_action.setToolTip("Stop the run in progress (Esc)")
        self.cancel_action.setEnabled(False)
        self.cancel_action.triggered.connect(runs.cancel)

        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 0)
        self.progress_bar.setMaximumWidth(160)
        self.progress_bar.setTextVisible(True)
        self.progress_bar.setFormat("running %p%")
        self.progress_bar.hide()
        self._delay = QTimer(self)
        self._delay.setSingleShot(True)
        self._delay.setInterval(PROGRESS_DELAY_MS)
        self._delay.timeout.connect(self._show_bar)

        runs.runStarted.connect(self._started)
        runs.runProgress.connect(self._progress, Qt.ConnectionType.QueuedConnection)
        runs.runFinished.connect(self._ended)
        runs.runCancelled.connect(self._ended)


    def _started(self, token: object) -> None:
        first = self._token is None
        self._token = token
        self.cancel_action.setEnabled(True)
        if first:
            self.progress_bar.setRange(0, 0)          # busy until the first slice reports (TensorFlow may still load)
            self._delay.start()

    def _progress(self, token: object, fraction: float) -> None:
        if token is self._token:
            if self.progress_bar.maximum() != STEPS:
                self.progress_bar.setRange(0, STEPS)
            self.progress_bar.setValue(int(max(0.0, min(1.0, fraction)) * STEPS))

    def _show_bar(self) -> None:
        if self._token is not None:
            self.progress_bar.show()
            self.progressShown.emit()

    def _ended(self, *_args) -> None:
        """The latest run answered, was refused or was cancelled (older replies never reach here)."""
        self._token = None
        self._delay.stop()
        self.progress_bar.hide()
        self.cancel_action.setEnabled(False)
