"""The shapes panel: the FC input shape and where it comes from, every layer's shapes, the warnings.

`ShapesPanel(session)` has one row per layer of the session's stack, filled from its result. While the
result is not current the rows and the FC box are greyed and the warnings say why instead of judging an
old run; after a failure the layers before the failing one show their shapes, the failing one its
error, and every later one that it was not built.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (QAbstractItemView, QFrame, QHBoxLayout, QHeaderView, QLabel, QListWidget,
                               QListWidgetItem, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from ..core.diagnose import format_shape
from ..session import CURRENT, FAILED, Session
from .stale import StateGate
from .style import ERROR_COLOUR, MASK_ROLES, WARNING_COLOUR, escape, mask_role_colour, mono_font, muted_colour

COLUMNS = ("layer", "symbolic", "this batch", "mask", "params")
MIN_TABLE_ROWS = 5          # rows the table always shows (it scrolls past them); the warnings list gives way
_CELL_ROLES = (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.FontRole,
               Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.TextAlignmentRole, Qt.ItemDataRole.UserRole)


class ShapesPanel(QWidget):
    """Shows the session's shapes; a click on a row or a warning selects that layer in the session."""

    leakCheckRequested = Signal()

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
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
        self.fc_title_label.setStyleSheet("color:palette(placeholder-text); font-weight:600")
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
        self.warnings_list.setMinimumHeight(3 * self.warnings_list.fontMetrics().lineSpacing())
        self.warnings_list.itemClicked.connect(self._warning_clicked)
        layout.addWidget(self.warnings_list, 1)
        session.events.selection.connect(self._follow_selection)   # a bound method: held weakly
        session.events.stack.connect(self._redraw)
        self._gate = StateGate(session, self, self._redraw)
        self._redraw()

    # --- results ---

    def _redraw(self) -> None:
        if not hasattr(self, "_gate"):
            return
        state = self._gate.shown
        session = self.session
        result = session.result if state.kind != FAILED else session.partial
        self._show_fc(state, session.result)
        self._fill_table(state, result)
        self.warnings_list.clear()
        if state.kind == CURRENT:
            for diagnostic in result.diagnostics:
                self._add_warning(diagnostic.message, diagnostic.layer, diagnostic.severity)
            if not result.diagnostics:
                item = QListWidgetItem("No warnings: the mask and the shapes look right.")
                item.setForeground(QColor(muted_colour()))
                self.warnings_list.addItem(item)
            self.warnings_title.setText(f"<b>Warnings</b> ({len(result.diagnostics)})")
        else:
            severity = "error" if state.kind == FAILED or state.layer else "info"
            if state.reason:
                self._add_warning(self._not_current(state), state.layer, severity)
            self.warnings_title.setText("<b>Warnings</b>")
        self.leak_label.hide()
        self.select_layer(session.selected_layer)

    @staticmethod
    def _not_current(state) -> str:
        if state.kind == FAILED:
            return state.reason
        return f"not current: {state.reason}" if state.reason else "not current"

    def _show_fc(self, state, result) -> None:
        if state.kind != CURRENT:
            self.fc_title_label.setText("FC input")
            if state.kind == FAILED or result is None:
                self.fc_shape_label.setText("?")
            self.fc_shape_label.setStyleSheet(f"color:{muted_colour()}")
            self.fc_batch_label.setText("")
            colour = ERROR_COLOUR if state.kind == FAILED else muted_colour()
            mark = "✖ " if state.kind == FAILED else ""
            where = f" ({state.layer})" if state.layer and state.kind == FAILED else ""
            self.fc_explanation_label.setText(f'<span style="color:{colour}">{mark}'
                                              f'{escape(self._not_current(state))}{where}</span>')
            return
        self.fc_shape_label.setStyleSheet("")
        fc = result.fc_input
        if fc is None:
            self.fc_title_label.setText("Output (no Dense after the recurrent layers)")
            self.fc_shape_label.setText(format_shape(result.layers[-1].symbolic_shape) if result.layers else "—")
            self.fc_batch_label.setText(f"this batch {format_shape(result.output_shape)}")
            self.fc_explanation_label.setText("Add a Dense layer after pooling (or after the last state) to see "
                                              "the FC input size and where it comes from.")
            return
        heads = result.fc_inputs
        if len(heads) > 1:     # several heads: each one's FC input, named by its Dense layer
            self.fc_title_label.setText(f"FC input → {', '.join(head.layer for head in heads)} ({len(heads)} heads)")
            self.fc_shape_label.setText("\n".join(f"{head.layer}: {format_shape(head.symbolic_shape)}"
                                                  for head in heads))
            self.fc_batch_label.setText("this batch " + " · ".join(f"{head.layer} {format_shape(head.shape)}"
                                                                   for head in heads if head.shape is not None))
            self.fc_explanation_label.setText("<br>".join(f"<b>{escape(head.layer)}</b>: {escape(head.explanation)}"
                                                          for head in heads))
            return
        self.fc_title_label.setText(f"FC input → {fc.layer}")
        self.fc_shape_label.setText(format_shape(fc.symbolic_shape))
        self.fc_batch_label.setText(f"this batch {format_shape(fc.shape)}" if fc.shape is not None else "")
        self.fc_explanation_label.setText(escape(fc.explanation))

    def _fill_table(self, state, result) -> None:
        """One row per layer of the stack: its shapes from `result` where it has them."""
        self.table.blockSignals(True)
        names = self.session.document.layer_names()
        types = [layer.type for layer in self.session.document.layers]
        found = {} if result is None else {layer.name: layer for layer in result.layers}
        self.table.setRowCount(len(names) + sum(len(layer.states) for layer in found.values()))
        fc_sources = set()      # the layers whose output is an FC input: bold
        if state.kind == CURRENT:
            order = [layer.name for layer in result.layers]
            fc_sources = {fc.source or (order[order.index(fc.layer) - 1] if order.index(fc.layer) else None)
                          for fc in result.fc_inputs if fc.layer in order}
        failed = state.kind == FAILED
        first_missing = names.index(state.layer) if failed and state.layer in names else (0 if failed else len(names))
        muted = state.kind != CURRENT and not failed
        row = -1
        for position, (name, kind) in enumerate(zip(names, types)):
            row += 1
            layer = found.get(name)
            shown = layer is not None and layer.type == kind and position < first_missing
            if shown:
                cells = (name, format_shape(layer.symbolic_shape), format_shape(layer.shape), layer.mask_role,
                         f"{layer.params:,}")
                role = layer.mask_role
                tip = f"{name} ({kind})" + (f"\n(greyed: {state.reason})" if muted else "")
            else:
                why = state.reason if position == first_missing or not failed else (
                    f"not built: {state.layer} fails" if state.layer else "not built: the run failed")
                cells = (name, "?", "?", "", "")
                role = None
                tip = f"{name} ({kind}): {why}" if why else f"{name} ({kind})"
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(tip)
                if column in (1, 2):
                    item.setFont(mono_font())
                if column == 3 and role is not None:
                    _, meaning = MASK_ROLES.get(role, MASK_ROLES["none"])
                    item.setForeground(QColor(mask_role_colour(role)))
                    item.setToolTip(meaning)
                if column == 4:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if muted or role is None:
                    item.setForeground(QColor(muted_colour()))
                if name in fc_sources:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                    item.setToolTip(f"{name} ({kind}): its output is the FC input")
                self._put(row, column, item)
            for state_result in layer.states if shown else ():   # return_state's states, under their layer
                row += 1
                fed = state_result.name == layer.feeds
                cells = (f"  └ state {state_result.name}" + (" → next layer" if fed else ""),
                         format_shape(state_result.symbolic_shape), format_shape(state_result.shape))
                for column, text in enumerate(cells):
                    item = QTableWidgetItem(text)
                    item.setToolTip(f"{name}'s state {state_result.name}, returned by return_state"
                                    + (": the next layer takes it instead of the output" if fed else ""))
                    item.setData(Qt.ItemDataRole.UserRole, name)
                    item.setForeground(QColor(muted_colour()))
                    if column:
                        item.setFont(mono_font())
                    self._put(row, column, item)
        self.table.setRowCount(row + 1)
        self.table.blockSignals(False)
        self._fit_table()

    def _put(self, row: int, column: int, item: QTableWidgetItem) -> None:
        """Sets a cell, unless it shows that already (a run that changes no shape repaints no cell)."""
        shown = self.table.item(row, column)
        if shown is None or any(shown.data(role) != item.data(role) for role in _CELL_ROLES):
            self.table.setItem(row, column, item)

    def _fit_table(self) -> None:
        """As tall as its rows (the warnings get the rest), scrolling only past about a dozen layers."""
        table = self.table
        frame = table.horizontalHeader().height() + 2 * table.frameWidth() + 2
        if table.horizontalHeader().length() > table.viewport().width():      # the scroll bar takes a row's room
            frame += table.horizontalScrollBar().sizeHint().height()

        def rows_height(count: int) -> int:
            return frame + sum(table.rowHeight(r) for r in range(min(table.rowCount(), count)))

        table.setMaximumHeight(max(rows_height(12), 80))
        table.setMinimumHeight(max(rows_height(MIN_TABLE_ROWS), 80))     # the warnings shrink first

    def _add_warning(self, message: str, layer: str | None, severity: str) -> None:
        mark = {"error": "✖", "info": "ℹ"}.get(severity, "⚠")
        item = QListWidgetItem(f"{mark} {message}")
        item.setForeground(QColor(ERROR_COLOUR if severity == "error" else
                                  muted_colour() if severity == "info" else WARNING_COLOUR))
        item.setData(Qt.ItemDataRole.UserRole, layer)
        if layer:
            item.setToolTip(f"Click to select {layer}")
        self.warnings_list.addItem(item)


    def show_leak(self, verdict: str, leaking: bool) -> None:
        self.leak_label.setText(f'<span style="color:{ERROR_COLOUR if leaking else "#1b7f3b"}">'
                                f'{"✖" if leaking else "✔"} leak check: {escape(verdict)}</span>')
        self.leak_label.show()

    # --- selection ---

    def _follow_selection(self) -> None:
        self.select_layer(self.session.selected_layer)

    def select_layer(self, name: str | None) -> None:
        self.table.blockSignals(True)
        self.table.clearSelection()
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            if item is not None and item.text() == (name.split("/")[0] if name else name):   # a call: its layer
                self.table.selectRow(row)
        self.table.blockSignals(False)

    def _row_picked(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            item = self.table.item(rows[0].row(), 0)
            if item is not None:
                self.session.select_layer(item.data(Qt.ItemDataRole.UserRole) or item.text())

    def _warning_clicked(self, item: QListWidgetItem) -> None:
        layer = item.data(Qt.ItemDataRole.UserRole)
        if layer:
            self.session.select_layer(layer)
