"""The shapes panel: the FC input shape and where it comes from, every layer's shapes, the warnings."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (QAbstractItemView, QFrame, QHBoxLayout, QHeaderView, QLabel, QListWidget,
                               QListWidgetItem, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from ..core.diagnose import format_shape
from .style import ERROR_COLOUR, MASK_ROLES, MUTED_COLOUR, WARNING_COLOUR, escape, mask_role_colour, mono_font

COLUMNS = ("layer", "symbolic", "this batch", "mask", "params")


class ShapesPanel(QWidget):
    """Shows a RunResult's shapes; emits `layerSelected` when a row is clicked."""

    layerSelected = Signal(str)
    leakCheckRequested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.result = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(6)

        self.fc_box = QFrame()
        self.fc_box.setObjectName("fcBox")
        self.fc_box.setStyleSheet("QFrame#fcBox { border:1px solid palette(mid); border-radius:6px; "
                                  "background:palette(base); }")
        fc_layout = QVBoxLayout(self.fc_box)
        fc_layout.setContentsMargins(10, 8, 10, 8)
        fc_layout.setSpacing(2)
        self.fc_title_label = QLabel("FC input")
        self.fc_title_label.setStyleSheet(f"color:{MUTED_COLOUR}; font-weight:600")
        fc_layout.addWidget(self.fc_title_label)
        self.fc_shape_label = QLabel("…")
        font = mono_font()
        font.setPointSizeF(max(font.pointSizeF(), 10) * 1.7)
        font.setWeight(QFont.Weight.Bold)
        self.fc_shape_label.setFont(font)
        self.fc_shape_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        fc_layout.addWidget(self.fc_shape_label)
        self.fc_batch_label = QLabel("")
        self.fc_batch_label.setFont(mono_font())
        fc_layout.addWidget(self.fc_batch_label)
        self.fc_explanation_label = QLabel("")
        self.fc_explanation_label.setWordWrap(True)
        self.fc_explanation_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        fc_layout.addWidget(self.fc_explanation_label)
        layout.addWidget(self.fc_box)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)   # whole names: scrolled, not cut
        header.setStretchLastSection(True)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.table.itemSelectionChanged.connect(self._row_picked)
        layout.addWidget(self.table, 0)

        warnings_row = QHBoxLayout()
        self.warnings_title = QLabel("<b>Warnings</b>")
        warnings_row.addWidget(self.warnings_title)
        warnings_row.addStretch(1)
        self.leak_button = QPushButton("Leak check")
        self.leak_button.setToolTip("Runs each sequence alone, unpadded, and compares every layer with the padded "
                                    "run on the valid steps: does padding leak into the results?")
        self.leak_button.clicked.connect(self.leakCheckRequested)
        warnings_row.addWidget(self.leak_button)
        layout.addLayout(warnings_row)
        self.leak_label = QLabel("")
        self.leak_label.setWordWrap(True)
        self.leak_label.hide()
        layout.addWidget(self.leak_label)
        self.warnings_list = QListWidget()
        self.warnings_list.setWordWrap(True)
        self.warnings_list.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.warnings_list.setSpacing(2)
        self.warnings_list.itemClicked.connect(self._warning_clicked)
        layout.addWidget(self.warnings_list, 1)

    # --- results ---

    def show_result(self, result) -> None:
        self.result = result
        self._show_fc(result)
        self._fill_table(result)
        self.warnings_list.clear()
        for diagnostic in result.diagnostics:
            self._add_warning(diagnostic.message, diagnostic.layer, diagnostic.severity)
        if not result.diagnostics:
            item = QListWidgetItem("No warnings: the mask and the shapes look right.")
            item.setForeground(QColor(MUTED_COLOUR))
            self.warnings_list.addItem(item)
        self.warnings_title.setText(f"<b>Warnings</b> ({len(result.diagnostics)})")
        self.leak_label.hide()

    def show_error(self, message: str, layer: str | None = None) -> None:
        """A failed run: the FC box says why, the table keeps the last shapes greyed."""
        self.fc_shape_label.setText("?")
        self.fc_batch_label.setText("")
        where = f" ({layer})" if layer else ""
        self.fc_explanation_label.setText(f'<span style="color:{ERROR_COLOUR}">✖ {escape(message)}{where}</span>')
        for row in range(self.table.rowCount()):
            for column in range(self.table.columnCount()):
                item = self.table.item(row, column)
                if item is not None:
                    item.setForeground(QColor(MUTED_COLOUR))
        self.warnings_list.clear()
        self._add_warning(message, layer, "error")
        self.warnings_title.setText("<b>Warnings</b>")

    def _show_fc(self, result) -> None:
        fc = result.fc_input
        if fc is None:
            self.fc_title_label.setText("Output (no Dense after the recurrent layers)")
            self.fc_shape_label.setText(format_shape(result.layers[-1].symbolic_shape) if result.layers else "—")
            self.fc_batch_label.setText(f"this batch {format_shape(result.output_shape)}")
            self.fc_explanation_label.setText("Add a Dense layer after pooling (or after the last state) to see "
                                              "the FC input size and where it comes from.")
            return
        self.fc_title_label.setText(f"FC input → {fc.layer}")
        self.fc_shape_label.setText(format_shape(fc.symbolic_shape))
        self.fc_batch_label.setText(f"this batch {format_shape(fc.shape)}" if fc.shape is not None else "")
        self.fc_explanation_label.setText(escape(fc.explanation))

    def _fill_table(self, result) -> None:
        self.table.blockSignals(True)
        self.table.setRowCount(sum(1 + len(layer.states) for layer in result.layers))
        fc_source = None
        if result.fc_input is not None:
            names = [layer.name for layer in result.layers]
            index = names.index(result.fc_input.layer) if result.fc_input.layer in names else 0
            fc_source = names[index - 1] if index else None
        row = -1
        for layer in result.layers:
            row += 1
            _, meaning = MASK_ROLES.get(layer.mask_role, MASK_ROLES["none"])
            colour = mask_role_colour(layer.mask_role)
            cells = (layer.name, format_shape(layer.symbolic_shape), format_shape(layer.shape), layer.mask_role,
                     f"{layer.params:,}")
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(f"{layer.name} ({layer.type})")
                if column in (1, 2):
                    item.setFont(mono_font())
                if column == 3:
                    item.setForeground(QColor(colour))
                    item.setToolTip(meaning)
                if column == 4:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if layer.name == fc_source:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                    item.setToolTip(f"{layer.name} ({layer.type}): its output is the FC input")
                self.table.setItem(row, column, item)
            for state in layer.states:   # return_state's states: rows of their own, under the layer
                row += 1
                cells = (f"  └ {state.name}", format_shape(state.symbolic_shape), format_shape(state.shape))
                for column, text in enumerate(cells):
                    item = QTableWidgetItem(text)
                    item.setToolTip(f"{layer.name}'s state {state.name}, returned by return_state")
                    item.setData(Qt.ItemDataRole.UserRole, layer.name)
                    item.setForeground(QColor(MUTED_COLOUR))
                    if column:
                        item.setFont(mono_font())
                    self.table.setItem(row, column, item)
        self.table.blockSignals(False)
        self._fit_table()

    def _fit_table(self) -> None:
        """As tall as its rows (the warnings get the rest), scrolling only past about a dozen layers."""
        rows = min(self.table.rowCount(), 12)
        height = (self.table.horizontalHeader().height() + 2 * self.table.frameWidth()
                  + sum(self.table.rowHeight(r) for r in range(rows)) + 2)
        self.table.setMaximumHeight(max(height, 80))

    def _add_warning(self, message: str, layer: str | None, severity: str) -> None:
        mark = {"error": "✖", "info": "ℹ"}.get(severity, "⚠")
        item = QListWidgetItem(f"{mark} {message}")
        item.setForeground(QColor(ERROR_COLOUR if severity == "error" else
                                  MUTED_COLOUR if severity == "info" else WARNING_COLOUR))
        item.setData(Qt.ItemDataRole.UserRole, layer)
        if layer:
            item.setToolTip(f"Click to select {layer}")
        self.warnings_list.addItem(item)

    def warnings(self) -> list[str]:
        return [self.warnings_list.item(i).text() for i in range(self.warnings_list.count())]

    def show_leak(self, verdict: str, leaking: bool) -> None:
        self.leak_label.setText(f'<span style="color:{ERROR_COLOUR if leaking else "#1b7f3b"}">'
                                f'{"✖" if leaking else "✔"} leak check: {escape(verdict)}</span>')
        self.leak_label.show()

    # --- selection ---

    def select_layer(self, name: str | None) -> None:
        self.table.blockSignals(True)
        self.table.clearSelection()
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            if item is not None and item.text() == name:
                self.table.selectRow(row)
                break
        self.table.blockSignals(False)

    def _row_picked(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            item = self.table.item(rows[0].row(), 0)
            if item is not None:
                self.layerSelected.emit(item.data(Qt.ItemDataRole.UserRole) or item.text())

    def _warning_clicked(self, item: QListWidgetItem) -> None:
        layer = item.data(Qt.ItemDataRole.UserRole)
        if layer:
            self.layerSelected.emit(layer)
