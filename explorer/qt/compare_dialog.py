"""Compare batching modes: the same sequences in pad, bucket, one-by-one and chunked mode.

`CompareDialog(session, runs, parent)` runs `core.leaks.compare_modes` for the session's document in the
engine (request kind
"compare") and shows one row per mode: equal to pad mode on the valid timesteps (✓ or ✗ with the
largest |Δ| over every layer), the share of the cells it computed that are padding, its run time,
or the reason the mode is refused for this stack.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QDialogButtonBox, QHeaderView, QLabel, QPushButton,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from ..core.sequences import describe_buckets
from ..requests import COMPARE
from .style import ERROR_COLOUR, escape, muted_colour

COLUMNS = ("mode", "equal on valid steps", "padded cells", "time")
MODE_LABELS = {"pad": "pad — one padded batch", "bucket": "bucket — grouped by length",
               "one_by_one": "one by one — no padding", "chunked": "chunked — windows, state carried"}
OK_COLOUR = "#1b7f3b"


def verdict(report) -> tuple[str, bool | None]:
    """The "equal on valid steps" cell: (text, agrees)."""
    if report.refused:
        return "refused", None
    if report.max_abs_difference is None:
        return "— (pad mode did not run)", None
    if report.mode == "pad":
        return "✓ reference", True
    if report.agrees:
        if report.max_abs_difference == 0:
            return "✓ identical", True
        return f"✓ max |Δ| {report.max_abs_difference:.1e}", True
    return f"✗ max |Δ| {report.max_abs_difference:.3g}", False


def summary(reports) -> str:
    differing = [r.mode for r in reports if r.agrees is False]
    if differing:
        return (f"<span style='color:{ERROR_COLOUR}'><b>Padding changes the results</b></span>: "
                f"{', '.join(MODE_LABELS.get(m, m).split(' —')[0] for m in differing)} "
                f"{'differs' if len(differing) == 1 else 'differ'} from the padded batch on valid steps — the mask "
                "is missing or a layer ignores it (run the leak check to find which).")
    if all(r.refused for r in reports if r.mode != "pad") and reports:
        return "Only pad mode can run this stack."
    return (f"<span style='color:{OK_COLOUR}'><b>Every mode agrees</b></span> on the valid timesteps: the mask "
            "keeps padding out of the results, so choose the mode for speed and memory.")


class CompareDialog(QDialog):
    """One table of the four batching modes for the session's current document."""

    finished_comparing = Signal(object)     # the list of ModeReport, or an error message (str)

    def __init__(self, session, runs, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.runs = runs
        self.reports = None
        self.error: str | None = None
        self._request = 0
        self.setWindowTitle("Compare batching modes")
        self.resize(760, 330)
        layout = QVBoxLayout(self)
        self.caption = QLabel("The same sequences through the same stack, batched four ways; each mode is "
                              "compared with the padded batch on the valid timesteps of every layer.")
        self.caption.setWordWrap(True)
        layout.addWidget(self.caption)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setWordWrap(True)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        layout.addWidget(self.table, 1)
        self.summary_label = QLabel("")
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.summary_label)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.again_button = QPushButton("Compare again")
        self.again_button.setToolTip("Run the comparison on the stack and sequences as they are now")
        buttons.addButton(self.again_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        self.again_button.clicked.connect(self.start)
        layout.addWidget(buttons)


    def start(self) -> None:
        """Sends the comparison of the session's current stack and sequences to the engine."""
        session = self.session
        spec = session.spec()
        text = session.text
        if session.text_check.errors:
            self._show_error(f"fix the sequences first: {session.text_check.errors[0].message}")
            return
        if not session.trust.ensure(spec, ask_again=True):
            self._show_error("not run: this stack has a custom expression that you have not agreed to run")
            return
        self._request = self.runs.submit(COMPARE, self._on_reply, spec=spec, text=text, device=session.device,
                                         trust=True).id
        self.reports, self.error = None, None
        self.table.setRowCount(0)
        self.summary_label.setText(f"<span style='color:{muted_colour()}'>running the four modes…</span>")
        self.again_button.setEnabled(False)
        session.say("comparing batching modes…")

    def _on_reply(self, reply) -> None:
        if reply.kind != "compare" or reply.id != self._request:
            return
        self._request = 0
        self.again_button.setEnabled(True)
        if reply.ok:
            self.show_reports(reply.value)
            self.session.say("batching modes compared")
        else:
            self._show_error(reply.error or "the comparison was cancelled")

    def _show_error(self, message: str) -> None:
        self.error = message
        self.table.setRowCount(0)
        self.summary_label.setText(f"<span style='color:{ERROR_COLOUR}'>✖ {escape(message)}</span>")
        self.finished_comparing.emit(message)

    def show_reports(self, reports) -> None:
        self.reports = list(reports)
        self.table.setRowCount(len(self.reports))
        bold = QFont(self.font())
        bold.setBold(True)
        for row, report in enumerate(self.reports):
            label = MODE_LABELS.get(report.mode, report.mode)
            mode = QTableWidgetItem(f"{label}\n{describe_buckets(report.buckets)}" if report.buckets else label)
            mode.setFont(bold)
            mode.setData(Qt.ItemDataRole.UserRole, report.mode)
            self.table.setItem(row, 0, mode)
            if report.refused:
                self.table.setSpan(row, 1, 1, len(COLUMNS) - 1)
                reason = QTableWidgetItem(f"refused: {report.refused}")
                reason.setForeground(QColor(muted_colour()))
                reason.setToolTip(report.refused)
                self.table.setItem(row, 1, reason)
                continue
            if self.table.columnSpan(row, 1) > 1:
                self.table.setSpan(row, 1, 1, 1)
            text, agrees = verdict(report)
            equal = QTableWidgetItem(text)
            if agrees is not None:
                equal.setForeground(QColor(OK_COLOUR if agrees else ERROR_COLOUR))
            equal.setToolTip("largest |output − padded output| over the valid timesteps of every layer")
            self.table.setItem(row, 1, equal)
            share = report.padded_share
            padded = QTableWidgetItem("—" if share is None else f"{100 * share:.0f}%")
            padded.setToolTip("share of the cells this mode computed that are padding")
            padded.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.table.setItem(row, 2, padded)
            time = QTableWidgetItem("—" if report.time_ms is None else f"{report.time_ms:.1f} ms")
            time.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            time.setToolTip("the forward pass only; a mode's first run includes tracing")
            self.table.setItem(row, 3, time)
        self.table.resizeRowsToContents()
        self.summary_label.setText(summary(self.reports))
        self.finished_comparing.emit(self.reports)

    def cells(self) -> list[list[str]]:
        """The table as text, row by row (a refused mode: its mode and its reason)."""
        rows = []
        for row in range(self.table.rowCount()):
            cells = []
            for column in range(self.table.columnCount()):
                item = self.table.item(row, column)
                if item is not None:
                    cells.append(item.text())
            rows.append(cells)
        return rows
