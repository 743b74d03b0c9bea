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

from dataclasses import dataclass, field
from typing import Any, Callable

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
    fatal: bool = False          # out of memory: the engine process is replaced after this reply; on an "engine"
                                 # notice: the engine is not restarted (the restart limit, a backend that fails)
    lost: bool = False           # the engine died with this request in flight (a new one is starting)
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
