"""The Check-up: the model doctor (explorer/core/doctor.py) on the stack and the sequences on screen.

A toolbar button and a Run-menu item send the engine a `doctor` request; the panel (a dock beside the shapes)
lists the findings by severity. Clicking one selects its layer and its first line and opens the view that shows
it: the leak check for a leak, the gradients or the gates (Inside the cell) for the span and saturation, the
outputs or the batch mask otherwise; its plot is drawn under the list. A finding with a one-setting fix offers
it as a *Fix* button: an ordinary edit, undone with Ctrl+Z.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QBrush, QColor, QPixmap
from PySide6.QtWidgets import (QDockWidget, QHBoxLayout, QLabel, QMenu, QPushButton, QToolBar, QTreeWidget,
                               QTreeWidgetItem, QVBoxLayout, QWidget)

from ..core.course import CELL_TAB
from ..core.doctor import SEVERITIES
from ..core.pictures import png
from ..requests import DOCTOR
from .fixes import apply_fix
from .style import ERROR_COLOUR, WARNING_COLOUR

if TYPE_CHECKING:
    from ..session import Session
    from .plots.cell import CellPanel
    from .layout import WindowLayout
    from .runs import RunScheduler

COLOURS = {"error": ERROR_COLOUR, "warning": WARNING_COLOUR, "info": "#2e86c1"}
GATES_OF = {"saturated_gates"}


class CheckupPanel(QWidget):
    """The doctor's findings on the `session`'s stack, asked through `runs` (the request layer); a finding opens
    its view: a tab of `window_layout`, a gate of `cell_panel`, or the leak check (`leak_check()`)."""

    def __init__(self, session: Session, runs: RunScheduler, cell_panel: CellPanel, window_layout: WindowLayout,
                 leak_check: Callable[[], None], parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.runs = runs
        self.cell_panel = cell_panel
        self.window_layout = window_layout
        self.leak_check = leak_check
        self.dock: QDockWidget | None = None     # set by install_checkup
        self.report = None
        self.finding = None
        self._request_id = 0
        self._gate_wanted: str | None = None
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.run_button = QPushButton("Check-up")
        self.run_button.setToolTip("Look for padding leaks, ignored masks, truncation, padding waste, vanishing "
                                   "gradients, saturated gates, dead units, NaN and cuDNN fallbacks")
        self.run_button.clicked.connect(self.start)
        top.addWidget(self.run_button)
        self.status = QLabel("Press Check-up to examine the stack on these sequences.")
        self.status.setWordWrap(True)
        top.addWidget(self.status, 1)
        layout.addLayout(top)
        self.tree = QTreeWidget()
        self.tree.setHeaderHidden(True)
        self.tree.setWordWrap(True)
        self.tree.currentItemChanged.connect(lambda item, _previous: self._picked(item))
        layout.addWidget(self.tree, 1)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.message)
        self.fix_button = QPushButton("")
        self.fix_button.setToolTip("Apply the one setting that answers this finding (Ctrl+Z undoes it)")
        self.fix_button.hide()
        self.fix_button.clicked.connect(self.apply_fix)
        layout.addWidget(self.fix_button)
        self.picture = QLabel("")
        self.picture.setScaledContents(False)
        self.picture.setMinimumHeight(0)
        layout.addWidget(self.picture)
        self.caption = QLabel("")
        self.caption.setWordWrap(True)
        layout.addWidget(self.caption)
        self.session.events.edited.connect(self._outdated)     # bound methods: held weakly
        self.session.events.document.connect(self._outdated)
        cell_panel.answered.connect(self._choose_gate)

    # --- asking the engine ---

    def start(self) -> None:
        session = self.session
        spec = session.spec()
        if session.problem() is not None or not session.trust.ensure(spec, ask_again=True):
            self.status.setText("Fix the stack and the sequences first.")
            return
        self._request_id = self.runs.submit(DOCTOR, self._on_reply, spec=spec, text=session.text,
                                            device=session.device, trust=True).id
        self.status.setText("examining: the run, each line alone, the batching modes, gates and gradients…")
        self.run_button.setEnabled(False)
        if self.dock is not None:
            self.dock.show()
            self.dock.raise_()

    def _on_reply(self, reply) -> None:
        if reply.id != self._request_id:     # an earlier check-up's answer
            return
        self.run_button.setEnabled(True)
        if reply.cancelled:
            self.status.setText("cancelled")
        elif not reply.ok:
            self.status.setText(f"the check-up failed: {reply.error}")
        else:
            self.show_report(reply.value)

    # --- showing ---

    def show_report(self, report) -> None:
        self.report = report
        self.tree.clear()
        self._show_finding(None)
        self.status.setText(f"{report._summary()} Checked: {', '.join(report.checked)}"
                            + "".join(f"; not checked: {kind} ({why})" for kind, why in report.skipped.items()))
        for severity in reversed(SEVERITIES):
            found = [finding for finding in report.findings if finding.severity == severity]
            if not found:
                continue
            group = QTreeWidgetItem([f"{severity} ({len(found)})"])
            group.setForeground(0, QBrush(QColor(COLOURS[severity])))
            group.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.tree.addTopLevelItem(group)
            for finding in found:
                item = QTreeWidgetItem([f"{finding.kind} · {finding.layer or 'input'}"])
                item.setToolTip(0, finding.message)
                item.setData(0, Qt.ItemDataRole.UserRole, report.findings.index(finding))
                group.addChild(item)
            group.setExpanded(True)

    def _picked(self, item) -> None:
        index = None if item is None else item.data(0, Qt.ItemDataRole.UserRole)
        if index is None or self.report is None:
            return
        finding = self.report.findings[index]
        self._gate_wanted = None
        self._show_finding(finding)
        self.select(finding)

    def _show_finding(self, finding) -> None:
        self.finding = finding
        if finding is None:
            for label in (self.message, self.caption):
                label.setText("")
            self.picture.clear()
            self.fix_button.hide()
            return
        self.message.setText(finding.message + (f"\nFix: {finding.fix}" if finding.fix else ""))
        if finding.plot is not None:
            pixmap = QPixmap()
            pixmap.loadFromData(png(finding.plot), "PNG")
            width = max(200, self.width() - 30)
            self.picture.setPixmap(pixmap.scaledToWidth(min(width, pixmap.width()),
                                                        Qt.TransformationMode.SmoothTransformation))
            self.caption.setText(finding.plot.caption)
        self.fix_button.setVisible(finding.action is not None)
        if finding.action is not None:
            self.fix_button.setText(f"Fix: {finding.action.label}")
            self.fix_button.setEnabled(True)

    def select(self, finding) -> None:
        """Selects the finding's layer and first line, and opens the view that shows it."""
        session, window_layout = self.session, self.window_layout
        if finding.layer in session.document.layer_names():
            session.select_layer(finding.layer)
        if finding.lines:
            session.select_line(finding.lines[0])
        tabs = window_layout.plot_tabs
        titles = [tabs.tabText(index) for index in range(tabs.count())]
        inside = finding.view in ("gradients", "gates")
        tabs.setCurrentIndex(titles.index(CELL_TAB) if inside and CELL_TAB in titles else 0)
        if finding.kind in GATES_OF:
            self._show_gate(finding.evidence["saturated"][0].split("/")[-1])
        if finding.view == "leaks":
            window_layout.shapes_dock.show()
            window_layout.shapes_dock.raise_()
            self.leak_check()

    def _show_gate(self, gate: str) -> None:
        """Picks `gate` in the Inside-the-cell tab, now or when its numbers arrive."""
        self._gate_wanted = gate
        self._choose_gate()

    def _choose_gate(self) -> None:
        combo = self.cell_panel.gate_combo
        index = combo.findText(self._gate_wanted or "")
        if index >= 0:
            self._gate_wanted = None
            if index != combo.currentIndex():
                combo.setCurrentIndex(index)
                combo.activated.emit(index)

    def apply_fix(self) -> None:
        if self.finding is None or self.finding.action is None:
            return
        apply_fix(self.session, self.finding.action)
        self.fix_button.setEnabled(False)

    def _outdated(self, _kind: str | None = None) -> None:
        if self.report is not None:
            self.status.setText("The stack or the sequences changed since this check-up: press Check-up again.")
            self.fix_button.setEnabled(False)


def install_checkup(panel: CheckupPanel, run_bar: QToolBar, run_menu: QMenu) -> tuple[QDockWidget, QAction]:
    """The Check-up panel (a dock beside the shapes), its button in `run_bar` and its item in `run_menu`."""
    window_layout = panel.window_layout
    panel.dock = window_layout.add_panel("Check-up", panel)
    action = run_bar.addAction("Check-up", panel.start)
    action.setToolTip("Examine the stack on these sequences: padding leaks, ignored masks, "
                      "truncation, vanishing gradients, saturated gates, dead units … (Ctrl+Shift+D)")
    action.setShortcut("Ctrl+Shift+D")
    run_menu.addAction(action)
    window_layout.stack_dock.raise_()     # a new tab does not cover the stack editor
    return panel.dock, action
