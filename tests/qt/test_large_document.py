"""A 1 MB document in the window: its text is checked over turns of the event loop while the views say
"checking the sequences…"; then the grid shows it as a small one's would, and only then does it run. Edits and
undo during and after the check end with the grid of the text in the editor."""

from __future__ import annotations

import numpy as np
import pytest

from seen import grid_size, grid_text
from explorer.core.presets import load_preset
from explorer.session import CHECKING

ROWS, STEPS = 256, 1000


class Silent:
    """A service that answers nothing: the window's runs start and stay in flight."""

    client = None
    busy = False

    def __init__(self, on_reply, on_progress):
        self.sent = 0

    def submit(self, kind, **payload):
        self.sent += 1
        return self.sent

    def cancel(self):
        pass

    def close(self):
        pass


@pytest.fixture
def big():
    rng = np.random.default_rng(7)
    rows = rng.integers(1, 1000, size=(ROWS, STEPS))
    spec = load_preset("average_pooling")
    spec.sequences = "\n".join(" ".join(map(str, row)) for row in rows) + "\n"
    assert len(spec.sequences) > 900_000
    return rows, spec


@pytest.fixture
def win(make_window):
    window = make_window(make_service=Silent)
    window.started = []
    window.runs.runStarted.connect(lambda _id: window.started.append(window.session.text))
    return window


def test_a_large_document_says_checking_then_shows_its_grid_and_runs(win, big, qtbot):
    rows, spec = big
    editor = win.sequence_editor
    win.session.load(spec, trusted=True, source=None)
    assert win.session.state.kind == "stale" and win.session.state.reason == CHECKING
    assert CHECKING in editor.grid_caption.text() and grid_size(editor) == (0, 0)
    assert CHECKING in win.plots.message_label.text() and CHECKING in win.status_message.text()
    assert win.started == [] and not win.runs.settled                    # no run before the check
    assert editor.text() == spec.sequences
    qtbot.waitUntil(lambda: not win.session.checking, timeout=10_000)
    assert grid_size(editor) == (200, 200) and f"{ROWS} × {STEPS}" in editor.grid_caption.text()
    for row, step in ((0, 0), (17, 123), (199, 199)):
        assert grid_text(editor, row, step) == str(rows[row, step])
    assert win.started == [spec.sequences]                               # the run follows the check
    assert win.session.state.kind == "running" and CHECKING not in editor.grid_caption.text()


def test_an_edit_during_the_check_ends_with_the_grid_of_the_edited_text(win, big, qtbot):
    rows, spec = big
    editor = win.sequence_editor
    win.session.load(spec, trusted=True, source=None)
    qtbot.wait(5)                                               # a few chunks checked
    editor.text_edit.setPlainText("5 12 7\n8 4\n")              # typed over: checked at once
    assert grid_size(editor) == (2, 3) and not win.session.checking
    qtbot.wait(200)                                             # the dropped check's steps change nothing
    assert grid_size(editor) == (2, 3) and grid_text(editor, 1, 2) == "0"
    assert win.started == ["5 12 7\n8 4\n"]                              # the large text never ran


def test_an_error_typed_into_a_large_text_is_found_and_undo_brings_the_grid_back(win, big, qtbot):
    rows, spec = big
    editor = win.sequence_editor
    win.session.load(spec, trusted=True, source=None)
    qtbot.waitUntil(lambda: not win.session.checking, timeout=10_000)
    cursor = editor.text_edit.textCursor()
    cursor.setPosition(editor.text_edit.document().findBlockByNumber(40).position())
    cursor.insertText("x ")                                     # line 41 starts with a bad token
    assert win.session.checking and CHECKING in editor.grid_caption.text()
    qtbot.waitUntil(lambda: not win.session.checking, timeout=10_000)
    assert [(error.line, error.column) for error in editor.errors] == [(41, 1)]
    assert grid_size(editor) == (0, 0) and '"x"' in win.session.state.reason
    win.history.undo_action.trigger()
    assert editor.text() == spec.sequences
    qtbot.waitUntil(lambda: not win.session.checking, timeout=10_000)
    assert not editor.errors and grid_size(editor) == (200, 200)
    assert grid_text(editor, 40, 0) == str(rows[40, 0])


def test_a_new_document_keeps_the_cards_of_its_equal_layers_and_they_edit_it(win):
    """Loading rebuilds only the cards whose layer differs; a kept card edits the new document."""
    stack = win.stack_editor
    before = {card.name: card for card in stack.cards}
    spec = load_preset("average_pooling")
    units = spec.layers[1].params["units"] + 8
    spec.layers[1].params["units"] = units
    win.session.load(spec, trusted=True, source=None)
    after = {card.name: card for card in stack.cards}
    assert [name for name in after if after[name] is before[name]] == ["embedding_1", "global_average_pooling_1",
                                                                       "dense_1"]
    assert after["lstm_1"].param_widget("units").value() == units
    after["dense_1"].param_widget("units").setValue(7)
    assert win.session.document.layers[3].params["units"] == 7 and spec.layers[3].params["units"] != 7
    win.history.undo_action.trigger()                # an undo: new layer objects; the cards of the equal ones stay
    assert stack.cards[:3] == [after["embedding_1"], after["lstm_1"], after["global_average_pooling_1"]]
    assert stack.cards[3].param_widget("units").value() == spec.layers[3].params["units"]
    after["lstm_1"].param_widget("units").setValue(units + 1)
    assert win.session.document.layers[1].params["units"] == units + 1


def test_a_large_labelled_document_opens_the_training_panel_once_checked(win, big, qtbot):
    rows, spec = big
    spec.sequences = "\n".join(" ".join(map(str, row)) + " | 1" for row in rows) + "\n"
    win.training_dock.hide()
    win.session.load(spec, trusted=True, source=None)
    assert win.training_dock.isHidden()
    win.training.train()                                        # too early: said, nothing sent
    assert CHECKING in win.training.status_label.text() and not win.training.running
    qtbot.waitUntil(lambda: not win.session.checking, timeout=10_000)
    assert not win.training_dock.isHidden()
