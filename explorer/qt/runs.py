"""The window's adapter of the request layer (explorer/requests.py) to Qt.

`RunScheduler(session, make_service)` makes the window's `Requests`, driven by Qt's event loop (`call_soon`
is a queued signal, so the engine's reader thread may call it), and its `Runs`; it re-emits their events as
Qt signals for the widgets (`runStarted`, `runProgress`, `runFinished`, `runCancelled`, `engineFailed`).
A module that sends its own request calls `submit(KIND, on_reply, **payload)` and gets its own reply.
"""

from __future__ import annotations

from typing import Any, Callable

from PySide6.QtCore import QObject, Qt, Signal

from ..requests import Kind, Requests, Runs, Ticket
from ..session import Session


class RunScheduler(QObject):
    runStarted = Signal(object)          # the request id of the run just sent
    runProgress = Signal(object, float)  # (request id, 0…1)
    runFinished = Signal(object)         # the Reply of the latest run (ok or error), or of a refusal to run
    runCancelled = Signal()
    engineFailed = Signal(str)           # the engine is not restarted any more: what to do
    _soon = Signal(object)

    def __init__(self, session: Session, make_service, parent: QObject | None = None):
        super().__init__(parent)
        self._soon.connect(lambda function: function(), Qt.ConnectionType.QueuedConnection)
        self.requests = Requests(make_service, self._soon.emit)
        self.runner = Runs(session, self.requests)
        self.runner.started.connect(self.runStarted.emit)
        self.runner.finished.connect(self.runFinished.emit)
        self.runner.cancelled.connect(self.runCancelled.emit)
        self.requests.progress.connect(self.runProgress.emit)
        self.requests.engine.connect(lambda text, failed: self.engineFailed.emit(text) if failed else None)

    @property
    def service(self):
        return self.requests.service

    @property
    def settled(self) -> bool:
        return self.runner.settled

    @property
    def last_reply(self):
        return self.runner.last_reply

    @property
    def last_run_id(self) -> int:
        return self.runner.last_run_id

    @property
    def dropped_replies(self) -> int:
        return self.runner.dropped_replies

    def submit(self, kind: Kind, on_reply: Callable[[Any], None] | None = None, **payload) -> Ticket:
        """Sends a request of `kind` (explorer/requests.py); `on_reply(reply)` gets its one answer."""
        return self.requests.submit(kind, on_reply, **payload)

    def schedule(self) -> None:
        self.runner.schedule()

    def run_now(self, asked: bool = True) -> None:
        self.runner.run_now(asked)

    def cancel(self) -> None:
        self.runner.cancel()

    def start(self) -> None:
        self.runner.start()

    def restart_engine(self, backend: str | None = None) -> None:
        self.runner.restart_engine(backend)

    def shutdown(self) -> None:
        self.runner.shutdown()
