"""Undo and redo with a QUndoStack: every edit is one command, a burst of typing is one step, undoing
restores the widgets and re-runs, and the shortcuts reach it from anywhere in the window."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QTextCursor, QUndoStack
from PySide6.QtWidgets import QToolBar

from explorer.core.presets import load_preset
from explorer.core.spec import to_dict
from explorer.qt import undo as undo_module
from explorer.qt.undo import describe

RUN_TIMEOUT_MS = 60_000


def settle(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.runs.settled, timeout=RUN_TIMEOUT_MS)


def shapes(window) -> dict[str, str]:
    table = window.shapes.table
    return {table.item(r, 0).text(): table.item(r, 1).text() for r in range(table.rowCount())}


def type_at_end(qtbot, window, text: str) -> None:
    edit = window.sequence_editor.text_edit
    edit.setFocus()
    cursor = edit.textCursor()
    cursor.movePosition(QTextCursor.MoveOperation.End)
    edit.setTextCursor(cursor)
    qtbot.keyClicks(edit, text)


@pytest.fixture
def win(make_window, qtbot):
    window = make_window()
    settle(qtbot, window)
    assert window.runs.last_reply.ok, window.session.status_text
    return window


def test_three_edits_undo_three_times_then_redo(win, qtbot):
    assert isinstance(win.history.stack, QUndoStack)
    start = to_dict(win.session.document)
    start_text = win.sequence_editor.text()
    assert not win.history.undo_action.isEnabled()

    win.stack_editor.card("lstm_1").param_widget("units").setValue(48)
    settle(qtbot, win)
    win.stack_editor.card("lstm_1").param_widget("return_sequences").setChecked(False)
    settle(qtbot, win)
    type_at_end(qtbot, win, "4 5 6 7")
    settle(qtbot, win)
    end = to_dict(win.session.document)
    end_text = win.sequence_editor.text()
    assert end_text.endswith("4 5 6 7") and not win.runs.last_reply.ok       # pooling needs a sequence now
    assert win.history.stack.count() == 3                              # the typing is one step
    assert win.history.stack.undoText() == "Typing in the sequences"

    win.history.undo_action.trigger()
    settle(qtbot, win)
    assert win.sequence_editor.text() == start_text
    assert win.history.stack.undoText() == "Turn off return_sequences of lstm_1"
    win.history.undo_action.trigger()
    settle(qtbot, win)
    assert win.stack_editor.card("lstm_1").param_widget("return_sequences").isChecked()
    assert win.runs.last_reply.ok and shapes(win)["lstm_1"] == "(None, None, 48)"      # re-ran
    assert win.history.stack.undoText() == "Set units of lstm_1 to 48"
    win.history.undo_action.trigger()
    settle(qtbot, win)
    assert to_dict(win.session.document) == start
    assert win.stack_editor.card("lstm_1").param_widget("units").value() == 32
    assert shapes(win)["lstm_1"] == "(None, None, 32)" and win.runs.last_reply.ok
    assert not win.history.undo_action.isEnabled() and win.history.redo_action.isEnabled()

    for _ in range(3):
        win.history.redo_action.trigger()
        settle(qtbot, win)
    assert to_dict(win.session.document) == end
    assert win.sequence_editor.text() == end_text
    card = win.stack_editor.card("lstm_1")
    assert card.param_widget("units").value() == 48 and not card.param_widget("return_sequences").isChecked()
    assert win.runs.last_reply.error_layer == "global_average_pooling_1"
    assert not win.history.redo_action.isEnabled()


def test_the_toolbar_and_the_edit_menu_share_the_undo_stacks_actions(win):
    edit_menu = win.menus.menu("Edit")
    assert win.history.undo_action in edit_menu.actions() and win.history.redo_action in edit_menu.actions()
    toolbar_actions = [a for bar in win.findChildren(QToolBar) for a in bar.actions()]
    assert win.history.undo_action in toolbar_actions and win.history.redo_action in toolbar_actions
    assert win.history.undo_action.iconText() == "Undo" and win.history.redo_action.iconText() == "Redo"
    assert win.history.undo_action.shortcut().matches(QKeySequence("Ctrl+Z")) == QKeySequence.SequenceMatch.ExactMatch
    redo_keys = {s.toString() for s in win.history.redo_action.shortcuts()}
    assert {"Ctrl+Shift+Z", "Ctrl+Y"} <= redo_keys


def test_every_kind_of_edit_is_one_step_and_undoes_exactly(win, qtbot):
    editor = win.stack_editor
    snapshots = [to_dict(win.session.document)]
    edits = [
        lambda: editor.add_layer("dense", index=3),
        lambda: editor.move_layer(3, 2),
        lambda: editor.remove_layer(2),
        lambda: editor.card("lstm_1").type_combo.setCurrentIndex(editor.card("lstm_1").type_combo.findData("gru")),
        lambda: editor.vocab_spin.setValue(500),
        lambda: editor.seed_spin.setValue(7),
        lambda: editor.input_kind_combo.setCurrentIndex(editor.input_kind_combo.findData("words")),
        lambda: win.sequence_editor.maxlen_spin.setValue(5),
        lambda: win.sequence_editor.padding_combo.setCurrentIndex(1),
    ]
    for edit in edits:
        edit()
        settle(qtbot, win)
        snapshots.append(to_dict(win.session.document))
    assert win.history.stack.count() == len(edits)
    assert all(a != b for a, b in zip(snapshots, snapshots[1:]))
    for expected in reversed(snapshots[:-1]):
        win.history.undo()
        assert to_dict(win.session.document) == expected
        assert to_dict(win.stack_editor.spec())["layers"] == expected["layers"]
        assert win.session.document.batching.padding == expected["batching"]["padding"]
    settle(qtbot, win)
    assert win.runs.last_reply.ok


def test_typing_bursts_apart_are_separate_steps(win, qtbot, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(win.history, "clock", lambda: clock[0])   # the merge clock, injected
    type_at_end(qtbot, win, "1 2")
    clock[0] += undo_module.MERGE_SECONDS + 1
    type_at_end(qtbot, win, " 3")
    assert win.history.stack.count() == 2
    settle(qtbot, win)
    win.history.undo()
    assert win.sequence_editor.text().endswith("1 2")
    win.history.undo()
    assert not win.sequence_editor.text().endswith("1 2")


def test_typing_and_deleting_again_leaves_no_step(win, qtbot):
    type_at_end(qtbot, win, "12")
    qtbot.keyClick(win.sequence_editor.text_edit, Qt.Key.Key_Backspace)
    qtbot.keyClick(win.sequence_editor.text_edit, Qt.Key.Key_Backspace)
    assert win.history.stack.count() == 0 and not win.history.undo_action.isEnabled()


def test_undo_keeps_trained_weights(win, qtbot):
    weights = {"lstm_1": ["trained"]}
    win.session.document.weights, win.session.document.weights_id = weights, "abc"
    win.sequence_editor.maxlen_spin.setValue(4)
    win.history.undo()
    assert win.session.document.weights is weights and win.session.document.weights_id == "abc"
    win.history.redo()
    assert win.session.document.weights is weights and win.session.document.batching.maxlen == 4
    win.session.document.weights, win.session.document.weights_id = None, None
    settle(qtbot, win)


def test_a_new_document_starts_a_new_history(win, qtbot):
    win.stack_editor.card("lstm_1").param_widget("units").setValue(20)
    assert win.history.stack.count() == 1
    win.load_preset("last_state")
    assert win.history.stack.count() == 0
    settle(qtbot, win)


def _activate(qtbot, window) -> None:
    window.activateWindow()
    window.raise_()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)


def test_the_shortcuts_undo_and_redo_from_the_window_and_from_the_text(win, qtbot):
    _activate(qtbot, win)
    units = win.stack_editor.card("lstm_1").param_widget("units")
    units.setValue(40)
    settle(qtbot, win)
    win.plots.setFocus()
    qtbot.keyClick(win.plots, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert win.stack_editor.card("lstm_1").param_widget("units").value() == 32
    qtbot.keyClick(win.plots, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert win.stack_editor.card("lstm_1").param_widget("units").value() == 40
    win.history.undo()
    qtbot.keyClick(win.plots, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    assert win.stack_editor.card("lstm_1").param_widget("units").value() == 40
    settle(qtbot, win)
    # inside the sequence text, Ctrl+Z is the document's undo too (not a second, text-only history)
    before = win.sequence_editor.text()
    type_at_end(qtbot, win, " 8 9")
    qtbot.keyClick(win.sequence_editor.text_edit, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert win.sequence_editor.text() == before
    qtbot.keyClick(win.sequence_editor.text_edit, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert win.stack_editor.card("lstm_1").param_widget("units").value() == 32
    settle(qtbot, win)


def test_edits_are_described_in_words():
    base = to_dict(load_preset("average_pooling"))

    def changed(**patch):
        import copy
        data = copy.deepcopy(base)
        for path, value in patch.items():
            target = data
            keys = path.split("__")
            for key in keys[:-1]:
                target = target[int(key)] if key.isdigit() else target[key]
            target[keys[-1]] = value
        return data

    assert describe("stack", base, changed(layers__1__units=48)) == "Set units of lstm_1 to 48"
    assert describe("stack", base, changed(layers__1__return_sequences=False)) == \
        "Turn off return_sequences of lstm_1"
    assert describe("stack", base, changed(layers__1__type="gru")) == "Change lstm_1 to gru"
    assert describe("stack", base, changed(seed=3)) == "Set seed to 3"
    assert describe("stack", base, changed(input__vocab_size=20)) == "Set vocab_size to 20"
    assert describe("batching", base, changed(batching__padding="pre")) == "Set padding to pre"
    assert describe("batching", base, changed(batching__mode="bucket")) == "Set batching mode to bucket"
    assert describe("text", base, changed(sequences="1")) == "Typing in the sequences"
    # words need pad value 0: the batching follows the input in the same step, named by the input
    words = changed(input__kind="words", batching__pad_value=0)
    assert describe("batching", base, words) == "Set the input to words"
    layers = base["layers"]
    assert describe("stack", base, {**base, "layers": layers[:2] + layers[3:]}) == \
        "Remove global_average_pooling_1"
    assert describe("stack", base, {**base, "layers": layers[:2] + [{"type": "dense", "units": 4}] + layers[2:]}) \
        == "Add dense_1"
    assert describe("stack", base, {**base, "layers": [layers[0], layers[2], layers[1], layers[3]]}) == \
        "Move lstm_1 down"
