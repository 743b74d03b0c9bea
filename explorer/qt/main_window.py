"""The main window: stack editor | plots | shapes, the sequences below, live runs through RunService.

TensorFlow never runs (nor is imported) on the GUI thread: every run goes to the service's worker,
whose reply comes back through the queued `replied` signal; replies older than the latest request
are dropped.
"""

from __future__ import annotations

import re
from typing import Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QKeySequence
from PySide6.QtWidgets import (QCheckBox, QComboBox, QLabel, QMainWindow, QMessageBox, QSplitter, QTabWidget,
                               QToolBar, QVBoxLayout, QWidget)

from ..core import presets
from ..core.errors import SpecError
from ..core.spec import StackSpec, from_dict, to_dict
from ..service import Reply, RunService
from .cell_plots import CellPanel
from .plots import PlotsPanel
from .sequence_editor import SequenceEditor
from .shapes_panel import ShapesPanel
from .stack_editor import StackEditor
from .style import ERROR_COLOUR, escape
from .undo import DocumentHistory

LOADING = "loading TensorFlow…"
_LAYER_PATH = re.compile(r"^layers\[(\d+)\]")


def sample_text(spec: StackSpec) -> str:
    """Sequences to start with when a stack comes without its own."""
    if spec.input.kind == "words":
        return ("# one sentence per line: the vocabulary is built from these words\n"
                "the cat sat on the mat\nthe dog barked\na cat and a dog sat down\n")
    if spec.input.kind == "tokens":
        top = max(2, (spec.input.vocab_size or 2) - 1)
        rows = [[1 + (i * 7 + j * 3) % top for j in range(n)] for i, n in enumerate((7, 3, 5))]
        body = "\n".join(" ".join(map(str, row)) for row in rows)
        return f"# one sequence per line: token ids (0 is padding)\n{body}\n"
    features = spec.input.features or 1
    rows = []
    for i, steps in enumerate((5, 3, 4)):
        rows.append("; ".join(" ".join(f"{((i + 1) * (t + 1) * (f + 2)) % 10 / 10:.1f}" for f in range(features))
                              for t in range(steps)))
    return "# one sequence per line: timesteps separated by ;\n" + "\n".join(rows) + "\n"


def _custom_expressions(spec: StackSpec) -> set[str]:
    return {layer.params["expression"] for layer in spec.layers if layer.type == "custom"}


class MainWindow(QMainWindow):
    """The explorer. `spec`: the stack to show; `trusted`: its custom expressions may run without asking
    (presets); `confirm_trust(expressions) -> bool` asks the user (default: a QMessageBox)."""

    replied = Signal(object)        # Reply, emitted from the worker thread, delivered queued on the GUI thread
    runFinished = Signal(object)    # the Reply of the latest run request (ok or error), or of a refusal to run
    devicesLoaded = Signal(list)    # the devices TensorFlow sees
    documentLoaded = Signal()       # another document is shown (file, preset, New): nothing edited yet
    documentEdited = Signal()       # the document changed (an edit, undo, redo): title, autosave
    runStarted = Signal(object)     # a token for the run just sent to the worker
    runProgress = Signal(object, float)  # (token, 0…1) from the worker, delivered queued
    runCancelled = Signal()

    def __init__(self, spec: StackSpec, *, trusted: bool = False, source: str | None = None,
                 confirm_trust: Callable[[list[str]], bool] | None = None, settings=None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.document = spec.copy()
        if self.document.sequences is None:
            self.document.sequences = sample_text(self.document)
        self.source = source
        self.result = None              # the RunResult on screen
        self.last_reply: Reply | None = None
        self.dropped_replies = 0        # stale replies dropped (older than the latest request)
        self.devices: list = []
        self.confirm_trust = confirm_trust or self._ask_trust
        self._trusted_expressions: set[str] = _custom_expressions(spec) if trusted else set()
        self._file_expressions: set[str] = set() if trusted else _custom_expressions(spec)
        self._typed_trusted = False
        self._declined: set[str] = set()  # expressions the user refused: live edits do not ask about them again
        self._asking = False
        self._tf_ready = False
        self._min_run_id = 0            # replies of kind "run" with a lower id are stale
        self._last_run_id = 0
        self._awaiting = False
        self._leak_id = 0
        self._selected_layer: str | None = None
        self._selected_line: int | None = None
        self.history = DocumentHistory(self, self._restore)   # undo/redo: a QUndoStack of document snapshots

        self.setWindowTitle("RNN Shape Explorer")
        self._build_views()
        self._build_toolbar()
        self._build_status()
        from .menus import install_menus
        self.menus = install_menus(self)    # Edit, Run, Export, Help; shortcuts; theme and icon
        self._schedule = QTimer(self)
        self._schedule.setSingleShot(True)
        self._schedule.setInterval(0)
        self._schedule.timeout.connect(lambda: self.run_now(asked=False))

        self.replied.connect(self._on_reply, Qt.ConnectionType.QueuedConnection)
        # TensorFlow starts loading in the worker only once the window is up (its import holds the GIL)
        self.service = RunService(self.replied.emit, paused=True)
        QTimer.singleShot(0, self.service.resume)
        self.set_status(LOADING)
        self.plots.show_message(LOADING)
        self.service.submit("devices", _list_devices)
        self.cell_panel.attach(self)
        self._attach_session(settings)
        self._document_loaded()

    def _attach_session(self, settings) -> None:
        """Files, autosave, cancel/progress and remembered settings (`settings`: a QSettings, or None to
        remember nothing on disk)."""
        from .files import FileController
        from .recovery import Autosaver
        from .runcontrol import RunControl
        from .settings import MemorySettings, Preferences
        self.settings = settings if settings is not None else MemorySettings()
        self.files = FileController(self, self.settings)
        self.autosaver = Autosaver(self, self.files)
        self.run_control = RunControl(self)
        self.preferences = Preferences(self, self.settings)
        self.preferences.restore()
        from .training_panel import install_training
        install_training(self)                  # the Training dock: train live, pin and compare

    # --- building ---

    def _build_views(self) -> None:
        self.stack_editor = StackEditor(self.document)
        self.shapes = ShapesPanel()
        self.shapes.setMinimumWidth(300)
        self.plots = PlotsPanel()
        self.sequence_editor = SequenceEditor(self.document.sequences or "", self.document.batching,
                                              self.document.input)
        self.lesson_label = QLabel("")
        self.lesson_label.setWordWrap(True)
        self.lesson_label.setTextFormat(Qt.TextFormat.RichText)
        self.lesson_label.setStyleSheet("QLabel { background:#fff8e1; border:1px solid #f0d890; border-radius:4px; "
                                        "padding:4px 8px; }")
        middle = QWidget()
        middle_layout = QVBoxLayout(middle)
        middle_layout.setContentsMargins(0, 4, 0, 0)
        middle_layout.setSpacing(4)
        middle_layout.addWidget(self.lesson_label)
        self.cell_panel = CellPanel()
        self.plot_tabs = QTabWidget()
        self.plot_tabs.setDocumentMode(True)
        self.plot_tabs.addTab(self.plots, "Outputs")
        self.plot_tabs.addTab(self.cell_panel, "Inside the cell")
        middle_layout.addWidget(self.plot_tabs, 1)

        self.top_splitter = QSplitter(Qt.Orientation.Horizontal)
        self.top_splitter.addWidget(self.stack_editor)
        self.top_splitter.addWidget(middle)
        self.top_splitter.addWidget(self.shapes)
        self.top_splitter.setStretchFactor(0, 0)
        self.top_splitter.setStretchFactor(1, 1)
        self.top_splitter.setStretchFactor(2, 0)
        self.top_splitter.setSizes([400, 720, 460])
        self.main_splitter = QSplitter(Qt.Orientation.Vertical)
        self.main_splitter.addWidget(self.top_splitter)
        self.main_splitter.addWidget(self.sequence_editor)
        self.main_splitter.setStretchFactor(0, 1)
        self.main_splitter.setStretchFactor(1, 0)
        self.main_splitter.setSizes([700, 240])
        self.main_splitter.setChildrenCollapsible(False)
        self.setCentralWidget(self.main_splitter)

        self.stack_editor.changed.connect(self._stack_edited)
        self.stack_editor.layerSelected.connect(self.select_layer)
        self.shapes.layerSelected.connect(self.select_layer)
        self.shapes.leakCheckRequested.connect(self.leak_check)
        self.sequence_editor.textEdited.connect(self._text_edited)
        self.sequence_editor.batchingChanged.connect(self._batching_edited)
        self.sequence_editor.lineSelected.connect(self._line_selected)
        self.plots.rowPicked.connect(self._row_picked)
        self.plots.layerPicked.connect(self.select_layer)

    def _build_toolbar(self) -> None:
        bar = QToolBar("Main")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.addToolBar(bar)
        bar.addWidget(QLabel(" Preset "))
        self.preset_combo = QComboBox()
        self.preset_combo.setToolTip("Built-in stacks, each with a lesson")
        self.preset_combo.addItem("(your stack)", None)
        for name in presets.names():
            title = presets.load_preset(name).title or name
            self.preset_combo.addItem(title, name)
        self.preset_combo.activated.connect(self._preset_picked)
        bar.addWidget(self.preset_combo)
        bar.addSeparator()
        self.open_action = bar.addAction("Open…", self.open_file)
        self.open_action.setShortcut(QKeySequence.StandardKey.Open)
        self.save_action = bar.addAction("Save…", self.save_file)
        self.save_action.setShortcut(QKeySequence.StandardKey.Save)
        bar.addSeparator()
        self.undo_action = self.history.undo_action     # QUndoStack's own actions, also in the Edit menu
        self.redo_action = self.history.redo_action
        bar.addAction(self.undo_action)
        bar.addAction(self.redo_action)
        bar.addSeparator()
        bar.addWidget(QLabel(" Device "))
        self.device_combo = QComboBox()
        self.device_combo.addItem("loading…", None)
        self.device_combo.setEnabled(False)
        self.device_combo.setMinimumContentsLength(14)
        self.device_combo.setToolTip("Where TensorFlow runs the stack")
        self.device_combo.currentIndexChanged.connect(self._device_picked)
        bar.addWidget(self.device_combo)
        bar.addSeparator()
        self.live_check = QCheckBox("Live")
        self.live_check.setChecked(True)
        self.live_check.setToolTip("Re-run after every edit")
        self.live_check.toggled.connect(self._live_toggled)
        bar.addWidget(self.live_check)
        self.run_action = bar.addAction("▶ Run", lambda: self.run_now(asked=True))
        self.run_action.setShortcuts([QKeySequence("F5"), QKeySequence("Ctrl+R")])
        self.run_action.setToolTip("Run the stack on the sequences (F5)")
        bar.addSeparator()
        self.code_action = bar.addAction("Copy as code", self.copy_code)
        self.code_action.setToolTip("Copy a Keras script that builds this stack")

    def _build_status(self) -> None:
        status = self.statusBar()
        self.status_message = QLabel("")
        self.status_message.setTextFormat(Qt.TextFormat.RichText)
        self.device_label = QLabel("")
        self.timing_label = QLabel("")
        status.addWidget(self.status_message, 1)
        status.addPermanentWidget(self.device_label)
        status.addPermanentWidget(self.timing_label)

    def set_status(self, text: str, error: bool = False) -> None:
        colour = ERROR_COLOUR if error else "palette(text)"
        self.status_message.setText(f'<span style="color:{colour}">{"✖ " if error else ""}{escape(text)}</span>')
        self.status_message.setToolTip(text)
        self.status_text = text          # the plain words, for callers and tests

    # --- the document ---

    def set_document(self, spec: StackSpec, *, trusted: bool, source: str | None) -> None:
        """Shows another stack (a preset or a file): editors rebuilt, history restarted, run at once."""
        self.document = spec.copy()
        if self.document.sequences is None:
            self.document.sequences = sample_text(self.document)
        self.source = source
        if trusted:
            self._trusted_expressions |= _custom_expressions(spec)
        else:
            self._file_expressions = _custom_expressions(spec)
        self._declined = set()
        self.stack_editor.set_spec(self.document)
        self.sequence_editor.set_state(self.document.sequences or "", self.document.batching, self.document.input)
        self._document_loaded()

    def _document_loaded(self) -> None:
        spec = self.document
        if spec.title or spec.lesson:
            self.lesson_label.setText(f"<b>{escape(spec.title or '')}</b>"
                                      + (f" — {escape(spec.lesson)}" if spec.lesson else ""))
            self.lesson_label.show()
        else:
            self.lesson_label.hide()
        preset = self.source[len(presets.PREFIX):] if self.source and presets.is_preset(self.source) else None
        self.preset_combo.setCurrentIndex(max(0, self.preset_combo.findData(preset)) if preset else 0)
        self.history.reset(to_dict(spec))
        names = spec.layer_names()
        recurrent = [n for n, layer in zip(names, spec.layers) if layer.is_recurrent]
        self.select_layer(recurrent[0] if recurrent else (names[0] if names else None))
        self.result = None
        self.run_now()
        self.documentLoaded.emit()

    def _stack_edited(self, spec: StackSpec) -> None:
        input_changed = spec.input != self.document.input
        self.document.input, self.document.layers, self.document.seed = spec.input, spec.layers, spec.seed
        if input_changed:
            self.sequence_editor.set_input(spec.input)
        self._edited("stack")

    def _text_edited(self, text: str) -> None:
        self.document.sequences = text
        self._edited("text")

    def _batching_edited(self, batching) -> None:
        self.document.batching = batching
        self._edited("batching")

    def _edited(self, kind: str) -> None:
        self.history.record(kind, to_dict(self.document))
        if self.live_check.isChecked():
            self._schedule.start()
        else:
            self.set_status("edited: press Run (F5) to see the new shapes")
        self.documentEdited.emit()

    # --- undo / redo (explorer/qt/undo.py): whole documents, a burst of typing is one step ---

    def undo(self) -> None:
        self.history.undo()

    def redo(self) -> None:
        self.history.redo()

    def _restore(self, snapshot: dict) -> None:
        weights, weights_id = self.document.weights, self.document.weights_id   # never part of a stack file
        self.document = from_dict(snapshot)
        self.document.weights, self.document.weights_id = weights, weights_id
        self.stack_editor.set_spec(self.document)
        self.sequence_editor.set_state(self.document.sequences or "", self.document.batching, self.document.input)
        self._schedule.start()
        self.documentEdited.emit()

    # --- running ---

    def _live_toggled(self, live: bool) -> None:
        if live:
            self._schedule.start()

    def _device_picked(self, _index: int) -> None:
        if self.devices:
            self._schedule.start()

    @property
    def device(self) -> str | None:
        return self.device_combo.currentData()

    @property
    def settled(self) -> bool:
        """No run scheduled and no reply awaited: what is on screen belongs to the current document."""
        return not self._schedule.isActive() and not self._awaiting

    def run_now(self, asked: bool = True) -> None:
        """Validates the document on this thread, then sends one run to the worker. `asked`: the user asked for
        this run (the Run button, a new document), so a custom expression they refused is asked about again."""
        self._schedule.stop()
        if self._asking:
            return
        spec = self.document.copy()
        text = self.sequence_editor.text()
        spec.sequences = text
        try:
            from_dict(to_dict(spec))
        except SpecError as error:
            match = _LAYER_PATH.match(error.path)
            names = spec.layer_names()
            layer = names[int(match.group(1))] if match and int(match.group(1)) < len(names) else None
            self._refuse(error.message, layer)
            return
        if self.sequence_editor.error is not None:
            self._refuse(self.sequence_editor.error.message, None, keep_views=True)
            return
        if not self.ensure_trusted(spec, ask_again=asked):
            self._refuse("not run: this stack has a custom expression (Python code) that you have not agreed to "
                         "run; press Run to be asked again", _first_custom(spec))
            return
        device = self.device
        token = object()

        def progress(fraction: float) -> None:   # worker thread: the signal is delivered queued
            self.runProgress.emit(token, fraction)

        self._last_run_id = self.service.submit(
            "run", lambda engine, check: engine.run(spec, text, device=device, trust=True, check_cancel=check,
                                                    progress=progress))
        self._min_run_id = self._last_run_id
        self._awaiting = True
        self.runStarted.emit(token)
        if self._tf_ready:
            self.set_status("running…")

    def cancel_run(self) -> None:
        """Stops the run in flight: said at once; the worker stops at its next check, its reply is dropped."""
        if not self._awaiting and not self._schedule.isActive():
            return
        self._schedule.stop()
        self.service.cancel()
        self._min_run_id = self._last_run_id + 1
        self._awaiting = False
        self.set_status("cancelled")
        self.runCancelled.emit()

    def _refuse(self, message: str, layer: str | None, *, keep_views: bool = False) -> None:
        """A run that cannot start: said in the window; replies still in flight become stale."""
        self._min_run_id = self._last_run_id + 1
        self._awaiting = False
        self.set_status(message, error=True)
        if not keep_views:
            self._show_error(message, layer)
        reply = Reply(0, "run", error=message, error_layer=layer)
        self.last_reply = reply
        self.runFinished.emit(reply)

    def ensure_trusted(self, spec: StackSpec, ask_again: bool = True) -> bool:
        """May the stack's custom expressions run? Asks the user once for expressions from a file or typed here."""
        missing = _custom_expressions(spec) - self._trusted_expressions
        if not missing:
            return True
        if self._typed_trusted and not missing & self._file_expressions:
            self._trusted_expressions |= missing
            return True
        if not ask_again and missing <= self._declined:
            return False          # refused already: the Run button asks again, live edits do not
        self._asking = True
        try:
            agreed = bool(self.confirm_trust(sorted(missing)))
        finally:
            self._asking = False
        if agreed:
            self._trusted_expressions |= missing
            self._typed_trusted = True
            self._declined -= missing
        else:
            self._declined |= missing
        return agreed

    def _ask_trust(self, expressions: list[str]) -> bool:
        shown = "\n".join(f"    {e}" for e in expressions)
        answer = QMessageBox.question(
            self, "Run custom code?",
            "This stack has a custom layer whose expression runs as Python code:\n\n"
            f"{shown}\n\nRun it only if you trust where it comes from. Run it? (Expressions you type in this "
            "window afterwards run without asking again.)",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def leak_check(self) -> None:
        spec = self.document.copy()
        text = self.sequence_editor.text()
        if self.sequence_editor.error is not None or not self.ensure_trusted(spec, ask_again=True):
            self.shapes.show_leak("fix the stack and the sequences first", True)
            return
        device = self.device

        def task(engine, check):
            from ..core.leaks import leak_check
            return leak_check(engine, spec, text, device=device, trust=True)

        self._leak_id = self.service.submit("leaks", task)
        self.set_status("leak check: running each sequence alone…")

    def copy_code(self) -> None:
        spec = self.document.copy()
        spec.sequences = self.sequence_editor.text()

        def task(engine, check):
            from ..core.codegen import export_code
            return export_code(spec)

        self.service.submit("code", task)

    # --- replies (GUI thread) ---

    def _on_reply(self, reply: Reply) -> None:
        if not self._tf_ready:
            self._tf_ready = True
            if self.status_text == LOADING:
                self.set_status("TensorFlow loaded")
        if reply.kind == "devices":
            self._devices_arrived(reply)
        elif reply.kind == "run":
            self._run_arrived(reply)
        elif reply.kind == "leaks":
            if reply.id == self._leak_id:
                if reply.ok:
                    self.shapes.show_leak(reply.value.verdict, reply.value.leaking_layer is not None)
                    self.set_status("leak check done")
                elif not reply.cancelled:
                    self.shapes.show_leak(reply.error or "failed", True)
        elif reply.kind == "code":
            if reply.ok:
                QGuiApplication.clipboard().setText(reply.value)
                self.set_status("copied a Keras script that builds this stack to the clipboard")
            elif not reply.cancelled:
                self.set_status(reply.error or "could not write the code", error=True)

    def _devices_arrived(self, reply: Reply) -> None:
        if not reply.ok:
            self.device_combo.setItemText(0, "unavailable")
            self.set_status(reply.error or "TensorFlow could not list its devices", error=True)
            return
        self.devices = list(reply.value)
        self.device_combo.blockSignals(True)
        self.device_combo.clear()
        for device in self.devices:
            label = device.name if device.kind == "CPU" else f"{device.name} {device.description}"
            self.device_combo.addItem(label, device.name)
        gpus = [i for i, device in enumerate(self.devices) if device.kind == "GPU"]
        self.device_combo.setCurrentIndex(gpus[0] if gpus else 0)
        self.device_combo.setEnabled(len(self.devices) > 1)
        self.device_combo.blockSignals(False)
        self.devicesLoaded.emit(self.devices)

    def _run_arrived(self, reply: Reply) -> None:
        if reply.id < self._min_run_id:
            self.dropped_replies += 1
            return
        self._awaiting = False
        self.last_reply = reply
        if reply.cancelled:
            return
        if reply.ok:
            self._show_result(reply.value, reply.elapsed_ms)
        else:
            self.set_status(reply.error or "the run failed", error=True)
            self._show_error(reply.error or "the run failed", reply.error_layer)
        self.runFinished.emit(reply)

    def _show_result(self, result, elapsed_ms: float) -> None:
        self.result = result
        self.stack_editor.show_result(result)
        self.shapes.show_result(result)
        self.sequence_editor.show_batch(result.input, result.mask, result.lines, result.vocabulary)
        self.plots.show_result(result)
        names = [layer.name for layer in result.layers]
        if self._selected_layer not in names and names:
            recurrent = [layer.name for layer in result.layers if layer.type in ("simple_rnn", "lstm", "gru")]
            self._selected_layer = recurrent[0] if recurrent else names[0]
            self.stack_editor.select_layer(self._selected_layer)
        self.shapes.select_layer(self._selected_layer)
        row = self._row_for_line(self._selected_line)
        if self.plots.selected_layer != self._selected_layer or (row is not None and self.plots.selected_row != row):
            self.plots.select(layer=self._selected_layer, row=row)
        if self.plots.selected_row is not None and 0 <= self.plots.selected_row < len(result.lines):
            self.sequence_editor.mark_line(result.lines[self.plots.selected_row])
        self.device_label.setText(f"device {result.device}")
        timing = result.timing_ms
        self.timing_label.setText(f"run {timing['run']:.1f} ms · total {elapsed_ms:.0f} ms")
        count = len(result.diagnostics)
        fc = f"FC input {_shape(result.fc_input.symbolic_shape)}" if result.fc_input else \
            f"output {_shape(result.output_shape)}"
        self.set_status(f"ran {len(result.lines)} sequences in {result.mode} mode · {fc}"
                         + (f" · {count} warning{'s' if count != 1 else ''}" if count else ""))

    def _show_error(self, message: str, layer: str | None) -> None:
        self.stack_editor.show_error(message, layer)
        self.shapes.show_error(message, layer)
        self.plots.show_message(message)

    # --- selection ---

    def select_layer(self, name: str | None) -> None:
        self._selected_layer = name
        self.stack_editor.select_layer(name)
        self.shapes.select_layer(name)
        if self.result is not None and name in [layer.name for layer in self.result.layers]:
            self.plots.select(layer=name)

    def _row_for_line(self, line: int | None) -> int | None:
        if self.result is None or line is None or line not in self.result.lines:
            return None
        return self.result.lines.index(line)

    def _line_selected(self, line: int) -> None:
        self._selected_line = line
        row = self._row_for_line(line)
        if row is not None:
            self.plots.select(row=row)

    def _row_picked(self, row: int) -> None:
        if self.result is not None and 0 <= row < len(self.result.lines):
            self._selected_line = self.result.lines[row]
            self.sequence_editor.select_line(self._selected_line)

    # --- files ---

    def _preset_picked(self, index: int) -> None:
        name = self.preset_combo.itemData(index)
        if name and self.files.maybe_discard():
            self.load_preset(name)
        elif name:
            self._document_title_to_combo()

    def _document_title_to_combo(self) -> None:
        preset = self.source[len(presets.PREFIX):] if self.source and presets.is_preset(self.source) else None
        self.preset_combo.setCurrentIndex(max(0, self.preset_combo.findData(preset)) if preset else 0)

    def load_preset(self, name: str) -> None:
        self.set_document(presets.load_preset(name), trusted=True, source=presets.PREFIX + name)

    def open_preset(self, name: str) -> bool:
        """Loads a preset after asking about unsaved changes; False when the user keeps the current work."""
        if not self.files.maybe_discard():
            return False
        self.load_preset(name)
        return True

    def open_file(self) -> None:
        """Open… (asks about unsaved changes, then for a .stack.json or .keras file)."""
        self.files.open_dialog()

    def open_path(self, path: str) -> bool:
        """Shows a stack file or a .keras model (read in the worker); a bad file is refused, the work kept."""
        return self.files.load(path)

    def save_file(self) -> None:
        """Save: to the stack file it came from, else asks where."""
        self.files.save()

    def save_path(self, path: str) -> bool:
        return self.files.save_to(path)

    # --- closing ---

    def closeEvent(self, event) -> None:
        if not self.files.confirm_close():      # unsaved changes: Save / Discard / Cancel
            event.ignore()
            return
        self.preferences.save()
        self.autosaver.remove()                  # a clean exit leaves nothing to recover
        self._schedule.stop()
        self.service.shutdown(timeout=2.0)
        super().closeEvent(event)


def _list_devices(engine, check_cancel):
    from ..core.backend import list_devices
    return list(list_devices())


def _first_custom(spec: StackSpec) -> str | None:
    names = spec.layer_names()
    return next((name for name, layer in zip(names, spec.layers) if layer.type == "custom"), None)


def _shape(shape) -> str:
    from ..core.diagnose import format_shape
    return format_shape(tuple(shape))
