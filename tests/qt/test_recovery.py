"""Autosave and crash recovery: edits are autosaved (debounced, atomically) to the state folder; a clean exit
removes the autosave; a session killed with SIGKILL leaves it behind, and the next start offers it back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from explorer.core.presets import load_preset
from explorer.core.spec import from_dict, load, save
from explorer.qt import recovery
from explorer.qt.recovery import Autosaver, crashed_sessions, offer_recovery, session_files
from explorer.qt.settings import STATE_DIR_ENV

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_MS = 60_000


def settle(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.runs.settled, timeout=RUN_TIMEOUT_MS)


@pytest.fixture
def state(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "state"
    monkeypatch.setenv(STATE_DIR_ENV, str(folder))
    return folder


def own_files(state: Path) -> tuple[Path, Path]:
    return session_files(state / "recovery", os.getpid())


def test_a_burst_of_edits_is_autosaved_once_after_the_delay_with_the_text(make_window, qtbot, state):
    win = make_window()
    settle(qtbot, win)
    stack, meta = own_files(state)
    assert win.autosaver.path == stack
    win.autosaver.remove()                          # the window's own autosaver (2 s) stands down …
    autosaver = Autosaver(win.session, win, delay_ms=0)   # … for one whose delay the test injects
    assert autosaver.path == stack
    written = []
    autosaver.saved.connect(written.append)
    win.sequence_editor.text_edit.appendPlainText("11 12")
    win.sequence_editor.text_edit.appendPlainText("13 14")         # a burst of edits: one write, after the last
    assert autosaver.pending and not stack.exists()
    qtbot.waitUntil(lambda: not autosaver.pending)
    assert written == [str(stack)]
    saved = load(stack)                                             # a plain stack file
    assert saved.sequences == win.sequence_editor.text() and "11 12\n13 14" in saved.sequences
    notes = json.loads(meta.read_text())
    assert notes["pid"] == os.getpid() and notes["source"] == "preset:average_pooling"
    assert [p.name for p in stack.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_the_autosave_is_written_through_a_temporary_file(make_window, qtbot, state, monkeypatch):
    win = make_window()
    win.sequence_editor.text_edit.appendPlainText("5 6")
    renamed = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (renamed.append(Path(dst)), real(src, dst)))
    assert win.autosaver.write_now()
    assert sorted(renamed) == sorted(own_files(state))


def test_killed_between_its_two_writes_an_autosave_never_leaves_a_document_without_its_file(make_window, state,
                                                                                         monkeypatch):
    """The autosave is two files, the document and its notes (which name the file it came from). A kill between
    the two writes leaves no document, or one whose notes name its file."""
    class Killed(BaseException):
        pass

    win = make_window()
    stack, meta = own_files(state)
    for _ in range(2):              # the first autosave, then one over an earlier autosave
        win.sequence_editor.text_edit.appendPlainText("5 6")
        replaced = []
        real = os.replace

        def replace(src, dst):
            replaced.append(dst)
            if len(replaced) == 2:
                raise Killed()
            real(src, dst)

        monkeypatch.setattr(os, "replace", replace)
        with pytest.raises(Killed):
            win.autosaver.write_now()
        monkeypatch.setattr(os, "replace", real)
        if stack.exists():
            assert meta.exists() and json.loads(meta.read_text())["source"] == "preset:average_pooling"
        assert win.autosaver.write_now()


def test_a_clean_exit_and_a_saved_document_leave_no_autosave(make_window, qtbot, state, tmp_path):
    win = make_window()
    win.sequence_editor.text_edit.appendPlainText("7 7")
    assert win.autosaver.write_now()
    stack, meta = own_files(state)
    assert stack.exists() and meta.exists()
    assert win.files.save_to(str(tmp_path / "saved.stack.json"))
    assert not win.autosaver.write_now() and not stack.exists()    # nothing unsaved: nothing to recover
    win.sequence_editor.text_edit.appendPlainText("8 8")
    assert win.autosaver.write_now() and stack.exists()
    win.questions.unsaved_answer = "discard"
    assert win.close()
    assert not stack.exists() and not meta.exists()
    win.autosaver.write_now()                                       # a late timer writes nothing after close
    assert not stack.exists()


def test_an_autosave_that_cannot_be_written_is_said_once(make_window, qtbot, tmp_path, monkeypatch):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the folder should be")
    monkeypatch.setenv(STATE_DIR_ENV, str(blocked))
    win = make_window()
    win.sequence_editor.text_edit.appendPlainText("1 1")
    assert not win.autosaver.write_now()
    assert "autosave failed" in win.session.status_text


def test_sessions_of_running_explorers_are_not_offered(state):
    folder = state / "recovery"
    folder.mkdir(parents=True)
    spec = load_preset("average_pooling")
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        for pid in (os.getpid(), alive.pid):
            save(spec, session_files(folder, pid)[0])
        assert crashed_sessions(folder) == []
    finally:
        alive.kill()
        alive.wait()
    assert [session.pid for session in crashed_sessions(folder)] == [alive.pid]


def test_an_autosave_whose_pid_now_belongs_to_another_process_is_offered(state):
    """The explorer that wrote it died and its pid went to another program: the start times differ."""
    folder = state / "recovery"
    folder.mkdir(parents=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        stack, meta = session_files(folder, other.pid)
        save(load_preset("average_pooling"), stack)
        started = recovery.process_started(other.pid)
        if started is None:
            pytest.skip("no /proc on this system: a live pid counts as the explorer that wrote it")
        meta.write_text(json.dumps({"pid": other.pid, "started": started, "saved_at": time.time()}))
        assert crashed_sessions(folder) == []                      # the writer itself, still running
        meta.write_text(json.dumps({"pid": other.pid, "started": str(int(started) - 1), "saved_at": time.time()}))
        assert [session.pid for session in crashed_sessions(folder)] == [other.pid]
    finally:
        other.kill()
        other.wait()


def test_restore_and_discard(make_window, qtbot, state, tmp_path):
    folder = state / "recovery"
    folder.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    spec = load_preset("stacked_lstm")
    spec.sequences = "1 2 3\n# typed before the crash\n"
    stack, meta = session_files(folder, dead.pid)
    save(spec, stack)
    source = tmp_path / "work.stack.json"
    save(load_preset("stacked_lstm"), source)
    meta.write_text(json.dumps({"pid": dead.pid, "saved_at": time.time(), "source": str(source)}))
    win = make_window()
    asked = []
    assert not offer_recovery(win.session, win.autosaver, win.files, decide=lambda session: (asked.append(session), False)[1])
    assert [session.pid for session in asked] == [dead.pid] and asked[0].source == str(source)
    assert not stack.exists() and not meta.exists()                  # discarded
    save(spec, stack)
    meta.write_text(json.dumps({"pid": dead.pid, "saved_at": time.time(), "source": str(source)}))
    assert offer_recovery(win.session, win.autosaver, win.files, decide=lambda session: True)
    assert win.sequence_editor.text() == "1 2 3\n# typed before the crash\n"
    assert win.session.source == str(source) and win.files.modified
    assert win.windowTitle().startswith("work.stack.json*")
    assert not stack.exists() and own_files(state)[0].exists()       # now this session's autosave holds it
    assert crashed_sessions(folder) == []


DRIVER = textwrap.dedent("""
    # Starts the explorer the way `python main.py STACK` does, and types into the sequence editor once the
    # window is up: the test then kills this process with SIGKILL after the autosave appears.
    import sys
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication(["explorer"])

    def type_once_up():
        for widget in app.topLevelWidgets():
            if type(widget).__name__ == "MainWindow" and widget.isVisible():
                widget.sequence_editor.text_edit.appendPlainText(sys.argv[2])
                print("typed", flush=True)
                return
        QTimer.singleShot(50, type_once_up)

    QTimer.singleShot(0, type_once_up)
    from explorer.cli import main
    sys.exit(main([sys.argv[1]]))
""")

RESTORER = textwrap.dedent("""
    # Starts the explorer like `python main.py`, answers "Restore" when it offers the crashed session back,
    # prints the sequence text it shows, then closes the window (a clean exit, discarding nothing asked).
    import sys
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    app = QApplication(["explorer"])
    state = {"answered": False}

    def answer():
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox) and not state["answered"]:
            print("asked:", box.text().replace("\\n", " "), flush=True)
            [restore] = [b for b in box.buttons() if b.text() == "Restore"]
            state["answered"] = True
            restore.click()
            QTimer.singleShot(200, report)
            return
        QTimer.singleShot(50, answer)

    def report():
        [window] = [w for w in app.topLevelWidgets() if type(w).__name__ == "MainWindow"]
        print("title:", window.windowTitle(), flush=True)
        print("text:", repr(window.sequence_editor.text()), flush=True)
        window.files.ask_unsaved = lambda name: "discard"
        window.close()

    QTimer.singleShot(0, answer)
    from explorer.cli import main
    sys.exit(main([]))
""")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_killed_session_is_offered_back_at_the_next_start(make_window, qtbot, state, tmp_path):
    stack = tmp_path / "crash.stack.json"
    spec = load_preset("average_pooling")
    spec.title = spec.lesson = None
    spec.sequences = "1 2 3\n"
    save(spec, stack)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", STATE_DIR_ENV: str(state),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen([sys.executable, "-c", DRIVER, str(stack), "41 42 43"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    autosave = session_files(state / "recovery", process.pid)[0]
    try:
        deadline = time.monotonic() + 120
        while not autosave.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
        assert autosave.exists(), f"no autosave appeared; exit {process.poll()}"
        assert "41 42 43" in load(autosave).sequences
    finally:
        process.send_signal(signal.SIGKILL)
        out, err = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL and "typed" in out
    assert autosave.exists()                                         # a crash leaves it behind

    [session] = crashed_sessions(state / "recovery")
    assert session.pid == process.pid and session.source == str(stack) and session.name == "crash.stack.json"
    win = make_window()
    offered = []
    assert offer_recovery(win.session, win.autosaver, win.files, decide=lambda s: (offered.append(s.name), True)[1])
    assert offered == ["crash.stack.json"]
    assert win.sequence_editor.text() == "1 2 3\n\n41 42 43"
    assert win.session.source == str(stack) and win.windowTitle().startswith("crash.stack.json*")
    assert not autosave.exists()
    settle(qtbot, win)
    assert win.runs.last_reply.ok and win.session.result.lengths.tolist() == [3, 3]


def test_the_app_offers_the_crashed_session_at_start_and_a_clean_exit_clears_it(state, tmp_path):
    folder = state / "recovery"
    folder.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    spec = load_preset("average_pooling")
    spec.sequences = "9 8 7\n6 5\n"
    save(spec, session_files(folder, dead.pid)[0])
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", STATE_DIR_ENV: str(state),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", RESTORER], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr
    assert "asked: The explorer did not close properly last time" in done.stdout
    assert "text: '9 8 7\\n6 5\\n'" in done.stdout
    assert "title: Global average pooling* — RNN Shape Explorer" in done.stdout
    assert list(folder.iterdir()) == []                              # restored, then a clean exit
    assert (state / "explorer.log").exists()


def test_a_broken_autosave_is_kept_aside_and_not_offered_again(make_window, qtbot, state):
    folder = state / "recovery"
    folder.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stack = session_files(folder, dead.pid)[0]
    stack.write_text('{"layers": [{"type": "lstm", "units": 0}]}')
    win = make_window()
    assert not offer_recovery(win.session, win.autosaver, win.files, decide=lambda session: True)
    assert "cannot restore" in win.session.status_text and "layers[0].units" in win.session.status_text
    assert crashed_sessions(folder) == [] and (folder / (stack.name + ".broken")).exists()


def test_the_recovery_file_is_a_stack_document_that_opens_anywhere(make_window, qtbot, state):
    win = make_window()
    win.stack_editor.card("lstm_1").param_widget("units").setValue(12)
    assert win.autosaver.write_now()
    data = json.loads(own_files(state)[0].read_text())
    assert data["format"] == "rnn-shape-explorer/stack" and from_dict(data).layers[1].params["units"] == 12


def test_autosaver_uses_the_state_folder(make_window, state):
    win = make_window()
    assert isinstance(win.autosaver, Autosaver) and win.autosaver.directory == state / recovery.FOLDER


def test_a_restored_session_keeps_the_trained_weights(make_window, qtbot, state):
    import numpy as np
    from explorer.core.run import Engine
    trained_win = make_window(load_preset("train_attention_on_7"), source="preset:train_attention_on_7")
    settle(qtbot, trained_win)
    trained_win.training.steps_spin.setValue(5)
    trained_win.training.train()
    qtbot.waitUntil(lambda: not trained_win.training.running and trained_win.runs.settled, timeout=RUN_TIMEOUT_MS)
    trained = trained_win.session.spec()
    assert trained.weights is not None
    qtbot.waitUntil(lambda: not trained_win.autosaver.pending and own_files(state)[0].exists(),   # training autosaves
                    timeout=RUN_TIMEOUT_MS)
    folder = state / "recovery"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for own, crashed in zip(own_files(state), session_files(folder, dead.pid)):   # as if that process had died
        own.replace(crashed)
    trained_win.autosaver.remove()

    win = make_window()
    assert offer_recovery(win.session, win.autosaver, win.files, decide=lambda session: True)
    qtbot.waitUntil(lambda: win.runs.settled and win.session.result is not None, timeout=RUN_TIMEOUT_MS)
    untrained = trained.copy()
    untrained.weights, untrained.weights_id = None, None
    expected = Engine().run(trained, trained.sequences).layers[-1].output      # a fresh engine, trained weights
    assert np.abs(expected - Engine().run(untrained, trained.sequences).layers[-1].output).max() > 1e-4
    np.testing.assert_allclose(win.session.result.layers[-1].output, expected, atol=1e-5)
    np.testing.assert_allclose(win.session.result.layers[-1].output, trained_win.session.result.layers[-1].output,
                               atol=1e-5)
