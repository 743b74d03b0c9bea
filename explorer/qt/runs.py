"""Run scheduling: the one subscriber that turns session edits into runs and replies into session state.

`RunScheduler(session, make_service)` owns the service that holds TensorFlow (`make_service(on_reply)`
gives an object with `submit(kind, task) -> id`, `cancel()`, `resume()`, `busy`, `shutdown(timeout)` and
replies carrying `id, kind, value, error, error_layer, cancelled, elapsed_ms`). Replies arrive on the GUI
thread through the queued `replied` signal, which the modules that send their own tasks (files, exports,
the batching comparison) listen to as well. Bursts of edits coalesce: an edit schedules one run for the
next turn of the event loop, the service keeps only the newest pending run, and replies older than the
latest request are dropped.

A run that fails at a layer is followed, in the same task, by a run of the layers before it, so that the
views show the shapes up to the failing layer (`Session.partial`).
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QTimer, Signal

from ..core.errors import StackError
from ..core.spec import LayerSpec, StackSpec
from ..session import Session

LOADING = "loading TensorFlow…"


def run_task(spec: StackSpec, text: str, device: str | None, progress, partial: dict):
    """The engine's work for one run; on a StackError at layer k it also runs layers[:k] into `partial`."""

    def task(engine, check):
        try:
            return engine.run(spec, text, device=device, trust=True, check_cancel=check, progress=progress)
        except StackError as error:
            names = spec.layer_names()
            index = names.index(error.layer) if error.layer in names else 0
            if index:
                prefix = spec.copy()
                prefix.layers = [LayerSpec(layer.type, dict(layer.params), name)
                                 for layer, name in zip(prefix.layers[:index], names)]
                try:
                    partial["result"] = engine.run(prefix, text, device=device, trust=True, check_cancel=check)
                except StackError:
                    pass
            raise

    return task


class RunScheduler(QObject):
    replied = Signal(object)             # every Reply, emitted from the worker, delivered queued on the GUI thread
    runStarted = Signal(object)          # a token for the run just sent
    runProgress = Signal(object, float)  # (token, 0…1), delivered queued
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
        self._partial: dict = {}
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(lambda: self.run_now(asked=False))
        self.replied.connect(self._on_reply, Qt.ConnectionType.QueuedConnection)
        self.service = make_service(self.replied.emit)
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

    def submit(self, kind: str, task) -> int:
        return self.service.submit(kind, task)

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
        if not session.trust.ensure(spec, ask_again=asked):
            self._refuse("not run: this stack has a custom expression (Python code) that you have not agreed to "
                         "run; press Run to be asked again", _first_custom(spec))
            return
        token = object()

        def progress(fraction: float) -> None:   # worker thread: the signal is delivered queued
            self.runProgress.emit(token, fraction)

        partial: dict = {"spec": spec}
        self.last_run_id = self.service.submit("run", run_task(spec, text, session.device, progress, partial))
        self._partial = {self.last_run_id: partial}
        self.min_run_id = self.last_run_id
        self.awaiting = True
        session.run_started("running…" if self.tf_ready else LOADING)
        self.runStarted.emit(token)
        if self.tf_ready:
            session.say("running…")

    def cancel(self) -> None:
        """Stops the run in flight: said at once; the worker stops at its next check, its reply is dropped."""
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

    def _refusal(self, message: str, layer: str | None):
        from ..service import Reply
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
            if self.session.status_text == LOADING:
                self.session.say("TensorFlow loaded")
        if reply.kind == "devices":
            if reply.ok:
                self.session.set_devices(reply.value)
            else:
                self.session.say(reply.error or "TensorFlow could not list its devices", error=True)
        elif reply.kind == "run":
            self._run_arrived(reply)

    def _run_arrived(self, reply) -> None:
        if reply.id < self.min_run_id:
            self.dropped_replies += 1
            return
        self.awaiting = False
        partial = self._partial.pop(reply.id, {})
        self.last_reply = reply
        if reply.cancelled:
            return
        session = self.session
        if reply.ok:
            session.run_finished(reply.value, partial.get("spec"))
            session.say(_summary(reply.value))
        else:
            message = reply.error or "the run failed"
            session.run_failed(message, reply.error_layer, partial.get("result"))
            session.say(message, error=True)
        self.runFinished.emit(reply)

    def start(self) -> None:
        """TensorFlow starts loading once the window is up (its import holds the GIL)."""
        self.session.say(LOADING)
        self.service.submit("devices", _list_devices)
        QTimer.singleShot(0, self.service.resume)

    def shutdown(self) -> None:
        self._timer.stop()
        self.service.shutdown(timeout=2.0)


def _summary(result) -> str:
    from ..core.diagnose import format_shape
    count = len(result.diagnostics)
    fc = f"FC input {format_shape(tuple(result.fc_input.symbolic_shape))}" if result.fc_input else \
        f"output {format_shape(tuple(result.output_shape))}"
    return (f"ran {len(result.lines)} sequences in {result.mode} mode · {fc}"
            + (f" · {count} warning{'s' if count != 1 else ''}" if count else ""))


def _list_devices(engine, check_cancel):
    from ..core.backend import list_devices
    return list(list_devices())


def _first_custom(spec: StackSpec) -> str | None:
    names = spec.layer_names()
    return next((name for name, layer in zip(names, spec.layers) if layer.type == "custom"), None)
