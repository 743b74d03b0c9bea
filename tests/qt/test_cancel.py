"""Cancel and progress: a big batch shows a progress bar after half a second, the window stays responsive while
it runs, Cancel (Esc) says "cancelled" at once and the worker stops within a second; short runs show no bar."""

from __future__ import annotations


import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QKeySequence
from PySide6.QtTest import QTest

from explorer.core.spec import from_dict

RUN_TIMEOUT_MS = 60_000


def settle(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.runs.settled, timeout=RUN_TIMEOUT_MS)


def big_stack():
    """400 sequences × 1000 steps through an LSTM of 256 units: many seconds of work, run in slices."""
    spec = from_dict({"input": {"kind": "tokens", "vocab_size": 1000},
                      "layers": [{"type": "embedding", "output_dim": 32, "mask_zero": True},
                                 {"type": "lstm", "units": 256, "return_sequences": True},
                                 {"type": "global_average_pooling"},
                                 {"type": "dense", "units": 10, "activation": "softmax"}]})
    rng = np.random.default_rng(0)
    spec.sequences = "\n".join(" ".join(map(str, rng.integers(1, 1000, 1000))) for _ in range(400)) + "\n"
    return spec


def test_cancel_stops_a_big_run_quickly_and_the_window_stays_responsive(make_window, qtbot):
    win = make_window(big_stack(), source=None)
    control = win.run_control
    assert control.cancel_action.shortcut() == QKeySequence(Qt.Key.Key_Escape)
    ticks = []
    clock = QTimer()
    clock.setInterval(20)
    clock.timeout.connect(lambda: ticks.append(1))
    clock.start()
    try:
        assert control.cancel_action.isEnabled() and not win.runs.settled       # the first run is in flight
        with qtbot.waitSignal(control.progressShown, timeout=RUN_TIMEOUT_MS):
            pass
        assert control.progress_bar.isVisible()
        qtbot.waitUntil(lambda: control.progress_bar.value() > 0, timeout=RUN_TIMEOUT_MS)  # slices report progress
        assert control.progress_bar.value() < control.progress_bar.maximum()
        before = len(ticks)
        qtbot.wait(200)
        assert len(ticks) > before, "the event loop stood still while TensorFlow ran"      # responsive
        assert win.runs.service.busy
        win.activateWindow()
        QTest.keyClick(win, Qt.Key.Key_Escape)
        # said at once, in the same turn of the event loop: the session and every view know
        assert win.session.status_text == "cancelled"
        assert win.session.state.kind == "stale" and "cancelled" in win.session.state.reason
        assert not control.cancel_action.isEnabled() and not control.progress_bar.isVisible() and win.runs.settled
        qtbot.waitUntil(lambda: not win.runs.service.busy, timeout=RUN_TIMEOUT_MS)   # the worker stops
    finally:
        clock.stop()
    assert win.session.result is None and win.session.status_text == "cancelled"      # the cancelled run never shows
    assert win.session.result is None
    win.sequence_editor.text_edit.setPlainText("1 2 3\n4 5\n")          # and the next run works
    settle(qtbot, win)
    assert win.runs.last_reply.ok and win.session.result.lengths.tolist() == [3, 2]


def test_a_short_run_shows_no_progress_bar_and_cancel_is_off_afterwards(make_window, qtbot):
    win = make_window()
    settle(qtbot, win)                   # the first run builds and traces the model: it may take longer
    control = win.run_control
    shown = []
    control.progressShown.connect(lambda: shown.append(True))
    control._delay.setInterval(RUN_TIMEOUT_MS)       # however slow the machine, this run ends before the delay
    with qtbot.waitSignal(win.runs.runFinished, timeout=RUN_TIMEOUT_MS):
        win.sequence_editor.text_edit.appendPlainText("4 5 6")
    settle(qtbot, win)
    assert win.runs.last_reply.ok and len(win.session.result.lines) == 4
    assert not control._delay.isActive()             # the bar that was due is called off: it never shows
    assert shown == [] and not control.progress_bar.isVisible()
    assert not control.cancel_action.isEnabled()


def test_cancel_with_nothing_running_changes_nothing(make_window, qtbot):
    win = make_window()
    settle(qtbot, win)
    status = win.session.status_text
    win.runs.cancel()
    assert win.session.status_text == status and win.runs.last_reply.ok


def test_the_cancel_action_is_in_the_toolbar_next_to_run_and_in_the_run_menu(make_window):
    win = make_window()
    from PySide6.QtWidgets import QToolBar
    [bar] = [b for b in win.findChildren(QToolBar) if win.run_action in b.actions()]
    actions = bar.actions()
    assert actions[actions.index(win.run_action) + 1] is win.run_control.cancel_action
    menus = [a.menu() for a in win.menuBar().actions() if a.menu() is not None]
    assert any(win.run_control.cancel_action in menu.actions() for menu in menus)
