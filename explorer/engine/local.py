"""The engine in this process, on one worker thread: the same named requests and replies as the engine
process (tasks.execute), for tests that hold the engine in their hands (a gated engine, an injected
fault). The window uses the engine process (client.py); this imports Keras into the caller's process."""

from __future__ import annotations

import itertools
import threading
from typing import Callable

from .requests import Job, Reply, Request
from .tasks import execute


class LocalChannel:
    """submit / cancel / busy / close like client.Channel; of several pending requests of one kind only the
    newest runs. `paused`: requests wait until resume()."""

    client = None   # no engine process to restart

    def __init__(self, on_reply: Callable[[Reply], None], on_progress=None, *, engine=None, paused: bool = False):
        from ..core.run import Engine
        self._on_reply = on_reply
        self._on_progress = on_progress or (lambda request_id, fraction: None)
        self._engine = engine or Engine()
        self._paused = paused
        self._ids = itertools.count(1)
        self._pending: dict[str, tuple[int, Request]] = {}
        self._condition = threading.Condition()
        self._cancel = threading.Event()
        self._stopping = False
        self._busy: int | None = None
        threading.Thread(target=self._loop, name="engine-thread", daemon=True).start()

    def submit(self, kind: str, **payload) -> int:
        with self._condition:
            request_id = next(self._ids)
            self._pending[kind] = (request_id, Request(kind, payload))
            self._condition.notify()
        return request_id

    def resume(self) -> None:
        with self._condition:
            self._paused = False
            self._condition.notify()

    def cancel(self) -> None:
        with self._condition:
            self._pending.clear()
            if self._busy is not None:
                self._cancel.set()

    @property
    def busy(self) -> bool:
        """A request runs (a cancelled one too, until it stops)."""
        return self._busy is not None

    def close(self) -> None:
        with self._condition:
            self._stopping = True
            self._pending.clear()
            self._cancel.set()
            self._condition.notify()

    def _check_cancel(self) -> None:
        if self._cancel.is_set():
            from ..core.run import Cancelled
            raise Cancelled()

    def _loop(self) -> None:
        while True:
            with self._condition:
                while (self._paused or not self._pending) and not self._stopping:
                    self._condition.wait()
                if self._stopping:
                    return
                kind = min(self._pending, key=lambda k: self._pending[k][0])
                request_id, request = self._pending.pop(kind)
                self._cancel.clear()
                self._busy = request_id
            job = Job(self._check_cancel, lambda fraction, i=request_id: self._on_progress(i, fraction))
            reply = execute(request_id, request, self._engine, job)
            with self._condition:
                self._busy = None
            self._on_reply(reply)
