"""The sequence editor: one sequence per line, the batching controls, and the padded batch as a grid.

`SequenceEditor(text, batching, input_spec)` edits the sequence text and the batching. The text is
parsed on the GUI thread (`sequences.parse` is pure NumPy) so a bad value is underlined at once; the
grid shows the padded batch of the last run (`show_batch`).
"""

from __future__ import annotations

import copy

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPainter, QPalette, QTextCharFormat, QTextCursor, QTextFormat
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel,
                               QPlainTextEdit, QSizePolicy, QSpinBox, QStyle, QStyledItemDelegate,
                               QStyleOptionViewItem, QTableView, QTableWidgetItem, QTextEdit, QVBoxLayout, QWidget)

from ..core import sequences
from ..core.errors import SequenceError
from ..core.spec import MAX_MAXLEN, Batching, InputSpec
from .style import ERROR_COLOUR, MUTED_COLOUR, PADDED_BACKGROUND, PADDED_TEXT, SELECTED_BORDER, escape, mono_font

MODES = (("pad", "pad: one padded batch"), ("bucket", "bucket: group by length"),
         ("one_by_one", "one by one: no padding"), ("chunked", "chunked: windows, state carried"))
MAX_GRID_ROWS = 200
MAX_GRID_STEPS = 200
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
        painter.setPen(QColor(MUTED_COLOUR))
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
            tint = QColor(SELECTED_BORDER)
            mixed = QColor(*(int(0.75 * b + 0.25 * t) for b, t in zip(base.getRgb()[:3], tint.getRgb()[:3])))
            option.backgroundBrush = QBrush(mixed)


class _BatchModel(QAbstractTableModel):
    """The padded batch as a table model: cells are formatted when the view paints them, so showing a
    200 × 200 corner of a 256 × 1000 batch costs no more than a 3 × 7 one (a QTableWidget item per cell
    took half a second)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.batch: np.ndarray | None = None
        self.mask: np.ndarray | None = None
        self.lines: list[int] = []
        self.vocabulary: list[str] | None = None
        self.rows = 0
        self.steps = 0
        self._padded_brush = QBrush(QColor(PADDED_BACKGROUND))
        self._padded_text = QBrush(QColor(PADDED_TEXT))

    def set_batch(self, batch, mask, lines, vocabulary, rows: int, steps: int) -> None:
        self.beginResetModel()
        self.batch, self.mask, self.lines, self.vocabulary = batch, mask, list(lines), vocabulary
        self.rows, self.steps = rows, steps
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else self.rows

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else self.steps

    def text(self, row: int, step: int) -> str:
        value = self.batch[row, step]
        tokens = self.batch.ndim == 2
        text = str(int(value)) if tokens else " ".join(f"{v:.3g}" for v in np.ravel(value))
        vocabulary = self.vocabulary
        if vocabulary is not None and tokens and 0 < int(value) < len(vocabulary):
            text = f"{vocabulary[int(value)]} ({text})"
        return text

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
        if role == Qt.ItemDataRole.BackgroundRole:
            return self._padded_brush if self.padded(row, step) else None
        if role == Qt.ItemDataRole.ForegroundRole:
            return self._padded_text if self.padded(row, step) else None
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
    """The padded batch grid: a view of _BatchModel. Keeps the few QTableWidget calls callers use (rowCount,
    columnCount, item, verticalHeaderItem, itemSelectionChanged); items are made on request."""

    itemSelectionChanged = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.batch_model = _BatchModel(self)
        self.setModel(self.batch_model)
        self.selectionModel().selectionChanged.connect(lambda *_: self.itemSelectionChanged.emit())
        self.horizontalHeader().setResizeContentsPrecision(40)   # column widths from a sample of rows

    def rowCount(self) -> int:
        return self.batch_model.rows

    def columnCount(self) -> int:
        return self.batch_model.steps

    def item(self, row: int, column: int) -> QTableWidgetItem | None:
        model = self.batch_model
        if not (0 <= row < model.rows and 0 <= column < model.steps):
            return None
        item = QTableWidgetItem(model.text(row, column))
        item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
        item.setToolTip(model.data(model.index(row, column), Qt.ItemDataRole.ToolTipRole))
        if model.padded(row, column):
            item.setBackground(QColor(PADDED_BACKGROUND))
            item.setForeground(QColor(PADDED_TEXT))
        return item

    def verticalHeaderItem(self, row: int) -> QTableWidgetItem | None:
        if not 0 <= row < self.batch_model.rows:
            return None
        return QTableWidgetItem(self.batch_model.headerData(row, Qt.Orientation.Vertical))


class SequenceEditor(QWidget):
    """Edits the sequence text and the batching; emits `textEdited`, `batchingChanged` and `lineSelected`."""

    textEdited = Signal(str)
    batchingChanged = Signal(object)   # a new Batching
    lineSelected = Signal(int)         # the editor line (1-based) the cursor moved to

    def __init__(self, text: str, batching: Batching, input_spec: InputSpec, parent: QWidget | None = None):
        super().__init__(parent)
        self._batching = copy.deepcopy(batching)
        self._input = copy.deepcopy(input_spec)
        self.error: SequenceError | None = None
        self.label_error: SequenceError | None = None   # labels that do not fit the head (training): runs go on
        self.parsed: sequences.Sequences | None = None
        self._current_line = 0
        self._grid_lines: list[int] = []

        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(8)

        left = QVBoxLayout()
        left.setSpacing(2)
        caption = QLabel("<b>Sequences</b> — one per line; # starts a comment")
        left.addWidget(caption)
        self.text_edit = SequenceTextEdit()
        self.text_edit.setPlainText(text)
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
        self.grid_caption = QLabel("<b>Padded batch</b>")
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
        self._reparse()

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
        self.maxlen_spin.setToolTip("maxlen: longer sequences are truncated; none = the longest in the batch")
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

    def _batching_edited(self) -> None:
        pad = self.pad_value_spin.value()
        self._batching = Batching(
            mode=self.mode_combo.currentData(), padding=self.padding_combo.currentData(),
            truncating=self.truncating_combo.currentData(), maxlen=self.maxlen_spin.value() or None,
            pad_value=int(round(pad)) if self._input.kind != "features" else pad,
            bucket_width=self.bucket_spin.value(), chunk=self.chunk_spin.value())
        self.bucket_spin.setEnabled(self._batching.mode == "bucket")
        self.chunk_spin.setEnabled(self._batching.mode == "chunked")
        self.batchingChanged.emit(copy.deepcopy(self._batching))

    # --- state ---

    def text(self) -> str:
        return self.text_edit.toPlainText()

    def batching(self) -> Batching:
        return copy.deepcopy(self._batching)

    def set_state(self, text: str, batching: Batching, input_spec: InputSpec) -> None:
        """Shows another document (undo, a preset, a file) without emitting signals."""
        self._batching = copy.deepcopy(batching)
        self._input = copy.deepcopy(input_spec)
        self._show_batching()
        if text != self.text():
            self.text_edit.blockSignals(True)
            self.text_edit.setPlainText(text)
            self.text_edit.blockSignals(False)
        self._reparse()

    def set_input(self, input_spec: InputSpec) -> None:
        """The stack's input changed (tokens ↔ features, vocabulary): re-checks the text and the pad value."""
        self._input = copy.deepcopy(input_spec)
        self._show_batching()
        if self.pad_value_spin.value() != self._batching.pad_value:
            self._batching_edited()      # the pad value no longer fits (words pad with 0, a smaller vocabulary)
        self._reparse()

    # --- parsing ---

    def _text_changed(self) -> None:
        self._reparse()
        self.textEdited.emit(self.text())

    def show_label_error(self, error: SequenceError | None) -> None:
        """Underlines a label that does not fit the head (found when training starts); the next edit clears it."""
        self.label_error = error
        self._show_error()

    def _reparse(self) -> None:
        self.label_error = None
        try:
            self.parsed = sequences.parse(self.text(), self._input)
            self.error = None
        except SequenceError as error:
            self.parsed = None
            self.error = error
        self._show_error()

    def _show_error(self) -> None:
        shown = self.error or self.label_error
        self.error_label.setText(f"✖ {escape(shown.message)}" if shown else "")
        self.error_label.setVisible(shown is not None)
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
        if self.error is not None or self.label_error is not None:
            selections.append(self._error_selection(self.error or self.label_error))
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

    @property
    def error_range(self) -> tuple[int, int, int] | None:
        """(line, first column, last column + 1) of the underlined value, 1-based; None when the text is fine."""
        for selection in self.text_edit.extraSelections():
            if selection.format.underlineStyle() == QTextCharFormat.UnderlineStyle.WaveUnderline:
                cursor = selection.cursor
                block = cursor.block()
                return (block.blockNumber() + 1, cursor.selectionStart() - block.position() + 1,
                        cursor.selectionEnd() - block.position() + 1)
        return None

    # --- the current line ---

    def _cursor_moved(self) -> None:
        self._highlight()
        line = self.text_edit.textCursor().blockNumber() + 1
        if line != self._current_line:
            self._current_line = line
            self._select_grid_row(line)
            self.lineSelected.emit(line)

    @property
    def current_line(self) -> int:
        return self.text_edit.textCursor().blockNumber() + 1

    def select_line(self, line: int) -> None:
        """Moves the cursor to the start of `line` (1-based) without emitting `lineSelected`."""
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

    def show_batch(self, batch: np.ndarray | None, mask: np.ndarray | None, lines: list[int],
                   vocabulary: list[str] | None = None) -> None:
        """The padded batch as run: rows = sequences (by editor line), columns = timesteps, padding greyed.
        With a `vocabulary` (words input) each id is shown with its word."""
        self.grid.blockSignals(True)
        self._grid_lines = list(lines)
        if batch is None or mask is None:
            self.grid.batch_model.set_batch(None, None, [], None, 0, 0)
            self.grid_caption.setText("<b>Padded batch</b>")
            self.grid.blockSignals(False)
            return
        rows = min(batch.shape[0], MAX_GRID_ROWS)
        steps = min(batch.shape[1], MAX_GRID_STEPS)
        tokens = batch.ndim == 2
        self.grid.batch_model.set_batch(batch, mask, lines, vocabulary, rows, steps)
        if not tokens or vocabulary is not None:
            self.grid.resizeColumnsToContents()   # a model reset gives token columns their default width
        cut = []
        if batch.shape[0] > rows:
            cut.append(f"first {rows} of {batch.shape[0]} sequences")
        if batch.shape[1] > steps:
            cut.append(f"first {steps} of {batch.shape[1]} steps")
        padded = 100 * float(1 - mask.mean()) if mask.size else 0.0
        self.grid_caption.setText(f"<b>Padded batch</b> {batch.shape[0]} × {batch.shape[1]}"
                                  f" — {padded:.0f}% padding (grey)" + (f" — showing {', '.join(cut)}" if cut else ""))
        self.grid.blockSignals(False)
        self._select_grid_row(self.current_line)

    def padded_cells(self) -> list[tuple[int, int]]:
        """(row, step) of the greyed cells: what a person sees as padding."""
        model = self.grid.batch_model
        padded = QColor(PADDED_BACKGROUND)
        cells = []
        for row in range(model.rows):
            for step in range(model.steps):
                brush = model.data(model.index(row, step), Qt.ItemDataRole.BackgroundRole)
                if brush is not None and brush.color() == padded:
                    cells.append((row, step))
        return cells

    def _select_grid_row(self, line: int) -> None:
        """Highlights the grid row of `line`; a line that is no sequence (a comment) leaves the highlight."""
        if line in self._grid_lines and self._grid_lines.index(line) < self.grid.rowCount():
            self.grid.blockSignals(True)
            self.grid.selectRow(self._grid_lines.index(line))
            self.grid.blockSignals(False)

    def mark_line(self, line: int) -> None:
        """Highlights the sequence on `line` in the grid (what the plots show) without moving the cursor."""
        self._select_grid_row(line)

    def _grid_row_picked(self) -> None:
        rows = self.grid.selectionModel().selectedRows()
        if rows and rows[0].row() < len(self._grid_lines):
            line = self._grid_lines[rows[0].row()]
            self.select_line(line)
            self.lineSelected.emit(line)
