"""The window's side of the engine: starts the engine process, sends it named requests, gets replies back.

One EngineClient per application owns the process; each window talks through its own Channel
(submit / cancel / busy, replies to its callback). Requests wait in the client and go to the engine one at a
time; of several pending requests of one kind from one channel only the newest runs (the older ones are
answered cancelled). Every request gets exactly one reply: a result, an error or cancelled. If the engine dies
(a crash, the memory limit, a kill, or a stall: no answer to the heartbeat's ping within `stall_s` while a
request is in flight), the request in flight is answered with what happened (`Reply.lost`), every channel is
told in one line, the dead engine's shared blocks are unlinked, and a new engine starts; nothing in the window
is touched. After MAX_RESTARTS deaths in a row the client gives up: every request is answered with the reason
until restart(). A cancel that the engine does not honour within CANCEL_GRACE_S (a call that cannot be stopped)
kills it and starts a new one.

No Qt and no Keras here: callbacks run on the client's reader thread (the window forwards them through
queued signals). The engine is a `multiprocessing` spawn child, so a script that opens the window must
guard its top level with `if __name__ == "__main__":` (main.py and the installed command do).
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import multiprocessing
import queue
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable

from ..core.memory import MEMORY_LIMIT_MB
from . import shared
from .process import EXIT_OUT_OF_MEMORY, serve
from .requests import Reply, Request

log = logging.getLogger(__name__)

CANCEL_GRACE_S = 0.5
HEARTBEAT_S = 1.0           # while a request is in flight the engine is pinged this often …
STALL_S = 10.0              # … and replaced when it has not answered for this long
STOP_TIMEOUT_S = 2.0
MAX_RESTARTS = 3            # engines that died in a row without answering anything: then give up
# The engine's data-segment limit: the largest run the estimate allows (MEMORY_LIMIT_MB), what the framework
# holds besides (TensorFlow ~0.3 GB) and its temporaries during a recurrent loop, with room to spare.
ENGINE_MEMORY_LIMIT_MB = 3 * MEMORY_LIMIT_MB

ReplyCallback = Callable[[Reply], None]
ProgressCallback = Callable[[int, float], None]


@dataclass
class _Pending:
    id: int
    request: Request
    channel: Channel
    cancelled: bool = False


def describe_exit(exitcode: int | None) -> str:
    """What an engine's exit status means, in a few words."""
    if exitcode is None:
        return "the engine stopped answering"
    if exitcode == EXIT_OUT_OF_MEMORY:
        return "the engine ran out of memory"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        reason = {"SIGKILL": "it was killed (out of memory, or from outside)", "SIGSEGV": "it crashed",
                  "SIGABRT": "it aborted (often: out of memory)", "SIGTERM": "it was stopped from outside"}
        return f"the engine stopped: {reason.get(name, 'it received a signal')} ({name})"
    return f"the engine stopped with exit status {exitcode}"


class EngineClient:
    """Owns one engine process and restarts it when it dies; `backend` is Keras's (None: KERAS_BACKEND or
    TensorFlow)."""

    def __init__(self, backend: str | None = None, *, memory_limit_mb: float | None = ENGINE_MEMORY_LIMIT_MB,
                 cancel_grace_s: float = CANCEL_GRACE_S, heartbeat_s: float = HEARTBEAT_S,
                 stall_s: float = STALL_S):
        self.backend = backend
        self.backend_name: str | None = None   # as the engine reports it once loaded
        self.pid: int | None = None
        self.failure: str | None = None        # the engine cannot start (a backend that does not load)
        self.memory_limit_mb = memory_limit_mb
        self.cancel_grace_s = cancel_grace_s
        self.heartbeat_s, self.stall_s = heartbeat_s, stall_s
        self.restarts = 0
        self._last_sign = time.monotonic()
        self._stalled = False
        self._stopping = threading.Event()
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._channels: list[Channel] = []
        self._queue: dict[tuple[int, str], _Pending] = {}
        self._flight: _Pending | None = None
        self._ready = False
        self._deaths = 0
        self._generation = 0
        self._process = None
        self._connection = None
        self._outbox: queue.SimpleQueue | None = None     # what the writer thread sends to the current engine
        self._closed = False
        self._blocks: set[str] = set()   # shared blocks of the current engine: unlinked here if it dies
        self._start()
        threading.Thread(target=self._heartbeat, name="engine-heartbeat", daemon=True).start()

    # --- the process ---

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        process = context.Process(target=serve, args=(theirs, self.backend, self.memory_limit_mb),
                                  name="explorer-engine", daemon=True)
        with _program_hidden():
            process.start()
        theirs.close()
        self._generation += 1
        self._process, self._connection, self._ready = process, ours, False
        self._outbox = queue.SimpleQueue()
        self._stalled = False
        self.pid = process.pid
        threading.Thread(target=self._read, args=(process, ours, self._generation), name="engine-replies",
                         daemon=True).start()
        threading.Thread(target=self._write, args=(ours, self._outbox), name="engine-requests",
                         daemon=True).start()

    @staticmethod
    def _write(connection, outbox: queue.SimpleQueue) -> None:
        """Sends the messages of one engine in order, off the caller's thread: a stopped engine whose pipe is
        full blocks this thread only, until the heartbeat kills it."""
        while (message := outbox.get()) is not None:
            try:
                connection.send(message)
            except OSError:       # the engine is gone: its reader answers what was in flight
                return

    def _send(self, message) -> None:
        if self._outbox is not None:
            self._outbox.put(message)

    def _stop_process(self, *, wait: bool) -> None:
        process, connection, outbox = self._process, self._connection, self._outbox
        self._generation += 1           # its reader now ignores what it sees
        self._process = self._connection = self._outbox = None
        if process is None:
            return
        if wait:
            outbox.put(("stop",))
            process.join(STOP_TIMEOUT_S)
        outbox.put(None)
        if process.is_alive():
            process.kill()
            process.join(STOP_TIMEOUT_S)
        connection.close()
        if process.exitcode != 0:       # an engine that did not stop cleanly left its blocks behind
            for name in list(self._blocks):
                shared.unlink(name)
            shared.remove_leftovers(process.pid)
        self._blocks = set()

    def restart(self, backend: str | None = None) -> None:
        """A new engine (with another Keras backend), also after the client gave up; the request in flight is
        answered as cancelled."""
        with self._lock:
            self.backend = backend
            self.backend_name, self.failure, self._deaths = None, None, 0
            lost, self._flight = self._flight, None
            self._stop_process(wait=False)
            self._start()
        if lost is not None:
            lost.channel._deliver(Reply(lost.id, lost.request.kind, cancelled=True))

    def kill(self) -> None:
        """Kills the engine as a crash would (for tests and the benchmark): it is restarted like one."""
        if self._process is not None:
            self._process.kill()

    def shutdown(self) -> None:
        self._stopping.set()
        with self._lock:
            self._closed = True
            self._queue.clear()
            self._flight = None
            self._stop_process(wait=True)

    # --- requests ---

    def channel(self, on_reply: ReplyCallback, on_progress: ProgressCallback | None = None) -> Channel:
        made = Channel(self, on_reply, on_progress)
        with self._lock:
            self._channels.append(made)
        return made

    def _submit(self, channel: Channel, request: Request) -> int:
        with self._lock:
            request_id = next(self._ids)
            if self.failure is not None:
                answer = Reply(request_id, request.kind, error=self.failure)
            else:
                older = self._queue.get((id(channel), request.kind))
                answer = Reply(older.id, older.request.kind, cancelled=True) if older is not None else None
                self._queue[(id(channel), request.kind)] = _Pending(request_id, request, channel)
                self._pump()
        if answer is not None:
            channel._deliver(answer)
        return request_id

    def _pump(self) -> None:
        """Sends the oldest pending request when the engine is ready and idle (lock held)."""
        if self._flight is not None or not self._ready or not self._queue or self._closed:
            return
        key = min(self._queue, key=lambda k: self._queue[k].id)
        pending = self._queue.pop(key)
        self._flight = pending
        self._last_sign = time.monotonic()
        released = []
        while shared.RELEASED:
            released.append(shared.RELEASED.popleft())
        self._send(("run", pending.id, pending.request, released))

    def _cancel(self, channel: Channel) -> None:
        with self._lock:
            dropped = [self._queue.pop(k) for k, p in list(self._queue.items()) if p.channel is channel]
            flight = self._flight
            if flight is not None and flight.channel is channel and not flight.cancelled:
                flight.cancelled = True
                self._send(("cancel", flight.id))
                timer = threading.Timer(self.cancel_grace_s, self._cancel_overdue, (self._generation, flight.id))
                timer.daemon = True
                timer.start()
        for pending in dropped:
            channel._deliver(Reply(pending.id, pending.request.kind, cancelled=True))

    def _cancel_overdue(self, generation: int, request_id: int) -> None:
        """The engine did not stop within the grace time (a call it cannot interrupt): a new engine."""
        with self._lock:
            flight = self._flight
            if generation != self._generation or flight is None or flight.id != request_id:
                return
            log.info("a cancelled %s request kept running: restarting the engine", flight.request.kind)
            self.restarts += 1
            self._flight = None
            self._stop_process(wait=False)
            self._start()
        flight.channel._deliver(Reply(flight.id, flight.request.kind, cancelled=True))

    def _heartbeat(self) -> None:
        """Pings the engine while a request is in flight; one silent for `stall_s` is killed (and replaced)."""
        while not self._stopping.wait(self.heartbeat_s):
            with self._lock:
                if self._flight is None or self._process is None or self._stalled:
                    continue
                if time.monotonic() - self._last_sign > self.stall_s:
                    log.warning("the engine has not answered for %.0f s: replacing it", self.stall_s)
                    self._stalled = True
                    self._process.kill()        # its reader reports the death
                else:
                    self._send(("ping",))

    def _busy(self, channel: Channel) -> bool:
        flight = self._flight
        return flight is not None and flight.channel is channel and not flight.cancelled

    # --- the reader thread ---

    def _read(self, process, connection, generation: int) -> None:
        while True:
            try:
                message = connection.recv()
            except (EOFError, OSError):
                break
            if generation != self._generation:
                if message[0] == "reply":
                    shared.unlink(message[2])
                continue
            self._last_sign = time.monotonic()
            self._received(message)
        if generation == self._generation and not self._closed:
            process.join(STOP_TIMEOUT_S)
            reason = (f"the engine stopped answering for {self.stall_s:.0f} s and was replaced" if self._stalled
                      else describe_exit(process.exitcode))
            self._died(reason)

    def _received(self, message) -> None:
        kind = message[0]
        if kind == "ready":
            with self._lock:
                self.backend_name, self.pid = message[1], message[2]
                self._ready = True
                self._pump()
        elif kind == "failed":
            self._fail(f"the {self.backend or 'default'} backend of Keras cannot start: {message[1]}")
        elif kind == "progress":
            flight = self._flight
            if flight is not None and flight.id == message[1] and not flight.cancelled:
                flight.channel._progress(message[1], message[2])
        elif kind == "reply":
            if message[2]:
                self._blocks.add(message[2])
            reply = shared.loads(message[1], message[2])
            if reply.internal and reply.details:
                log.error("engine task %s failed:\n%s", reply.kind, reply.details)
            with self._lock:
                flight = self._flight
                if flight is None or flight.id != reply.id:
                    return
                self._flight = None
                self._deaths = 0
                if reply.fatal:          # the engine exits after this one: the next request waits for a new one
                    self._ready = False
                self._pump()
            if flight.cancelled:
                reply = Reply(reply.id, reply.kind, cancelled=True, elapsed_ms=reply.elapsed_ms)
            flight.channel._deliver(reply)

    def _died(self, reason: str) -> None:
        with self._lock:
            self._deaths += 1
            self.restarts += 1
            giving_up = self._deaths >= MAX_RESTARTS
            self._stop_process(wait=False)          # unlinks the dead engine's blocks
            if giving_up:                           # the request in flight is answered with the rest, below
                lost = None
            else:
                lost, self._flight = self._flight, None
                self._start()
            channels = list(self._channels)
        log.warning("%s", reason)
        if giving_up:
            self._fail(f"{reason}, {MAX_RESTARTS} times in a row: the engine is not restarted. Choose Run ▸ "
                       "Restart engine to try again (save your work first if it keeps failing)")
            return
        line = f"{reason}; a new engine is starting — your stack and sequences are unchanged"
        if lost is not None:
            if lost.cancelled:
                lost.channel._deliver(Reply(lost.id, lost.request.kind, cancelled=True))
            else:
                lost.channel._deliver(Reply(lost.id, lost.request.kind, error=line, lost=True))
        for channel in channels:
            channel._deliver(Reply(0, "engine", error=line))

    def _fail(self, message: str) -> None:
        with self._lock:
            self.failure = message
            waiting = list(self._queue.values()) + ([self._flight] if self._flight else [])
            self._queue.clear()
            self._flight = None
            channels = list(self._channels)
        for pending in waiting:
            pending.channel._deliver(Reply(pending.id, pending.request.kind, cancelled=pending.cancelled,
                                           error=None if pending.cancelled else message))
        for channel in channels:
            channel._deliver(Reply(0, "engine", error=message, fatal=True))


class Channel:
    """One window's way to the engine: submit(kind, **payload) → request id; replies go to `on_reply`."""

    def __init__(self, client: EngineClient, on_reply: ReplyCallback, on_progress: ProgressCallback | None):
        self.client = client
        self._on_reply = on_reply
        self._on_progress = on_progress
        self._open = True

    def submit(self, kind: str, **payload) -> int:
        """Queues a request; replaces this channel's pending request of the same kind. Returns its id."""
        return self.client._submit(self, Request(kind, payload))

    def cancel(self) -> None:
        """Answers this channel's pending requests cancelled and stops the one running (see CANCEL_GRACE_S)."""
        self.client._cancel(self)

    @property
    def busy(self) -> bool:
        """A request of this channel runs in the engine (a cancelled one no longer counts)."""
        return self.client._busy(self)

    def close(self) -> None:
        """Stops the channel's work; later replies are dropped. The engine stays for the other windows."""
        self.cancel()
        self._open = False
        with self.client._lock:
            if self in self.client._channels:
                self.client._channels.remove(self)

    def _deliver(self, reply: Reply) -> None:
        if self._open:
            try:
                self._on_reply(reply)
            except Exception:  # noqa: BLE001  (a handler's bug must not stop the reader thread)
                log.exception("a reply handler failed")

    def _progress(self, request_id: int, fraction: float) -> None:
        if self._open and self._on_progress is not None:
            self._on_progress(request_id, fraction)


_shared: EngineClient | None = None
_shared_lock = threading.Lock()


def shared_client(backend: str | None = None) -> EngineClient:
    """The application's engine, started on first use (`backend` only matters then); stopped at exit."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = EngineClient(backend)
            atexit.register(_shared.shutdown)
        return _shared


@contextlib.contextmanager
def _program_hidden():
    """Hides the program's __main__ from spawn while the engine starts: the engine needs nothing from it, and
    spawn would run it again in the engine (a script calling explorer.explore() at top level, without an
    `if __name__ == "__main__":` guard, would start itself again there)."""
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    spec, path = getattr(main, "__spec__", None), main.__dict__.pop("__file__", None)
    main.__spec__ = None
    try:
        yield
    finally:
        main.__spec__ = spec
        if path is not None:
            main.__file__ = path
