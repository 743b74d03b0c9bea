"""The Help menu's windows: the lessons (every preset with its title and lesson, as a course: padding →
masks → pooling → stacking → bidirectional → batching modes), the keyboard shortcuts (read from the
window's own actions, so the list is never out of date) and About."""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QDialogButtonBox, QHeaderView, QLabel, QListWidget,
                               QListWidgetItem, QMessageBox, QPushButton, QSplitter, QTableWidget, QTableWidgetItem,
                               QTextBrowser, QVBoxLayout, QWidget)

from .. import __version__
from ..core import course, presets
from .style import escape

HOMEPAGE_NOTE = "Shapes, padding and masks inside recurrent networks, live, on your own input."


def lessons() -> list[tuple[str, str, str]]:
    """(preset name, title, lesson) for every built-in stack, in course order."""
    found = []
    for name in course.names() + course.uncovered():
        spec = presets.load_preset(name)
        found.append((name, spec.title or name, spec.lesson or ""))
    return found


class LessonsDialog(QDialog):
    """Every preset by title; the lesson of the selected one beside the list. Open (or a double click)
    loads it with `open_preset(name)`."""

    presetOpened = Signal(str)

    def __init__(self, open_preset: Callable[[str], None], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Lessons")
        self.resize(820, 480)
        self._open_preset = open_preset
        layout = QVBoxLayout(self)
        intro = QLabel("A course in six parts: padding, masks, pooling, stacking, bidirectional, batching modes. "
                       "Each lesson shows one thing; open it, then go on with Next on the lesson banner.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        self.list = QListWidget()
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setSpacing(2)
        section = None
        for number, (name, title, lesson) in enumerate(lessons(), start=1):
            found = course.lesson(name)
            heading = found.section if found else "More"
            if heading != section:
                section = heading
                header = QListWidgetItem(heading)
                header.setFlags(Qt.ItemFlag.NoItemFlags)          # a heading: not a lesson to open
                font = header.font()
                font.setBold(True)
                header.setFont(font)
                self.list.addItem(header)
            item = QListWidgetItem(f"{number}. {title}")
            item.setData(Qt.ItemDataRole.UserRole, name)
            item.setToolTip(f"preset:{name}")
            self.list.addItem(item)
        self.text = QTextBrowser()
        self.text.setOpenExternalLinks(False)
        splitter.addWidget(self.list)
        splitter.addWidget(self.text)
        splitter.setSizes([300, 520])
        layout.addWidget(splitter, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.open_button = QPushButton("Open this stack")
        self.open_button.setDefault(True)
        buttons.addButton(self.open_button, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.rejected.connect(self.reject)
        self.open_button.clicked.connect(self.open_selected)
        layout.addWidget(buttons)
        self.list.currentItemChanged.connect(self._show_lesson)
        self.list.itemDoubleClicked.connect(lambda _item: self.open_selected())
        if self.list.count():
            self.list.setCurrentRow(1)      # the first lesson, under its heading

    def select(self, name: str) -> None:
        for row in range(self.list.count()):
            if self.list.item(row).data(Qt.ItemDataRole.UserRole) == name:
                self.list.setCurrentRow(row)

    @property
    def selected(self) -> str | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def _show_lesson(self, item: QListWidgetItem | None, _previous=None) -> None:
        self.open_button.setEnabled(item is not None)
        if item is None:
            self.text.clear()
            return
        name = item.data(Qt.ItemDataRole.UserRole)
        if not name:
            self.open_button.setEnabled(False)
            self.text.clear()
            return
        spec = presets.load_preset(name)
        found = course.lesson(name)
        layers = " → ".join(escape(layer.type) for layer in spec.layers)
        self.text.setHtml(f"<h3>{escape(spec.title or name)}</h3>"
                          f"<p>{escape(spec.lesson or 'No lesson for this stack.')}</p>"
                          + (f"<p><b>Where to look:</b> {escape(found.look)}</p>" if found else "") +
                          f"<p style='color:gray'>Stack: {escape(spec.input.kind)} → {layers}<br>"
                          f"Batching: {escape(spec.batching.mode)}, padding {escape(spec.batching.padding)}<br>"
                          f"Also on the command line: <code>preset:{escape(name)}</code></p>")

    def open_selected(self) -> None:
        name = self.selected
        if name and self._open_preset(name) is not False:
            self.presetOpened.emit(name)
            self.accept()


def shortcut_rows(actions: list[QAction]) -> list[tuple[str, str]]:
    """(what, keys) for every action with a shortcut, in the order given, without repeats."""
    rows, seen = [], set()
    for action in actions:
        keys = [s.toString(QKeySequence.SequenceFormat.NativeText) for s in action.shortcuts() if not s.isEmpty()]
        what = (action.iconText() or action.text()).replace("&", "").rstrip("…").strip()
        if not keys or (what, tuple(keys)) in seen:
            continue
        seen.add((what, tuple(keys)))
        rows.append((what, ", ".join(keys)))
    return rows


class ShortcutsDialog(QDialog):
    def __init__(self, actions: list[QAction], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.resize(480, 520)
        layout = QVBoxLayout(self)
        self.rows = shortcut_rows(actions)
        self.table = QTableWidget(len(self.rows), 2)
        self.table.setHorizontalHeaderLabels(("action", "keys"))
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.setShowGrid(False)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        for row, (what, keys) in enumerate(self.rows):
            self.table.setItem(row, 0, QTableWidgetItem(what))
            self.table.setItem(row, 1, QTableWidgetItem(keys))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        layout.addWidget(self.table, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)


def about_text() -> str:
    import PySide6
    return (f"<h3>RNN Shape Explorer {escape(__version__)}</h3>"
            f"<p>{escape(HOMEPAGE_NOTE)}</p>"
            "<p>Assemble an embedding → RNN → head stack, type variable-length sequences and watch every layer's "
            "per-timestep outputs, the masks, every shape and the size that reaches the fully connected layer.</p>"
            f"<p style='color:gray'>Qt for Python {escape(PySide6.__version__)}; TensorFlow and Keras run in a "
            "worker thread. MIT licence.</p>")


def about_box(parent: QWidget | None) -> QMessageBox:
    """The About box (not yet shown: `open()` it)."""
    box = QMessageBox(parent)
    box.setWindowTitle("About RNN Shape Explorer")
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setText(about_text())
    box.setStandardButtons(QMessageBox.StandardButton.Close)
    if parent is not None and not parent.windowIcon().isNull():
        box.setIconPixmap(parent.windowIcon().pixmap(64, 64))
    return box
