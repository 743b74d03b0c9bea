"""The request layer: typed requests to the engine, each answered exactly once, for any host loop.

`Requests(make_service, call_soon)` sits on the engine client (a `Channel` of explorer/engine/client.py, or
its in-process LocalChannel in tests). The host supplies `call_soon(function)`, which must run `function`
soon on the host's thread and may be called from any thread: the window passes a queued Qt signal, a script
a plain loop's queue, asyncio `loop.call_soon_threadsafe`. Every callback of this module runs through it, on
the host's thread, never inside the caller's `submit`.

    ticket = requests.submit(RUN, on_reply, spec=spec, text=text)   # payload checked against RunPayload
    ticket.id, ticket.done, ticket.reply                             # or: requests.submit(...).future

Each request gets exactly one answer (a `Reply`: a result, an error, or cancelled):
- requests go to the engine one at a time, oldest first; a newer request of a kind that coalesces (a run)
  replaces the pending one, which is answered cancelled;
- `cancel()` answers cancelled every pending request of a kind that Esc stops (runs) and stops the one in
  flight of such a kind; training chunks, exports, gates, comparisons and files are never dropped;
- a request lost with a dead engine is sent again to the new engine once, and the engine notice says so;
  lost twice, it is answered with the error;
- after the client's restart limit every request is answered with the reason, until `restart_engine()`.

`Runs(session, requests, call_soon)` turns the session's edits into runs and their replies into session
state: one run per burst of edits (the next turn of the loop), stale replies dropped, refusals (memory, trust,
a bad document) answered without the engine.

Adding a request kind: a task in explorer/engine/tasks.py (`@task("name")`) and one declaration here, a
payload dataclass and a `Kind` (tests/engine/test_requests.py checks that the two lists agree).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import itertools
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, TypeVar

from .core import memory
from .core.errors import StackError
from .core.spec import StackSpec
from .engine.requests import Reply, Request
from .session import CHECKING, Event, Session

ReplyCallback = Callable[[Reply], None]
CallSoon = Callable[[Callable[[], None]], None]
P = TypeVar("P")

LOADING = "starting the engine (loading Keras)…"


@dataclass(frozen=True)
class Kind(Generic[P]):
    """One kind of request: its engine task's name, its payload (a dataclass: the keyword arguments of
    `submit`) and what a successful reply's `value` holds. `coalesce`: a newer pending request replaces an
    older one; `escapable`: cancel() (Esc) stops it."""
    name: str
    payload: type[P]
    reply: str
    coalesce: bool = False
    escapable: bool = False

    def request(self, **payload: Any) -> Request:
        made = self.payload(**payload)          # unknown or missing fields: TypeError at the caller
        return Request(self.name, {f.name: getattr(made, f.name) for f in dataclasses.fields(made)})


@dataclass(frozen=True)
class NoPayload:
    pass


@dataclass(frozen=True)
class StackPayload:
    spec: StackSpec
    text: str | None = None
    device: str | None = None
    trust: bool = False


@dataclass(frozen=True)
class RunPayload(StackPayload):
    partial: bool = False


@dataclass(frozen=True)
class CellPayload:
    spec: StackSpec
    text: str | None
    rows: list[int]
    target: Any = None
    device: str | None = None
    source: str | None = None   # several inputs: the input whose steps the gradients are over


@dataclass(frozen=True)
class TrainPayload(StackPayload):
    settings: Any = None
    steps: int = 1
    seconds: float = 1.0


@dataclass(frozen=True)
class CodePayload:
    spec: StackSpec


@dataclass(frozen=True)
class OpenKerasPayload:
    path: str
    trust: bool = False
    custom_objects: str | None = None     # the user's file of layer classes, run in the engine first


@dataclass(frozen=True)
class ExportKerasPayload:
    spec: StackSpec
    path: str


@dataclass(frozen=True)
class WeightsPayload:
    spec: StackSpec | None = None


DEVICES = Kind("devices", NoPayload, "list[core.backend.Device]")
RUN = Kind("run", RunPayload, "core.run.RunResult (an error's value: the run of the layers before the failing one)",
           coalesce=True, escapable=True)
LEAKS = Kind("leaks", StackPayload, "core.leaks.LeakReport", coalesce=True)
DOCTOR = Kind("doctor", StackPayload, "core.doctor.DoctorReport", coalesce=True)
COMPARE = Kind("compare", StackPayload, "core.leaks.ModeComparison", coalesce=True)
CELL = Kind("cell", CellPayload, "core.cell.Inside (gates and gradients of some rows)", coalesce=True)
TRAIN = Kind("train", TrainPayload, "core.train.TrainChunk")
CODE = Kind("code", CodePayload, "str (a Keras script)")
OPEN_KERAS = Kind("open-keras", OpenKerasPayload, '("ok", (spec, weights, notes)) or ("trust", message)')
EXPORT_KERAS = Kind("export-keras", ExportKerasPayload, "str (the path written)")
EXPORT_WEIGHTS = Kind("export-weights", WeightsPayload, "dict of weight arrays")
KINDS = {kind.name: kind for kind in (DEVICES, RUN, LEAKS, DOCTOR, COMPARE, CELL, TRAIN, CODE, OPEN_KERAS, EXPORT_KERAS,
                                      EXPORT_WEIGHTS)}


@dataclass(eq=False)
class Ticket:
    """One request: `id` (increasing), `kind`, and once answered `reply` (its id is the ticket's)."""
    id: int
    kind: Kind
    request: Request
    on_reply: ReplyCallback | None
    reply: Reply | None = None
    engine_id: int = 0          # the id the engine knows it by (a new one when sent again)
    resent: bool = False
    cancelling: bool = False
    _future: concurrent.futures.Future | None = field(default=None, repr=False)

    @property
    def done(self) -> bool:
        return self.reply is not None

    @property
    def future(self) -> concurrent.futures.Future:
        """A future of the reply (for hosts that wait: `ticket.future.result(timeout)`)."""
        if self._future is None:
            self._future = concurrent.futures.Future()
            if self.reply is not None:
                self._future.set_result(self.reply)
        return self._future


class Requests:
    """The way of one host (a window, a script) to the engine. `make_service(on_reply, on_progress)` gives the
    channel; `call_soon` runs a function on the host's thread. Events (on the host's thread): `engine(text,
    failed)`: the engine died and a new one starts (failed False), or it is not restarted (failed True);
    `progress(ticket id, fraction)`; `internal(reply)`: a bug caught in the engine."""

    def __init__(self, make_service: Callable[..., Any], call_soon: CallSoon):
        self.call_soon = call_soon
        self.engine = Event("engine")
        self.progress = Event("progress")
        self.internal = Event("internal")
        self._ids = itertools.count(1)
        self._queue: list[Ticket] = []
        self._flight: Ticket | None = None
        self._resent_kind: str | None = None
        self._closed = False
        self.service = make_service(lambda reply: call_soon(lambda: self._arrived(reply)),
                                    lambda engine_id, fraction: call_soon(lambda: self._progressed(engine_id,
                                                                                                   fraction)))

    @property
    def client(self):
        """The engine client (None for an in-process service)."""
        return getattr(self.service, "client", None)

    @property
    def busy(self) -> bool:
        """A request is in flight (a cancelled one no longer counts)."""
        return self._flight is not None and not self._flight.cancelling

    @property
    def pending(self) -> int:
        """Requests not answered yet."""
        return len(self._queue) + (self._flight is not None)

    def submit(self, kind: Kind, on_reply: ReplyCallback | None = None, **payload: Any) -> Ticket:
        """Queues a request of `kind`; `on_reply(reply)` is called once with its answer (on the host's thread)."""
        ticket = Ticket(next(self._ids), kind, kind.request(**payload), on_reply)
        if self._closed:
            self._answer(ticket, cancelled=True)
            return ticket
        if kind.coalesce:
            for older in [t for t in self._queue if t.kind is kind]:
                self._queue.remove(older)
                self._answer(older, cancelled=True)
        self._queue.append(ticket)
        self._pump()
        return ticket

    def cancel(self) -> None:
        """Cancels the pending requests of kinds that Esc stops and the one in flight; each is answered
        cancelled (the one in flight when the engine has stopped it)."""
        for ticket in [t for t in self._queue if t.kind.escapable]:
            self._queue.remove(ticket)
            self._answer(ticket, cancelled=True)
        flight = self._flight
        if flight is not None and flight.kind.escapable and not flight.cancelling:
            flight.cancelling = True
            self.service.cancel()

    def restart_engine(self, backend: str | None = None) -> None:
        """A new engine process (on `backend`, default: the current one), also after the restart limit."""
        client = self.client
        if client is not None:
            client.restart(backend if backend is not None else client.backend)

    def close(self) -> None:
        """Answers every open request cancelled (at once) and closes the channel; later submits are cancelled."""
        self._closed = True
        open_tickets = self._queue + ([self._flight] if self._flight else [])
        self._queue, self._flight = [], None
        self.service.close()
        for ticket in open_tickets:
            self._deliver(ticket, Reply(ticket.id, ticket.kind.name, cancelled=True))

    # --- inside (host thread) ---

    def _pump(self) -> None:
        if self._flight is not None or not self._queue or self._closed:
            return
        ticket = self._flight = self._queue.pop(0)
        ticket.engine_id = self.service.submit(ticket.request.kind, **ticket.request.payload)

    def _answer(self, ticket: Ticket, **outcome: Any) -> None:
        reply = Reply(ticket.id, ticket.kind.name, **outcome)
        self.call_soon(lambda: self._deliver(ticket, reply))

    def _deliver(self, ticket: Ticket, reply: Reply) -> None:
        if ticket.reply is not None:
            return
        ticket.reply = reply
        if ticket._future is not None:
            ticket._future.set_result(reply)
        if ticket.on_reply is not None:
            ticket.on_reply(reply)

    def _arrived(self, reply: Reply) -> None:
        if self._closed:
            return
        if reply.kind == "engine":
            text = reply.error or "the engine stopped"
            if self._resent_kind is not None:
                text += f" — the {self._resent_kind} in flight is sent to it again"
                self._resent_kind = None
            self.engine.emit(text, reply.fatal)
            return
        ticket = self._flight
        if ticket is None or ticket.engine_id != reply.id:
            return                              # an answer to a request answered already (a restart)
        self._flight = None
        if reply.lost and not ticket.resent and not ticket.cancelling:
            ticket.resent = True
            self._resent_kind = ticket.kind.name
            self._queue.insert(0, ticket)
        else:
            if reply.internal:
                self.internal.emit(reply)
            self._deliver(ticket, dataclasses.replace(reply, id=ticket.id))
        self._pump()

    def _progressed(self, engine_id: int, fraction: float) -> None:
        flight = self._flight
        if flight is not None and flight.engine_id == engine_id and not flight.cancelling:
            self.progress.emit(flight.id, fraction)


class Runs:
    """Runs of the session's document: `schedule()` (an edit: one run on the next turn of the loop),
    `run_now(asked)`, `cancel()`. Events: `started(ticket id)`, `finished(reply)` (the latest run's reply, or a
    refusal to run), `cancelled()`."""

    def __init__(self, session: Session, requests: Requests):
        self.session = session
        self.requests = requests
        self.last_reply: Reply | None = None
        self.dropped_replies = 0
        self.engine_ready = False
        self.min_run_id = 0
        self.last_run_id = 0
        self.awaiting = False
        self.scheduled = False
        self.after_check: bool | None = None     # a run waits for the text's check (its `asked`)
        self.started = Event("started")
        self.finished = Event("finished")
        self.cancelled = Event("cancelled")
        self._specs: dict[int, StackSpec] = {}
        session.events.document.connect(lambda: self.run_now(asked=True))
        session.events.edited.connect(self._edited)
        session.events.checked.connect(self._checked)
        session.events.run_settings.connect(self._settings_changed)
        session.events.devices.connect(self._devices_changed)
        requests.engine.connect(self._engine_notice)
        self._live = session.live
        self._device = session.device

    # --- when to run ---

    def _edited(self, kind: str) -> None:
        if self.session.live or kind == "restore":
            self.schedule()
        else:
            self.session.say("edited: press Run (F5) to see the new shapes")

    def _checked(self) -> None:
        if self.after_check is not None:
            asked, self.after_check = self.after_check, None
            self.run_now(asked)

    def _settings_changed(self) -> None:
        live, device = self.session.live, self.session.device
        if (live and not self._live) or (device != self._device and self.session.devices):
            self.schedule()
        self._live, self._device = live, device

    def _devices_changed(self) -> None:
        self._device = self.session.device

    def schedule(self) -> None:
        """One run on the next turn of the host's loop, however many edits come before it."""
        if not self.scheduled:
            self.scheduled = True
            self.requests.call_soon(self._scheduled_run)

    def _scheduled_run(self) -> None:
        if self.scheduled:
            self.run_now(asked=False)

    @property
    def settled(self) -> bool:
        """No run scheduled or waiting for the text's check, and no reply awaited."""
        return not self.scheduled and not self.awaiting and self.after_check is None

    def run_now(self, asked: bool = True) -> None:
        """Sends one run of the document; `asked`: the user asked (Run, a new document), so a custom
        expression they refused is asked about again."""
        self.scheduled = False
        session = self.session
        if session.trust.asking:
            return
        if session.checking:               # a large text: the run follows its check
            self.after_check = asked or bool(self.after_check)
            session.say(CHECKING)
            return
        problem = session.problem()
        if problem is not None:
            message, layer = problem
            if session.spec_error is not None:
                self._refuse(message, layer)
            else:
                self._drop_in_flight()
                session.run_idle(message)
                session.say(message, error=True)
                self._finish(Reply(0, RUN.name, error=message))
            return
        spec = session.spec()
        try:
            parsed = session.text_check.parsed
            others = {name: check.parsed.lengths for name, check in session.input_checks.items()
                      if check.parsed is not None}    # several inputs: every input's batch counts
            memory.check(spec, *memory.batch_size(spec, parsed.lengths if parsed is not None else []),
                         more_steps=memory.more_steps(spec, others))
        except StackError as error:        # refused at once: the engine never builds it
            self._refuse(error.message, None)
            return
        if not session.trust.ensure(spec, ask_again=asked):
            self._refuse("not run: this stack has a custom expression (Python code) that you have not agreed to "
                         "run; press Run to be asked again", _first_custom(spec))
            return
        ticket = self.requests.submit(RUN, self._run_arrived, spec=spec, text=session.text, device=session.device,
                                      trust=True, partial=True)
        self.last_run_id = ticket.id
        self._specs = {ticket.id: spec}
        self.min_run_id = ticket.id
        self.awaiting = True
        session.run_started("running…" if self.engine_ready else LOADING)
        self.started.emit(ticket.id)
        if self.engine_ready:
            session.say("running…")

    def cancel(self) -> None:
        """Stops the runs: said at once; the engine stops the one in flight (or is replaced)."""
        if self.settled:
            return
        self.scheduled = False
        self.after_check = None
        self.requests.cancel()
        self._drop_in_flight()
        self.session.run_cancelled()
        self.session.say("cancelled")
        self.cancelled.emit()

    def _drop_in_flight(self) -> None:
        self.min_run_id = self.last_run_id + 1
        self.awaiting = False

    def _refuse(self, message: str, layer: str | None) -> None:
        self._drop_in_flight()
        self.session.run_failed(message, layer)
        self.session.say(message, error=True)
        self._finish(Reply(0, RUN.name, error=message, error_layer=layer))

    def _finish(self, reply: Reply) -> None:
        self.last_reply = reply
        self.finished.emit(reply)

    # --- replies ---

    def _loaded(self) -> None:
        if not self.engine_ready:
            self.engine_ready = True
            if self.session.status_text.startswith("starting the engine"):
                client = self.requests.client
                self.session.say(f"{client.backend_name if client else 'Keras'} loaded")

    def _engine_notice(self, text: str, failed: bool) -> None:
        self.engine_ready = False
        self.session.say(text, error=True)

    def _devices_arrived(self, reply: Reply) -> None:
        self._loaded()
        if reply.ok:
            self.session.set_devices(reply.value)
        elif not reply.cancelled:
            self.session.say(reply.error or "the engine could not list its devices", error=True)

    def _run_arrived(self, reply: Reply) -> None:
        if reply.id < self.min_run_id:
            if not reply.cancelled:
                self.dropped_replies += 1
            return
        self._loaded()
        self.awaiting = False
        spec = self._specs.pop(reply.id, None)
        self.last_reply = reply
        if reply.cancelled:
            return
        session = self.session
        if reply.ok:
            session.run_finished(reply.value, spec)
            session.say(_summary(reply.value))
        else:
            message = reply.error or "the run failed"
            session.run_failed(message, reply.error_layer, reply.value)
            session.say(message, error=True)
        self.finished.emit(reply)

    def start(self) -> None:
        """Asks the engine (loading Keras in its own process meanwhile) for its devices."""
        self.session.say(LOADING)
        self.requests.submit(DEVICES, self._devices_arrived)
        resume = getattr(self.requests.service, "resume", None)
        if resume is not None:                  # a LocalChannel made paused
            self.requests.call_soon(resume)

    def restart_engine(self, backend: str | None = None) -> None:
        """A new engine (on another Keras backend, or the same after the restart limit): its devices, then
        the document again."""
        self.engine_ready = False
        self.requests.restart_engine(backend)
        client = self.requests.client
        self.session.say(f"starting the engine on {backend or (client.backend if client else None) or 'Keras'}…")
        self.requests.submit(DEVICES, self._devices_arrived)
        self.run_now(asked=False)

    def shutdown(self) -> None:
        self.scheduled = False
        self.requests.close()


def _summary(result) -> str:
    from .core.diagnose import format_shape
    count = len(result.diagnostics)
    fc = f"FC input {', '.join(format_shape(tuple(head.symbolic_shape)) for head in result.fc_inputs)}" \
        if result.fc_inputs else f"output {format_shape(tuple(result.output_shape))}"
    return (f"ran {len(result.lines)} sequences in {result.mode} mode · {fc}"
            + (f" · {count} warning{'s' if count != 1 else ''}" if count else ""))


def _first_custom(spec: StackSpec) -> str | None:
    names = spec.layer_names()
    return next((name for name, layer in zip(names, spec.layers) if layer.type == "custom"), None)


def engine_service(on_reply: ReplyCallback, on_progress) -> Any:
    """A channel to the application's engine process (started on first use, shared by its windows)."""
    from .engine.client import shared_client
    return shared_client().channel(on_reply, on_progress)


def start_engine(backend: str | None = None) -> None:
    """Starts the application's engine now (it loads Keras meanwhile), on `backend`."""
    from .engine.client import shared_client
    shared_client(backend)
