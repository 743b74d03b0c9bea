"""Nothing on screen is stale without saying so: the cases users met, each from the window's own widgets.

While the text or the stack is invalid, or a run was cancelled or is running, every view that shows
results is greyed with the reason; the layers before a failing one keep their (current) shapes; every
bad token is underlined and listed at once; the padded grid follows the text at every keystroke."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtGui import QColor

from seen import card_messages, grid_size, grid_text, shapes_warnings, underlined
from explorer.core.presets import load_preset
from explorer.core.run import Engine
from explorer.qt.style import muted_colour
from explorer.engine.local import LocalChannel

RUN_TIMEOUT_MS = 60_000
LOOK_RIGHT = "look right"


def settle(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.runs.settled, timeout=RUN_TIMEOUT_MS)


def table(window) -> dict[str, list[str]]:
    t = window.shapes.table
    return {t.item(r, 0).text(): [t.item(r, c).text() for c in range(1, t.columnCount())] for r in range(t.rowCount())}


def greyed_rows(window) -> list[str]:
    t = window.shapes.table
    muted = QColor(muted_colour())
    return [t.item(r, 0).text() for r in range(t.rowCount()) if t.item(r, 1).foreground().color() == muted]


def warnings(window) -> str:
    return "\n".join(shapes_warnings(window.shapes))


@pytest.fixture
def win(make_window, qtbot):
    window = make_window()
    settle(qtbot, window)
    assert window.session.state.current
    return window


def test_a_bad_token_greys_every_result_view_and_nothing_looks_right(win, qtbot):
    assert LOOK_RIGHT in warnings(win) and not win.plots.greyed
    win.sequence_editor.text_edit.setPlainText("1 2 abc 4\n")
    reason = win.session.state.reason
    assert win.session.state.kind == "stale" and "abc" in reason
    assert win.plots.greyed and reason in win.plots.message_label.text()
    assert LOOK_RIGHT not in warnings(win) and reason in warnings(win)
    assert set(greyed_rows(win)) == set(win.session.document.layer_names())        # the old shapes, greyed
    assert win.shapes.fc_shape_label.styleSheet()                           # the FC box too
    assert all("greyed" in card.badge_label.toolTip() for card in win.stack_editor.cards)
    assert grid_size(win.sequence_editor) == (0, 0)                         # no old batch in the grid
    assert "fix the errors" in win.sequence_editor.grid_caption.text()
    win.sequence_editor.text_edit.setPlainText("")                          # cleared: the same, with its reason
    assert win.plots.greyed and "no sequences" in win.plots.message_label.text()
    assert LOOK_RIGHT not in warnings(win)
    win.sequence_editor.text_edit.setPlainText("1 2 3\n")
    settle(qtbot, win)
    assert not win.plots.greyed and LOOK_RIGHT in warnings(win) and greyed_rows(win) == []


def test_every_bad_token_is_underlined_and_listed_at_once(win):
    win.sequence_editor.text_edit.setPlainText("1 x 3 y\n4 2000\n")
    assert underlined(win.sequence_editor) == [(1, 3, 4), (1, 7, 8), (2, 3, 7)]
    listed = win.sequence_editor.error_label.text()
    assert '"x"' in listed and '"y"' in listed and "token id 2000" in listed


def test_the_padded_grid_follows_every_keystroke_whatever_the_engine_does(win, qtbot):
    win.live_check.setChecked(False)                                     # no run at all
    edit = win.sequence_editor.text_edit
    edit.setPlainText("1 2\n3\n")
    assert grid_size(win.sequence_editor) == (2, 2) and grid_text(win.sequence_editor, 1, 1) == "0"
    edit.setPlainText("1 2\n3 4 5 6\n")
    assert grid_size(win.sequence_editor) == (2, 4) and grid_text(win.sequence_editor, 1, 3) == "6"
    assert win.runs.settled and "press Run" in win.session.state.reason and win.plots.greyed


def test_switching_the_input_to_features_drops_the_integer_rows(win, qtbot):
    assert grid_text(win.sequence_editor, 0, 0) == "5"
    combo = win.stack_editor.input_kind_combo
    combo.setCurrentIndex(combo.findData("features"))
    errors = win.sequence_editor.errors
    assert errors and grid_size(win.sequence_editor) == (0, 0)            # the old integer rows are gone
    win.sequence_editor.text_edit.setPlainText("0.5; 0.25\n1\n")
    assert grid_size(win.sequence_editor) == (2, 2) and grid_text(win.sequence_editor, 0, 1) == "0.25"


def test_return_sequences_off_before_a_second_lstm_keeps_the_shapes_before_it(make_window, qtbot):
    win = make_window(load_preset("stacked_lstm"), source="preset:stacked_lstm")
    settle(qtbot, win)
    win.stack_editor.card("lstm_1").param_widget("return_sequences").setChecked(False)
    settle(qtbot, win)
    state = win.session.state
    assert state.kind == "failed" and state.layer == "lstm_2" and "return_sequences" in state.reason
    rows = table(win)
    assert rows["embedding_1"][:2] == ["(None, None, 16)", "(3, 7, 16)"]     # before the failing layer: current
    assert rows["lstm_1"][:2] == ["(None, 32)", "(3, 32)"]                   # its new shape, not the old one
    assert rows["lstm_2"][:2] == ["?", "?"] and rows["dense_1"][:2] == ["?", "?"]
    assert "lstm_1" not in greyed_rows(win) and "dense_1" in greyed_rows(win)
    t = win.shapes.table
    assert not any(t.item(r, c).font().bold() for r in range(t.rowCount()) for c in range(t.columnCount()))
    assert "not built: lstm_2 fails" in t.item(3, 1).toolTip()
    cards = {card.name: card for card in win.stack_editor.cards}
    assert cards["lstm_1"].symbolic_text == "(None, 32)" and cards["embedding_1"].symbolic_text != "?"
    assert cards["lstm_2"].symbolic_text == "?" and "return_sequences" in card_messages(cards["lstm_2"])
    assert "not built: lstm_2 fails" in card_messages(cards["dense_1"])
    assert LOOK_RIGHT not in warnings(win)


class GatedEngine(Engine):
    """An engine whose runs wait at a gate while it is closed; counts what it ran."""

    def __init__(self):
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()
        self.waiting = threading.Event()
        self.ran: list[int] = []

    def run(self, spec, text=None, **kwargs):
        if not self.gate.is_set():
            self.waiting.set()
            self.gate.wait(60)
        self.ran.append(spec.layers[1].params["units"])
        return super().run(spec, text, **kwargs)


def test_a_burst_of_edits_coalesces_into_one_run_and_views_say_running(make_window, qtbot):
    engine = GatedEngine()
    win = make_window(make_service=lambda on_reply, on_progress: LocalChannel(on_reply, on_progress, engine=engine, paused=True))
    settle(qtbot, win)
    engine.ran.clear()
    engine.gate.clear()
    spin = win.stack_editor.card("lstm_1").param_widget("units")
    spin.setValue(8)                                   # this run starts and waits at the gate …
    qtbot.waitUntil(engine.waiting.is_set, timeout=RUN_TIMEOUT_MS)
    for units in (16, 24, 40):                          # … while a burst of edits arrives
        spin.setValue(units)
        qtbot.waitUntil(lambda: win.session.state.kind == "running")
    qtbot.waitUntil(lambda: win.plots.greyed, timeout=RUN_TIMEOUT_MS)       # a long run is said on screen
    assert "running" in win.plots.message_label.text()
    dropped = win.runs.dropped_replies
    engine.gate.set()
    settle(qtbot, win)
    assert engine.ran == [8, 40]                        # 16 and 24 never ran: the burst coalesced
    assert win.runs.dropped_replies == dropped + 1      # the reply for 8 came too late and was dropped
    assert table(win)["lstm_1"][0] == "(None, None, 40)" and not win.plots.greyed


def test_a_cancelled_run_greys_the_views_with_the_reason(make_window, qtbot):
    engine = GatedEngine()
    win = make_window(make_service=lambda on_reply, on_progress: LocalChannel(on_reply, on_progress, engine=engine, paused=True))
    settle(qtbot, win)
    engine.gate.clear()
    win.stack_editor.card("lstm_1").param_widget("units").setValue(12)
    qtbot.waitUntil(engine.waiting.is_set, timeout=RUN_TIMEOUT_MS)
    win.run_control.cancel_action.trigger()
    assert win.session.state.kind == "stale" and "cancelled" in win.session.state.reason
    assert win.plots.greyed and "cancelled" in win.plots.message_label.text()
    assert LOOK_RIGHT not in warnings(win)
    engine.gate.set()
    qtbot.waitUntil(lambda: not win.runs.service.busy, timeout=RUN_TIMEOUT_MS)
    assert win.session.state.kind == "stale"            # the late reply changed nothing
