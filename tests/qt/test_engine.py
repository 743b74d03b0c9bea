"""The window and its engine process: a killed engine costs nothing of the user's work, an oversized run is
refused before the engine sees it, and Keras never enters the window's process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from explorer.core.spec import to_dict
from tests.qt.test_cancel import big_stack

RUN_TIMEOUT_MS = 120_000
ROOT = Path(__file__).resolve().parents[2]


def test_killing_the_engine_during_a_run_keeps_the_window_and_the_work(make_window, qtbot):
    """The run lost with the engine is sent again to the new engine by itself, once, and the status line says
    so; the session and the undo history are untouched."""
    win = make_window(big_stack(), source=None)
    qtbot.waitUntil(lambda: bool(win.session.devices) and win.runs.service.busy, timeout=RUN_TIMEOUT_MS)   # the run is next
    document, text = to_dict(win.session.document), win.session.text
    undo_steps = win.history.stack.count()
    client = win.runs.requests.client
    old_pid, restarts = client.pid, client.restarts
    said = []
    win.session.events.status.connect(lambda text, error=False: said.append(text))
    with qtbot.waitSignal(win.runFinished, timeout=3 * RUN_TIMEOUT_MS) as finished:
        os.kill(old_pid, 9)
    assert finished.args[0].ok and client.pid != old_pid             # the new engine ran it, unasked
    lines = [line for line in said if "a new engine is starting" in line]
    assert lines and "killed" in lines[0] and "unchanged" in lines[0] and "the run in flight is sent to it again" in lines[0]
    assert all("\n" not in line for line in lines)                                               # one line
    assert win.isVisible() and client.restarts == restarts + 1
    assert to_dict(win.session.document) == document and win.session.text == text     # the session as it was
    assert win.history.stack.count() == undo_steps
    win.sequence_editor.text_edit.setPlainText("1 2 3\n4 5\n")                        # the next run …
    qtbot.waitUntil(lambda: win.settled, timeout=RUN_TIMEOUT_MS)
    assert win.last_reply.ok and win.session.result.lengths.tolist() == [3, 2]                 # … the new engine answers


def test_an_oversized_run_is_refused_at_once_without_the_engine(make_window, qtbot):
    win = make_window()
    qtbot.waitUntil(lambda: win.settled, timeout=RUN_TIMEOUT_MS)
    sent = win.runs.last_run_id
    win.live_check.setChecked(False)
    lstm = next(card for card in win.stack_editor.cards if card.layer.is_recurrent)
    lstm.param_widget("units").setValue(4096)
    win.sequence_editor.text_edit.setPlainText("\n".join(["5 " * 300] * 500))
    win.run_now(asked=True)
    assert win.settled and not win.last_reply.ok                      # refused on the spot, no reply awaited
    assert "500 sequences × 300 steps" in win.session.status_text and "over the limit of 2,048 MB" in win.last_reply.error
    assert win.runs.last_run_id == sent                                  # never sent to the engine


SCRIPT = textwrap.dedent('''
    import sys
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication
    from explorer.core.presets import load_preset
    from explorer.qt.main_window import MainWindow

    def main():
        app = QApplication([])
        window = MainWindow(load_preset("average_pooling"), trusted=True)
        window.files.ask_unsaved = lambda name: "discard"
        window.show()
        loop = QEventLoop()
        window.runFinished.connect(lambda reply: loop.quit())
        QTimer.singleShot(120_000, loop.quit)
        loop.exec()
        assert window.last_reply is not None and window.last_reply.ok, window.session.status_text
        assert window.session.result.layers[1].output.shape[:2] == (3, 7)
        leaked = sorted(name for name in sys.modules if name.split(".")[0] in ("tensorflow", "keras", "jax", "torch"))
        print("LEAKED", leaked, flush=True)
        window.close()
        window.deleteLater()
        app.processEvents()

    main()
''')


def test_the_window_process_never_imports_keras_or_tensorflow():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "LEAKED []"


def test_the_backend_choice_restarts_the_engine_on_that_backend(make_window, qtbot):
    """Only where a second backend is installed: the toolbar restarts the engine with it and runs the stack
    there (each backend draws its own initial weights, so only the shapes compare; the numbers of every
    backend are checked against NumPy by the core's reference tests)."""
    from explorer.core.backend import installed_backends
    others = [name for name in installed_backends() if name != "tensorflow"]
    if not others:
        import pytest
        pytest.skip("no other Keras backend installed")
    win = make_window()
    qtbot.waitUntil(lambda: win.settled and bool(win.session.devices), timeout=RUN_TIMEOUT_MS)
    before = win.session.result.layers[-1].output.copy()
    client = win.runs.service.client
    try:
        win.backend_combo.setCurrentIndex(win.backend_combo.findData(others[0]))
        win.backend_combo.activated.emit(win.backend_combo.currentIndex())
        qtbot.waitUntil(lambda: client.backend_name == others[0] and win.settled and bool(win.session.devices),
                        timeout=RUN_TIMEOUT_MS)
        assert win.last_reply.ok, win.session.status_text
        assert win.session.result.layers[-1].output.shape == before.shape and client.pid is not None
    finally:
        client.restart(None)
