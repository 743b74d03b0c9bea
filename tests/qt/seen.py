"""What a person sees in the window, read from its widgets (for the tests)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QTextCharFormat

from explorer.qt.style import padded_colours


def grid_size(editor) -> tuple[int, int]:
    model = editor.grid.model()
    return model.rowCount(), model.columnCount()


def grid_text(editor, row: int, column: int) -> str:
    model = editor.grid.model()
    return model.index(row, column).data()


def grid_row_header(editor, row: int) -> str:
    return editor.grid.model().headerData(row, Qt.Orientation.Vertical)


def padded_cells(editor) -> list[tuple[int, int]]:
    """(row, step) of the greyed cells: what a person sees as padding."""
    model = editor.grid.model()
    padded = QColor(padded_colours()[0])
    cells = []
    for row in range(model.rowCount()):
        for step in range(model.columnCount()):
            brush = model.index(row, step).data(Qt.ItemDataRole.BackgroundRole)
            if brush is not None and brush.color() == padded:
                cells.append((row, step))
    return cells


def underlined(editor) -> list[tuple[int, int, int]]:
    """(line, first column, last column + 1) of every value underlined in the text, 1-based."""
    ranges = []
    for selection in editor.text_edit.extraSelections():
        if selection.format.underlineStyle() == QTextCharFormat.UnderlineStyle.WaveUnderline:
            cursor = selection.cursor
            block = cursor.block()
            ranges.append((block.blockNumber() + 1, cursor.selectionStart() - block.position() + 1,
                           cursor.selectionEnd() - block.position() + 1))
    return ranges


def shapes_warnings(panel) -> list[str]:
    """The lines of the shapes panel's warnings list."""
    items = panel.warnings_list
    return [items.item(i).text() for i in range(items.count())]


def card_messages(card) -> str:
    """Every message on a layer card: its error (under the expression of a custom layer) and its warnings."""
    from explorer.qt.expression_editor import ExpressionEdit
    expression = card._widgets.get("expression")
    error = expression.run_error if isinstance(expression, ExpressionEdit) and expression.run_error else ""
    shown = "" if card.message_label.isHidden() else card.message_label.text()
    return "\n".join(part for part in (error, shown) if part)
