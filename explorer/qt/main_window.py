"""The main window: stack editor | plots | shapes, the sequences below; it assembles the parts of a session.

The window holds no state of its own: the `Session` (explorer/session.py) holds the document, the
selection and the result with its state, and every view takes the session, edits it and follows its
events. The window builds the views, the toolbar and the status bar, and the subscribers around them:
undo (`DocumentHistory`), run scheduling (`RunScheduler`: the request layer of explorer/requests.py on Qt's
event loop, which owns the window's channel to the engine process), files, autosave, cancel and progress, the remembered settings and the menus. Keras and
TensorFlow are never imported in this process: they live in the engine process (explorer/engine).
"""

from __future__ import annotations

import sys
from typing import Callable

from PySide6.QtCore import QEventLoop, QSize, Qt, QTimer
from PySide6.QtGui import QGuiApplication, QKeySequence
from PySide6.QtWidgets import QCheckBox, QComboBox, QLabel, QMainWindow, QMessageBox, QToolBar, QWidget

from ..core import course, presets
from ..core.backend import installed_backends
from ..core.spec import StackSpec
from ..requests import CODE, LEAKS, engine_service
from ..session import Session
from .plots.cell import CellPanel
from .course import CourseController, LessonBanner
from .errors import REPORTS
from .files import FileController, window_title
from .fixes import FixButton
from .layout import WindowLayout, fit_to_screen
from .plots import PlotsPanel
from .recovery import Autosaver, offer_recovery
from .runcontrol import RunControl
from .runs import RunScheduler
from .sequence_editor import SequenceEditor
from .settings import MemorySettings, Preferences
from .shapes_panel import ShapesPanel
from .stack_editor import StackEditor
from .style import ERROR_COLOUR, escape
from .undo import DocumentHistory


class StatusMessage(QLabel):
    """The status line's message: it wraps (a long one never widens the window) and is as high as the
    wrapped text at its width, at least two lines, so that the status bar, and with it the whole window,
    keeps its height while the messages of a run come and go. (A word-wrapped label's own size hint lays rich
    text out in a narrow column: a short message asked for three lines, "running…" for one, and every
    edit re-laid out and repainted the window twice.)"""

    def __init__(self):
        super().__init__("")
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setWordWrap(True)

    def hasHeightForWidth(self) -> bool:
        return False      # the layouts take the height below, not one for a width they are still trying out

    def sizeHint(self) -> QSize:
        return QSize(super().sizeHint().width(), self._height())

    def minimumSizeHint(self) -> QSize:
        return QSize(super().minimumSizeHint().width(), self._height())

    def _height(self) -> int:
        two_lines = 2 * self.fontMetrics().lineSpacing()
        return max(two_lines, self.heightForWidth(self.width())) if self.width() > 0 else two_lines

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width() and self.heightForWidth(self.width()) > self.height():
            self.updateGeometry()


class MainWindow(QMainWindow):
    """The explorer. `spec`: the stack to show; `trusted`: its custom expressions may run without asking
    (presets); `confirm_trust(expressions) -> bool` asks the user (default: a QMessageBox); `settings`: a
    QSettings (None: remember in memory only); `make_service(on_reply, on_progress)`: the window's way to
    the engine (default: a channel to the engine process); `reporter`: an ErrorReporter that also shows the
    engine's internal errors; `scale`: the presentation scale to start at (else the remembered one).

    Only this module reads the window's parts: the views, controllers and panels take the session, the
    request layer and the widgets they need from here (tests/qt/test_no_locator.py)."""

    def __init__(self, spec: StackSpec, *, trusted: bool = False, source: str | None = None,
                 confirm_trust: Callable[[list[str]], bool] | None = None, settings=None,
                 make_service=None, reporter=None, scale: float | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = Session(spec, trusted=trusted, source=source,
                               confirm_trust=confirm_trust or self._ask_trust,
                               call_soon=lambda function: QTimer.singleShot(0, function))   # large texts in steps
        self.runs = RunScheduler(self.session, make_service or engine_service, self)
        self.history = DocumentHistory(self.session, self)
        self.setWindowTitle("RNN Shape Explorer")
        self.settings = settings if settings is not None else MemorySettings()
        self._build_views()
        self._build_toolbar()
        self._build_status()
        self.files = FileController(self.session, self.runs, self.settings, self)
        self.document_bar.insertActions(self._file_separator, [self.files.open_action, self.files.save_action])
        self.autosaver = Autosaver(self.session, self)
        self.run_control = RunControl(self.runs, self)
        self.addAction(self.run_control.cancel_action)
        self.run_bar.insertAction(self._run_separator, self.run_control.cancel_action)
        self.statusBar().addPermanentWidget(self.run_control.progress_bar)
        from .menus import MenuParts, install_menus
        self.menus = install_menus(self.session, self.runs, self, MenuParts(   # File, Edit, Run, Export, Help …
            history=self.history, files=self.files, plots=self.plots, stack_editor=self.stack_editor,
            shapes=self.shapes, sequence_editor=self.sequence_editor, lesson_banner=self.lesson_banner,
            plot_tabs=self.window_layout.plot_tabs, combos=(self.preset_combo, self.device_combo),
            live_check=self.live_check, run_action=self.run_action, cancel_action=self.run_control.cancel_action,
            code_action=self.code_action, leak_check=self.leak_check, restart_engine=self.restart_engine,
            open_preset=self.open_preset))
        self.window_layout.install_menu(self.menus)
        self.preferences = Preferences(self.session, self.settings, self, self.window_layout)
        self.preferences.restore()
        from .training_panel import TrainingPanel, install_training
        self.training = TrainingPanel(self.session, self.runs, self.history, self.sequence_editor)
        self.training_dock = install_training(self.training, self.window_layout)  # train, pin, compare
        from .checkup import CheckupPanel, install_checkup
        self.checkup = CheckupPanel(self.session, self.runs, self.cell_panel, self.window_layout, self.leak_check)
        self.checkup_dock, self.checkup_action = install_checkup(self.checkup, self.run_bar,   # the doctor's findings
                                                                 self.menus.menu("&Run"))

        session = self.session
        session.events.status.connect(self._show_status)
        session.events.document.connect(self._document_loaded)
        session.events.modified.connect(self._show_title)
        session.events.devices.connect(self._devices_arrived)
        session.events.run_settings.connect(self._show_run_settings)
        self._show_run_settings()
        session.events.result.connect(self._show_run_figures)
        self.runs.engineFailed.connect(self._engine_failed)
        REPORTS.connect(self._internal_error)     # the error reporter's messages (held weakly)
        self._leak_id = 0
        self._engine_box: QMessageBox | None = None
        if reporter is not None:
            reporter.watch(self.runs.requests)
        if scale:
            self.window_layout.set_scale(scale, announce=False)
        self.runs.start()
        self._document_loaded()
        self.course.document_loaded()             # the first document came before the window's parts
        self._show_title(session.modified)
        self.runs.run_now()

    # --- building ---

    def _build_views(self) -> None:
        self.stack_editor = StackEditor(self.session)
        self.shapes = ShapesPanel(self.session)
        self.plots = PlotsPanel(self.session)
        self.sequence_editor = SequenceEditor(self.session)
        # Inside the cell: gates and gradients, a tab beside the plots, linked in time with them
        self.cell_panel = CellPanel(self.session, self.runs, self.plots.mask.plot)
        self.lesson_banner = LessonBanner()           # title, lesson and the place in the course
        self.course = CourseController(self.session, self.lesson_banner, self.open_preset,
                                       lambda: self.window_layout.plot_tabs if hasattr(self, "window_layout")
                                       else None, self)
        self.window_layout = WindowLayout(      # docks, tabs when space is short, plots that stay readable
            self, self.session, self.runs, self.settings, plots=self.plots, lesson_banner=self.lesson_banner,
            stack_editor=self.stack_editor, shapes=self.shapes, sequence_editor=self.sequence_editor,
            cell_panel=self.cell_panel)
        self.course.plotWanted.connect(self.window_layout.show_plot)    # the plot a lesson names, in view
        self.window_layout.add_plot_tab("Inside the cell", self.cell_panel, self.cell_panel.view)

        self.shapes.leakCheckRequested.connect(self.leak_check)

    def _build_toolbar(self) -> None:
        """Two toolbars (the document, then running it): on a narrow screen the second one goes on a row of its
        own instead of hiding actions."""
        bar = self._toolbar("Document")
        self.document_bar = bar
        bar.addWidget(QLabel(" Preset "))
        self.preset_combo = QComboBox()
        self.preset_combo.setToolTip("Built-in stacks, each with a lesson")
        self.preset_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.preset_combo.addItem("(your stack)", None)
        for name in course.names() + course.uncovered():      # in the order of the course
            title = presets.load_preset(name).title or name
            self.preset_combo.addItem(title, name)
        self.preset_combo.setMinimumContentsLength(max(len(self.preset_combo.itemText(i))   # no title cut short
                                                       for i in range(self.preset_combo.count())))
        self.preset_combo.activated.connect(self._preset_picked)
        bar.addWidget(self.preset_combo)
        bar.addSeparator()
        self._file_separator = bar.addSeparator()     # Open and Save go here once the file controller exists
        bar.addAction(self.history.undo_action)     # QUndoStack's own actions, also in the Edit menu
        bar.addAction(self.history.redo_action)
        bar = self._toolbar("Run")
        self.run_bar = bar
        bar.addWidget(QLabel(" Device "))
        self.device_combo = QComboBox()
        self.device_combo.addItem("loading…", None)
        self.device_combo.setEnabled(False)
        self.device_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.device_combo.setMinimumContentsLength(10)
        self.device_combo.setToolTip("Where the engine runs the stack")
        self.device_combo.currentIndexChanged.connect(
            lambda _index: self.session.set_device(self.device_combo.currentData()) if self.session.devices else None)
        bar.addWidget(self.device_combo)
        backend_label = bar.addWidget(QLabel(" Backend "))
        self.backend_combo = QComboBox()
        for name in installed_backends():
            self.backend_combo.addItem(name, name)
        client = self.runs.requests.client
        current = (client.backend if client is not None else None) or installed_backends()[0]
        self.backend_combo.setCurrentIndex(max(0, self.backend_combo.findData(current)))
        self.backend_combo.setEnabled(self.backend_combo.count() > 1 and client is not None)
        self.backend_combo.setToolTip("Keras's backend: picking another restarts the engine with it "
                                      "(JAX and PyTorch when installed: pip install 'rnn-shape-explorer[jax]')")
        self.backend_combo.activated.connect(self._backend_picked)
        choice = bar.addWidget(self.backend_combo)
        for action in (backend_label, choice):     # shown only when there is a choice to make
            action.setVisible(self.backend_combo.count() > 1)
        bar.addSeparator()
        self.live_check = QCheckBox("Live")
        self.live_check.setChecked(self.session.live)
        self.live_check.setToolTip("Re-run after every edit")
        self.live_check.toggled.connect(self.session.set_live)
        bar.addWidget(self.live_check)
        self.run_action = bar.addAction("▶ Run", lambda: self.runs.run_now(asked=True))
        self.run_action.setShortcuts([QKeySequence("F5"), QKeySequence("Ctrl+R")])
        self.run_action.setToolTip("Run the stack on the sequences (F5)")
        self._run_separator = bar.addSeparator()      # Cancel goes before it
        self.code_action = bar.addAction("Copy as code", self.copy_code)
        self.code_action.setToolTip("Copy a Keras script that builds this stack")

    def _toolbar(self, title: str) -> QToolBar:
        bar = QToolBar(title)
        bar.setObjectName(f"toolbar-{title.lower()}")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.addToolBar(bar)
        return bar

    def _build_status(self) -> None:
        status = self.statusBar()
        self.status_message = StatusMessage()
        self.device_label = QLabel("")
        self.timing_label = QLabel("")
        status.addWidget(self.status_message, 1)
        self.fix_button = FixButton(self.session, self.runs, self)   # "Fix: tick mask_zero on embedding_1"
        status.addPermanentWidget(self.fix_button.button)
        status.addPermanentWidget(self.device_label)
        status.addPermanentWidget(self.timing_label)

    def _show_status(self, text: str, error: bool) -> None:
        colour = ERROR_COLOUR if error else "palette(text)"
        self.status_message.setText(f'<span style="color:{colour}">{"✖ " if error else ""}{escape(text)}</span>')
        self.status_message.setToolTip(text)

    def _internal_error(self, message: str) -> None:
        self.session.say(message, error=True)

    def _show_title(self, modified: bool) -> None:
        session = self.session
        self.setWindowTitle(window_title(session.source, session.document.title, modified))
        self._show_preset()

    def _show_preset(self) -> None:
        source = self.session.source
        preset = source[len(presets.PREFIX):] if source and presets.is_preset(source) else None
        self.preset_combo.setCurrentIndex(max(0, self.preset_combo.findData(preset)) if preset else 0)

    def _document_loaded(self) -> None:
        self._show_preset()

    def _show_run_settings(self) -> None:
        self.live_check.setChecked(self.session.live)
        index = self.device_combo.findData(self.session.device)
        if index >= 0 and index != self.device_combo.currentIndex():
            self.device_combo.setCurrentIndex(index)

    def _show_run_figures(self) -> None:
        result = self.session.result
        if self.session.state.current and result is not None:
            self.device_label.setText(f"device {result.device}")
            timing = result.timing_ms
            elapsed = self.runs.last_reply.elapsed_ms if self.runs.last_reply is not None else 0.0
            self.timing_label.setText(f"run {timing['run']:.1f} ms · total {elapsed:.0f} ms")

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
        session = self.session
        spec = session.spec()
        text = session.text
        if session.problem() is not None or not session.trust.ensure(spec, ask_again=True):
            self.shapes.show_leak("fix the stack and the sequences first", True)
            return
        self._leak_id = self.runs.submit(LEAKS, self._on_reply, spec=spec, text=text, device=session.device,
                                         trust=True).id
        session.say("leak check: running each sequence alone…")

    def copy_code(self) -> None:
        spec = self.session.spec()
        if not self.session.trust.ensure(spec, ask_again=True):   # the script runs the expressions as code
            self.session.say("Copy as code: not copied, the custom expressions are not trusted")
            return
        self.runs.submit(CODE, self._on_reply, spec=spec)

    def _backend_picked(self, _index: int) -> None:
        """Restarts the engine with another Keras backend; its devices replace these."""
        backend = self.backend_combo.currentData()
        client = self.runs.requests.client
        if client is None or backend == (client.backend_name or client.backend):
            return
        self.device_combo.blockSignals(True)
        self.device_combo.clear()
        self.device_combo.addItem("loading…", None)
        self.device_combo.setEnabled(False)
        self.device_combo.blockSignals(False)
        self.runs.restart_engine(backend)

    def _on_reply(self, reply) -> None:
        if reply.kind == "leaks":
            if reply.id == self._leak_id:
                if reply.ok:
                    leaking = reply.value.leaking_layer is not None
                    self.shapes.show_leak(reply.value.verdict, leaking)
                    self.session.say(f"leak check: {reply.value.verdict}", error=leaking)   # seen with Shapes hidden
                elif not reply.cancelled:
                    self.shapes.show_leak(reply.error or "failed", True)
        elif reply.kind == "code":
            if reply.ok:
                QGuiApplication.clipboard().setText(reply.value)
                self.session.say("copied a Keras script that builds this stack to the clipboard")
            elif not reply.cancelled:
                self.session.say(reply.error or "could not write the code", error=True)

    def restart_engine(self) -> None:
        """A new engine on the same backend (after the restart limit): its devices, then the document again."""
        if self._engine_box is not None:
            self._engine_box.close()
        self.runs.restart_engine()

    def _engine_failed(self, message: str) -> None:
        """The engine is not restarted any more: say what to do, with a button that restarts it."""
        if self._engine_box is None:
            box = QMessageBox(QMessageBox.Icon.Warning, "The engine stopped", "", QMessageBox.StandardButton.Close,
                              self)
            box.setWindowModality(Qt.WindowModality.NonModal)
            button = box.addButton("Restart engine", QMessageBox.ButtonRole.AcceptRole)
            button.clicked.connect(self.restart_engine)
            self._engine_box = box
        self._engine_box.setText(f"{message}.\n\nYour stack and sequences are unchanged. Restart engine starts a "
                                 "new one and runs them again; if it keeps stopping, save your work and lower the "
                                 "sizes (sequences, steps, units).")
        self._engine_box.show()

    def _devices_arrived(self) -> None:
        devices = self.session.devices
        self.device_combo.blockSignals(True)
        self.device_combo.clear()
        for device in devices:
            label = device.name if device.kind == "CPU" else f"{device.name} {device.description}"
            self.device_combo.addItem(label, device.name)
        self.device_combo.setCurrentIndex(max(0, self.device_combo.findData(self.session.device)))
        self.device_combo.setEnabled(len(devices) > 1)
        self.device_combo.blockSignals(False)
        self._show_run_settings()

    # --- files ---

    def _preset_picked(self, index: int) -> None:
        name = self.preset_combo.itemData(index)
        if name and self.files.maybe_discard():
            self.load_preset(name)
        elif name:
            self._show_preset()

    def load_preset(self, name: str) -> None:
        self.session.load(presets.load_preset(name), trusted=True, source=presets.PREFIX + name)

    def open_preset(self, name: str) -> bool:
        """Loads a preset after asking about unsaved changes; False when the user keeps the current work."""
        if not self.files.maybe_discard():
            return False
        self.load_preset(name)
        return True

    # --- closing ---

    def closeEvent(self, event) -> None:
        if not self.files.confirm_close():      # unsaved changes: Save / Discard / Cancel
            event.ignore()
            return
        self.preferences.save()
        self.autosaver.remove()                  # a clean exit leaves nothing to recover
        self.runs.shutdown()
        super().closeEvent(event)


# --- for the programs that open the window (explorer/qt/app.py, explorer/qt/explore.py) ---

def show_at_start(window: MainWindow, *, size: tuple[int, int] | None, default_size: tuple[int, int],
                  model: str | None) -> None:
    """Shows `window` at `size` (fitted to the screen), else where it was last time, else at `default_size`
    (smaller on a small screen); then reads the .keras `model` and offers the work a crashed session autosaved."""
    if size:
        window.resize(*size)
        fit_to_screen(window)
    elif not window.preferences.restored_geometry:
        screen = QGuiApplication.primaryScreen()
        area = screen.availableGeometry() if screen is not None else None
        if area is not None and (area.width() < default_size[0] or area.height() < default_size[1]):
            window.resize(min(default_size[0], int(area.width() * 0.95)),
                          min(default_size[1], int(area.height() * 0.92)))
        else:
            window.resize(*default_size)
    window.show()
    if model:
        window.files.load(model)
    QTimer.singleShot(0, lambda: offer_recovery(window.session, window.autosaver, window.files, parent=window))


def show_from_library(window: MainWindow, prepared, *, keras_path: str | None = None, arrived: Callable | None = None,
                      trust: bool = False) -> None:
    """Shows `window` with the notes of `prepared` (a library.Prepared), or reads `keras_path` in the engine and
    shows the Prepared that `arrived(spec)` makes of its stack."""
    session = window.session
    if prepared is not None:
        _say_notes(session, prepared.notes)
    else:
        def opened(ok: bool) -> None:
            window.files.opened.disconnect(opened)
            if ok:
                source = session.source
                model = arrived(session.spec())
                session.load(model.spec, trusted=trust, source=source)
                _say_notes(session, model.notes)
        window.files.opened.connect(opened)
        window.files.load_keras(keras_path, trust=trust)
    window.show()


def _say_notes(session: Session, notes: list[str]) -> None:
    if notes:
        session.say(" · ".join(notes))


def take_screenshot(app, window: MainWindow, path: str, *, timeout_s: float, size: tuple[int, int]) -> int:
    """Shows `window` at `size`, waits for its first run to be plotted (and the gates and gradients when the
    Inside the cell tab is open), saves it as a PNG. 0, or 2 with an error
    line (also when the window cannot be made that small)."""
    window.resize(*size)
    window.show()
    loop = QEventLoop()
    finished = []

    def done(reply) -> None:
        finished.append(reply)
        loop.quit()

    runs = window.runs
    if runs.settled and runs.last_reply is not None:
        finished.append(runs.last_reply)        # refused before running: nothing to wait for
    else:
        runs.runFinished.connect(done)
        QTimer.singleShot(int(timeout_s * 1000), loop.quit)
        loop.exec()
    try:
        if not finished:
            print(f"error: the first run did not finish within {timeout_s:.0f} s; no screenshot taken",
                  file=sys.stderr)
            return 2
        window.resize(*size)                     # again: the docks are arranged for the screen once shown
        for _ in range(5):                       # let the plots lay themselves out and paint
            app.processEvents()
        if window.cell_panel.waiting:            # a lesson that opens Inside the cell: wait for its numbers too
            window.cell_panel.answered.connect(loop.quit)
            QTimer.singleShot(int(timeout_s * 1000), loop.quit)
            loop.exec()
        QTimer.singleShot(100, loop.quit)
        loop.exec()
        app.processEvents()
        if (window.width(), window.height()) != tuple(size):
            print(f"error: the window cannot be {size[0]}x{size[1]} (it needs at least "
                  f"{window.minimumSizeHint().width()}x{window.minimumSizeHint().height()} at this scale)",
                  file=sys.stderr)
            return 2
        if not window.grab().save(path, "PNG"):
            print(f"error: cannot write the screenshot to {path}", file=sys.stderr)
            return 2
        return 0
    finally:
        window.close()
