"""The window's Check-up: findings by severity, a click that shows the finding, an undoable Fix."""

from __future__ import annotations

from PySide6.QtCore import Qt

from explorer.core.course import CELL_TAB
from explorer.core.presets import load_preset

RUN_TIMEOUT_MS = 60_000


def settle(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.runs.settled, timeout=RUN_TIMEOUT_MS)


def check_up(qtbot, window) -> None:
    window.checkup_action.trigger()
    qtbot.waitUntil(lambda: window.checkup.run_button.isEnabled() and window.checkup.report is not None,
                    timeout=RUN_TIMEOUT_MS)


def findings(window) -> dict[str, list[str]]:
    tree = window.checkup.tree
    groups = [tree.topLevelItem(i) for i in range(tree.topLevelItemCount())]
    return {group.text(0): [group.child(j).text(0) for j in range(group.childCount())] for group in groups}


def item(window, text: str):
    tree = window.checkup.tree
    return next(tree.topLevelItem(i).child(j) for i in range(tree.topLevelItemCount())
                for j in range(tree.topLevelItem(i).childCount()) if tree.topLevelItem(i).child(j).text(0) == text)


def test_a_leak_is_listed_shown_and_fixed_with_undo(make_window, qtbot):
    window = make_window(load_preset("forgotten_mask_post"), source="preset:forgotten_mask_post")
    settle(qtbot, window)
    window.session.select_line(2)
    check_up(qtbot, window)
    assert findings(window) == {"error (1)": ["padding_leak · lstm_1"]}
    assert "Checked: padding_leak" in window.checkup.status.text()
    window.checkup.tree.setCurrentItem(item(window, "padding_leak · lstm_1"))
    assert window.session.selected_layer == "lstm_1" and window.session.selected_line == 3
    qtbot.waitUntil(lambda: "padding leaks into lstm_1" in window.shapes.leak_label.text(), timeout=RUN_TIMEOUT_MS)
    assert not window.checkup.picture.pixmap().isNull()
    assert window.checkup.fix_button.text() == "Fix: Tick mask_zero on embedding_1"
    window.checkup.fix_button.click()
    assert window.session.document.layers[0].params["mask_zero"] is True
    assert "press Check-up again" in window.checkup.status.text()
    settle(qtbot, window)
    check_up(qtbot, window)
    assert findings(window) == {}
    assert "No findings" in window.checkup.status.text()
    window.history.undo_action.trigger()
    assert window.session.document.layers[0].params["mask_zero"] is False


def test_saturation_opens_the_gate_heatmap_on_its_gate(make_window, qtbot):
    window = make_window(load_preset("forget_gate_saturation"), source="preset:forget_gate_saturation")
    settle(qtbot, window)
    check_up(qtbot, window)
    window.checkup.tree.setCurrentItem(item(window, "saturated_gates · lstm_1"))
    tabs = window.window_layout.plot_tabs
    assert tabs.tabText(tabs.currentIndex()) == CELL_TAB
    qtbot.waitUntil(lambda: window.cell_panel.gate_combo.currentText() == "forget", timeout=RUN_TIMEOUT_MS)
    assert window.session.selected_layer == "lstm_1"
    assert window.checkup.fix_button.isHidden()          # scaling the features is no single setting
    assert item(window, "saturated_gates · lstm_1").parent().text(0) == "warning (1)"
    assert item(window, "saturated_gates · lstm_1").parent().foreground(0).color().name() != "#000000"
    assert window.checkup.tree.topLevelItem(0).flags() & Qt.ItemFlag.ItemIsSelectable == Qt.ItemFlag(0)
