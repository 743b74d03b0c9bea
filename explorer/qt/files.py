"""The File menu: New, Open… (.stack.json and .keras), Open Recent, Save, Save As…, Export as .keras…, Quit.

`FileController(session, runs, settings, parent)` opens and saves the session's document: the
unsaved-changes question before New, Open and close, the recent files, and files dropped on `parent`
(the widget whose dialogs and drops it uses). Whether the document differs from its file is the
session's (`Session.modified`); the window's title follows it.

- A stack file is read on the GUI thread (plain JSON, `core.spec.load`) and saved atomically
  (`core.spec.save`: a temporary file, then a rename) with the editor's current text in `sequences`.
- A `.keras` model is read in the engine (Keras runs in its own process) with safe_mode on
  (`core.keras_io.import_model`); a custom expression in it is shown to the user first and only loaded
  after they agree. The loaded stack keeps its trained weights and runs on the sequences in the editor
  when they fit its input.
- A file that cannot be read is refused with its message (status bar and a non-modal message box) and
  the open work stays as it was.

Every question is a replaceable callable, so tests answer them: `ask_unsaved(name) -> "save" |
"discard" | "cancel"`, `ask_open_path()`, `ask_save_path(suggested)`, `ask_export_path(suggested)`
(each a path or None) and `alert(title, message)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox, QWidget

from ..core import presets
from ..core.errors import ExplorerError, SequenceError, SpecError
from ..core.keras_archive import UNKNOWN_CLASSES
from ..core.spec import StackSpec, from_dict, to_dict
from ..requests import EXPORT_KERAS, OPEN_KERAS
from ..session import Session
from . import settings as prefs

if TYPE_CHECKING:
    from ..requests import Reply
    from .runs import RunScheduler

APP_NAME = "RNN Shape Explorer"
STACK_SUFFIX = ".stack.json"
KERAS_SUFFIX = ".keras"
OPEN_FILTER = "Stacks and Keras models (*.stack.json *.json *.keras *.h5 *.hdf5);;Stacks (*.stack.json *.json);;" \
              "Keras models (*.keras *.h5 *.hdf5);;All files (*)"
SAVE = "save"
DISCARD = "discard"
CANCEL = "cancel"


def is_keras(path: str | Path) -> bool:
    """A trained Keras model (.keras, or Keras 2's .h5)."""
    return presets.is_keras_model(str(path))


def openable(path: str | Path) -> bool:
    """A file the window can open: a stack (JSON) or a Keras model."""
    return str(path).lower().endswith(".json") or is_keras(path)


def window_title(source: str | None, spec_title: str | None, modified: bool) -> str:
    """`name.stack.json* · Preset title — RNN Shape Explorer`; `Untitled` before a first save."""
    file_name = Path(source).name if source and not presets.is_preset(source) else None
    first = file_name or spec_title or "Untitled"
    rest = f" · {spec_title}" if file_name and spec_title else ""
    return f"{first}{'*' if modified else ''}{rest} — {APP_NAME}"


def keras_expressions(path: str | Path) -> list[str]:
    """The custom expressions that Keras would build from a .keras file's config, read without loading it."""
    from ..core import keras_archive
    try:
        found = keras_archive.classes(keras_archive.read_config(path))
    except ExplorerError:
        return []
    return list(dict.fromkeys(found.expressions.values()))


def new_document() -> StackSpec:
    """What New starts from: the default preset's stack, without its title and lesson."""
    spec = presets.load_preset(presets.DEFAULT)
    spec.title = spec.lesson = None
    spec.sequences = None
    return spec


# --- the default questions (tests replace them) ---

def ask_unsaved(parent: QWidget, name: str) -> str:
    box = QMessageBox(QMessageBox.Icon.Warning, "Unsaved changes",
                      f"Save the changes to {name} first?", parent=parent)
    box.setInformativeText("Your changes are lost if you don't save them.")
    box.setStandardButtons(QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                           | QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(QMessageBox.StandardButton.Save)
    answer = box.exec()
    if answer == QMessageBox.StandardButton.Save:
        return SAVE
    if answer == QMessageBox.StandardButton.Discard:
        return DISCARD
    return CANCEL


def show_alert(parent: QWidget, title: str, message: str) -> QMessageBox:
    """A message box that does not block: the window keeps working behind it."""
    box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, parent)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setWindowModality(Qt.WindowModality.NonModal)
    box.show()
    return box


class FileController(QObject):
    """The session's file: open/save/export, the unsaved-changes question, recent files and drops."""

    fileOpened = Signal(str)        # a stack or model shown in the window (its path)
    fileSaved = Signal(str)
    opened = Signal(object)         # ok (bool) of the latest open, also for .keras files read in the engine
    exported = Signal(object)       # the Reply of an export

    def __init__(self, session: Session, runs: RunScheduler, settings, parent: QWidget):
        super().__init__(parent)
        self.session = session
        self.runs = runs
        self.settings = settings
        self.parent_widget = parent
        self.ask_unsaved: Callable[[str], str] = lambda name: ask_unsaved(parent, name)
        self.ask_open_path: Callable[[], str | None] = self._ask_open_path
        self.ask_save_path: Callable[[str], str | None] = self._ask_save_path
        self.ask_export_path: Callable[[str], str | None] = self._ask_export_path
        self.ask_custom_objects: Callable[[str], str | None] = self._ask_custom_objects
        self.alert: Callable[[str, str], None] = lambda title, message: show_alert(parent, title, message)
        self._close_confirmed = False
        self._keras_request = 0         # the id of the .keras load awaited (older ones are dropped)
        self._keras_trust = False
        self._keras_path = ""
        self._keras_custom: str | None = None   # the file of custom layer classes the load runs first
        self._export_request = 0
        self._export_path: str | None = None
        self._build_actions()
        session.events.document.connect(self._document_loaded)
        session.events.modified.connect(self._modified_changed)
        self._accept_drops(parent)

    # --- the actions (the window's menus and toolbar place them) ---

    def _build_actions(self) -> None:
        def action(text: str, slot, shortcut=None, tip: str = "") -> QAction:
            made = QAction(text, self)
            made.triggered.connect(lambda _checked=False: slot())
            if shortcut is not None:
                made.setShortcut(shortcut)
            if tip:
                made.setToolTip(tip)
            return made

        self.new_action = action("&New", self.new, QKeySequence.StandardKey.New)
        self.open_action = action("Open…", self.open_dialog, QKeySequence.StandardKey.Open,
                                  "Open a stack (.stack.json) or a trained Keras model (.keras)")
        self.save_action = action("Save", self.save, QKeySequence.StandardKey.Save,
                                  "Save the stack and its sequences (Ctrl+S)")
        self.save_as_action = action("Save &As…", self.save_as, QKeySequence.StandardKey.SaveAs)
        self.export_keras_action = action("Export as .&keras…", self.export_keras, None,
                                          "Save the stack with its current weights as a Keras model file")
        self.quit_action = action("&Quit", self.parent_widget.close, QKeySequence("Ctrl+Q"))
        self.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        self.recent_menu = QMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self._fill_recent()

    def fill_menu(self, menu: QMenu) -> None:
        """The File menu's entries, in order."""
        for item in (self.new_action, self.open_action, self.recent_menu, None, self.save_action,
                     self.save_as_action, self.export_keras_action, None, self.quit_action):
            if item is None:
                menu.addSeparator()
            elif isinstance(item, QMenu):
                menu.addMenu(item)
            else:
                menu.addAction(item)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        files = prefs.recent_files(self.settings)
        for number, path in enumerate(files, start=1):
            name = Path(path).name
            action = self.recent_menu.addAction(f"&{number} {name}")
            action.setToolTip(path)
            action.setStatusTip(path)
            action.setData(path)
            action.triggered.connect(lambda _checked=False, p=path: self.open(p))
        if files:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear the list", self.clear_recent)
        else:
            self.recent_menu.addAction("(no recent files)").setEnabled(False)
        self.recent_menu.setEnabled(True)


    def clear_recent(self) -> None:
        prefs.clear_recent(self.settings)
        self._fill_recent()

    def _remember(self, path: str) -> None:
        prefs.add_recent(self.settings, path)
        self._fill_recent()

    # --- modified ---


    @property
    def modified(self) -> bool:
        return self.session.modified

    @property
    def source_file(self) -> str | None:
        """The stack file the document came from (not a preset, not a .keras model), or None."""
        source = self.session.source
        if source and not presets.is_preset(source) and not is_keras(source):
            return source
        return None

    def display_name(self) -> str:
        source = self.session.source
        if source and not presets.is_preset(source):
            return Path(source).name
        return self.session.document.title or "Untitled"

    def _modified_changed(self, modified: bool) -> None:
        if modified:
            self._close_confirmed = False

    def _document_loaded(self) -> None:
        self._keras_request = 0       # another document came first (a restored session, New…): drop the model

    # --- questions ---

    def maybe_discard(self) -> bool:
        """True when the current work may be replaced: saved, unmodified, a built-in preset or lesson (never the
        user's own: nothing to save), or the user said so."""
        source = self.session.source
        if not self.session.modified or (source and presets.is_preset(source)):
            return True
        name = self.display_name()
        if source and is_keras(source):        # Save writes a stack file beside the model: the question says so
            name += f" as {Path(self._suggested(STACK_SUFFIX)).name} (the model file itself is not changed)"
        answer = self.ask_unsaved(name)
        if answer == SAVE:
            return self.save()
        return answer == DISCARD

    def confirm_close(self) -> bool:
        if self._close_confirmed:
            return True
        self._close_confirmed = self.maybe_discard()
        return self._close_confirmed

    def _ask_open_path(self) -> str | None:
        start = str(Path(self.source_file).parent) if self.source_file else ""
        path, _ = QFileDialog.getOpenFileName(self.parent_widget, "Open a stack or a Keras model", start, OPEN_FILTER)
        return path or None

    def _ask_save_path(self, suggested: str) -> str | None:
        path, _ = QFileDialog.getSaveFileName(self.parent_widget, "Save the stack", suggested, "Stacks (*.stack.json)")
        return path or None

    def _ask_export_path(self, suggested: str) -> str | None:
        path, _ = QFileDialog.getSaveFileName(self.parent_widget, "Export as a Keras model", suggested,
                                              "Keras models (*.keras)")
        return path or None

    def _ask_custom_objects(self, message: str) -> str | None:
        """The user's file of custom layer classes, once they agreed that it runs as code; None: not loaded."""
        answer = QMessageBox.question(self.parent_widget, "Custom layer classes",
                                      f"{message}\n\nLoad them from a Python file? The file runs as code: choose "
                                      "it only if you trust it.")
        if answer != QMessageBox.StandardButton.Yes:
            return None
        path, _ = QFileDialog.getOpenFileName(self.parent_widget, "Load custom layer classes (runs this file)",
                                              str(Path(self._keras_path).parent), "Python files (*.py)")
        return path or None

    def fail(self, title: str, message: str) -> None:
        self.session.say(message, error=True)
        self.alert(title, message)

    # --- New / Open ---

    def new(self) -> bool:
        if not self.maybe_discard():
            return False
        self.session.load(new_document(), trusted=True, source=None)
        self.session.say("a new stack: edit it, then save it")
        return True

    def open_dialog(self) -> bool:
        if not self.maybe_discard():
            return False
        path = self.ask_open_path()
        return bool(path) and self.load(path)

    def open(self, path: str) -> bool:
        """Opens `path` after asking about unsaved changes (recent files, drops)."""
        if not self.maybe_discard():
            return False
        return self.load(path)

    def load(self, path: str) -> bool:
        """Shows `path` without asking (a .keras file arrives later, from the engine). False when refused."""
        path = str(path)
        if is_keras(path):
            self.load_keras(path)
            return True
        from ..core.spec import load
        try:
            spec = load(path)
        except SpecError as error:
            self._refused(path, error.message)
            return False
        self.session.load(spec, trusted=False, source=path)
        self._opened(path, f"opened {Path(path).name}")
        return True

    def _refused(self, path: str, message: str) -> None:
        self.fail("Cannot open the file", f"cannot open {Path(path).name}: {message}")
        if not Path(path).exists():
            prefs.remove_recent(self.settings, path)
            self._fill_recent()
        self.opened.emit(False)

    def _opened(self, path: str, status: str) -> None:
        self._remember(path)
        self.session.say(status)
        self.fileOpened.emit(path)
        self.opened.emit(True)

    def load_keras(self, path: str, trust: bool = False, custom_objects: str | None = None) -> None:
        """Reads a trained model in the engine (after the user's `custom_objects` file, when given); its reply
        comes back to `_keras_arrived`."""
        self._keras_trust = trust
        self._keras_path = path
        self._keras_custom = custom_objects
        self._keras_request = self.runs.submit(OPEN_KERAS, self._keras_arrived, path=path, trust=trust,
                                               custom_objects=custom_objects).id
        self.session.say(f"loading {Path(path).name} (a Keras model)…")

    def _keras_arrived(self, reply: Reply) -> None:
        if reply.id != self._keras_request:
            return
        self._keras_request = 0
        path = self._keras_path
        if not reply.ok:
            if UNKNOWN_CLASSES in (reply.error or "") and not self._keras_custom:
                chosen = self.ask_custom_objects(reply.error)
                if chosen:
                    self.load_keras(path, self._keras_trust, custom_objects=chosen)
                    return
            if not reply.cancelled:
                self._refused(path, reply.error or "the model could not be read")
            else:
                self.opened.emit(False)
            return
        status, value = reply.value
        if status == "trust":
            expressions = keras_expressions(path) or ["(a custom expression)"]
            if self.session.trust.confirm(expressions):
                self.load_keras(path, trust=True)
            else:
                self.session.say(f"not opened: {Path(path).name} holds a custom expression (Python code) "
                                        "that you did not agree to run", error=True)
                self.opened.emit(False)
            return
        spec, _weights, notes = value
        spec.sequences = self._text_for(spec)
        self.session.load(spec, trusted=self._keras_trust, source=path)
        count = len(spec.layers)
        message = f"opened {Path(path).name}: {count} layer{'s' if count != 1 else ''} with their trained weights"
        if notes:
            message += " · " + "; ".join(notes)
        self._opened(path, message)

    def _text_for(self, spec: StackSpec) -> str | None:
        """The editor's sequences when they fit the model's input, else None (the window's sample text)."""
        from ..core import sequences
        text = self.session.text
        if not text.strip():
            return None
        try:
            sequences.parse(text, spec.input)
        except SequenceError:
            return None
        return text

    # --- Save ---

    def save(self) -> bool:
        """Saves to the stack file the document came from, else asks where. False when not saved."""
        if self.source_file:
            return self.save_to(self.source_file)
        return self.save_as()

    def _suggested(self, suffix: str) -> str:
        source = self.session.source
        if source and not presets.is_preset(source):
            name = Path(source).name
            for old in (STACK_SUFFIX, *presets.MODEL_SUFFIXES, ".json"):
                if name.lower().endswith(old):
                    name = name[: -len(old)]
                    break
            return str(Path(source).with_name(name + suffix))
        if source and presets.is_preset(source):
            return source[len(presets.PREFIX):] + suffix
        return "stack" + suffix

    def save_as(self) -> bool:
        path = self.ask_save_path(self._suggested(STACK_SUFFIX))
        if not path:
            return False
        if not path.lower().endswith(".json"):
            path += STACK_SUFFIX
        return self.save_to(path)

    def save_to(self, path: str) -> bool:
        from ..core.spec import save
        try:
            save(self.session.spec(), path)
        except OSError as error:
            self.fail("Cannot save the stack", f"cannot save {path}: {error.strerror or error}")
            return False
        self.session.saved_as(str(path))
        self._remember(str(path))
        self.session.say(f"saved {path}")
        self.fileSaved.emit(str(path))
        return True

    # --- Export as .keras ---

    def export_keras(self, path: str | None = None) -> bool:
        """Saves the stack with its current weights (trained or seeded) as a .keras file, in the engine."""
        spec = self.session.spec()
        try:
            from_dict(to_dict(spec))
        except SpecError as error:
            self.fail("Cannot export", f"cannot export: {error.message}")
            return False
        if not self.session.trust.ensure(spec, ask_again=True):
            self.session.say("not exported: the stack has a custom expression that you have not agreed to run",
                          error=True)
            return False
        path = path or self.ask_export_path(self._suggested(KERAS_SUFFIX))
        if not path:
            return False
        if not path.lower().endswith(KERAS_SUFFIX):
            path += KERAS_SUFFIX
        self._export_path = path
        self._export_request = self.runs.submit(EXPORT_KERAS, self._export_arrived, spec=spec, path=path).id
        self.session.say(f"exporting {Path(path).name}…")
        return True

    def _export_arrived(self, reply: Reply) -> None:
        if reply.id != self._export_request:
            return
        self._export_request = 0
        if reply.ok:
            self.session.say(f"exported {reply.value} (a Keras model with the stack's current weights)")
        elif not reply.cancelled:
            self.fail("Cannot export", f"cannot export {Path(self._export_path or '').name}: {reply.error}")
        self.exported.emit(reply)

    # --- files dropped on the window ---

    def _accept_drops(self, window: QWidget) -> None:
        window.setAcceptDrops(True)
        window.installEventFilter(self)
        for child in window.findChildren(QWidget):   # text editors and plots take drops first: look there too
            if child.acceptDrops():
                child.installEventFilter(self)

    @staticmethod
    def dropped_files(mime) -> list[str]:
        if mime is None or not mime.hasUrls():
            return []
        return [url.toLocalFile() for url in mime.urls() if url.isLocalFile() and openable(url.toLocalFile())]

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            if self.dropped_files(event.mimeData()):
                event.acceptProposedAction()
                return True
        elif kind == QEvent.Type.Drop:
            files = self.dropped_files(event.mimeData())
            if files:
                event.acceptProposedAction()
                path = files[0]
                QTimer.singleShot(0, lambda: self.open(path))   # after the drag has finished
                return True
        return super().eventFilter(watched, event)

