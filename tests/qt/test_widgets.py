"""The editors and the shapes panel on their own: each is built from a Session; a change of the view is
checked in the session, a change of the session is checked in the view. No TensorFlow here (results are
built by hand)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PySide6.QtCore import QMimeData, QPointF, Qt
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QCheckBox, QComboBox, QLineEdit, QSpinBox

from explorer.core.diagnose import Diagnostic, FcInput
from explorer.core.presets import load_preset
from explorer.core.run import LayerResult, RunResult
from explorer.core.registry import TYPES
from explorer.core.spec import LAYER_LABELS, LAYER_PARAMS, Batching, InputSpec, LayerSpec, StackSpec
from explorer.qt.sequence_editor import SequenceEditor
from explorer.qt.shapes_panel import ShapesPanel
from seen import card_messages, grid_row_header, grid_size, grid_text, padded_cells, shapes_warnings, underlined
from explorer.qt.stack_editor import MIME_TYPE, StackEditor
from explorer.session import Session


def stack() -> StackSpec:
    return load_preset("average_pooling")


def session_for(spec: StackSpec | None = None) -> Session:
    return Session(spec if spec is not None else stack(), trusted=True, source="preset:average_pooling")


def stack_editor(qtbot, spec: StackSpec | None = None) -> StackEditor:
    editor = StackEditor(session_for(spec))
    qtbot.addWidget(editor)
    return editor


def edits(session: Session) -> list[str]:
    """The kinds of the session's edits from now on."""
    seen: list[str] = []
    session.events.edited.connect(seen.append)
    return seen


def fake_result(units: int = 32) -> RunResult:
    """What the engine returns for the average_pooling preset on three lines of lengths 7, 3, 5."""
    mask = np.array([[1] * 7, [1] * 3 + [0] * 4, [1] * 5 + [0] * 2], dtype=bool)
    batch = np.where(mask, 5, 0).astype(np.int32)

    def layer(name, kind, symbolic, shape, role, params, with_mask):
        return LayerResult(name, kind, symbolic, shape, np.zeros(shape, np.float32), mask if with_mask else None,
                           role, params)

    layers = [layer("embedding_1", "embedding", (None, None, 16), (3, 7, 16), "creates", 16000, True),
              layer("lstm_1", "lstm", (None, None, units), (3, 7, units), "carries", 6272, True),
              layer("global_average_pooling_1", "global_average_pooling", (None, units), (3, units), "consumes", 0,
                    False),
              layer("dense_1", "dense", (None, 5), (3, 5), "none", 165, False)]
    fc = FcInput("dense_1", (None, units), (3, units), f"{units} = lstm_1's {units} units")
    return RunResult("/CPU:0", "pad", batch, mask, mask.sum(1), [2, 3, 4], layers, fc, (3, 5),
                     [Diagnostic("lstm_1 is doing something odd", "lstm_1")], {"build": 1.0, "run": 1.0, "total": 2.0},
                     float(1 - mask.mean()), float(1 - mask.mean()))


# --- the stack editor ---

def test_the_add_menu_offers_every_layer_type_by_a_friendly_name(qtbot):
    editor = stack_editor(qtbot)
    offered = {action.data(): action.text() for action in editor.add_menu.actions() if action.data()}
    assert set(offered) == set(LAYER_PARAMS)
    assert offered["time_distributed_dense"] == LAYER_LABELS["time_distributed_dense"]
    assert all("_" not in text for text in offered.values())


def test_every_parameter_has_a_widget_with_its_help(qtbot):
    spec = StackSpec(layers=[LayerSpec(kind) for kind in LAYER_PARAMS])
    editor = stack_editor(qtbot, spec)
    for card in editor.cards:
        for key, param in TYPES[card.layer.type].params.items():
            default = param.default
            widget = card.param_widget(key)
            assert widget.toolTip() == param.help
            expected = (QComboBox if param.options else QCheckBox if isinstance(default, bool)
                        else QLineEdit if isinstance(default, str) else QSpinBox if isinstance(default, int) else None)
            if expected is not None:
                assert isinstance(widget, expected), (card.layer.type, key)


def test_changing_units_edits_the_session_and_undoing_it_shows_in_the_card(qtbot):
    editor = stack_editor(qtbot)
    session = editor.session
    seen = edits(session)
    before = session.snapshot()
    editor.card("lstm_1").param_widget("units").setValue(48)
    assert session.document.layers[1].params["units"] == 48 and seen == ["stack"]
    assert session.selected_layer == "lstm_1"
    session.restore(before)                                   # the session changes: the card follows
    assert editor.card("lstm_1").param_widget("units").value() == 32


def test_return_sequences_and_bidirectional_edit_the_spec(qtbot):
    editor = stack_editor(qtbot)
    session = editor.session
    lstm = editor.card("lstm_1")
    assert not lstm.param_widget("merge_mode").isEnabled()
    lstm.param_widget("return_sequences").setChecked(False)
    assert session.document.layers[1].params["return_sequences"] is False
    lstm.param_widget("bidirectional").setChecked(True)
    assert session.document.layers[1].params["bidirectional"] is True
    assert lstm.param_widget("merge_mode").isEnabled()


def test_changing_a_layers_type_keeps_the_shared_parameters(qtbot):
    editor = stack_editor(qtbot)
    session = editor.session
    editor.card("lstm_1").param_widget("units").setValue(40)
    combo = editor.card("lstm_1").type_combo
    combo.setCurrentIndex(combo.findData("gru"))
    layer = session.document.layers[1]
    assert (layer.type, layer.params["units"], layer.params["return_sequences"]) == ("gru", 40, True)
    assert [card.name for card in editor.cards] == ["embedding_1", "gru_1", "global_average_pooling_1", "dense_1"]
    assert editor.selected_layer == session.selected_layer == "gru_1"
    # dense's activation None is no valid recurrent activation: the default comes back
    activation = editor.card("dense_1").param_widget("activation")
    activation.setCurrentIndex(activation.findData(None))
    assert session.document.layers[3].params["activation"] is None
    combo = editor.card("dense_1").type_combo
    combo.setCurrentIndex(combo.findData("simple_rnn"))
    assert (session.document.layers[3].params["units"], session.document.layers[3].params["activation"]) == (5, "tanh")


def test_add_remove_and_move_with_the_buttons(qtbot):
    editor = stack_editor(qtbot)
    session = editor.session

    def types():
        return [layer.type for layer in session.document.layers]

    editor.card("lstm_1").clicked.emit(editor.card("lstm_1"))
    action = next(a for a in editor.add_menu.actions() if a.data() == "masked_mean_pooling")
    action.trigger()
    assert types() == ["embedding", "lstm", "masked_mean_pooling", "global_average_pooling", "dense"]
    assert session.selected_layer == "masked_mean_pooling_1"
    editor.cards[2].down_button.click()
    assert types()[2:4] == ["global_average_pooling", "masked_mean_pooling"]
    editor.cards[3].up_button.click()
    assert types()[2:4] == ["masked_mean_pooling", "global_average_pooling"]
    editor.cards[2].remove_button.click()
    assert types() == ["embedding", "lstm", "global_average_pooling", "dense"]
    assert not editor.cards[0].up_button.isEnabled() and not editor.cards[-1].down_button.isEnabled()


def test_dropping_a_dragged_card_reorders_the_layers(qtbot):
    editor = stack_editor(qtbot)
    editor.resize(420, 900)
    editor.show()
    qtbot.waitUntil(lambda: all(card.height() > 20 for card in editor.cards))
    column = editor.cards[0].parentWidget()
    mime = QMimeData()
    mime.setData(MIME_TYPE, b"3")                     # dense_1 …
    target = editor.cards[1].geometry().top() + 2    # … dropped on the upper half of lstm_1
    drop = QDropEvent(QPointF(20, target), Qt.DropAction.MoveAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    column.dropEvent(drop)
    qtbot.waitUntil(lambda: editor.session.document.layers[1].type == "dense")   # moved once the drag ends
    assert [layer.type for layer in editor.session.document.layers] == [
        "embedding", "dense", "lstm", "global_average_pooling"]
    assert editor.selected_layer == editor.session.selected_layer == "dense_1"


def test_input_settings_switch_between_tokens_and_features(qtbot):
    editor = stack_editor(qtbot)
    session = editor.session
    editor.show()
    assert editor.vocab_spin.isVisible() and not editor.features_spin.isVisible()
    editor.input_kind_combo.setCurrentIndex(editor.input_kind_combo.findData("features"))
    assert session.document.input.kind == "features"
    assert editor.features_spin.isVisible() and not editor.vocab_spin.isVisible()
    editor.features_spin.setValue(3)
    assert session.document.input == InputSpec("features", 1000, 3)


def test_badges_show_shapes_mask_role_and_messages_of_their_layer(qtbot):
    editor = stack_editor(qtbot)
    session = editor.session
    assert editor.card("lstm_1").symbolic_text == "…"
    session.run_finished(fake_result())
    lstm = editor.card("lstm_1")
    assert lstm.symbolic_text == "(None, None, 32)"
    assert lstm.batch_text == "(3, 7, 32)"
    assert lstm.mask_role == "carries"
    assert "doing something odd" in card_messages(lstm)
    assert card_messages(editor.card("dense_1")) == ""
    session.run_failed("global_average_pooling_1 needs a sequence", "global_average_pooling_1")
    assert "needs a sequence" in card_messages(editor.card("global_average_pooling_1"))
    assert "needs a sequence" not in card_messages(lstm)
    assert lstm.symbolic_text == "?"                       # no run of the layers before it: unknown
    assert "not built: global_average_pooling_1 fails" in card_messages(editor.card("dense_1"))


def test_clicking_a_card_selects_its_layer(qtbot):
    editor = stack_editor(qtbot)
    editor.show()
    qtbot.waitExposed(editor)
    card = editor.card("dense_1")
    qtbot.mouseClick(card.name_label, Qt.MouseButton.LeftButton)
    assert editor.session.selected_layer == "dense_1"
    assert card.selected and not editor.card("lstm_1").selected
    editor.session.select_layer("embedding_1")             # the session selects: the card follows
    assert editor.card("embedding_1").selected and not card.selected


# --- the sequence editor ---

def editor_for(qtbot, text: str, input_spec: InputSpec | None = None, **batching) -> SequenceEditor:
    spec = StackSpec(input=input_spec or InputSpec("tokens", 100), batching=Batching(**batching),
                     layers=[LayerSpec("embedding"), LayerSpec("lstm")], sequences=text)
    editor = SequenceEditor(Session(spec, trusted=True))
    qtbot.addWidget(editor)
    return editor


def test_a_bad_token_is_underlined_and_explained(qtbot):
    editor = editor_for(qtbot, "1 2 3\n4 5\n")
    session = editor.session
    editor.show()
    assert editor.error is None and editor.error_label.isHidden()
    editor.text_edit.setPlainText("1 2 3\n4 x7 5\n")
    assert session.text == "1 2 3\n4 x7 5\n"
    assert not editor.error_label.isHidden()
    assert 'line 2, column 3: "x7" is not a token id' in editor.error_label.text()
    assert underlined(editor)[:1] == [(2, 3, 5)]
    editor.text_edit.setPlainText("1 2 3\n4 500\n")
    assert "outside the vocabulary" in editor.error_label.text()
    assert underlined(editor)[:1] == [(2, 3, 6)]
    session.set_text("1 2 3\n4 5\n")                       # the session changes: the editor follows
    assert editor.text() == "1 2 3\n4 5\n"
    assert editor.error is None and underlined(editor) == [] and editor.error_label.isHidden()


def test_batching_controls_edit_the_session(qtbot):
    editor = editor_for(qtbot, "1 2 3\n")
    session = editor.session
    editor.padding_combo.setCurrentIndex(editor.padding_combo.findData("pre"))
    assert session.document.batching.padding == "pre"
    editor.maxlen_spin.setValue(4)
    assert session.document.batching.maxlen == 4
    editor.maxlen_spin.setValue(0)
    assert session.document.batching.maxlen is None and editor.maxlen_spin.text() == "none"
    assert not editor.bucket_spin.isEnabled()
    editor.mode_combo.setCurrentIndex(editor.mode_combo.findData("bucket"))
    assert session.document.batching.mode == "bucket" and editor.bucket_spin.isEnabled()
    assert not editor.chunk_spin.isEnabled()
    editor.pad_value_spin.setValue(7)
    assert session.document.batching.pad_value == 7 and isinstance(session.document.batching.pad_value, int)
    session.set_batching(Batching(mode="chunked", chunk=5))     # the session changes: the controls follow
    assert editor.mode_combo.currentData() == "chunked" and editor.chunk_spin.value() == 5


def test_the_grid_greys_the_padded_cells_and_follows_the_cursor(qtbot):
    editor = editor_for(qtbot, "# comment\n5 6 7\n8\n", padding="pre")
    session = editor.session
    assert grid_size(editor) == (2, 3)
    assert padded_cells(editor) == [(1, 0), (1, 1)]
    assert grid_text(editor, 1, 2) == "8"
    assert grid_row_header(editor, 1) == "line 3"
    cursor = editor.text_edit.textCursor()
    cursor.setPosition(editor.text_edit.document().findBlockByNumber(2).position())
    editor.text_edit.setTextCursor(cursor)
    assert session.selected_line == 3
    assert [index.row() for index in editor.grid.selectionModel().selectedRows()] == [1]
    session.select_line(2)                                      # the session selects: cursor and grid follow
    assert editor.current_line == 2
    assert [index.row() for index in editor.grid.selectionModel().selectedRows()] == [0]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(st.integers(1, 99), min_size=1, max_size=6), min_size=1, max_size=4), data=st.data())
def test_a_token_typed_over_repaints_only_its_row_and_the_grid_shows_the_new_batch(qtbot, rows, data):
    editor = editor_for(qtbot, "\n".join(" ".join(map(str, row)) for row in rows) + "\n")
    line = data.draw(st.integers(0, len(rows) - 1))
    step = data.draw(st.integers(0, len(rows[line]) - 1))
    token = data.draw(st.integers(1, 99).filter(lambda value: value != rows[line][step]))
    model = editor.grid.model()
    resets, changed = [], []
    model.modelReset.connect(lambda: resets.append(True))
    model.dataChanged.connect(lambda first, last, *_: changed.append((first.row(), last.row())))
    rows[line][step] = token
    editor.text_edit.setPlainText("\n".join(" ".join(map(str, row)) for row in rows) + "\n")
    width = max(map(len, rows))
    expected = np.array([row + [0] * (width - len(row)) for row in rows])     # post padding with 0, by hand
    assert grid_size(editor) == expected.shape
    assert [[int(grid_text(editor, r, t)) for t in range(width)] for r in range(len(rows))] == expected.tolist()
    assert padded_cells(editor) == [(r, t) for r, row in enumerate(rows) for t in range(len(row), width)]
    assert not resets and changed == [(line, line)]


def test_features_are_checked_against_the_feature_count(qtbot):
    editor = editor_for(qtbot, "0.1 0.2; 0.3 0.4\n", InputSpec("features", None, 2))
    assert editor.error is None
    spec = editor.session.spec()
    spec.input = InputSpec("features", None, 3)
    editor.session.set_stack(spec)
    assert "timestep 1 has 2 values; input.features is 3" in editor.error_label.text()


# --- the shapes panel ---

def test_the_shapes_panel_lists_every_layer_and_the_fc_input(qtbot):
    session = session_for()
    panel = ShapesPanel(session)
    qtbot.addWidget(panel)
    session.run_finished(fake_result(48))
    rows = [[panel.table.item(r, c).text() for c in range(panel.table.columnCount())]
            for r in range(panel.table.rowCount())]
    assert rows[1] == ["lstm_1", "(None, None, 48)", "(3, 7, 48)", "carries", "6,272"]
    assert [row[0] for row in rows] == ["embedding_1", "lstm_1", "global_average_pooling_1", "dense_1"]
    assert panel.fc_shape_label.text() == "(None, 48)"
    assert "48 = lstm_1's 48 units" in panel.fc_explanation_label.text()
    assert shapes_warnings(panel) == ["⚠ lstm_1 is doing something odd"]
    panel.table.selectRow(3)                                    # the view selects: the session follows
    assert session.selected_layer == "dense_1"
    session.select_layer("embedding_1")                         # and the other way round
    assert [i.row() for i in panel.table.selectionModel().selectedRows()] == [0]


def test_the_shapes_panel_rewrites_only_the_cells_a_run_changed(qtbot):
    session = session_for()
    panel = ShapesPanel(session)
    qtbot.addWidget(panel)
    session.run_finished(fake_result(48))
    table = panel.table
    changed = []
    table.model().dataChanged.connect(lambda first, *_: changed.append((first.row(), first.column())))
    session.run_finished(fake_result(48))                         # the same shapes again: no cell rewritten
    assert changed == []
    session.run_finished(fake_result(40))
    assert table.item(1, 1).text() == "(None, None, 40)" and table.item(1, 2).text() == "(3, 7, 40)"
    assert {row for row, _ in changed} <= {1, 2}                  # lstm_1's row and the FC input's source
    assert table.item(0, 1).text() == "(None, None, 16)"


def test_the_widgets_never_import_tensorflow():
    code = textwrap.dedent("""
        import os, sys
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from PySide6.QtWidgets import QApplication
        app = QApplication([])
        from explorer.core.presets import load_preset
        from explorer.qt import main_window, app as app_module
        from explorer.qt.stack_editor import StackEditor
        from explorer.qt.sequence_editor import SequenceEditor
        from explorer.qt.shapes_panel import ShapesPanel
        spec = load_preset("average_pooling")
        from explorer.qt.plots import PlotsPanel
        from explorer.session import Session
        session = Session(spec, trusted=True)
        widgets = [StackEditor(session), SequenceEditor(session), ShapesPanel(session), PlotsPanel(session)]
        session.set_text("1 2 x")
        loaded = [name for name in ("tensorflow", "keras") if name in sys.modules]
        print(loaded)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("kind", sorted(LAYER_PARAMS))
def test_a_card_for_every_type_builds(qtbot, kind):
    editor = stack_editor(qtbot, StackSpec(layers=[LayerSpec(kind)]))
    assert editor.cards[0].type_combo.currentData() == kind
