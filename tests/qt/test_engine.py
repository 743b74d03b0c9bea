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
    with qtbot.waitSignal(win.runs.runFinished, timeout=3 * RUN_TIMEOUT_MS) as finished:
        os.kill(old_pid, 9)
    assert finished.args[0].ok and client.pid != old_pid             # the new engine ran it, unasked
    lines = [line for line in said if "a new engine is starting" in line]
    assert lines and "killed" in lines[0] and "unchanged" in lines[0] and "the run in flight is sent to it again" in lines[0]
    assert all("\n" not in line for line in lines)                                               # one line
    assert win.isVisible() and client.restarts == restarts + 1
    assert to_dict(win.session.document) == document and win.session.text == text     # the session as it was
    assert win.history.stack.count() == undo_steps
    win.sequence_editor.text_edit.setPlainText("1 2 3\n4 5\n")                        # the next run …
    qtbot.waitUntil(lambda: win.runs.settled, timeout=RUN_TIMEOUT_MS)
    assert win.runs.last_reply.ok and win.session.result.lengths.tolist() == [3, 2]                 # … the new engine answers


def test_an_oversized_run_is_refused_at_once_without_the_engine(make_window, qtbot):
    win = make_window()
    qtbot.waitUntil(lambda: win.runs.settled, timeout=RUN_TIMEOUT_MS)
    sent = win.runs.last_run_id
    win.live_check.setChecked(False)
    lstm = next(card for card in win.stack_editor.cards if card.layer.is_recurrent)
    lstm.param_widget("units").setValue(4096)
    win.sequence_editor.text_edit.setPlainText("\n".join(["5 " * 300] * 500))
    win.runs.run_now(asked=True)
    assert not win.runs.settled and win.session.checking           # a large text: the run follows its check …
    qtbot.waitUntil(lambda: win.runs.settled, timeout=10_000)
    assert not win.runs.last_reply.ok                                # … then it is refused, no reply awaited
    assert "500 sequences × 300 steps" in win.session.status_text and "over the limit of 2,048 MB" in win.runs.last_reply.error
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
        window.runs.runFinished.connect(lambda reply: loop.quit())
        QTimer.singleShot(120_000, loop.quit)
        loop.exec()
        assert window.runs.last_reply is not None and window.runs.last_reply.ok, window.session.status_text
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
    qtbot.waitUntil(lambda: win.runs.settled and bool(win.session.devices), timeout=RUN_TIMEOUT_MS)
    before = win.session.result.layers[-1].output.copy()
    client = win.runs.service.client
    try:
        win.backend_combo.setCurrentIndex(win.backend_combo.findData(others[0]))
        win.backend_combo.activated.emit(win.backend_combo.currentIndex())
        qtbot.waitUntil(lambda: client.backend_name == others[0] and win.runs.settled and bool(win.session.devices),
                        timeout=RUN_TIMEOUT_MS)
        assert win.runs.last_reply.ok, win.session.status_text
        assert win.session.result.layers[-1].output.shape == before.shape and client.pid is not None
    finally:
        client.restart(None)


class GatedEngine:
    """An in-process engine whose runs wait at a gate while it is closed (a cancel still stops them)."""

    def __new__(cls):
        import threading

        from explorer.core.run import Engine

        class Gated(Engine):
            def run(self, spec, text=None, **kwargs):
                while not self.gate.wait(0.05):
                    self.waiting.set()
                    kwargs["check_cancel"]()
                return super().run(spec, text, **kwargs)

        made = Gated()
        made.gate, made.waiting = threading.Event(), threading.Event()
        made.gate.set()
        return made


def test_esc_answers_the_training_chunk_and_the_export_queued_behind_the_run(make_window, qtbot, tmp_path,
                                                                            monkeypatch):
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    from explorer.core.presets import load_preset
    from explorer.engine.local import LocalChannel
    from explorer.qt import training_panel
    monkeypatch.setattr(training_panel, "CHUNK_SECONDS", 0.0)
    engine = GatedEngine()
    win = make_window(load_preset("train_attention_on_7"), source="preset:train_attention_on_7",
                      make_service=lambda on_reply, on_progress: LocalChannel(on_reply, on_progress, engine=engine,
                                                                              paused=True))
    qtbot.waitUntil(lambda: win.runs.settled and win.session.result is not None, timeout=RUN_TIMEOUT_MS)
    engine.gate.clear()
    win.runs.run_now()                                          # this run waits in the engine …
    qtbot.waitUntil(engine.waiting.is_set, timeout=RUN_TIMEOUT_MS)
    win.training.steps_spin.setValue(2)
    win.training.train()                                   # … while a training chunk …
    exported = []
    win.files.exported.connect(exported.append)
    target = tmp_path / "model.keras"
    assert win.files.export_keras(str(target))             # … and an export wait behind it
    win.activateWindow()
    QTest.keyClick(win, Qt.Key.Key_Escape)
    assert win.session.status_text == "cancelled"
    engine.gate.set()
    qtbot.waitUntil(lambda: bool(exported) and not win.training.running and win.runs.settled, timeout=RUN_TIMEOUT_MS)
    assert exported[0].ok and target.exists()
    assert len(win.training.curve_loss) == 2               # both steps trained: nothing was dropped


def test_engine_deaths_answer_every_run_and_restart_engine_brings_runs_back(make_window, qtbot):
    """Five deaths in a row, with a run waiting, the later ones while the new engines load Keras. After the restart limit the window says what to do and offers Restart engine (on the
    message and in the Run menu); the window is never stuck, and the dead engines' blocks are gone."""
    from explorer.engine import shared
    win = make_window()
    qtbot.waitUntil(lambda: win.runs.settled and bool(win.session.devices), timeout=RUN_TIMEOUT_MS)
    client = win.runs.requests.client
    finished = []
    win.runs.runFinished.connect(finished.append)
    dead = []
    try:
        def kill() -> None:
            pid = client.pid
            os.kill(pid, 9)
            dead.append(pid)
            qtbot.waitUntil(lambda: client.pid != pid or client.failure is not None, timeout=RUN_TIMEOUT_MS)

        win.runs.run_now()                                     # in flight or still queued: answered either way
        for _ in range(6):      # three deaths in a row give up; an answer between two (a fast engine) starts anew
            kill()
            if client.failure is not None:
                break
        qtbot.waitUntil(lambda: win.runs.settled, timeout=RUN_TIMEOUT_MS)          # answered: never stuck
        assert client.failure is not None
        if finished[-1].ok:     # the run was answered before the last deaths: the run after them is refused
            win.runs.run_now()
            qtbot.waitUntil(lambda: win.runs.settled and not finished[-1].ok, timeout=RUN_TIMEOUT_MS)
        assert not finished[-1].ok and "Restart engine" in finished[-1].error
        box = win._engine_box
        qtbot.waitUntil(lambda: box is not None and box.isVisible())
        assert "Restart engine" in box.text() and "unchanged" in box.text()
        [restart] = [b for b in box.buttons() if b.text() == "Restart engine"]
        restart.click()                                                   # the button on the message
        qtbot.waitUntil(lambda: not win.runs.settled)
        for _ in range(2):
            kill()
        qtbot.waitUntil(lambda: win.runs.settled, timeout=3 * RUN_TIMEOUT_MS)
        assert win.runs.last_reply.ok and win.session.state.current               # runs are back
        for pid in dead:
            assert not [n for n in os.listdir(shared.SHM_DIR) if n.startswith(shared.prefix(pid))]
        assert "Restart engine" in [a.text() for a in win.menus.restart_engine_action.associatedObjects()[0].actions()]
        win.menus.restart_engine_action.trigger()                          # the Run menu's action works too
        qtbot.waitUntil(lambda: win.runs.settled and win.runs.last_reply.ok, timeout=RUN_TIMEOUT_MS)
    finally:
        if client.failure is not None:
            client.restart(None)


def test_ctrl_c_in_the_terminal_closes_the_window_as_quit_does(make_window, qtbot):
    import signal

    from explorer.qt.app import quit_on_interrupt
    win = make_window(source=None)
    asked = []
    win.files.ask_unsaved = lambda name: asked.append(name) or "discard"
    win.session.set_text("1 2 3\n")                         # unsaved work: asked about, as Quit asks
    watch = quit_on_interrupt(win)
    try:
        os.kill(os.getpid(), signal.SIGINT)
        qtbot.waitUntil(lambda: not win.isVisible(), timeout=5000)
    finally:
        watch.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
    assert asked
