"""The File menu: New, Open (stack files and .keras models), Save, Save As, Open Recent, Export as .keras,
Quit; the title with its `*`; the unsaved-changes question; files dropped on the window; refused files."""

from __future__ import annotations

import json
import os
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from explorer.core.presets import load_preset
from explorer.core.spec import LayerSpec, from_dict, load, save, to_dict
from explorer.qt import files as files_module
from explorer.qt.settings import RECENT_LIMIT, recent_files

RUN_TIMEOUT_MS = 60_000


def settle(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.runs.settled, timeout=RUN_TIMEOUT_MS)


def type_text(window, text: str) -> None:
    window.sequence_editor.text_edit.appendPlainText(text)


def stack_file(tmp_path: Path, name: str = "mine.stack.json", sequences: str = "1 2 3\n4 5\n",
               units: int = 16) -> Path:
    spec = load_preset("average_pooling")
    spec.title = spec.lesson = None
    spec.layers[1].params["units"] = units
    spec.sequences = sequences
    path = tmp_path / name
    save(spec, path)
    return path


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


# --- the menu and the title ---

def test_the_file_menu_comes_first_with_its_actions(make_window, qtbot):
    win = make_window()
    menus = [action.text().replace("&", "") for action in win.menuBar().actions()]
    assert menus[0] == "File"
    texts = [action.text().replace("&", "") for action in win.menus.menu("File").actions() if not action.isSeparator()]
    assert texts == ["New", "Open…", "Open Recent", "Save", "Save As…", "Export as .keras…", "Quit"]
    assert win.files.quit_action.shortcut().toString() == "Ctrl+Q"
    assert win.files.open_action.shortcut().toString() == "Ctrl+O" and win.files.save_action.shortcut().toString() == "Ctrl+S"


def test_the_title_names_the_file_and_stars_unsaved_changes(make_window, qtbot, tmp_path):
    path = stack_file(tmp_path)
    win = make_window()
    assert win.windowTitle() == "Global average pooling — RNN Shape Explorer"     # a preset: its title
    assert win.files.load(str(path))
    settle(qtbot, win)
    assert win.windowTitle() == "mine.stack.json — RNN Shape Explorer" and not win.files.modified
    type_text(win, "6 7 8")
    assert win.windowTitle() == "mine.stack.json* — RNN Shape Explorer" and win.files.modified
    win.history.undo()
    assert win.windowTitle() == "mine.stack.json — RNN Shape Explorer" and not win.files.modified
    win.stack_editor.card("lstm_1").param_widget("units").setValue(20)
    assert win.windowTitle().startswith("mine.stack.json*")
    assert win.files.save()                                       # back into the file it came from
    assert win.windowTitle() == "mine.stack.json — RNN Shape Explorer"
    assert load(path).layers[1].params["units"] == 20


# --- saving ---

def test_save_keeps_the_sequence_text_and_writes_through_a_temporary_file(make_window, qtbot, tmp_path,
                                                                          monkeypatch):
    path = stack_file(tmp_path)
    win = make_window()
    win.files.load(str(path))
    type_text(win, "9 9 9")
    replaced = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (replaced.append((src, dst)), real_replace(src, dst)))
    assert win.files.save_to(str(path))
    assert [Path(dst) for _, dst in replaced] == [path] and Path(replaced[0][0]).parent == path.parent
    saved = load(path)
    assert saved.sequences == win.sequence_editor.text() and "9 9 9" in saved.sequences
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_failed_save_leaves_the_old_file_whole_and_says_so(make_window, qtbot, tmp_path, monkeypatch):
    path = stack_file(tmp_path)
    before = path.read_bytes()
    win = make_window()
    win.files.load(str(path))
    type_text(win, "4 4 4")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    assert not win.files.save_to(str(path))
    assert path.read_bytes() == before                             # never half-written
    assert "No space left on device" in win.session.status_text
    assert win.questions.alerts and "cannot save" in win.questions.alerts[-1][1]
    assert win.files.modified and win.windowTitle().startswith("mine.stack.json*")
    assert [p.name for p in tmp_path.iterdir()] == ["mine.stack.json"]


def test_save_without_a_file_asks_where_and_adds_the_suffix(make_window, qtbot, tmp_path):
    win = make_window()
    asked = []
    target = tmp_path / "fresh"
    win.files.ask_save_path = lambda suggested: (asked.append(suggested), str(target))[1]
    win.files.save_action.trigger()
    assert asked == ["average_pooling.stack.json"]
    saved = tmp_path / "fresh.stack.json"
    assert saved.exists() and win.session.source == str(saved)
    assert win.windowTitle() == "fresh.stack.json · Global average pooling — RNN Shape Explorer"
    assert from_dict(json.loads(saved.read_text()))
    win.files.ask_save_path = lambda suggested: None              # Save As, then cancel the dialog
    assert not win.files.save_as()
    assert win.session.source == str(saved)


# --- the unsaved-changes question ---

def test_new_asks_about_unsaved_changes_save_discard_cancel(make_window, qtbot, tmp_path):
    path = stack_file(tmp_path)
    win = make_window()
    win.files.load(str(path))
    settle(qtbot, win)
    assert win.files.new() and win.questions.unsaved == []          # nothing to lose: no question
    assert win.windowTitle() == "Untitled — RNN Shape Explorer" and win.session.source is None
    win.files.load(str(path))
    type_text(win, "5 5 5")
    text = win.sequence_editor.text()
    win.questions.unsaved_answer = "cancel"
    assert not win.files.new()
    assert win.questions.unsaved == ["mine.stack.json"]
    assert win.session.source == str(path) and win.sequence_editor.text() == text and win.files.modified
    win.questions.unsaved_answer = "save"
    assert win.files.new()
    assert "5 5 5" in load(path).sequences                          # saved first, then the new stack
    assert win.session.source is None and not win.files.modified
    type_text(win, "6 6")
    win.questions.unsaved_answer = "discard"
    assert win.files.new()
    assert "6 6" not in win.sequence_editor.text()


def test_open_asks_first_and_keeps_the_work_when_cancelled(make_window, qtbot, tmp_path):
    first, second = stack_file(tmp_path, "a.stack.json"), stack_file(tmp_path, "b.stack.json", "7 7\n")
    win = make_window()
    win.files.load(str(first))
    type_text(win, "3 1 4")
    win.files.ask_open_path = lambda: str(second)
    win.questions.unsaved_answer = "cancel"
    win.files.open_action.trigger()
    assert win.session.source == str(first) and "3 1 4" in win.sequence_editor.text()
    win.questions.unsaved_answer = "discard"
    win.files.open_action.trigger()
    assert win.session.source == str(second) and win.sequence_editor.text() == "7 7\n"
    assert win.questions.unsaved == ["a.stack.json", "a.stack.json"]


def test_closing_with_unsaved_changes_asks_and_cancel_keeps_the_window(make_window, qtbot, tmp_path):
    win = make_window(source=None)      # the user's own work: an edited preset is never asked about
    type_text(win, "2 7 1 8")
    win.questions.unsaved_answer = "cancel"
    assert not win.close()
    assert win.isVisible() and win.questions.unsaved == ["Global average pooling"]
    win.questions.unsaved_answer = "save"
    win.questions.save_path = str(tmp_path / "kept.stack.json")
    assert win.close()
    assert "2 7 1 8" in load(tmp_path / "kept.stack.json").sequences


def test_quit_closes_the_window_after_the_question(make_window, qtbot):
    win = make_window(source=None)      # the user's own work: an edited preset is never asked about
    type_text(win, "1 1")
    win.questions.unsaved_answer = "cancel"
    win.files.quit_action.trigger()
    assert win.isVisible()
    win.questions.unsaved_answer = "discard"
    win.files.quit_action.trigger()
    assert not win.isVisible()


def test_picking_a_preset_asks_before_dropping_the_work(make_window, qtbot):
    win = make_window(source=None)      # the user's own work: an edited preset is never asked about
    type_text(win, "8 6 7")
    combo = win.preset_combo
    index = combo.findData("stacked_lstm")
    win.questions.unsaved_answer = "cancel"
    combo.setCurrentIndex(index)
    combo.activated.emit(index)
    assert win.session.source is None and "8 6 7" in win.sequence_editor.text()
    assert combo.currentData() is None
    win.questions.unsaved_answer = "discard"
    combo.setCurrentIndex(index)
    combo.activated.emit(index)
    assert win.session.source == "preset:stacked_lstm"


# --- refused files ---

BAD_FILES = {
    "truncated": b'{"format": "rnn-shape-explorer/stack", "version": 1, "input": {"kind": "tok',
    "not JSON": b"layers: [lstm]\n",
    "binary": bytes(range(256)),
    "wrong format": json.dumps({"format": "someone-else/graph", "version": 1, "layers": []}).encode(),
    "future version": json.dumps({"format": "rnn-shape-explorer/stack", "version": 99, "layers": []}).encode(),
    "invalid layer": json.dumps({"layers": [{"type": "lstm", "units": -3}]}).encode(),
    "not an object": b"[1, 2, 3]",
    "nested title": b'{"title": ' + b"[" * 985 + b"]" * 985 + b"}",
}
EXPECTED = {"truncated": "is not valid JSON", "not JSON": "is not valid JSON", "binary": "not a UTF-8 text file",
            "wrong format": 'format: must be "rnn-shape-explorer/stack"', "future version": "newer explorer",
            "invalid layer": "layers[0].units", "not an object": "must be an object",
            "nested title": "nested deeper than 100 levels"}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_a_bad_file_is_refused_with_its_message_and_the_work_stays(make_window, qtbot, tmp_path, kind):
    win = make_window(source=None)      # the user's own work: an edited preset is never asked about
    settle(qtbot, win)
    win.stack_editor.card("lstm_1").param_widget("units").setValue(24)
    type_text(win, "1 2 3 4")
    settle(qtbot, win)
    before = (to_dict(win.session.document), win.sequence_editor.text(), win.session.source, win.windowTitle())
    path = tmp_path / "bad.stack.json"
    path.write_bytes(BAD_FILES[kind])
    win.files.ask_open_path = lambda: str(path)
    win.files.open_action.trigger()                                       # Open…, as a user would
    assert win.questions.unsaved == ["Global average pooling"]      # asked first, then refused
    assert EXPECTED[kind] in win.session.status_text and "cannot open bad.stack.json" in win.session.status_text
    assert len(win.questions.alerts) == 1 and EXPECTED[kind] in win.questions.alerts[0][1]
    assert (to_dict(win.session.document), win.sequence_editor.text(), win.session.source, win.windowTitle()) == before
    assert win.files.modified
    win.history.undo()                                                      # the history is the one from before
    assert "1 2 3 4" not in win.sequence_editor.text()
    win.history.undo()
    assert win.session.document.layers[1].params["units"] == 32


def test_the_default_alert_does_not_block_the_window(make_window, qtbot, tmp_path):
    win = make_window()
    win.files.alert = lambda title, message: files_module.show_alert(win, title, message)
    missing = tmp_path / "gone.stack.json"
    assert not win.files.load(str(missing))                          # returns: the box does not block
    boxes = [w for w in QApplication.topLevelWidgets() if w.isVisible() and w.windowTitle() == "Cannot open the file"]
    assert len(boxes) == 1 and not boxes[0].isModal()
    assert "no such file" in boxes[0].text().lower() or "cannot read" in boxes[0].text()
    boxes[0].close()


# --- recent files ---

def test_open_recent_keeps_eight_newest_first_and_survives_a_restart(make_window, qtbot, tmp_path, settings):
    paths = [stack_file(tmp_path, f"s{i}.stack.json", f"{i + 1} {i + 1}\n") for i in range(RECENT_LIMIT + 2)]
    win = make_window(settings=settings)
    for path in paths:
        assert win.files.load(str(path))
    expected = [str(path.resolve()) for path in reversed(paths)][:RECENT_LIMIT]
    assert recent_files(win.settings) == expected
    win.files.recent_menu.aboutToShow.emit()
    entries = [a for a in win.files.recent_menu.actions() if a.data()]
    assert [a.data() for a in entries] == expected and entries[0].text() == f"&1 s{RECENT_LIMIT + 1}.stack.json"
    entries[-1].trigger()                                           # the oldest one opens and moves first
    assert win.session.source == expected[-1] and recent_files(win.settings)[0] == expected[-1]
    win.close()
    again = make_window(settings=QSettings(settings.fileName(), QSettings.Format.IniFormat))
    assert recent_files(again.settings)[0] == expected[-1] and len(recent_files(again.settings)) == RECENT_LIMIT


def test_a_recent_file_that_vanished_is_refused_and_dropped_from_the_list(make_window, qtbot, tmp_path, settings):
    path = stack_file(tmp_path, "brief.stack.json")
    win = make_window(settings=settings)
    win.files.load(str(path))
    path.unlink()
    win.files.recent_menu.aboutToShow.emit()
    [entry] = [a for a in win.files.recent_menu.actions() if a.data()]
    entry.trigger()
    assert "cannot open brief.stack.json" in win.session.status_text
    assert recent_files(win.settings) == []


# --- drops ---

def _drop(window, path: Path) -> tuple[QDragEnterEvent, QDropEvent]:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    enter = QDragEnterEvent(window.rect().center(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    drop = QDropEvent(QPointF(window.rect().center()), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, drop)
    return enter, drop


def test_a_stack_file_dropped_on_the_window_opens(make_window, qtbot, tmp_path):
    path = stack_file(tmp_path, "dropped.stack.json", "4 8 15 16\n")
    win = make_window()
    enter, drop = _drop(win, path)
    assert enter.isAccepted() and drop.isAccepted()
    qtbot.waitUntil(lambda: win.session.source == str(path), timeout=5000)
    assert win.sequence_editor.text() == "4 8 15 16\n"
    text_file = tmp_path / "notes.txt"
    text_file.write_text("hello")
    enter, _ = _drop(win, text_file)
    assert not enter.isAccepted()                                    # not something the window opens


def test_a_file_dropped_on_the_sequence_editor_opens_too(make_window, qtbot, tmp_path):
    path = stack_file(tmp_path, "on_editor.stack.json", "3 3 3\n")
    win = make_window()
    viewport = win.sequence_editor.text_edit.viewport()
    enter, drop = _drop(viewport, path)
    assert enter.isAccepted() and drop.isAccepted()
    qtbot.waitUntil(lambda: win.session.source == str(path), timeout=5000)
    assert win.sequence_editor.text() == "3 3 3\n"                 # opened, not pasted as text


# --- .keras models ---

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import keras
    keras.utils.set_random_seed(5)
    model = keras.Sequential([
        keras.Input((None,), dtype="int32"),
        keras.layers.Embedding(40, 6, mask_zero=True, name="emb"),
        keras.layers.LSTM(5, return_sequences=True, name="lstm"),
        keras.layers.GlobalAveragePooling1D(name="pool"),
        keras.layers.Dropout(0.2, name="drop"),
        keras.layers.Dense(3, activation="softmax", name="out"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy")
    x = np.random.default_rng(1).integers(1, 40, (24, 5))
    model.fit(x, x[:, 0] % 3, epochs=2, verbose=0)
    path = tmp_path_factory.mktemp("models") / "trained.keras"
    model.save(path)
    return model, path


def _watch_calls_here(monkeypatch, name: str) -> list[str]:
    """The threads of this process that call keras_io.`name` (none: the engine process reads models)."""
    from explorer.core import keras_io
    threads: list[str] = []
    real = getattr(keras_io, name)

    def spy(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(keras_io, name, spy)
    return threads


def test_a_keras_model_opens_in_the_engine_with_its_weights_on_my_sequences(make_window, qtbot, trained,
                                                                            monkeypatch):
    model, path = trained
    threads = _watch_calls_here(monkeypatch, "import_model")
    win = make_window()
    settle(qtbot, win)
    win.sequence_editor.text_edit.setPlainText("3 9 27\n5 25\n")   # the user's own sequences
    with qtbot.waitSignal(win.files.opened, timeout=RUN_TIMEOUT_MS) as opened:
        win.files.open(str(path))
    assert opened.args == [True]
    assert threads == []                                           # read in the engine process, not here
    assert win.session.document.weights is not None
    assert set(win.session.document.weights) == {"emb", "lstm", "pool", "drop", "out"}
    assert win.session.document.layer_names() == ["emb", "lstm", "pool", "drop", "out"]
    assert win.windowTitle() == "trained.keras — RNN Shape Explorer"
    assert "trained weights" in win.session.status_text
    settle(qtbot, win)
    assert win.runs.last_reply.ok, win.session.status_text
    assert win.sequence_editor.text() == "3 9 27\n5 25\n"          # kept: they fit the model's input
    expected = model.predict(np.array([[3, 9, 27], [5, 25, 0]]), verbose=0)
    np.testing.assert_allclose(win.session.result.layers[-1].output, expected, atol=1e-6)
    assert recent_files(win.settings)[0] == str(path.resolve())
    asked = []                                                     # Save goes to a stack file, not the model
    win.files.ask_save_path = lambda suggested: asked.append(suggested)
    win.files.save()
    assert asked == [str(path.with_name("trained.stack.json"))]


def test_an_hdf5_model_opens_from_file_open_and_equals_predict(make_window, qtbot, tmp_path):
    import keras
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(30, 4, mask_zero=True),
                              keras.layers.LSTM(3, name="lstm"), keras.layers.Dense(2, name="out")])
    model.save(tmp_path / "old.h5")                      # Keras's HDF5 writer, as Keras 2 tutorials save
    win = make_window()
    settle(qtbot, win)
    win.sequence_editor.text_edit.setPlainText("3 9 27\n5 25\n")
    with qtbot.waitSignal(win.files.opened, timeout=RUN_TIMEOUT_MS) as opened:
        win.files.open(str(tmp_path / "old.h5"))
    assert opened.args == [True]
    assert win.windowTitle() == "old.h5 — RNN Shape Explorer"
    settle(qtbot, win)
    assert win.runs.last_reply.ok, win.session.status_text
    expected = model.predict(np.array([[3, 9, 27], [5, 25, 0]]), verbose=0)
    np.testing.assert_allclose(win.session.result.layers[-1].output, expected, atol=1e-6)
    assert files_module.openable(tmp_path / "old.h5") and "*.h5" in files_module.OPEN_FILTER


def test_a_cnn_lstm_model_opens_with_keras_layer_cards_that_equal_keras(make_window, qtbot, tmp_path):
    import keras
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((None, 3)), keras.layers.Conv1D(4, 2, name="conv"),
                              keras.layers.MaxPooling1D(2, name="pool"), keras.layers.LSTM(2, name="lstm"),
                              keras.layers.Dense(2, name="head")])
    model.compile("adam", "mse")
    data = np.random.default_rng(2).normal(size=(2, 6, 3)).round(2).astype("float32")
    model.fit(data, np.ones((2, 2)), verbose=0)
    path = tmp_path / "conv.keras"
    model.save(path)
    win = make_window()
    settle(qtbot, win)
    win.sequence_editor.text_edit.setPlainText(
        "\n".join("; ".join(" ".join(map(str, step)) for step in row) for row in data.tolist()) + "\n")
    with qtbot.waitSignal(win.files.opened, timeout=RUN_TIMEOUT_MS) as opened:
        win.files.open(str(path))
    assert opened.args == [True]
    settle(qtbot, win)
    assert win.runs.last_reply.ok, win.session.status_text
    cards = win.stack_editor.cards
    assert [card.param_widget("class_name").currentText() for card in cards[:2]] == ["Conv1D", "MaxPooling1D"]
    assert '"kernel_size": [2]' in cards[0].param_widget("config").text()
    assert (cards[0].symbolic_text, cards[0].batch_text, cards[1].batch_text) == ("(None, None, 4)", "(2, 5, 4)",
                                                                                   "(2, 2, 4)")
    for shown in win.session.result.layers:
        expected = keras.Model(model.inputs, model.get_layer(shown.name).output).predict(data, verbose=0)
        np.testing.assert_allclose(shown.output, expected, atol=1e-5)


def test_a_broken_model_file_is_refused(make_window, qtbot, tmp_path):
    path = tmp_path / "broken.keras"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    win = make_window()
    with qtbot.waitSignal(win.files.opened, timeout=RUN_TIMEOUT_MS) as opened:
        win.files.open(str(path))
    assert opened.args == [False]
    assert "broken.keras" in win.session.status_text and "not a .keras model file" in win.session.status_text


def test_a_model_with_a_custom_expression_asks_first(make_window, qtbot, tmp_path, engine):
    from explorer.core import keras_io
    spec = from_dict({"input": {"kind": "tokens", "vocab_size": 10},
                      "layers": [{"type": "embedding", "output_dim": 2},
                                 {"type": "lstm", "units": 2, "return_sequences": True},
                                 {"type": "custom", "expression": "ops.mean(x, axis=1)"}]})
    engine.run(spec, "1 2\n", trust=True)
    path = tmp_path / "custom.keras"
    keras_io.export_model(engine.built_for(spec), path)
    assert files_module.keras_expressions(path) == ["ops.mean(x, axis=1)"]
    win = make_window()
    settle(qtbot, win)
    before = to_dict(win.session.document)
    with qtbot.waitSignal(win.files.opened, timeout=RUN_TIMEOUT_MS) as opened:
        win.files.open(str(path))
    assert opened.args == [False]
    assert win.questions.trust_asked == [["ops.mean(x, axis=1)"]]
    assert to_dict(win.session.document) == before and "not opened" in win.session.status_text
    win.questions.trust_answer = True
    with qtbot.waitSignal(win.files.opened, timeout=RUN_TIMEOUT_MS) as opened:
        win.files.open(str(path))
    assert opened.args == [True]
    assert win.session.document.layers[-1].params["expression"] == "ops.mean(x, axis=1)"
    settle(qtbot, win)
    assert win.runs.last_reply.ok and len(win.questions.trust_asked) == 2   # agreed once: it runs without asking again


def test_export_as_keras_writes_a_model_in_the_engine(make_window, qtbot, tmp_path, monkeypatch):
    from explorer.core import keras_io
    threads = _watch_calls_here(monkeypatch, "export_model")
    win = make_window()
    settle(qtbot, win)
    win.files.ask_export_path = lambda suggested: str(tmp_path / "exported")
    with qtbot.waitSignal(win.files.exported, timeout=RUN_TIMEOUT_MS) as exported:
        assert win.files.export_keras_action.trigger() is None
    assert exported.args[0].ok, exported.args[0].error
    assert threads == []                                           # written by the engine process
    path = tmp_path / "exported.keras"
    assert path.exists() and "exported" in win.session.status_text
    spec, weights, _ = keras_io.import_model(path)
    assert spec.layer_names() == win.session.document.layer_names() and set(weights) == set(spec.layer_names())


def test_export_of_an_invalid_stack_is_refused_in_the_window(make_window, qtbot, tmp_path):
    win = make_window()
    settle(qtbot, win)
    win.session.document.layers.append(LayerSpec("dense", {"units": 0}))
    assert not win.files.export_keras(str(tmp_path / "never.keras"))
    assert "cannot export" in win.session.status_text and not (tmp_path / "never.keras").exists()


# --- the command line ---

MODEL_DRIVER = """
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

app = QApplication(["explorer"])

def report():
    windows = [w for w in app.topLevelWidgets() if type(w).__name__ == "MainWindow" and w.isVisible()]
    if windows and windows[0].session.source == sys.argv[1] and windows[0].runs.settled and windows[0].session.result is not None:
        window = windows[0]
        print("title:", window.windowTitle(), flush=True)
        print("layers:", window.session.document.layer_names(), "weights:", sorted(window.session.document.weights), flush=True)
        print("status:", window.session.status_text, flush=True)
        window.close()
        return
    QTimer.singleShot(50, report)

QTimer.singleShot(0, report)
from explorer.cli import main
sys.exit(main([sys.argv[1]]))
"""


def test_main_py_opens_a_keras_model_named_on_the_command_line(trained, tmp_path):
    import subprocess
    import sys
    _, path = trained
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "RNN_EXPLORER_STATE_DIR": str(tmp_path / "state"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", MODEL_DRIVER, str(path)], cwd=root, env=env, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "title: trained.keras — RNN Shape Explorer" in done.stdout
    assert "layers: ['emb', 'lstm', 'pool', 'drop', 'out'] weights: ['drop', 'emb', 'lstm', 'out', 'pool']" in done.stdout


@pytest.mark.parametrize("arguments", [["missing.keras"], ["--screenshot", "/tmp/never.png", "model.keras"]])
def test_a_model_the_command_line_cannot_open_is_one_error_line(arguments, capsys, tmp_path, monkeypatch):
    from explorer import cli
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.keras").write_bytes(b"")
    assert cli.main(arguments) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1


def test_a_model_with_a_custom_layer_asks_for_the_file_of_its_classes(make_window, qtbot, tmp_path):
    import runpy

    import keras
    source = tmp_path / "my_layers.py"
    source.write_text(textwrap.dedent('''\
        import keras


        @keras.saving.register_keras_serializable(package="window_demo")
        class Doubler(keras.layers.Layer):
            def call(self, x):
                return 2.0 * x
        '''))
    doubler = runpy.run_path(str(source))["Doubler"]
    keras.utils.set_random_seed(6)
    model = keras.Sequential([keras.Input((None, 2)), doubler(name="twice"), keras.layers.GRU(2, name="gru")])
    path = tmp_path / "custom.keras"
    model.save(path)
    win = make_window()
    settle(qtbot, win)
    win.sequence_editor.text_edit.setPlainText("1 2; 3 4\n0.5 0.25\n")
    asked = []
    win.files.ask_custom_objects = lambda message: asked.append(message) or None
    with qtbot.waitSignal(win.files.opened, timeout=RUN_TIMEOUT_MS) as opened:
        win.files.open(str(path))
    assert opened.args == [False]
    assert "Doubler (used by twice)" in asked[0]
    win.files.ask_custom_objects = lambda message: str(source)
    with qtbot.waitSignal(win.files.opened, timeout=RUN_TIMEOUT_MS) as opened:
        win.files.open(str(path))
    assert opened.args == [True]
    settle(qtbot, win)
    assert win.runs.last_reply.ok, win.session.status_text
    expected = model.predict(np.array([[[1, 2], [3, 4]], [[0.5, 0.25], [0, 0]]], "float32"), verbose=0)
    np.testing.assert_allclose(win.session.result.layers[-1].output, expected, atol=1e-5)
