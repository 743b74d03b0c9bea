"""The engine process: Keras (TensorFlow, JAX or PyTorch) lives here, never in the window's process.

`serve` reads ("run", id, request, released blocks), ("cancel", id), ("ping",) and ("stop",) from its end of a
pipe, runs one request at a time in its main thread, and writes ("ready", backend, pid), ("progress", id,
fraction), ("pong",) and ("reply", pickle, shared block) back. A reader thread takes messages while a task runs,
so a cancel reaches the task at once (on TensorFlow it stops the call in flight) and a ping is answered while
the engine works: the client's heartbeat (a stopped engine answers no ping). The process runs under an operating-system memory limit: an
estimate that was wrong ends in a MemoryError or the death of this process, never of the window.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time

PROGRESS_INTERVAL_S = 0.05
PREPARE_AFTER_S = 0.1       # idle this long after a reply before preparing models (a burst of edits goes first)
# Every model TensorFlow builds and traces leaves about 0.5-0.8 MB behind in the process for good (its runtime's,
# not Python's): preparing 16 neighbours per edit would grow the engine 16 times as fast as the edits alone, so
# the engine stops preparing once it holds this much.
PREPARE_MAX_RESIDENT_MB = 1500
EXIT_OUT_OF_MEMORY = 3      # after an allocation failed: the heap may stay too full to go on, so a new engine


def limit_memory(limit_mb: float | None) -> None:
    """Caps this process's data segment (heap and private writable mappings: what TensorFlow's and NumPy's
    allocations count against, unlike the address space that TensorFlow reserves but never touches)."""
    if not limit_mb:
        return
    try:
        import resource
        limit = int(limit_mb * 2**20)
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    except (ImportError, ValueError, OSError, AttributeError):   # not on this system: the estimate alone
        pass


def resident_mb() -> float:
    """This process's resident memory (0 where /proc does not say)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def _next_request(inbox: queue.Queue, engine):
    """The next message of the inbox; while none comes, the engine prepares the neighbours of the stack on screen
    (core/prepare.py), each step given up the moment a message arrives."""
    from ..core.prepare import Preempted, preemptible
    if not engine.preparing or resident_mb() > PREPARE_MAX_RESIDENT_MB:
        return inbox.get()
    try:
        return inbox.get(timeout=PREPARE_AFTER_S)
    except queue.Empty:
        pass
    waiting = inbox.queue          # a deque: its length is read without the queue's lock, by a call in C
    while engine.preparing and not waiting:
        try:
            with preemptible(waiting.__len__):
                engine.prepare_next()
        except Preempted:
            break
    return inbox.get()


def serve(connection, backend: str | None, memory_limit_mb: float | None) -> None:
    if backend:
        os.environ["KERAS_BACKEND"] = backend
    limit_memory(memory_limit_mb)
    from ..core import backend as keras_backend
    from ..core.run import Cancelled, Engine
    from . import shared
    from .requests import Job, Reply
    from .tasks import execute

    sending = threading.Lock()

    def send(message) -> None:
        with sending:
            connection.send(message)

    inbox: queue.Queue = queue.Queue()
    pool = shared.BlockPool()
    released: list[str] = []        # blocks the window no longer maps, for the pool (taken under `guard`)
    cancelled: set[int] = set()
    current = [0]
    stop_current = threading.Event()
    guard = threading.Lock()

    def read() -> None:
        while True:
            try:
                message = connection.recv()
            except (EOFError, OSError):       # the window is gone
                message = ("stop",)
            if message[0] == "run":
                with guard:
                    released.extend(message[3])
                inbox.put(message[1:3])
            elif message[0] == "ping":
                send(("pong",))
            elif message[0] == "cancel":
                with guard:
                    if message[1] == current[0]:
                        stop_current.set()
                    else:
                        cancelled.add(message[1])
            else:
                stop_current.set()
                inbox.put(None)
                return

    threading.Thread(target=read, name="engine-inbox", daemon=True).start()
    try:
        keras_backend.load()
        send(("ready", keras_backend.name(), os.getpid()))
    except Exception as error:  # noqa: BLE001  (a backend that cannot load: said once, then stop)
        send(("failed", f"{type(error).__name__}: {error}"))
        return
    engine = Engine()
    while (item := _next_request(inbox, engine)) is not None:
        request_id, request = item
        with guard:
            current[0] = request_id
            stop_current.clear()
            skip = request_id in cancelled
            cancelled.discard(request_id)
        if skip:
            reply = Reply(request_id, request.kind, cancelled=True)
        else:
            last = [0.0]

            def check_cancel() -> None:
                if stop_current.is_set():
                    raise Cancelled()

            def progress(fraction: float, request_id=request_id) -> None:
                now = time.monotonic()
                if now - last[0] >= PROGRESS_INTERVAL_S or fraction >= 1.0:
                    last[0] = now
                    send(("progress", request_id, float(fraction)))

            reply = execute(request_id, request, engine, Job(check_cancel, progress))
        with guard:
            current[0] = 0
        with guard:
            pool.release(released)
            released.clear()
        try:
            data, block = shared.dumps(reply, pool)
        except shared.ResultTooBig as error:
            data, block = shared.dumps(Reply(request_id, request.kind, error=str(error)))
        except Exception as error:  # noqa: BLE001  (a value that cannot be pickled is a bug of its task)
            data, block = shared.dumps(Reply(request_id, request.kind, internal=True,
                                             error=f"internal error (the reply cannot be sent: {error})"))
        send(("reply", data, block))
        if reply.fatal:
            connection.close()
            os._exit(EXIT_OUT_OF_MEMORY)     # its blocks: the client unlinks the ones it has seen
        del reply
    pool.close()
    sys.exit(0)
