"""Cancel and progress of a run: a Cancel action (Esc) while a run is in flight, a progress bar for long runs.

The window emits `runStarted(request_id)` when it sends a run to the engine, `runProgress(request_id,
fraction)` as the engine reports after each slice of rows (queued to the GUI thread), and `runFinished` /
`runCancelled` when it ends. Cancel asks the window to drop the run (`cancel_run`: the status says
"cancelled" at once) and the engine to stop it: on TensorFlow the running call is cancelled in flight,
elsewhere between slices of rows, and an engine that has not stopped within half a second is replaced by a
new one. The progress bar appears only for runs that last longer than
`PROGRESS_DELAY_MS`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QProgressBar, QToolBar

if TYPE_CHECKING:
    from .main_window import MainWindow

PROGRESS_DELAY_MS = 500
STEPS = 1000


class RunControl(QObject):
    progressShown = Signal()

    def __init__(self, window: MainWindow):
        super().__init__(window)
        self.window = window
        self._token: object | None = None
        self.cancel_action = QAction("■ Cancel", window)
        self.cancel_action.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        self.cancel_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.cancel_action.setToolTip("Stop the run in progress (Esc)")
        self.cancel_action.setEnabled(False)
        self.cancel_action.triggered.connect(window.cancel_run)
        window.addAction(self.cancel_action)
        self._place_in_toolbar()

        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 0)
        self.progress_bar.setMaximumWidth(160)
        self.progress_bar.setTextVisible(True)
        self.progress_bar.setFormat("running %p%")
        self.progress_bar.hide()
        window.statusBar().addPermanentWidget(self.progress_bar)
        self._delay = QTimer(self)
        self._delay.setSingleShot(True)
        self._delay.setInterval(PROGRESS_DELAY_MS)
        self._delay.timeout.connect(self._show_bar)

        window.runStarted.connect(self._started)
        window.runProgress.connect(self._progress, Qt.ConnectionType.QueuedConnection)
        window.runFinished.connect(self._ended)
        window.runCancelled.connect(self._ended)

    def _place_in_toolbar(self) -> None:
        run = self.window.run_action
        for action in self.window.menuBar().actions():      # the Run menu, where there is one
            menu = action.menu()
            if menu is not None and run in menu.actions():
                following = menu.actions()[menu.actions().index(run) + 1:]
                if following:
                    menu.insertAction(following[0], self.cancel_action)
                else:
                    menu.addAction(self.cancel_action)
                break
        for bar in self.window.findChildren(QToolBar):
            actions = bar.actions()
            if run in actions:
                index = actions.index(run)
                before = actions[index + 1] if index + 1 < len(actions) else None
                if before is None:
                    bar.addAction(self.cancel_action)
                else:
                    bar.insertAction(before, self.cancel_action)
                return

    @property
    def running(self) -> bool:
        return self._token is not None

    def _started(self, token: object) -> None:
        first = self._token is None
        self._token = token
        self.cancel_action.setEnabled(True)
        if first:
            self.progress_bar.setRange(0, 0)          # busy until the first slice reports (TensorFlow may still load)
            self._delay.start()

    def _progress(self, token: object, fraction: float) -> None:
        if token == self._token:
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
