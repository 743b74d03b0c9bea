"""One worker thread owns TensorFlow. Callers submit tasks with ids; bursts coalesce.

No Qt here: the window passes a callback that emits a queued signal, so replies land on the GUI thread.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from .core.errors import ExplorerError, strip_ansi
from .core.run import Cancelled, Engine

log = logging.getLogger(__name__)

Task = Callable[[Engine, Callable[[], None]], Any]


@dataclass
class Reply:
    id: int
    kind: str
    value: Any = None
    error: str | None = None
    error_layer: str | None = None
    cancelled: bool = False
    internal: bool = False       # a bug, not a user error: the traceback went to the log
    elapsed_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and not self.cancelled


@dataclass
class _Pending:
    id: int
    kind: str
    task: Task
    submitted: float = field(default_factory=time.perf_counter)


class RunService:
    """Runs tasks in one worker thread; of several pending tasks of one kind only the newest runs."""

    def __init__(self, on_reply: Callable[[Reply], None], engine: Engine | None = None, *, paused: bool = False):
        """`paused`: tasks queue up but none starts before resume(): a window starts TensorFlow (seconds of
        importing, holding the GIL most of the time) only once it is on screen."""
        self._on_reply = on_reply
        self._paused = paused
        self._engine = engine or Engine()
        self._ids = itertools.count(1)
        self._pending: dict[str, _Pending] = {}
        self._condition = threading.Condition()
        self._cancel = threading.Event()
        self._stopping = False
        self._busy_kind: str | None = None
        self._thread = threading.Thread(target=self._loop, name="tensorflow-worker", daemon=True)
        self._thread.start()

    @property
    def engine(self) -> Engine:
        return self._engine

    def submit(self, kind: str, task: Task) -> int:
        """Queues `task(engine, check_cancel)`; replaces any pending task of the same kind. Returns its id."""
        with self._condition:
            request_id = next(self._ids)
            self._pending[kind] = _Pending(request_id, kind, task)
            self._condition.notify()
        return request_id

    def resume(self) -> None:
        """Lets a service created with paused=True start its queued tasks."""
        with self._condition:
            self._paused = False
            self._condition.notify()

    def cancel(self) -> None:
        """Stops the running task at its next check (between windows of time or pieces) and drops pending ones."""
        with self._condition:
            self._pending.clear()
            if self._busy_kind is not None:
                self._cancel.set()

    @property
    def busy(self) -> bool:
        return self._busy_kind is not None

    def shutdown(self, timeout: float = 5.0) -> None:
        with self._condition:
            self._stopping = True
            self._pending.clear()
            self._cancel.set()
            self._condition.notify()
        self._thread.join(timeout)

    def _check_cancel(self) -> None:
        if self._cancel.is_set():
            raise Cancelled()

    def _next(self) -> _Pending | None:
        with self._condition:
            while (self._paused or not self._pending) and not self._stopping:
                self._condition.wait()
            if self._stopping:
                return None
            oldest = min(self._pending.values(), key=lambda item: item.id)
            del self._pending[oldest.kind]
            self._cancel.clear()
            self._busy_kind = oldest.kind
            return oldest

    def _loop(self) -> None:
        while True:
            item = self._next()
            if item is None:
                return
            started = time.perf_counter()
            reply = Reply(item.id, item.kind)
            try:
                reply.value = item.task(self._engine, self._check_cancel)
            except Cancelled:
                reply.cancelled = True
            except ExplorerError as error:
                reply.error, reply.error_layer = error.message, error.layer
            except Exception as error:  # a bug: keep the worker alive, log it, tell the user
                log.error("worker task %s failed:\n%s", item.kind, traceback.format_exc())
                reply.error = f"internal error ({type(error).__name__}): {strip_ansi(str(error))[:300]}"
                reply.internal = True
            finally:
                with self._condition:
                    self._busy_kind = None
            reply.elapsed_ms = (time.perf_counter() - started) * 1000
            try:
                self._on_reply(reply)
            except Exception:
                log.error("reply handler failed:\n%s", traceback.format_exc())
