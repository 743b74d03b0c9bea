"""The Training panel: train the stack live on the labelled sequences, and pin a run to compare later ones.

Train sends chunks of steps (`core.train.train_steps`, about CHUNK_SECONDS each) to the window's worker; after
each chunk the stack takes the trained weights and the window runs it as usual, so every plot refreshes
several times a second while the GUI thread never waits on TensorFlow. A training session (Train … Pause or
the last step) is one undo step, and so is Reset weights. Each curve stays in the plot, greyed, after Reset,
so two trainings (with and without a mask, say) are seen side by side.

Compare: Pin keeps the run on screen; after any change each layer's row shows max |Δ| on the valid steps of
the same sequences, and the selected layer's Δ is drawn as a heatmap with its own diverging scale.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QColor, QUndoCommand
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDockWidget, QDoubleSpinBox, QGridLayout, QHBoxLayout,
                               QHeaderView, QLabel, QPushButton, QSpinBox, QTableWidget, QTableWidgetItem,
                               QTabWidget, QVBoxLayout, QWidget)

from ..core import compare, sequences, tasks
from ..core.errors import SequenceError
from ..core.train import DEFAULT_LEARNING_RATE, OPTIMIZERS, TrainSettings, run_accuracy
from ..requests import TRAIN
from ..session import CHECKING
from .layout import TRAINING, WindowLayout
from .plots.training import CURVE_COLOURS, DeltaHeatmap, TrainingCurves, recolour_widget
from .style import ERROR_COLOUR, escape

if TYPE_CHECKING:
    from ..session import Session
    from .runs import RunScheduler
    from .sequence_editor import SequenceEditor
    from .undo import DocumentHistory

CHUNK_SECONDS = 0.25        # a chunk of steps, then the plots refresh: about four times a second
DEFAULT_STEPS = 100
DEFAULT_COUNT = 64
HINT = "Pin a run, then change something: train, mask_zero, padding, units."
_POSITION = re.compile(r"^line (\d+), column (\d+): (.*)$", re.S)


class WeightsEdit(QUndoCommand):
    """Training or a reset: the stack's weights before and after (None: the seed's fresh weights)."""

    def __init__(self, panel: TrainingPanel, text: str, before: tuple, after: tuple):
        super().__init__(text)
        self._panel, self._before, self._after = panel, before, after
        self._pushed = False

    def redo(self) -> None:
        if not self._pushed:      # QUndoStack.push calls redo(): the weights are already in place
            self._pushed = True
            return
        self._panel.set_weights(self._after)

    def undo(self) -> None:
        self._panel.set_weights(self._before)


class TrainingPanel(QWidget):
    """The dock's contents: trains the `session`'s stack through `runs` (the request layer), each chunk an
    undoable step of `history`; a label error is shown in `sequence_editor`."""

    def __init__(self, session: Session, runs: RunScheduler, history: DocumentHistory,
                 sequence_editor: SequenceEditor, parent: QWidget | None = None):
        super().__init__(parent)
        self.runs = runs
        self.history = history
        self.sequence_editor = sequence_editor
        self.running = False           # the user wants chunks to keep coming
        self.remaining = 0
        self.objective = None          # from the latest chunk: what the head is trained for
        self.curve_loss: list[float] = []
        self.curve_accuracy: list[float] = []
        self.curve_label = ""
        self.archived: list[tuple[str, list[float], list[float]]] = []
        self.restarts: list[int] = []   # steps where the stack changed under training (a new optimizer)
        self.pinned = None             # the pinned RunResult
        self.deltas: dict[str, compare.LayerDelta] = {}
        self.steps_per_s = 0.0
        self._request = 0
        self._session_before: tuple | None = None
        self._session_steps = 0
        self._plots: list[pg.PlotWidget] = []     # recoloured when the palette changes
        self._build()
        self.session = session
        runs.runFinished.connect(self._run_finished)
        self.session.events.document.connect(self._document_loaded)
        self.session.events.selection.connect(self._show_delta)
        self._show_task()

    # --- building ---

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.tabs = QTabWidget()
        layout.addWidget(self.tabs)
        self.tabs.addTab(self._build_train_tab(), "Train")
        self.tabs.addTab(self._build_compare_tab(), "Compare")

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            for widget in self._plots:
                recolour_widget(widget, self.palette())

    def set_text_scale(self, scale: float) -> None:
        """Presentation mode for the plots (the layout scales the widgets' fonts)."""
        self.curves.set_text_scale(scale)
        self.delta.set_text_scale(scale)

    def _build_train_tab(self) -> QWidget:
        page = QWidget()
        row = QVBoxLayout(page)      # a dock beside the shapes panel: controls above the curves
        row.setContentsMargins(2, 2, 2, 2)
        controls = QWidget()
        controls.setMaximumWidth(400)
        layout = QVBoxLayout(controls)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        grid = QGridLayout()
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(2)
        self.task_combo = QComboBox()
        for task in tasks.TASKS.values():
            self.task_combo.addItem(task.name, task.name)
            self.task_combo.setItemData(self.task_combo.count() - 1, f"{task.input_kind}: {task.rule.format(k='k')}",
                                        Qt.ItemDataRole.ToolTipRole)
        self.task_combo.setToolTip("A built-in task: its rule labels random sequences")
        self.count_spin = QSpinBox()
        self.count_spin.setRange(1, tasks.MAX_COUNT)
        self.count_spin.setValue(DEFAULT_COUNT)
        self.count_spin.setToolTip("How many sequences the task generates")
        self.generate_button = QPushButton("Generate")
        self.generate_button.setToolTip("Replace the sequences with labelled ones from the task (undoable)")
        self.generate_button.clicked.connect(self.generate)
        grid.addWidget(QLabel("Task"), 0, 0)
        grid.addWidget(self.task_combo, 0, 1)
        grid.addWidget(self.count_spin, 0, 2)
        grid.addWidget(self.generate_button, 0, 3)
        self.optimizer_combo = QComboBox()
        for key, name in OPTIMIZERS.items():
            self.optimizer_combo.addItem(name, key)
        self.optimizer_combo.setToolTip("The optimizer (Adam by default)")
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(4)
        self.lr_spin.setRange(0.0001, 10.0)
        self.lr_spin.setSingleStep(0.001)
        self.lr_spin.setValue(DEFAULT_LEARNING_RATE)
        self.lr_spin.setToolTip("Learning rate")
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, 100_000)
        self.steps_spin.setValue(DEFAULT_STEPS)
        self.steps_spin.setToolTip("Steps (optimizer updates) each time you press Train")
        grid.addWidget(QLabel("Steps"), 1, 0)
        steps_row = QHBoxLayout()
        steps_row.addWidget(self.steps_spin)
        steps_row.addWidget(QLabel("lr"))
        steps_row.addWidget(self.lr_spin)
        grid.addLayout(steps_row, 1, 1, 1, 2)
        grid.addWidget(self.optimizer_combo, 1, 3)
        grid.setColumnStretch(1, 1)
        layout.addLayout(grid)
        buttons = QHBoxLayout()
        self.train_button = QPushButton("▶ Train")
        self.train_button.setToolTip("Train the stack on the labelled sequences, as batched and masked now")
        self.train_button.clicked.connect(self.train)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setEnabled(False)
        self.pause_button.clicked.connect(self.pause)
        self.reset_button = QPushButton("Reset weights")
        self.reset_button.setToolTip("Back to the seed's initial weights (undoable); the curve stays, dashed")
        self.reset_button.clicked.connect(self.reset_weights)
        for button in (self.train_button, self.pause_button, self.reset_button):
            buttons.addWidget(button)
        layout.addLayout(buttons)
        self.loss_label = QLabel("loss: chosen from the head when you train")
        self.loss_label.setWordWrap(True)
        self.loss_label.setStyleSheet("color:palette(placeholder-text)")
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.status_label.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.loss_label)
        layout.addWidget(self.status_label)     # messages; the numbers go above the plots
        row.addWidget(controls)
        self.curves = TrainingCurves(self.palette())
        self.loss_plot, self.accuracy_plot = self.curves.widgets
        self.loss_legend = self.curves.loss_legend
        self._plots += self.curves.widgets
        row.addWidget(self.loss_plot, 1)
        row.addWidget(self.accuracy_plot, 1)      # as tall as the loss: a lesson's point is often the accuracy
        return page

    def _build_compare_tab(self) -> QWidget:
        page = QWidget()
        row = QVBoxLayout(page)
        row.setContentsMargins(2, 2, 2, 2)
        left = QWidget()
        left.setMaximumWidth(420)
        layout = QVBoxLayout(left)
        layout.setContentsMargins(0, 0, 0, 0)
        buttons = QHBoxLayout()
        self.pin_button = QPushButton("Pin this run")
        self.pin_button.setToolTip("Keep this run; after any change (training, mask_zero, pre/post padding, units "
                                   "with the same shapes) each layer shows its largest |Δ| on the valid steps")
        self.pin_button.clicked.connect(self.pin)
        self.unpin_button = QPushButton("Unpin")
        self.unpin_button.setEnabled(False)
        self.unpin_button.clicked.connect(self.unpin)
        buttons.addWidget(self.pin_button)
        buttons.addWidget(self.unpin_button)
        layout.addLayout(buttons)
        self.compare_label = QLabel(HINT)
        self.compare_label.setWordWrap(True)
        layout.addWidget(self.compare_label)
        self.delta_table = QTableWidget(0, 2)
        self.delta_table.setHorizontalHeaderLabels(["layer", "max |Δ| on valid steps"])
        self.delta_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.delta_table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.delta_table.verticalHeader().hide()
        self.delta_table.verticalHeader().setDefaultSectionSize(20)
        self.delta_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.delta_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.delta_table.cellClicked.connect(self._delta_row_clicked)
        layout.addWidget(self.delta_table, 1)
        row.addWidget(left)
        right = QVBoxLayout()
        self.delta = DeltaHeatmap(self.palette())
        self.delta_plot, self.delta_image = self.delta.delta_plot, self.delta.delta_image
        self._plots.append(self.delta_plot)
        self.delta_title = QLabel("")
        self.delta_title.setWordWrap(True)
        self.delta_title.setTextFormat(Qt.TextFormat.RichText)
        right.addWidget(self.delta_title)
        right.addWidget(self.delta_plot, 1)
        row.addLayout(right, 1)
        return page

    # --- tasks ---

    def generate(self) -> None:
        """The task's labelled sequences replace the text (one undo step, like typing); with several inputs, on the
        first input of the task's kind, the others getting random sequences of their own."""
        document = self.session.document
        head = document.layers[-1] if document.layers else None
        classes = head.params.get("units") if head is not None and head.params.get("activation") == "softmax" else None
        name, count = self.task_combo.currentData(), self.count_spin.value()
        try:
            texts = (tasks.generate_inputs(name, count, document.all_inputs(), seed=document.seed, classes=classes)
                     if document.more_inputs else
                     {document.input.name: tasks.generate(name, count, document.input, seed=document.seed,
                                                          classes=classes)})
        except tasks.TaskError as error:
            self._say(error.message, error=True)
            return
        self.session.set_texts(texts)
        self._say(f"generated {self.count_spin.value()} sequences of {self.task_combo.currentData()}")

    # --- training ---

    def train(self) -> None:
        if self.running:
            return
        check = self.session.text_check
        if check.checking:
            self._say(f"{CHECKING} train once they are checked", error=True)
            return
        if check.errors:
            self._say(f"fix the sequences first: {check.errors[0].message}", error=True)
            return
        if not any(labelled(each.parsed) for each in self.session.input_checks.values() or [check]):
            self._say("the sequences have no labels: add | and a label after each line (3 14 15 | 1), or "
                      "generate them from a task", error=True)
            return
        self._say("")
        self.running = True
        self.remaining = self.steps_spin.value()
        self._session_before = (self.session.document.weights, self.session.document.weights_id)
        self._session_steps = 0
        if not self.curve_loss:
            self.curve_label = self._describe_run()
        self._controls()
        self._send_chunk()

    def _settings(self) -> TrainSettings:
        return TrainSettings(self.optimizer_combo.currentData(), float(self.lr_spin.value()))

    def _send_chunk(self) -> None:
        spec = self.session.spec()
        text = self.session.text
        if not self.session.trust.ensure(spec, ask_again=True):
            self._stop("not trained: the stack has a custom expression that you have not agreed to run", error=True)
            return
        self._request = self.runs.submit(TRAIN, self._on_reply, spec=spec, text=text, settings=self._settings(),
                                         steps=self.remaining, seconds=CHUNK_SECONDS, device=self.session.device,
                                         trust=True).id

    def _on_reply(self, reply) -> None:
        if reply.id != self._request:
            return
        self._request = 0
        if not reply.ok:
            message = reply.error or "training was cancelled"
            match = _POSITION.match(message)
            if match:
                self.sequence_editor.show_label_error(
                    SequenceError(int(match.group(1)), int(match.group(2)), match.group(3)))
            self._stop(message, error=not reply.cancelled)
            return
        progress = reply.value
        self.session.set_weights(progress.spec.weights, progress.spec.weights_id)
        if progress.total_steps == progress.steps and self.curve_loss:   # a new trainer: the stack changed
            self.restarts.append(len(self.curve_loss))
        self.curve_loss += progress.loss[-progress.steps:]
        if progress.accuracy is not None:
            self.curve_accuracy += progress.accuracy[-progress.steps:]
        self.objective = progress.objective
        self.steps_per_s = progress.steps / max(reply.elapsed_ms / 1000, 1e-6)
        self.remaining -= progress.steps
        self._session_steps += progress.steps
        self.loss_label.setText(f"loss: {progress.objective.description}")
        self.runs.run_now(asked=False)           # the plots show the trained weights
        self._draw_curves()
        if self.running and self.remaining > 0:
            self._send_chunk()
        else:
            self._finish_session()

    def pause(self) -> None:
        """Stops after the chunk in flight (a fraction of a second)."""
        if not self.running:
            return
        self.running = False
        if not self._request:
            self._finish_session()
        self._controls()

    def _stop(self, message: str, error: bool = False) -> None:
        self.running = False
        self._finish_session()
        self._say(message, error=error)

    def _finish_session(self) -> None:
        self.running = False
        if self._session_steps and self._session_before is not None:
            document = self.session.document
            after = (document.weights, document.weights_id)
            self.history.stack.push(WeightsEdit(self, f"Train {self._session_steps} steps",
                                                       self._session_before, after))
        self._session_before, self._session_steps = None, 0
        self._controls()
        self._draw_curves()

    def reset_weights(self) -> None:
        """The seed's initial weights again (undoable); the curve so far stays in the plot, greyed."""
        self._request = 0              # a chunk in flight is dropped: its weights must not come back
        self._finish_session()
        document = self.session.document
        before = (document.weights, document.weights_id)
        self._archive_curve()
        if before != (None, None):
            self.set_weights((None, None))
            self.history.stack.push(WeightsEdit(self, "Reset weights", before, (None, None)))
        self._say("weights reset to the seed's initial ones")
        self._draw_curves()

    def set_weights(self, weights: tuple) -> None:
        """Puts weights back (undo, redo, reset) and re-runs; training in progress stops, and the chunk in flight
        is dropped so that its weights cannot come back."""
        if self.running or self._request:
            self._request = 0
            self.running = False
            self._session_before, self._session_steps = None, 0
            self._controls()
        self.session.set_weights(*weights)
        self.runs.run_now(asked=False)

    def _archive_curve(self) -> None:
        if self.curve_loss:
            self.archived.append((self.curve_label, self.curve_loss, self.curve_accuracy))
            self.archived = self.archived[-(len(CURVE_COLOURS) - 1):]
        self.curve_loss, self.curve_accuracy, self.restarts = [], [], []
        self.curve_label = ""

    def _describe_run(self) -> str:
        document = self.session.document
        masked = any((layer.type == "embedding" and layer.params.get("mask_zero")) or layer.type == "masking"
                     for layer in document.layers)
        settings = self._settings()
        return (f"run {len(self.archived) + 1}: {'masked' if masked else 'no mask'}, {document.batching.mode}, "
                f"{OPTIMIZERS[settings.optimizer]} {settings.learning_rate:g}")

    def _document_loaded(self) -> None:
        self._request = 0              # a chunk in flight belongs to the stack that was shown before
        self.running = False
        self._session_before, self._session_steps = None, 0
        self._controls()
        self._archive_curve()
        self.archived = []
        self.objective = None
        self.unpin()
        self.loss_label.setText("loss: chosen from the head when you train")
        self._show_task()
        self._draw_curves()
        self._say("")

    def _show_task(self) -> None:
        """The Task box names the task the text was generated from, when its comment line says so."""
        task = tasks.named_in(self.session.text)
        if task is not None:
            self.task_combo.setCurrentIndex(self.task_combo.findData(task))

    def _controls(self) -> None:
        self.train_button.setEnabled(not self.running)
        self.pause_button.setEnabled(self.running)
        for widget in (self.optimizer_combo, self.lr_spin, self.steps_spin, self.generate_button):
            widget.setEnabled(not self.running)

    # --- curves ---

    def _draw_curves(self) -> None:
        self.curves.draw(self.archived, self.curve_label, self.curve_loss, self.curve_accuracy, self.restarts)
        self._show_status()

    def _show_status(self) -> None:
        """The numbers, as the plots' titles."""
        loss = accuracy = ""
        if self.curve_loss:
            loss = f"step {len(self.curve_loss)} · loss {self.curve_loss[-1]:.4f}"
            if self.running:
                loss += f" · {self.steps_per_s:.0f} steps/s · {self.remaining} to go"
            if self.restarts:
                loss += " · dotted: the stack changed, new optimizer"
            if self.curve_accuracy:
                accuracy = f"training batch {self.curve_accuracy[-1]:.3f}"
        now = self._accuracy_now()
        if now is not None:
            accuracy += (" · " if accuracy else "") + f"<b>this run ({self.session.document.batching.mode}): {now:.3f}</b>"
        self.curves.titles(loss, accuracy or "accuracy (classification heads)")

    def _accuracy_now(self) -> float | None:
        result, parsed = self.session.result, self.session.text_check.parsed
        if self.objective is None or result is None or parsed is None or not self.session.state.current:
            return None
        return run_accuracy(result, parsed, self.objective, self.session.document.batching)

    def _say(self, message: str, error: bool = False) -> None:
        if message:
            self.session.say(message, error)
        colour = ERROR_COLOUR if error else "palette(text)"
        self.status_label.setText(f'<span style="color:{colour}">{escape(message)}</span>' if message else "")

    # --- pin and compare ---

    def pin(self) -> None:
        if self.session.result is None or not self.session.state.current:
            self.compare_label.setText("nothing to pin yet: wait for the run to finish")
            return
        self.pinned = self.session.result
        self.unpin_button.setEnabled(True)
        self.compare_label.setText(f"pinned: {len(self.pinned.lines)} sequences, {self.pinned.mode} mode")
        self._compare()

    def unpin(self) -> None:
        self.pinned = None
        self.deltas = {}
        self.unpin_button.setEnabled(False)
        self.delta_table.setRowCount(0)
        self.delta_image.clear()
        self.delta_title.setText("")
        self.compare_label.setText(HINT)

    def _run_finished(self, reply) -> None:
        if reply.ok:
            self._compare()
        self._show_status()

    def _compare(self) -> None:
        if self.pinned is None or self.session.result is None or not self.session.state.current:
            return
        found = compare.compare(self.pinned, self.session.result)
        self.deltas = {delta.name: delta for delta in found}
        self.delta_table.setRowCount(len(found))
        for row, delta in enumerate(found):
            self.delta_table.setItem(row, 0, QTableWidgetItem(delta.name))
            text = f"{delta.max_abs:.3g}" if delta.max_abs is not None else delta.reason
            item = QTableWidgetItem(text)
            if delta.max_abs:
                item.setForeground(QColor(ERROR_COLOUR))
            item.setToolTip(delta.reason or "the largest difference from the pinned run on the valid steps")
            self.delta_table.setItem(row, 1, item)
        self._show_delta()

    def _delta_row_clicked(self, row: int, _column: int) -> None:
        item = self.delta_table.item(row, 0)
        if item is not None:
            self.session.select_layer(item.text())

    def _show_delta(self) -> None:
        result = self.session.result
        if self.pinned is None or result is None:
            return
        name = self.session.selected_layer
        delta = self.deltas.get(name)
        row = self.session.selected_row(result) or 0
        if delta is None or delta.delta is None or row >= delta.delta.shape[0]:
            self.delta.clear()
            self.delta_title.setText(escape(f"{name}: {delta.reason}") if delta is not None else "")
            return
        values = delta.delta[row]
        line = result.lines[row]
        what = f"{name}, line {line}: current − pinned, " + ("units × timesteps" if values.ndim == 2
                                                             else "one value per unit")
        scale = self.delta.show(values)
        self.delta_title.setText(f"Δ of <b>{escape(what)}</b> (scale ±{scale:.2g}, its own; grey: not a valid "
                                 "step in both runs)")


def install_training(panel: TrainingPanel, window_layout: WindowLayout) -> QDockWidget:
    """The Training panel: a dock beside the shapes panel (View menu), its toggle on the View toolbar (Ctrl+T);
    brought forward when a document with labelled sequences arrives."""
    dock = window_layout.add_panel(TRAINING, panel)
    toggle = dock.toggleViewAction()
    toggle.setToolTip("Train the stack on labelled sequences, pin a run and compare (Ctrl+T)")
    toggle.setShortcut("Ctrl+T")
    window_layout.view_bar.addAction(toggle)
    session = panel.session

    loading = [False]             # a large document's text is still being checked: decided once it is

    def show_when_labelled() -> None:
        if labelled(session.text_check.parsed):
            dock.show()
            dock.raise_()

    def document_loaded() -> None:
        loading[0] = session.checking
        show_when_labelled()

    def checked() -> None:
        if loading[0]:
            loading[0] = False
            show_when_labelled()

    session.events.document.connect(document_loaded)
    session.events.checked.connect(checked)
    window_layout.stack_dock.raise_()     # a new tab does not cover the stack editor
    show_when_labelled()
    return dock


def labelled(parsed: sequences.Sequences | None) -> bool:
    """Does any line of the text carry labels?"""
    return parsed is not None and any(labels is not None for labels in parsed.labels)
