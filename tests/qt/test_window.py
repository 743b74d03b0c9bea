"""The whole window, live: a widget changes, the engine runs Keras, every view shows the new shapes.

One window for the module (TensorFlow loads once); each test starts from the default preset.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor

from explorer.core.presets import load_preset
from explorer.engine.requests import Reply
from seen import card_messages, grid_size, grid_text, padded_cells, shapes_warnings, underlined
from explorer.qt.main_window import MainWindow
from explorer.requests import LOADING

RUN_TIMEOUT_MS = 60_000


class Trust:
    """Answers the window's "run this custom code?" question and counts the questions."""

    def __init__(self):
        self.answer = False
        self.asked: list[list[str]] = []

    def __call__(self, expressions: list[str]) -> bool:
        self.asked.append(expressions)
        return self.answer


@pytest.fixture(scope="module")
def window(qapp):
    trust = Trust()
    window = MainWindow(load_preset("average_pooling"), trusted=True, source="preset:average_pooling",
                        confirm_trust=trust)
    window.trust = trust
    window.status_at_start = window.session.status_text
    window.resize(1600, 1000)
    window.show()
    yield window
    window.close()


def settle(qtbot, window) -> None:
    """Waits until the window shows the result (or the refusal) for its current document."""
    qtbot.waitUntil(lambda: window.runs.settled, timeout=RUN_TIMEOUT_MS)


@pytest.fixture
def win(window, qtbot):
    window.live_check.setChecked(True)
    window.trust.answer = False
    window.trust.asked.clear()
    window.load_preset("average_pooling")
    settle(qtbot, window)
    assert window.session.result is not None and window.runs.last_reply.ok, window.session.status_text
    return window


def table(window) -> dict[str, list[str]]:
    panel = window.shapes.table
    return {panel.item(r, 0).text(): [panel.item(r, c).text() for c in range(1, panel.columnCount())]
            for r in range(panel.rowCount())}


def heatmap_shape(window) -> set[int]:
    return set(window.plots.heatmap.item.image.shape[:2])


# --- start-up ---

def test_the_window_shows_before_tensorflow_and_then_the_first_run(window, qtbot):
    assert window.status_at_start == LOADING
    settle(qtbot, window)
    assert window.session.result is not None
    assert table(window)["lstm_1"] == ["(None, None, 32)", "(3, 7, 32)", "carries", "6,272"]
    assert window.shapes.fc_shape_label.text() == "(None, 32)"
    assert "independent of the number of timesteps" in window.shapes.fc_explanation_label.text()
    card = window.stack_editor.card("lstm_1")
    assert (card.symbolic_text, card.batch_text, card.mask_role) == ("(None, None, 32)", "(3, 7, 32)", "carries")
    assert "mask&nbsp;carries" in card.badge_label.text()
    assert window.plots.result is window.session.result
    assert window.plots.selected_layer == "lstm_1"
    assert grid_size(window.sequence_editor)[0] == 3
    selected = window.sequence_editor.grid.selectionModel().selectedRows()
    assert [index.row() for index in selected] == [window.plots.selected_row] == [1]   # line 3: the lesson's
    assert "device /CPU:0" in window.device_label.text() or "device /GPU:" in window.device_label.text()
    assert "ms" in window.timing_label.text()


def test_the_status_line_keeps_its_height_and_wraps_a_long_message(win, qtbot):
    bar, label = win.statusBar(), win.status_message
    heights = set()
    for text in ("running…", win.session.status_text, "ok"):
        win.session.say(text)
        qtbot.wait(1)                       # the status bar lays out again
        heights.add(bar.height())
    assert len(heights) == 1
    win.session.say("a long message " * 40, error=True)
    qtbot.wait(1)
    assert label.height() >= label.heightForWidth(label.width()) > 2 * label.fontMetrics().lineSpacing()
    assert bar.width() <= win.width()


def test_the_device_selector_lists_what_tensorflow_sees(win, qtbot):
    qtbot.waitUntil(lambda: bool(win.session.devices), timeout=RUN_TIMEOUT_MS)
    names = [win.device_combo.itemData(i) for i in range(win.device_combo.count())]
    assert names == [device.name for device in win.session.devices]
    assert "/CPU:0" in names
    assert win.session.device in names


# --- a widget changes, every view follows ---

def test_units_change_the_shapes_badges_and_plots(win, qtbot):
    win.stack_editor.card("lstm_1").param_widget("units").setValue(48)
    settle(qtbot, win)
    assert table(win)["lstm_1"][:2] == ["(None, None, 48)", "(3, 7, 48)"]
    assert table(win)["global_average_pooling_1"][:2] == ["(None, 48)", "(3, 48)"]
    assert win.shapes.fc_shape_label.text() == "(None, 48)"
    assert "48 = lstm_1's 48 units" in win.shapes.fc_explanation_label.text()
    assert win.stack_editor.card("lstm_1").symbolic_text == "(None, None, 48)"
    assert win.plots.result.layer("lstm_1").output.shape == (3, 7, 48)
    assert heatmap_shape(win) == {7, 48}


def test_return_sequences_off_puts_the_error_on_the_card_concerned(win, qtbot):
    win.stack_editor.card("lstm_1").param_widget("return_sequences").setChecked(False)
    settle(qtbot, win)
    reply = win.runs.last_reply
    assert not reply.ok and reply.error_layer == "global_average_pooling_1"
    pooling = win.stack_editor.card("global_average_pooling_1")
    assert "needs a sequence" in card_messages(pooling) and "return_sequences" in card_messages(pooling)
    assert card_messages(win.stack_editor.card("lstm_1")) == ""
    assert "needs a sequence" in win.session.status_text
    assert "needs a sequence" in win.plots.message_label.text()
    assert "Traceback" not in win.session.status_text
    # without the pooling layer, the last state goes straight to the Dense layer
    win.stack_editor.card("global_average_pooling_1").remove_button.click()
    settle(qtbot, win)
    assert win.runs.last_reply.ok
    assert table(win)["lstm_1"][:2] == ["(None, 32)", "(3, 32)"]
    assert win.shapes.fc_shape_label.text() == "(None, 32)"
    assert "last state" in win.shapes.fc_explanation_label.text()
    assert win.stack_editor.card("lstm_1").batch_text == "(3, 32)"
    assert win.plots.result.layer("lstm_1").output.shape == (3, 32)


def test_pre_padding_moves_the_padding_to_the_front(win, qtbot):
    assert (1, 6) in padded_cells(win.sequence_editor)
    editor = win.sequence_editor
    editor.padding_combo.setCurrentIndex(editor.padding_combo.findData("pre"))
    settle(qtbot, win)
    assert win.session.document.batching.padding == "pre"
    cells = padded_cells(editor)
    assert (1, 0) in cells and (1, 6) not in cells            # "8 4 19" is padded at its start now
    assert grid_text(editor, 1, 6) == "19"
    assert not win.session.result.mask[1, 0] and win.session.result.mask[1, 6]
    assert win.plots.result.mask.tolist() == win.session.result.mask.tolist()


def test_changing_a_layers_type_renames_and_reshapes(win, qtbot):
    combo = win.stack_editor.card("lstm_1").type_combo
    combo.setCurrentIndex(combo.findData("gru"))
    settle(qtbot, win)
    assert list(table(win)) == ["embedding_1", "gru_1", "global_average_pooling_1", "dense_1"]
    assert table(win)["gru_1"][:2] == ["(None, None, 32)", "(3, 7, 32)"]
    assert [layer.type for layer in win.plots.result.layers] == ["embedding", "gru", "global_average_pooling",
                                                                 "dense"]
    assert win.stack_editor.card("gru_1").symbolic_text == "(None, None, 32)"
    assert win.plots.selected_layer == "gru_1"


def test_typing_a_longer_sequence_changes_this_batch(win, qtbot):
    edit = win.sequence_editor.text_edit
    cursor = edit.textCursor()
    cursor.movePosition(QTextCursor.MoveOperation.End)
    edit.setTextCursor(cursor)
    qtbot.keyClicks(edit, "1 2 3 4 5 6 7 8 9 10")
    settle(qtbot, win)
    assert table(win)["lstm_1"][:2] == ["(None, None, 32)", "(4, 10, 32)"]
    assert win.stack_editor.card("embedding_1").batch_text == "(4, 10, 16)"
    assert grid_size(win.sequence_editor) == (4, 10)
    assert win.plots.result.layer("lstm_1").output.shape == (4, 10, 32)
    assert win.plots.selected_row == 3                       # the cursor is on the new line


def test_a_bad_token_shows_its_message_and_runs_nothing(win, qtbot):
    before = win.session.result
    win.sequence_editor.text_edit.setPlainText("5 12 7\n8 4 x19\n")
    settle(qtbot, win)
    message = 'line 2, column 5: "x19" is not a token id: expected a whole number from 0 to 999'
    assert message in win.sequence_editor.error_label.text()
    assert not win.sequence_editor.error_label.isHidden()
    assert underlined(win.sequence_editor)[:1] == [(2, 5, 8)]
    assert message in win.session.status_text
    assert win.session.result is before and not win.session.state.current   # nothing ran, nothing current
    assert win.session.state.kind == "stale" and message in win.session.state.reason
    win.sequence_editor.text_edit.setPlainText("5 12 7\n8 4 19\n")
    settle(qtbot, win)
    assert win.session.result is not before and win.sequence_editor.error_label.isHidden()
    assert table(win)["lstm_1"][1] == "(2, 3, 32)"


def test_a_smaller_vocabulary_flags_the_ids_outside_it(win, qtbot):
    win.stack_editor.vocab_spin.setValue(20)         # the text's ids go up to 77: out of the vocabulary
    settle(qtbot, win)
    assert "outside the vocabulary (vocab_size 20" in win.sequence_editor.error_label.text()
    win.sequence_editor.text_edit.setPlainText("5 12 7\n8 4 19\n")
    settle(qtbot, win)
    assert win.runs.last_reply.ok and table(win)["embedding_1"][3] == f"{20 * 16:,}"


# --- the worker ---

def test_stale_replies_are_dropped(win, qtbot):
    shown = win.session.result
    dropped = win.runs.dropped_replies
    old = Reply(win.runs.last_reply.id - 1, "run", value=shown)          # an answer to an older request
    old.value = type(shown)(**{**shown.__dict__, "layers": shown.layers[:1]})
    win.runs.runner._run_arrived(old)
    assert win.runs.dropped_replies == dropped + 1
    assert win.session.result is shown and win.shapes.table.rowCount() == 4


# --- live, run, undo ---

def test_live_off_waits_for_the_run_button(win, qtbot):
    win.live_check.setChecked(False)
    win.stack_editor.card("lstm_1").param_widget("units").setValue(12)
    qtbot.wait(50)
    assert win.runs.settled and table(win)["lstm_1"][0] == "(None, None, 32)"
    assert "press Run" in win.session.status_text
    win.run_action.trigger()
    settle(qtbot, win)
    assert table(win)["lstm_1"][0] == "(None, None, 12)"


def test_undo_and_redo_restore_the_widgets_and_the_shapes(win, qtbot):
    win.stack_editor.card("lstm_1").param_widget("units").setValue(20)
    settle(qtbot, win)
    win.history.undo_action.trigger()
    settle(qtbot, win)
    assert win.stack_editor.card("lstm_1").param_widget("units").value() == 32
    assert table(win)["lstm_1"][0] == "(None, None, 32)"
    win.history.redo_action.trigger()
    settle(qtbot, win)
    assert win.stack_editor.card("lstm_1").param_widget("units").value() == 20
    assert table(win)["lstm_1"][0] == "(None, None, 20)"


# --- selection ---

def test_clicking_a_card_and_moving_the_cursor_select_what_the_plots_show(win, qtbot):
    card = win.stack_editor.card("dense_1")
    qtbot.mouseClick(card.name_label, Qt.MouseButton.LeftButton)
    assert win.plots.selected_layer == "dense_1"
    assert [i.row() for i in win.shapes.table.selectionModel().selectedRows()] == [3]
    edit = win.sequence_editor.text_edit
    cursor = edit.textCursor()
    cursor.setPosition(edit.document().findBlockByNumber(3).position())     # line 4: the third sequence
    edit.setTextCursor(cursor)
    assert win.plots.selected_row == 2
    win.plots.pick_row(1)
    assert win.sequence_editor.current_line == 3


def test_picking_a_layer_in_the_plots_selects_its_card_and_row(win, qtbot):
    combo = win.plots.layer_combo
    index = combo.findData("embedding_1")
    combo.setCurrentIndex(index)
    combo.activated.emit(index)                                          # as a user's pick does
    assert win.plots.selected_layer == "embedding_1"
    assert win.stack_editor.selected_layer == "embedding_1"
    assert [i.row() for i in win.shapes.table.selectionModel().selectedRows()] == [0]


# --- custom code ---

def test_a_typed_custom_expression_asks_once_before_running(win, qtbot):
    win.stack_editor.remove_layer(2)                                    # no pooling: the custom layer pools
    settle(qtbot, win)
    win.stack_editor.add_layer("custom", index=2)
    settle(qtbot, win)
    assert win.trust.asked == [["ops.mean(x, axis=1)"]]
    assert "not run" in card_messages(win.stack_editor.card("custom_1"))
    assert "not run" in win.session.status_text
    win.stack_editor.card("lstm_1").param_widget("units").setValue(30)     # a live edit: no second question
    settle(qtbot, win)
    assert len(win.trust.asked) == 1
    win.trust.answer = True
    win.run_action.trigger()                                            # Run asks again
    settle(qtbot, win)
    assert len(win.trust.asked) == 2 and win.runs.last_reply.ok
    assert table(win)["custom_1"][:2] == ["(None, 30)", "(3, 30)"]
    edit = win.stack_editor.card("custom_1").param_widget("expression")
    edit.setText("ops.max(x, axis=1)")
    edit.editingFinished.emit()
    settle(qtbot, win)
    assert len(win.trust.asked) == 2 and win.runs.last_reply.ok               # typed after agreeing: no question
    assert win.session.document.layers[2].params["expression"] == "ops.max(x, axis=1)"


def test_presets_run_their_custom_layers_without_asking(win, qtbot):
    win.load_preset("time_average_custom")
    settle(qtbot, win)
    assert win.trust.asked == [] and win.runs.last_reply.ok


def test_a_stack_opened_from_a_file_asks_before_running_its_code(win, qtbot, tmp_path):
    from explorer.core.spec import LayerSpec, save
    spec = load_preset("average_pooling")
    spec.layers[2] = LayerSpec("custom", {"expression": "ops.sum(x, axis=1)"})
    path = tmp_path / "summed.stack.json"
    save(spec, path)
    win.files.load(str(path))
    settle(qtbot, win)
    assert win.trust.asked == [["ops.sum(x, axis=1)"]]
    assert "not run" in card_messages(win.stack_editor.card("custom_1"))
    assert "summed.stack.json" in win.windowTitle()
    win.trust.answer = True
    win.run_action.trigger()
    settle(qtbot, win)
    assert win.runs.last_reply.ok and table(win)["custom_1"][:2] == ["(None, 32)", "(3, 32)"]
    saved = tmp_path / "again.stack.json"
    win.files.save_to(str(saved))
    from explorer.core.spec import load
    again = load(saved)
    assert again.layers[2].params["expression"] == "ops.sum(x, axis=1)"
    assert again.sequences == win.sequence_editor.text()


def test_the_leak_check_reports_in_the_shapes_panel(win, qtbot):
    win.shapes.leak_button.click()
    qtbot.waitUntil(lambda: not win.shapes.leak_label.isHidden(), timeout=RUN_TIMEOUT_MS)
    assert "no leak" in win.shapes.leak_label.text()
    win.stack_editor.card("embedding_1").param_widget("mask_zero").setChecked(False)
    settle(qtbot, win)
    assert any("padding without a mask" in text for text in shapes_warnings(win.shapes))
    assert "padding without a mask" in card_messages(win.stack_editor.card("lstm_1"))
    win.shapes.leak_button.click()
    qtbot.waitUntil(lambda: not win.shapes.leak_label.isHidden(), timeout=RUN_TIMEOUT_MS)
    assert "padding leaks into global_average_pooling_1" in win.shapes.leak_label.text()


def test_copy_as_code_puts_a_keras_script_on_the_clipboard(win, qtbot):
    from PySide6.QtGui import QGuiApplication
    QGuiApplication.clipboard().setText("")
    win.code_action.trigger()
    qtbot.waitUntil(lambda: "keras" in QGuiApplication.clipboard().text(), timeout=RUN_TIMEOUT_MS)
    assert "LSTM" in QGuiApplication.clipboard().text()
    assert "clipboard" in win.session.status_text


def test_copy_as_code_of_an_untrusted_custom_expression_asks_first(make_window, qtbot):
    from PySide6.QtGui import QGuiApplication
    win = make_window(load_preset("time_average_custom"), trusted=False, source="untrusted.stack.json")
    QGuiApplication.clipboard().setText("")
    win.code_action.trigger()                           # declined: nothing is copied
    assert win.questions.trust_asked and "not trusted" in win.session.status_text
    assert QGuiApplication.clipboard().text() == ""
    win.questions.trust_answer = True
    win.code_action.trigger()
    qtbot.waitUntil(lambda: "expression_tree(" in QGuiApplication.clipboard().text(), timeout=RUN_TIMEOUT_MS)


def test_words_input_builds_its_vocabulary_from_the_text(win, qtbot):
    win.sequence_editor.pad_value_spin.setValue(3)
    settle(qtbot, win)
    combo = win.stack_editor.input_kind_combo
    combo.setCurrentIndex(combo.findData("words"))
    settle(qtbot, win)
    assert win.session.document.batching.pad_value == 0 and not win.sequence_editor.pad_value_spin.isEnabled()
    win.sequence_editor.text_edit.setPlainText("the cat sat\nthe dog\n")
    settle(qtbot, win)
    assert win.runs.last_reply.ok, win.session.status_text
    assert table(win)["lstm_1"][1] == "(2, 3, 32)"
    assert grid_text(win.sequence_editor, 0, 0) == f"the ({win.session.result.vocabulary.index('the')})"
    assert padded_cells(win.sequence_editor) == [(1, 2)]


def test_words_split_into_characters_and_ngrams_give_text_vectorizations_ids(win, qtbot):
    import keras
    import numpy as np
    import tensorflow as tf
    editor = win.stack_editor
    editor.input_kind_combo.setCurrentIndex(editor.input_kind_combo.findData("words"))
    editor.split_combo.setCurrentIndex(editor.split_combo.findData("character"))
    win.sequence_editor.text_edit.setPlainText("Ab, a\nba\n")
    settle(qtbot, win)
    assert win.runs.last_reply.ok, win.session.status_text
    assert win.session.document.input.split == "character"
    for typed, ngrams in (("", None), ("1 2", (1, 2))):
        editor.ngrams_edit.setText(typed)
        editor.ngrams_edit.editingFinished.emit()
        settle(qtbot, win)
        result = win.session.result
        vectorize = keras.layers.TextVectorization(vocabulary=result.vocabulary[2:], split="character", ngrams=ngrams)
        expected = keras.ops.convert_to_numpy(vectorize(tf.constant(["Ab, a", "ba"])))
        np.testing.assert_array_equal(result.input, expected)
    space = result.vocabulary.index(" ")
    assert grid_text(win.sequence_editor, 0, 2) == f"␣ ({space})"      # "ab a": the space is a token, shown
    editor.ngrams_edit.setText("0")                                   # refused where it is typed, input unchanged
    editor.ngrams_edit.editingFinished.emit()
    assert "must be a width from 1" in editor.ngrams_edit.toolTip()
    assert win.session.document.input.ngrams == (1, 2)
    editor.split_combo.setCurrentIndex(editor.split_combo.count() - 1)     # typed apart: split None
    settle(qtbot, win)
    assert win.session.document.input.split is None
    editor._show_input()                                               # shown again as it is
    assert editor.split_combo.currentIndex() == editor.split_combo.count() - 1


def test_a_bag_of_words_chosen_in_the_input_box_gives_text_vectorizations_vectors(make_window, qtbot):
    import keras
    import numpy as np
    import tensorflow as tf
    from explorer.core.spec import from_dict
    spec = from_dict({"input": {"kind": "words", "vocab_size": 12}, "layers": [{"type": "dense", "units": 2}],
                      "sequences": "the cat\nthe dog, the bird\n"})
    win = make_window(spec, source=None)
    settle(qtbot, win)
    editor = win.stack_editor
    assert not editor.output_mode_combo.model().item(editor.output_mode_combo.findData("tf_idf")).isEnabled()
    editor.output_mode_combo.setCurrentIndex(editor.output_mode_combo.findData("count"))
    settle(qtbot, win)
    assert win.runs.last_reply.ok, win.session.status_text
    result = win.session.result
    vectorize = keras.layers.TextVectorization(vocabulary=result.vocabulary[1:], output_mode="count", max_tokens=12,
                                               pad_to_max_tokens=True)
    expected = keras.ops.convert_to_numpy(vectorize(tf.constant(["the cat", "the dog, the bird"])))
    np.testing.assert_array_equal(result.input, expected)
    assert editor.input_shape_label.text().startswith("(None, 12)")
    assert "each one count vector of 12 values" in win.sequence_editor.grid_caption.text()
    assert grid_text(win.sequence_editor, 1, 2) == "the"                  # the words of each text stay visible


@pytest.mark.parametrize("token", ["<pad>", None])
def test_a_model_vocabulary_switched_to_a_bag_and_back_keeps_its_mask_token(make_window, qtbot, token):
    """Id 0 of a vocabulary of ids is its mask token, which a bag of words leaves out and drops from the texts;
    with no mask token id 0 is an unknown word, in both."""
    import keras
    import numpy as np
    import tensorflow as tf
    from explorer.core.spec import from_dict
    words = ["the", "cat", "dog"]
    lookup = keras.layers.StringLookup(vocabulary=words, mask_token=token)
    vocabulary = [str(word) for word in lookup.get_vocabulary()]
    spec = from_dict({"input": {"kind": "words", "vocab_size": 10, "vocabulary": vocabulary, "standardize": None,
                                "mask_token": token}, "layers": [{"type": "dense", "units": 2}],
                      "sequences": "the cat <pad>\nzebra dog the\n"})
    win = make_window(spec, source=None)
    settle(qtbot, win)
    editor = win.stack_editor
    editor.output_mode_combo.setCurrentIndex(editor.output_mode_combo.findData("count"))
    settle(qtbot, win)
    assert win.runs.last_reply.ok, win.session.status_text
    reference = keras.layers.StringLookup(vocabulary=words, mask_token=token, output_mode="count", max_tokens=10,
                                          pad_to_max_tokens=True)
    texts = [tf.constant(["the", "cat", "<pad>"]), tf.constant(["zebra", "dog", "the"])]
    np.testing.assert_array_equal(win.session.result.input, [keras.ops.convert_to_numpy(reference(t)) for t in texts])
    assert win.session.document.input.vocabulary == [str(word) for word in reference.get_vocabulary()]
    editor.output_mode_combo.setCurrentIndex(editor.output_mode_combo.findData("int"))
    assert (win.session.document.input.vocabulary, win.session.document.input.mask_token) == (vocabulary, token)


@pytest.mark.parametrize("token", ["", "<pad>", None])
def test_each_unknown_id_of_a_model_s_lookup_is_marked_oov_in_the_grid(make_window, qtbot, tmp_path, token):
    import keras
    import tensorflow as tf
    from explorer.core import keras_io
    lookup = keras.layers.StringLookup(num_oov_indices=3, mask_token=token, name="lookup")
    lookup.adapt(tf.constant([["the", "cat", "sat"], ["the", "dog", "ran"]]))
    keras.Sequential([keras.Input((None,), dtype="string"), lookup, keras.layers.Embedding(9, 2),
                      keras.layers.LSTM(2)]).save(tmp_path / "lookup.keras")
    spec, _, _ = keras_io.import_model(tmp_path / "lookup.keras")
    words = ["the", "zebra", "okapi", "<pad>", "gnu", "cat"]
    spec.sequences = " ".join(words) + "\n"
    win = make_window(spec, source=str(tmp_path / "lookup.keras"))
    settle(qtbot, win)
    ids = keras.ops.convert_to_numpy(lookup(tf.constant([words])))[0]
    unknown = range(0, 3) if token is None else range(1, 4)   # as get_vocabulary lists them
    assert all(lookup.get_vocabulary()[i] == "[UNK]" for i in unknown)
    cells = [grid_text(win.sequence_editor, 0, step) for step in range(len(words))]
    assert cells == [f"{word} ({i}{' OOV' if i in unknown else ''})" for word, i in zip(words, ids)]
    named = win.stack_editor.input_kind_combo.currentText()
    assert named == ("words (the model's vocabulary, mask token <pad>)" if token == "<pad>"
                     else "words (the model's vocabulary)")


def test_the_input_kind_says_whose_vocabulary_the_words_are_looked_up_in(make_window, qtbot):
    from explorer.core.spec import from_dict
    built = from_dict({"input": {"kind": "words", "vocab_size": 10}, "layers": [{"type": "dense", "units": 2}]})
    own = from_dict({"input": {"kind": "words", "vocab_size": 10, "vocabulary": ["", "[UNK]", "cat", "dog"]},
                     "layers": [{"type": "dense", "units": 2}]})
    win = make_window(built, source=None)
    combo = win.stack_editor.input_kind_combo
    assert combo.currentText() == "words (vocabulary from the text)"
    win.session.set_stack(own)
    qtbot.waitUntil(lambda: combo.currentText() == "words (the model's vocabulary)", timeout=5000)
