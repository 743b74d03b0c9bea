"""The sequence editor: one sequence per line, the batching controls, and the padded batch as a grid.

`SequenceEditor(session)` edits the session's sequence text and batching and follows its events. The
session checks the text at every keystroke (pure NumPy, no TensorFlow): every bad value is underlined
and listed at once, and the grid shows the padded batch of the text as it is now, whatever the engine
is doing. The cursor's line is the session's selected sequence.
"""

from __future__ import annotations

import copy

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPainter, QPalette, QTextCharFormat, QTextCursor, QTextFormat
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel,
                               QPlainTextEdit, QSizePolicy, QSpinBox, QStyle, QStyledItemDelegate,
                               QStyleOptionViewItem, QTabBar, QTableView, QTextEdit, QVBoxLayout, QWidget)

from ..core.errors import SequenceError
from ..core.sequences import describe_buckets
from ..core.spec import MAX_MAXLEN, Batching
from ..core.vocabulary import mask_token, shown_word, unknown_ids
from ..session import CHECKING, Session
from .style import ERROR_COLOUR, escape, mono_font, muted_colour, padded_colours, selected_tint

MODES = (("pad", "pad: one padded batch"), ("bucket", "bucket: group by length"),
         ("one_by_one", "one by one: no padding"), ("chunked", "chunked: windows, state carried"))
MAX_GRID_ROWS = 200
MAX_GRID_STEPS = 200
MAX_LISTED_ERRORS = 12     # errors listed under the text (all are underlined)
_SEPARATORS = " \t,;"


class _LineNumbers(QWidget):
    def __init__(self, editor: SequenceTextEdit):
        super().__init__(editor)
        self._editor = editor

    def sizeHint(self) -> QSize:
        return QSize(self._editor.line_number_width(), 0)

    def paintEvent(self, event) -> None:
        self._editor.paint_line_numbers(self, event)


class SequenceTextEdit(QPlainTextEdit):
    """A plain text editor with line numbers: sequences are named by their line everywhere."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setFont(mono_font(11))
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self._numbers = _LineNumbers(self)
        self.blockCountChanged.connect(self._update_margin)
        self.updateRequest.connect(self._scroll_numbers)
        self._update_margin()

    def line_number_width(self) -> int:
        digits = len(str(max(1, self.blockCount())))
        return 12 + self.fontMetrics().horizontalAdvance("9") * max(2, digits)

    def _update_margin(self, *_args) -> None:
        self.setViewportMargins(self.line_number_width(), 0, 0, 0)

    def _scroll_numbers(self, rect: QRect, dy: int) -> None:
        if dy:
            self._numbers.scroll(0, dy)
        else:
            self._numbers.update(0, rect.y(), self._numbers.width(), rect.height())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        area = self.contentsRect()
        self._numbers.setGeometry(QRect(area.left(), area.top(), self.line_number_width(), area.height()))

    def paint_line_numbers(self, widget: QWidget, event) -> None:
        painter = QPainter(widget)
        painter.fillRect(event.rect(), self.palette().window())
        painter.setPen(QColor(muted_colour()))
        block = self.firstVisibleBlock()
        top = round(self.blockBoundingGeometry(block).translated(self.contentOffset()).top())
        height = self.fontMetrics().height()
        while block.isValid() and top <= event.rect().bottom():
            if block.isVisible():
                painter.drawText(0, top, widget.width() - 6, height, Qt.AlignmentFlag.AlignRight,
                                 str(block.blockNumber() + 1))
            top += round(self.blockBoundingRect(block).height())
            block = block.next()
        painter.end()


class _GridDelegate(QStyledItemDelegate):
    """Shows the selected row as a light tint of each cell's own colour, so padded cells stay grey in it."""

    def initStyleOption(self, option: QStyleOptionViewItem, index) -> None:
        super().initStyleOption(option, index)
        if option.state & QStyle.StateFlag.State_Selected:
            option.state &= ~QStyle.StateFlag.State_Selected
            brush = option.backgroundBrush
            base = brush.color() if brush.style() != Qt.BrushStyle.NoBrush else option.palette.base().color()
            option.backgroundBrush = QBrush(selected_tint(base))


class _BatchModel(QAbstractTableModel):
    """The padded batch as a table model: cells are formatted when the view paints them, so showing a
    200 × 200 corner of a 256 × 1000 batch costs no more than a 3 × 7 one (a QTableWidget item per cell
    took half a second)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.batch: np.ndarray | None = None
        self.mask: np.ndarray | None = None
        self.lines: list[int] = []
        self.ids: np.ndarray | None = None    # words input: the ids of a current run, shown beside each word
        self.unknown = range(0)               # … and the ids of words outside the vocabulary, marked OOV
        self.rows = 0
        self.steps = 0

    def set_batch(self, batch, mask, lines, rows: int, steps: int, ids: np.ndarray | None = None,
                  unknown: range = range(0)) -> None:
        """Shows another batch: an edit that keeps the rows, the steps and the lines (a token typed over)
        repaints only the rows that changed; any other is a model reset. `unknown`: the ids of words outside the
        vocabulary."""
        changed = self._changed_rows(batch, mask, list(lines), rows, steps, ids)
        if changed is None:
            self.beginResetModel()
        self.batch, self.mask, self.lines, self.ids, self.unknown = batch, mask, list(lines), ids, unknown
        self.rows, self.steps = rows, steps
        if changed is None:
            self.endResetModel()
            return
        for row in changed:
            self.dataChanged.emit(self.index(row, 0), self.index(row, steps - 1))

    def _changed_rows(self, batch, mask, lines, rows: int, steps: int, ids) -> list[int] | None:
        """The rows shown that differ from the batch shown now, or None when the layout differs too."""
        old = self.batch
        if old is None or batch is None or (rows, steps, lines) != (self.rows, self.steps, self.lines) \
                or batch.shape != old.shape or batch.dtype != old.dtype or (ids is None) != (self.ids is None):
            return None
        pairs = [(old, batch), (self.mask, mask)] + ([(self.ids, ids)] if ids is not None else [])
        differs = np.zeros(rows, dtype=bool)
        for before, after in pairs:
            differs |= (before[:rows, :steps] != after[:rows, :steps]).reshape(rows, -1).any(axis=1)
        return [int(row) for row in np.flatnonzero(differs)]

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else self.rows

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else self.steps

    def text(self, row: int, step: int) -> str:
        value = self.batch[row, step]
        if self.batch.dtype == object:       # words: the text as typed ("" pads), with its id after a run
            if self.ids is not None and self.mask[row, step]:
                token = int(self.ids[row, step])
                return f"{shown_word(value)} ({token}{' OOV' if token in self.unknown else ''})"   # not in the vocabulary
            return shown_word(value)
        if self.batch.ndim == 2:
            return str(int(value))
        return " ".join(f"{v:.3g}" for v in np.ravel(value))

    def padded(self, row: int, step: int) -> bool:
        return not self.mask[row, step]

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or self.batch is None:
            return None
        row, step = index.row(), index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self.text(row, step)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignCenter)
        if role in (Qt.ItemDataRole.BackgroundRole, Qt.ItemDataRole.ForegroundRole):
            if not self.padded(row, step):
                return None             # the palette's base and text
            background, text = padded_colours()
            return QBrush(QColor(background if role == Qt.ItemDataRole.BackgroundRole else text))
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"line {self.lines[row]}, step {step}" + (": padding" if self.padded(row, step) else "")
        return None

    def headerData(self, section: int, orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return str(section)
        return f"line {self.lines[section]}" if section < len(self.lines) else None


class BatchGrid(QTableView):
    """The padded batch grid: a view of _BatchModel; `itemSelectionChanged` when the user picks a row."""

    itemSelectionChanged = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.batch_model = _BatchModel(self)
        self.setModel(self.batch_model)
        self.selectionModel().selectionChanged.connect(lambda *_: self.itemSelectionChanged.emit())
        self.horizontalHeader().setResizeContentsPrecision(40)   # column widths from a sample of rows


class SequenceEditor(QWidget):
    """Edits the session's sequence text and batching; shows every error and the padded batch."""

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self._batching = copy.deepcopy(session.document.batching)
        self._input = copy.deepcopy(session.document.input)
        self.errors: list[SequenceError] = []
        self.label_error: SequenceError | None = None   # a label that does not fit the head (training): runs go on
        self._current_line = 0
        self._grid_lines: list[int] = []
        self.shown_input: str | None = None     # the input whose text is shown (several inputs); None: the only one

        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(8)

        left = QVBoxLayout()
        left.setSpacing(2)
        caption = QLabel("<b>Sequences</b> — one per line; # starts a comment")
        caption.setWordWrap(True)
        left.addWidget(caption)
        self.input_tabs = QTabBar()   # one tab per input of a model of several inputs
        self.input_tabs.setToolTip("One sequence text per input of the model: line i of every input's text "
                                   "is one example")
        self.input_tabs.currentChanged.connect(self._input_picked)
        self.input_tabs.hide()
        left.addWidget(self.input_tabs)
        self.text_edit = SequenceTextEdit()
        self.text_edit.setPlainText(session.text)
        self._shown_text = session.text     # the editor's text, kept: reading 1 MB back from Qt takes milliseconds
        self.text_edit.setToolTip("Tokens: integer ids separated by spaces or commas (3 14 15, 9).\n"
                                  "Features: timesteps separated by ; and values by spaces (0.1 0.2; 0.3 0.4).\n"
                                  "Words: words separated by spaces (the cat sat).\n"
                                  "Labels for training after |: a class id (3 14 15 | 1), numbers for regression "
                                  "(| 0.5 -1), or one per step (| 0 1 1).")
        left.addWidget(self.text_edit, 1)
        self.error_label = QLabel("")
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.setStyleSheet(f"color:{ERROR_COLOUR}; font-weight:600")
        left.addWidget(self.error_label)
        layout.addLayout(left, 3)

        layout.addWidget(self._build_controls(), 0)

        right = QVBoxLayout()
        right.setSpacing(2)
        self._caption = "<b>Padded batch</b>"
        self.grid_caption = QLabel(self._caption)
        self.grid_caption.setWordWrap(True)
        right.addWidget(self.grid_caption)
        self.grid = BatchGrid()
        self.grid.setFont(mono_font())
        self.grid.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.grid.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.grid.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.grid.verticalHeader().setDefaultSectionSize(self.grid.fontMetrics().height() + 6)
        self.grid.horizontalHeader().setDefaultSectionSize(44)
        self.grid.setToolTip("The batch as the model receives it: rows are sequences (by editor line), columns "
                             "are timesteps; grey cells are padding")
        self.grid.setItemDelegate(_GridDelegate(self.grid))
        self.grid.itemSelectionChanged.connect(self._grid_row_picked)
        right.addWidget(self.grid, 1)
        layout.addLayout(right, 4)

        self.text_edit.textChanged.connect(self._text_changed)
        self.text_edit.cursorPositionChanged.connect(self._cursor_moved)
        session.events.text.connect(self._show_text)
        session.events.batching.connect(self._show_session_batching)
        session.events.stack.connect(self._show_session_batching)
        session.events.selection.connect(self._selection_changed)
        session.events.result.connect(self._result_changed)
        session.events.document.connect(self._show_input_tabs)
        session.events.stack.connect(self._show_input_tabs)
        self._show_input_tabs()
        self._show_text()

    # --- controls ---

    def _build_controls(self) -> QWidget:
        box = QWidget()
        box.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Preferred)
        form = QFormLayout(box)
        form.setContentsMargins(0, 18, 0, 0)
        form.setVerticalSpacing(4)
        self.mode_combo = QComboBox()
        for mode, label in MODES:
            self.mode_combo.addItem(label, mode)
        self.mode_combo.setToolTip("How the sequences are batched: with correct masking every mode gives the same "
                                   "outputs on the valid timesteps")
        self.padding_combo = QComboBox()
        self.truncating_combo = QComboBox()
        for combo in (self.padding_combo, self.truncating_combo):
            combo.addItem("post (at the end)", "post")
            combo.addItem("pre (at the start)", "pre")
        self.padding_combo.setToolTip("padding: where padding goes in short sequences")
        self.truncating_combo.setToolTip("truncating: which end of a sequence longer than maxlen is cut off")
        self.maxlen_spin = QSpinBox()
        self.maxlen_spin.setRange(0, MAX_MAXLEN)
        self.maxlen_spin.setSpecialValueText("none")
        self.maxlen_spin.setKeyboardTracking(False)
        self.maxlen_spin.setToolTip("maxlen: exactly this many steps, as keras.utils.pad_sequences: shorter "
                                    "sequences are padded up to it, longer ones truncated; none = the longest in "
                                    "the batch")
        self.pad_value_spin = QDoubleSpinBox()
        self.pad_value_spin.setKeyboardTracking(False)
        self.pad_value_spin.setToolTip("pad_value: the value written into padded steps (token id 0 is what "
                                       "mask_zero masks)")
        self.bucket_spin = QSpinBox()
        self.bucket_spin.setRange(1, MAX_MAXLEN)
        self.bucket_spin.setKeyboardTracking(False)
        self.bucket_spin.setToolTip("bucket_width: sequences whose lengths fall in the same window of this many "
                                    "steps share a batch")
        self.chunk_spin = QSpinBox()
        self.chunk_spin.setRange(1, MAX_MAXLEN)
        self.chunk_spin.setKeyboardTracking(False)
        self.chunk_spin.setToolTip("chunk: timesteps per window; the recurrent state is carried between windows")
        form.addRow("mode", self.mode_combo)
        form.addRow("padding", self.padding_combo)
        form.addRow("truncating", self.truncating_combo)
        form.addRow("maxlen", self.maxlen_spin)
        form.addRow("pad value", self.pad_value_spin)
        form.addRow("bucket width", self.bucket_spin)
        form.addRow("chunk", self.chunk_spin)
        self._show_batching()
        self.mode_combo.currentIndexChanged.connect(self._batching_edited)
        self.padding_combo.currentIndexChanged.connect(self._batching_edited)
        self.truncating_combo.currentIndexChanged.connect(self._batching_edited)
        for spin in (self.maxlen_spin, self.pad_value_spin, self.bucket_spin, self.chunk_spin):
            spin.valueChanged.connect(self._batching_edited)
        return box

    def _controls(self) -> tuple:
        return (self.mode_combo, self.padding_combo, self.truncating_combo, self.maxlen_spin, self.pad_value_spin,
                self.bucket_spin, self.chunk_spin)

    def _show_batching(self) -> None:
        b = self._batching
        for widget in self._controls():
            widget.blockSignals(True)
        self.mode_combo.setCurrentIndex(max(0, self.mode_combo.findData(b.mode)))
        self.padding_combo.setCurrentIndex(max(0, self.padding_combo.findData(b.padding)))
        self.truncating_combo.setCurrentIndex(max(0, self.truncating_combo.findData(b.truncating)))
        self.maxlen_spin.setValue(b.maxlen or 0)
        if self._input.kind == "words":
            self.pad_value_spin.setDecimals(0)
            self.pad_value_spin.setRange(0, 0)       # id 0 is the padding of the vocabulary
        elif self._input.kind == "tokens":
            self.pad_value_spin.setDecimals(0)
            self.pad_value_spin.setRange(0, max(0, (self._input.vocab_size or 1) - 1))
        else:
            self.pad_value_spin.setDecimals(3)
            self.pad_value_spin.setRange(-1e9, 1e9)
        self.pad_value_spin.setValue(float(b.pad_value))
        self.bucket_spin.setValue(b.bucket_width)
        self.chunk_spin.setValue(b.chunk)
        for widget in self._controls():
            widget.blockSignals(False)
        self.bucket_spin.setEnabled(b.mode == "bucket")
        self.chunk_spin.setEnabled(b.mode == "chunked")
        self.pad_value_spin.setEnabled(self._input.kind != "words")
        if not self._input.has_steps:   # one vector per example: nothing to pad, truncate or split
            for widget in self._controls():
                widget.setEnabled(False)

    def _batching_edited(self) -> None:
        pad = self.pad_value_spin.value()
        self._batching = Batching(
            mode=self.mode_combo.currentData(), padding=self.padding_combo.currentData(),
            truncating=self.truncating_combo.currentData(), maxlen=self.maxlen_spin.value() or None,
            pad_value=int(round(pad)) if self._input.kind != "features" else pad,
            bucket_width=self.bucket_spin.value(), chunk=self.chunk_spin.value())
        self.bucket_spin.setEnabled(self._batching.mode == "bucket")
        self.chunk_spin.setEnabled(self._batching.mode == "chunked")
        self.session.set_batching(copy.deepcopy(self._batching))

    # --- state ---

    def text(self) -> str:
        return self.text_edit.toPlainText()


    @property
    def error(self) -> SequenceError | None:
        """The first error of the text, or None."""
        return self.errors[0] if self.errors else None

    def _show_session_batching(self) -> None:
        document = self.session.document
        if document.batching != self._batching or document.input != self._input:
            self._batching = copy.deepcopy(document.batching)
            self._input = copy.deepcopy(document.input)
            self._show_batching()

    def _text_changed(self) -> None:
        self._shown_text = self.text()
        self.session.set_text(self._shown_text, self.shown_input)

    def _show_input_tabs(self) -> None:
        """A tab per input, named by it, when the model takes several; none (one editor) otherwise."""
        document = self.session.document
        names = [item.name for item in document.all_inputs()] if document.more_inputs else []
        if names == [self.input_tabs.tabText(i) for i in range(self.input_tabs.count())]:
            return
        self.input_tabs.blockSignals(True)
        while self.input_tabs.count():
            self.input_tabs.removeTab(0)
        for name in names:
            self.input_tabs.addTab(name)
        self.input_tabs.blockSignals(False)
        self.input_tabs.setVisible(bool(names))
        self.shown_input = names[0] if names else None
        self._show_text()

    def _input_picked(self, index: int) -> None:
        self.shown_input = self.input_tabs.tabText(index) if index >= 0 else None
        self._show_text()

    def _shows_first_input(self) -> bool:
        """The editor's lines are the sequences the plots name (the first input's)."""
        return self.shown_input is None or self.shown_input == self.session.document.input.name

    def _show_text(self) -> None:
        """The session's text, its errors (all underlined, listed under it) and its padded batch."""
        text = self.session.text_of(self.shown_input)
        if text != self._shown_text:
            self.text_edit.blockSignals(True)
            self.text_edit.setPlainText(text)
            self.text_edit.blockSignals(False)
            self._shown_text = text
        check = self.session.check_of(self.shown_input)
        self.errors = list(check.errors)
        self.label_error = None
        listed = [f"✖ {escape(error.message)}" for error in self.errors[:MAX_LISTED_ERRORS]]
        if len(self.errors) > MAX_LISTED_ERRORS:
            listed.append(f"… and {len(self.errors) - MAX_LISTED_ERRORS} more, underlined in the text")
        self.error_label.setText("<br>".join(listed))
        self.error_label.setVisible(bool(self.errors))
        self._highlight()
        self._show_grid()

    def show_label_error(self, error: SequenceError) -> None:
        """Underlines a label that does not fit the head (found when training starts); the next edit clears it."""
        self.label_error = error
        self.error_label.setText(f"✖ {escape(error.message)}")
        self.error_label.setVisible(True)
        self._highlight()

    def _highlight(self) -> None:
        selections = []
        current = QTextEdit.ExtraSelection()
        tint = self.palette().color(QPalette.ColorRole.Highlight)   # light or dark: a faint band either way
        tint.setAlpha(40)
        current.format.setBackground(tint)
        current.format.setProperty(QTextFormat.Property.FullWidthSelection, True)
        current.cursor = self.text_edit.textCursor()
        current.cursor.clearSelection()
        selections.append(current)
        selections += [self._error_selection(error) for error in self.errors]
        if self.label_error is not None and not self.errors:
            selections.append(self._error_selection(self.label_error))
        self.text_edit.setExtraSelections(selections)

    def _error_selection(self, error: SequenceError) -> QTextEdit.ExtraSelection:
        document = self.text_edit.document()
        block = document.findBlockByNumber(max(0, error.line - 1))
        line = block.text()
        start = min(max(0, error.column - 1), len(line))
        end = start
        while end < len(line) and line[end] not in _SEPARATORS:
            end += 1
        if end == start:
            end = min(len(line), start + 1)
        cursor = QTextCursor(block)
        cursor.setPosition(block.position() + start)
        cursor.setPosition(block.position() + end, QTextCursor.MoveMode.KeepAnchor)
        selection = QTextEdit.ExtraSelection()
        selection.cursor = cursor
        fmt = QTextCharFormat()
        fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.WaveUnderline)
        fmt.setUnderlineColor(QColor(ERROR_COLOUR))
        fmt.setToolTip(error.problem)
        selection.format = fmt
        return selection



    # --- the current line ---

    def _cursor_moved(self) -> None:
        self._highlight()
        line = self.text_edit.textCursor().blockNumber() + 1
        if line != self._current_line:
            self._current_line = line
            self._select_grid_row(line)
            if self._shows_first_input():
                self.session.select_line(line)

    @property
    def current_line(self) -> int:
        return self.text_edit.textCursor().blockNumber() + 1

    def _selection_changed(self) -> None:
        if not self._shows_first_input():
            return
        line = self.session.selected_line
        if line is not None and line != self._current_line:
            self.select_line(line)
        elif line is not None:
            self._select_grid_row(line)

    def select_line(self, line: int) -> None:
        """Moves the cursor to the start of `line` (1-based) without selecting it in the session."""
        block = self.text_edit.document().findBlockByNumber(line - 1)
        if not block.isValid():
            return
        self._current_line = line
        self.text_edit.blockSignals(True)
        cursor = self.text_edit.textCursor()
        cursor.setPosition(block.position())
        self.text_edit.setTextCursor(cursor)
        self.text_edit.blockSignals(False)
        self.text_edit.ensureCursorVisible()
        self._highlight()
        self._select_grid_row(line)

    # --- the grid ---

    def _show_grid(self) -> None:
        """The padded batch of the text as it is: rows = sequences (by editor line), columns = timesteps,
        padding greyed; empty, with the reason, while the text has errors."""
        check = self.session.check_of(self.shown_input)
        batch, mask = check.batch, check.mask
        self.grid.blockSignals(True)
        self._grid_lines = list(check.lines)
        if batch is None or mask is None:
            self.grid.batch_model.set_batch(None, None, [], 0, 0)
            why = "fix the errors in the text to see it" if check.errors else CHECKING if check.checking else ""
            self.grid_caption.setText("<b>Padded batch</b>" + (f" — {why}" if why else ""))
            self.grid.blockSignals(False)
            return
        rows = min(batch.shape[0], MAX_GRID_ROWS)
        steps = min(batch.shape[1], MAX_GRID_STEPS)
        tokens = batch.ndim == 2 and batch.dtype != object
        vocabulary = self.session.result.vocabulary if self.session.result is not None else None
        shown = self.session.document.input_named(self.shown_input)
        self.grid.batch_model.set_batch(batch, mask, check.lines, rows, steps, self._word_ids(batch),
                                        unknown_ids(vocabulary, mask_token(shown)) if vocabulary else range(0))
        if not tokens:
            self.grid.resizeColumnsToContents()   # a model reset gives the columns their default width
        cut = []
        if batch.shape[0] > rows:
            cut.append(f"first {rows} of {batch.shape[0]} sequences")
        if batch.shape[1] > steps:
            cut.append(f"first {steps} of {batch.shape[1]} steps")
        padded = 100 * float(1 - mask.mean()) if mask.size else 0.0
        if shown.has_steps:
            self._caption = f"<b>Padded batch</b> {batch.shape[0]} × {batch.shape[1]} — {padded:.0f}% padding (grey)"
        elif shown.kind == "words":   # a bag of words: the words of each text, which the model gets as one vector
            self._caption = (f"<b>Texts</b> {batch.shape[0]} — each one {shown.output_mode} vector of "
                             f"{shown.vocab_size} values over the vocabulary, no timesteps; its words:")
        else:
            self._caption = (f"<b>Vectors</b> {batch.shape[0]} × {batch.shape[2]} — one per example, no timesteps, "
                             "nothing padded")
        self._caption += f" — showing {', '.join(cut)}" if cut else ""
        self._show_caption()
        self.grid.blockSignals(False)
        if self.session.selected_line is not None and self._shows_first_input():
            self._select_grid_row(self.session.selected_line)

    def _result_changed(self) -> None:
        if self.session.document.input.kind == "words":      # the ids beside the words come from a current run
            self._show_grid()
        elif self.session.check_of(self.shown_input).batch is not None:
            self._show_caption()

    def _show_caption(self) -> None:
        """The grid's caption, and in bucket mode the buckets as the current run ran them."""
        result = self.session.result
        ran = result is not None and self.session.state.current and result.buckets \
            and result.lines == self.session.text_check.lines
        self.grid_caption.setText(self._caption + (f"<br>{escape(describe_buckets(result.buckets))}" if ran else ""))

    def _word_ids(self, batch: np.ndarray) -> np.ndarray | None:
        """The ids of the words when the session's result is current (it ran this very text)."""
        result = self.session.result
        if batch.dtype != object or result is None or not self.session.state.current \
                or not self._shows_first_input() or result.vocabulary is None or result.input.shape != batch.shape:
            return None
        return result.input


    def _select_grid_row(self, line: int) -> None:
        """Highlights the grid row of `line`; a line that is no sequence (a comment) leaves the highlight."""
        if line in self._grid_lines and self._grid_lines.index(line) < self.grid.batch_model.rows:
            self.grid.blockSignals(True)
            self.grid.selectRow(self._grid_lines.index(line))
            self.grid.blockSignals(False)


    def _grid_row_picked(self) -> None:
        rows = self.grid.selectionModel().selectedRows()
        if rows and rows[0].row() < len(self._grid_lines):
            line = self._grid_lines[rows[0].row()]
            self.select_line(line)
            if self._shows_first_input():
                self.session.select_line(line)
