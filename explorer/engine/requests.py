"""Named requests to the engine, the task registered for each kind, and the replies.

A request is data (a kind and a picklable payload), never a closure, so that it can cross into the engine
process. Adding a kind is one registration: a module-level function in `explorer/engine/tasks.py`,

    @task("gates")
    def gates(request, engine, job):
        return ...          # picklable; NumPy arrays come back through shared memory

called as task(request, engine, job) with `request.payload`, the engine's `core.run.Engine`, and `job`
(`job.check_cancel()` raises Cancelled once the request is cancelled; `job.progress(fraction)` reports 0…1).
No Keras here: the window imports this module.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger(__name__)

TASKS: dict[str, Callable[[Request, Any, Job], Any]] = {}


def task(kind: str):
    """Registers the decorated function as the task of requests of `kind`."""
    def register(function):
        TASKS[kind] = function
        return function
    return register


@dataclass(frozen=True)
class Request:
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class Reply:
    id: int
    kind: str
    value: Any = None
    error: str | None = None
    error_layer: str | None = None
    cancelled: bool = False
    internal: bool = False       # a bug, not a user error: `details` holds the traceback
    fatal: bool = False          # out of memory: the engine process is replaced after this reply
    details: str | None = None
    elapsed_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and not self.cancelled


@dataclass
class Job:
    """What a running task may call: check_cancel() between pieces of work, progress(0…1)."""
    check_cancel: Callable[[], None] = lambda: None
    progress: Callable[[float], None] = lambda fraction: None


def execute(request_id: int, request: Request, engine, job: Job) -> Reply:
    """Runs one request's task and turns its outcome into a Reply: user errors, cancels and bugs alike."""
    from ..core.backend import is_out_of_memory
    from ..core.errors import ExplorerError, OutOfMemoryError, strip_ansi
    from ..core.run import Cancelled
    from . import tasks  # noqa: F401  (registers the kinds)
    started = time.perf_counter()
    reply = Reply(request_id, request.kind)
    try:
        function = TASKS.get(request.kind)
        if function is None:
            raise KeyError(f"no task for requests of kind {request.kind!r}")
        reply.value = function(request, engine, job)
    except Cancelled:
        reply.cancelled = True
    except ExplorerError as error:
        reply.error, reply.error_layer = error.message, error.layer
        reply.value = getattr(error, "partial", None)     # what could be computed before the error
        reply.fatal = isinstance(error, OutOfMemoryError)
    except Exception as error:  # a bug: the engine lives on, the traceback travels with the reply
        if is_out_of_memory(error):
            reply.error, reply.fatal = "out of memory (more than the engine may use)", True
        else:
            reply.details = traceback.format_exc()
            reply.error = f"internal error ({type(error).__name__}): {strip_ansi(str(error))[:300]}"
            reply.internal = True
    reply.elapsed_ms = (time.perf_counter() - started) * 1000
    return reply
