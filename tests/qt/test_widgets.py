"""The editors and the shapes panel on their own: built from a state, changed on one side, checked on
the other. No TensorFlow here (results are built by hand)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
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
from explorer.qt.stack_editor import MIME_TYPE, StackEditor


def stack() -> StackSpec:
    return load_preset("average_pooling")


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
    editor = StackEditor(stack())
    qtbot.addWidget(editor)
    offered = {action.data(): action.text() for action in editor.add_menu.actions() if action.data()}
    assert set(offered) == set(LAYER_PARAMS)
    assert offered["time_distributed_dense"] == LAYER_LABELS["time_distributed_dense"]
    assert all("_" not in text for text in offered.values())


def test_every_parameter_has_a_widget_with_its_help(qtbot):
    spec = StackSpec(layers=[LayerSpec(kind) for kind in LAYER_PARAMS])
    editor = StackEditor(spec)
    qtbot.addWidget(editor)
    for card in editor.cards:
        for key, param in TYPES[card.layer.type].params.items():
            default = param.default
            widget = card.param_widget(key)
            assert widget.toolTip() == param.help
            expected = (QComboBox if param.options else QCheckBox if isinstance(default, bool)
                        else QLineEdit if isinstance(default, str) else QSpinBox if isinstance(default, int) else None)
            if expected is not None:
                assert isinstance(widget, expected), (card.layer.type, key)


def test_changing_units_emits_a_new_spec(qtbot):
    editor = StackEditor(stack())
    qtbot.addWidget(editor)
    lstm = editor.card("lstm_1")
    with qtbot.waitSignal(editor.changed) as signal:
        lstm.param_widget("units").setValue(48)
    new = signal.args[0]
    assert new.layers[1].params["units"] == 48
    assert editor.spec().layers[1].params["units"] == 48
    assert new is not editor.spec()


def test_return_sequences_and_bidirectional_edit_the_spec(qtbot):
    editor = StackEditor(stack())
    qtbot.addWidget(editor)
    lstm = editor.card("lstm_1")
    assert not lstm.param_widget("merge_mode").isEnabled()
    with qtbot.waitSignal(editor.changed) as signal:
        lstm.param_widget("return_sequences").setChecked(False)
    assert signal.args[0].layers[1].params["return_sequences"] is False
    with qtbot.waitSignal(editor.changed) as signal:
        lstm.param_widget("bidirectional").setChecked(True)
    assert signal.args[0].layers[1].params["bidirectional"] is True
    assert lstm.param_widget("merge_mode").isEnabled()


def test_changing_a_layers_type_keeps_the_shared_parameters(qtbot):
    editor = StackEditor(stack())
    qtbot.addWidget(editor)
    editor.card("lstm_1").param_widget("units").setValue(40)
    combo = editor.card("lstm_1").type_combo
    with qtbot.waitSignal(editor.changed) as signal:
        combo.setCurrentIndex(combo.findData("gru"))
    layer = signal.args[0].layers[1]
    assert (layer.type, layer.params["units"], layer.params["return_sequences"]) == ("gru", 40, True)
    assert [card.name for card in editor.cards] == ["embedding_1", "gru_1", "global_average_pooling_1", "dense_1"]
    assert editor.selected_layer == "gru_1"
    # dense's activation None is no valid recurrent activation: the default comes back
    activation = editor.card("dense_1").param_widget("activation")
    activation.setCurrentIndex(activation.findData(None))
    assert editor.spec().layers[3].params["activation"] is None
    combo = editor.card("dense_1").type_combo
    with qtbot.waitSignal(editor.changed) as signal:
        combo.setCurrentIndex(combo.findData("simple_rnn"))
    assert (signal.args[0].layers[3].params["units"], signal.args[0].layers[3].params["activation"]) == (5, "tanh")


def test_add_remove_and_move_with_the_buttons(qtbot):
    editor = StackEditor(stack())
    qtbot.addWidget(editor)
    editor.card("lstm_1").clicked.emit(editor.card("lstm_1"))
    action = next(a for a in editor.add_menu.actions() if a.data() == "masked_mean_pooling")
    with qtbot.waitSignal(editor.changed) as signal:
        action.trigger()
    assert [layer.type for layer in signal.args[0].layers] == [
        "embedding", "lstm", "masked_mean_pooling", "global_average_pooling", "dense"]
    with qtbot.waitSignal(editor.changed) as signal:
        editor.cards[2].down_button.click()
    assert [layer.type for layer in signal.args[0].layers][2:4] == ["global_average_pooling", "masked_mean_pooling"]
    with qtbot.waitSignal(editor.changed) as signal:
        editor.cards[3].up_button.click()
    assert [layer.type for layer in signal.args[0].layers][2:4] == ["masked_mean_pooling", "global_average_pooling"]
    with qtbot.waitSignal(editor.changed) as signal:
        editor.cards[2].remove_button.click()
    assert [layer.type for layer in signal.args[0].layers] == ["embedding", "lstm", "global_average_pooling", "dense"]
    assert not editor.cards[0].up_button.isEnabled() and not editor.cards[-1].down_button.isEnabled()


def test_dropping_a_dragged_card_reorders_the_layers(qtbot):
    editor = StackEditor(stack())
    qtbot.addWidget(editor)
    editor.resize(420, 900)
    editor.show()
    qtbot.waitUntil(lambda: all(card.height() > 20 for card in editor.cards))
    column = editor.cards[0].parentWidget()
    mime = QMimeData()
    mime.setData(MIME_TYPE, b"3")                     # dense_1 …
    target = editor.cards[1].geometry().top() + 2    # … dropped on the upper half of lstm_1
    drop = QDropEvent(QPointF(20, target), Qt.DropAction.MoveAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(editor.changed) as signal:
        column.dropEvent(drop)
    assert [layer.type for layer in signal.args[0].layers] == ["embedding", "dense", "lstm", "global_average_pooling"]
    assert editor.selected_layer == "dense_1"


def test_input_settings_switch_between_tokens_and_features(qtbot):
    editor = StackEditor(stack())
    qtbot.addWidget(editor)
    editor.show()
    assert editor.vocab_spin.isVisible() and not editor.features_spin.isVisible()
    with qtbot.waitSignal(editor.changed) as signal:
        editor.input_kind_combo.setCurrentIndex(editor.input_kind_combo.findData("features"))
    assert signal.args[0].input.kind == "features"
    assert editor.features_spin.isVisible() and not editor.vocab_spin.isVisible()
    with qtbot.waitSignal(editor.changed) as signal:
        editor.features_spin.setValue(3)
    assert signal.args[0].input == InputSpec("features", 1000, 3)


def test_badges_show_shapes_mask_role_and_messages_of_their_layer(qtbot):
    editor = StackEditor(stack())
    qtbot.addWidget(editor)
    assert editor.card("lstm_1").symbolic_text == "…"
    editor.show_result(fake_result())
    lstm = editor.card("lstm_1")
    assert lstm.symbolic_text == "(None, None, 32)"
    assert lstm.batch_text == "(3, 7, 32)"
    assert lstm.mask_role == "carries"
    assert "doing something odd" in lstm.message_text
    assert editor.card("dense_1").message_text == ""
    editor.show_error("global_average_pooling_1 needs a sequence", "global_average_pooling_1")
    assert "needs a sequence" in editor.card("global_average_pooling_1").message_text
    assert "needs a sequence" not in lstm.message_text
    assert lstm.symbolic_text == "?"


def test_clicking_a_card_selects_its_layer(qtbot):
    editor = StackEditor(stack())
    qtbot.addWidget(editor)
    editor.show()
    qtbot.waitExposed(editor)
    card = editor.card("dense_1")
    with qtbot.waitSignal(editor.layerSelected) as signal:
        qtbot.mouseClick(card.name_label, Qt.MouseButton.LeftButton)
    assert signal.args == ["dense_1"]
    assert card.selected and not editor.card("lstm_1").selected


# --- the sequence editor ---

def editor_for(text: str, **batching) -> SequenceEditor:
    return SequenceEditor(text, Batching(**batching), InputSpec("tokens", 100))


def test_a_bad_token_is_underlined_and_explained(qtbot):
    editor = editor_for("1 2 3\n4 5\n")
    qtbot.addWidget(editor)
    editor.show()
    assert editor.error is None and editor.error_label.isHidden()
    with qtbot.waitSignal(editor.textEdited):
        editor.text_edit.setPlainText("1 2 3\n4 x7 5\n")
    assert not editor.error_label.isHidden()
    assert 'line 2, column 3: "x7" is not a token id' in editor.error_label.text()
    assert editor.error_range == (2, 3, 5)
    editor.text_edit.setPlainText("1 2 3\n4 500\n")
    assert "outside the vocabulary" in editor.error_label.text()
    assert editor.error_range == (2, 3, 6)
    editor.text_edit.setPlainText("1 2 3\n4 5\n")
    assert editor.error is None and editor.error_range is None and editor.error_label.isHidden()


def test_batching_controls_emit_a_new_batching(qtbot):
    editor = editor_for("1 2 3\n")
    qtbot.addWidget(editor)
    with qtbot.waitSignal(editor.batchingChanged) as signal:
        editor.padding_combo.setCurrentIndex(editor.padding_combo.findData("pre"))
    assert signal.args[0].padding == "pre"
    with qtbot.waitSignal(editor.batchingChanged) as signal:
        editor.maxlen_spin.setValue(4)
    assert signal.args[0].maxlen == 4
    with qtbot.waitSignal(editor.batchingChanged) as signal:
        editor.maxlen_spin.setValue(0)
    assert signal.args[0].maxlen is None and editor.maxlen_spin.text() == "none"
    assert not editor.bucket_spin.isEnabled()
    with qtbot.waitSignal(editor.batchingChanged) as signal:
        editor.mode_combo.setCurrentIndex(editor.mode_combo.findData("bucket"))
    assert signal.args[0].mode == "bucket" and editor.bucket_spin.isEnabled() and not editor.chunk_spin.isEnabled()
    with qtbot.waitSignal(editor.batchingChanged) as signal:
        editor.pad_value_spin.setValue(7)
    assert signal.args[0].pad_value == 7 and isinstance(signal.args[0].pad_value, int)


def test_the_grid_greys_the_padded_cells_and_follows_the_cursor(qtbot):
    editor = editor_for("# comment\n5 6 7\n8\n")
    qtbot.addWidget(editor)
    batch = np.array([[5, 6, 7], [0, 0, 8]])
    mask = np.array([[1, 1, 1], [0, 0, 1]], dtype=bool)
    editor.show_batch(batch, mask, [2, 3])
    assert editor.grid.rowCount() == 2 and editor.grid.columnCount() == 3
    assert editor.padded_cells() == [(1, 0), (1, 1)]
    assert editor.grid.item(1, 2).text() == "8"
    assert editor.grid.verticalHeaderItem(1).text() == "line 3"
    with qtbot.waitSignal(editor.lineSelected) as signal:
        cursor = editor.text_edit.textCursor()
        cursor.setPosition(editor.text_edit.document().findBlockByNumber(2).position())
        editor.text_edit.setTextCursor(cursor)
    assert signal.args == [3]
    assert [index.row() for index in editor.grid.selectionModel().selectedRows()] == [1]


def test_features_are_checked_against_the_feature_count(qtbot):
    editor = SequenceEditor("0.1 0.2; 0.3 0.4\n", Batching(), InputSpec("features", None, 2))
    qtbot.addWidget(editor)
    assert editor.error is None
    editor.set_input(InputSpec("features", None, 3))
    assert "timestep 1 has 2 values; input.features is 3" in editor.error_label.text()


# --- the shapes panel ---

def test_the_shapes_panel_lists_every_layer_and_the_fc_input(qtbot):
    panel = ShapesPanel()
    qtbot.addWidget(panel)
    panel.show_result(fake_result(48))
    rows = [[panel.table.item(r, c).text() for c in range(panel.table.columnCount())]
            for r in range(panel.table.rowCount())]
    assert rows[1] == ["lstm_1", "(None, None, 48)", "(3, 7, 48)", "carries", "6,272"]
    assert [row[0] for row in rows] == ["embedding_1", "lstm_1", "global_average_pooling_1", "dense_1"]
    assert panel.fc_shape_label.text() == "(None, 48)"
    assert "48 = lstm_1's 48 units" in panel.fc_explanation_label.text()
    assert panel.warnings() == ["⚠ lstm_1 is doing something odd"]
    with qtbot.waitSignal(panel.layerSelected) as signal:
        panel.table.selectRow(3)
    assert signal.args == ["dense_1"]


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
        widgets = [StackEditor(spec), SequenceEditor("1 2 x", spec.batching, spec.input), ShapesPanel()]
        loaded = [name for name in ("tensorflow", "keras") if name in sys.modules]
        print(loaded)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("kind", sorted(LAYER_PARAMS))
def test_a_card_for_every_type_builds(qtbot, kind):
    editor = StackEditor(StackSpec(layers=[LayerSpec(kind)]))
    qtbot.addWidget(editor)
    assert editor.cards[0].type_combo.currentData() == kind
