"""Run scheduling: the one subscriber that turns session edits into runs and replies into session state.

`RunScheduler(session, make_service)` owns the window's way to the engine (`make_service(on_reply,
on_progress)` gives an object with `submit(kind, **payload) -> id`, `cancel()`, `busy` and `close()`:
explorer/engine's Channel, or its LocalChannel in tests; replies are explorer/engine's `Reply`). Replies arrive on the GUI
thread through the queued `replied` signal, which the modules that send their own tasks (files, exports,
the batching comparison) listen to as well. Bursts of edits coalesce: an edit schedules one run for the
next turn of the event loop, the service keeps only the newest pending run, and replies older than the
latest request are dropped.

A run that fails at a layer is followed, in the same request, by a run of the layers before it (the error
reply's value), so that the views show the shapes up to the failing layer (`Session.partial`). A run whose
estimated memory is over the limit is refused here, before the engine builds anything.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QTimer, Signal

from ..core import memory
from ..core.errors import StackError
from ..core.spec import StackSpec
from ..engine.requests import Reply
from ..session import Session

LOADING = "starting the engine (loading Keras)…"


class RunScheduler(QObject):
    replied = Signal(object)             # every Reply, emitted from the engine's reader, delivered queued
    runStarted = Signal(object)          # the request id of the run just sent
    runProgress = Signal(object, float)  # (request id, 0…1), delivered queued
    runFinished = Signal(object)         # the Reply of the latest run (ok or error), or of a refusal to run
    runCancelled = Signal()

    def __init__(self, session: Session, make_service, parent: QObject | None = None):
        super().__init__(parent)
        self.session = session
        self.last_reply = None
        self.dropped_replies = 0
        self.tf_ready = False
        self.min_run_id = 0
        self.last_run_id = 0
        self.awaiting = False
        self._specs: dict[int, StackSpec] = {}
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(lambda: self.run_now(asked=False))
        self.replied.connect(self._on_reply, Qt.ConnectionType.QueuedConnection)
        self.service = make_service(self.replied.emit, self.runProgress.emit)
        session.events.document.connect(lambda: self.run_now(asked=True))
        session.events.edited.connect(self._edited)
        session.events.run_settings.connect(self._settings_changed)
        session.events.devices.connect(self._devices_changed)
        self._live = session.live
        self._device = session.device

    # --- when to run ---

    def _edited(self, kind: str) -> None:
        if self.session.live or kind == "restore":
            self.schedule()
        else:
            self.session.say("edited: press Run (F5) to see the new shapes")

    def _settings_changed(self) -> None:
        live, device = self.session.live, self.session.device
        if (live and not self._live) or (device != self._device and self.session.devices):
            self.schedule()
        self._live, self._device = live, device

    def _devices_changed(self) -> None:
        self._device = self.session.device

    def schedule(self) -> None:
        self._timer.start()

    @property
    def settled(self) -> bool:
        """No run scheduled and no reply awaited."""
        return not self._timer.isActive() and not self.awaiting

    def submit(self, kind: str, **payload) -> int:
        """Sends a named request to the engine (explorer/engine/tasks.py); its reply comes on `replied`."""
        return self.service.submit(kind, **payload)

    def run_now(self, asked: bool = True) -> None:
        """Sends one run of the document; `asked`: the user asked (Run, a new document), so a custom
        expression they refused is asked about again."""
        self._timer.stop()
        session = self.session
        if session.trust.asking:
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
                self._finish(self._refusal(message, None))
            return
        spec = session.spec()
        text = session.text
        try:
            parsed = session.text_check.parsed
            memory.check(spec, *memory.batch_size(spec, parsed.lengths if parsed is not None else []))
        except StackError as error:        # refused at once: the engine never builds it
            self._refuse(error.message, None)
            return
        if not session.trust.ensure(spec, ask_again=asked):
            self._refuse("not run: this stack has a custom expression (Python code) that you have not agreed to "
                         "run; press Run to be asked again", _first_custom(spec))
            return
        self.last_run_id = self.service.submit("run", spec=spec, text=text, device=session.device, trust=True,
                                               partial=True)
        self._specs = {self.last_run_id: spec}
        self.min_run_id = self.last_run_id
        self.awaiting = True
        session.run_started("running…" if self.tf_ready else LOADING)
        self.runStarted.emit(self.last_run_id)
        if self.tf_ready:
            session.say("running…")

    def cancel(self) -> None:
        """Stops the run in flight: said at once; the engine stops it (or is replaced), its reply is dropped."""
        if not self.awaiting and not self._timer.isActive():
            return
        self._timer.stop()
        self.service.cancel()
        self._drop_in_flight()
        self.session.run_cancelled()
        self.session.say("cancelled")
        self.runCancelled.emit()

    def _drop_in_flight(self) -> None:
        self.min_run_id = self.last_run_id + 1
        self.awaiting = False

    def _refusal(self, message: str, layer: str | None) -> Reply:
        return Reply(0, "run", error=message, error_layer=layer)

    def _refuse(self, message: str, layer: str | None) -> None:
        self._drop_in_flight()
        self.session.run_failed(message, layer)
        self.session.say(message, error=True)
        self._finish(self._refusal(message, layer))

    def _finish(self, reply) -> None:
        self.last_reply = reply
        self.runFinished.emit(reply)

    # --- replies (GUI thread) ---

    def _on_reply(self, reply) -> None:
        if not self.tf_ready:
            self.tf_ready = True
            if self.session.status_text == LOADING or self.session.status_text.startswith("starting the engine"):
                client = getattr(self.service, "client", None)
                self.session.say(f"{client.backend_name if client else 'Keras'} loaded")
        if reply.kind == "engine":            # the engine died (a new one starts) or cannot start: one line
            self.tf_ready = False
            self.session.say(reply.error or "the engine stopped", error=True)
        elif reply.kind == "devices":
            if reply.ok:
                self.session.set_devices(reply.value)
            else:
                self.session.say(reply.error or "the engine could not list its devices", error=True)
        elif reply.kind == "run":
            self._run_arrived(reply)

    def _run_arrived(self, reply) -> None:
        if reply.id < self.min_run_id:
            self.dropped_replies += 1
            return
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
        self.runFinished.emit(reply)

    def start(self) -> None:
        """Asks the engine (loading Keras in its own process meanwhile) for its devices."""
        self.session.say(LOADING)
        self.service.submit("devices")
        if hasattr(self.service, "resume"):     # a LocalChannel made paused
            QTimer.singleShot(0, self.service.resume)

    def restart_engine(self, backend: str) -> None:
        """A new engine on another Keras backend: its devices, then the document again."""
        self.tf_ready = False
        self.service.client.restart(backend)
        self.session.say(f"starting the engine on {backend}…")
        self.service.submit("devices")
        self.run_now(asked=False)

    def shutdown(self) -> None:
        self._timer.stop()
        self.service.close()


def _summary(result) -> str:
    from ..core.diagnose import format_shape
    count = len(result.diagnostics)
    fc = f"FC input {format_shape(tuple(result.fc_input.symbolic_shape))}" if result.fc_input else \
        f"output {format_shape(tuple(result.output_shape))}"
    return (f"ran {len(result.lines)} sequences in {result.mode} mode · {fc}"
            + (f" · {count} warning{'s' if count != 1 else ''}" if count else ""))


def _first_custom(spec: StackSpec) -> str | None:
    names = spec.layer_names()
    return next((name for name, layer in zip(names, spec.layers) if layer.type == "custom"), None)
