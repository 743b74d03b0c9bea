"""How every result view follows the session's result state.

`StateGate(session, owner, redraw)` calls `redraw()` whenever the result or its state changes, with the
state to draw in `gate.shown` (the owner draws once itself after making the gate). After a current result, an edit that a run follows by itself (Live) and
that run are shown only when they last longer than `RUNNING_DELAY_MS`, so a 10 ms run does not make every
view flicker grey; every other state (invalid text or stack, Live off, cancelled, failed) is shown at once.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer

from ..session import CURRENT, RUNNING, ResultState, Session

RUNNING_DELAY_MS = 250


class StateGate(QObject):
    def __init__(self, session: Session, owner: QObject, redraw, delay_ms: int | None = None):
        super().__init__(owner)
        self.session = session
        self.shown: ResultState = session.state
        self._redraw = redraw
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(RUNNING_DELAY_MS if delay_ms is None else delay_ms)
        self._timer.timeout.connect(self._show_now)
        session.events.result.connect(self._changed)
        session.events.document.connect(self._show_now)

    def _changed(self) -> None:
        state = self.session.state
        if (state.kind == RUNNING or state.pending) and self.shown.kind == CURRENT and self.session.result is not None:
            if not self._timer.isActive():
                self._timer.start()
            return
        self._timer.stop()
        self._show_now()

    def _show_now(self) -> None:
        self.shown = self.session.state
        self._redraw()
