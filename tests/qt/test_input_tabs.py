"""A model of several inputs in the window: File → Open of a two-input encoder-decoder saved by plain Keras shows
one Sequences tab per input, named by it; each tab's text runs (equal to model.predict on inputs padded with
keras.utils.pad_sequences) and each edit is undoable. A one-input stack keeps its single editor."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers

RUN_TIMEOUT_MS = 60_000
ENCODER = [[[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]], [[0, 0, 0, 1]]]
DECODER = [[[1, 0, 0], [0, 1, 0]], [[0, 0, 1], [1, 0, 0], [0, 1, 0]]]


def settle(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.runs.settled, timeout=RUN_TIMEOUT_MS)


def text_of(rows) -> str:
    return "\n".join("; ".join(" ".join(map(str, step)) for step in row) for row in rows) + "\n"


@pytest.fixture(scope="module")
def translation(tmp_path_factory):
    """keras-io's character-level translation model, small, trained one step and saved."""
    keras.utils.set_random_seed(4)
    encoder_inputs = keras.Input(shape=(None, 4), name="encoder")
    _, h, c = layers.LSTM(3, return_state=True, name="encoder_lstm")(encoder_inputs)
    decoder_inputs = keras.Input(shape=(None, 3), name="decoder")
    sequence, _, _ = layers.LSTM(3, return_sequences=True, return_state=True,
                                 name="decoder_lstm")(decoder_inputs, initial_state=[h, c])
    model = keras.Model([encoder_inputs, decoder_inputs],
                        layers.Dense(3, activation="softmax", name="next_char")(sequence))
    model.compile("rmsprop", "categorical_crossentropy")
    batches = [keras.utils.pad_sequences(rows, dtype="float32", padding="post") for rows in (ENCODER, DECODER)]
    model.fit(batches, batches[1], batch_size=2, epochs=1, verbose=0)
    path = tmp_path_factory.mktemp("models") / "translation.keras"
    model.save(path)
    return model, batches, path


def test_each_input_has_its_tab_whose_text_runs_as_keras_and_undoes(make_window, qtbot, translation):
    model, batches, path = translation
    win = make_window()
    settle(qtbot, win)
    editor = win.sequence_editor
    assert editor.input_tabs.isHidden()                            # one input: one editor, as before
    with qtbot.waitSignal(win.files.opened, timeout=RUN_TIMEOUT_MS) as opened:
        win.files.open(str(path))
    assert opened.args == [True]
    tabs = editor.input_tabs
    assert tabs.isVisible() and [tabs.tabText(i) for i in range(tabs.count())] == ["encoder", "decoder"]
    decoder_card = win.stack_editor.cards[win.session.document.layer_names().index("decoder_lstm")]
    assert decoder_card.states_label.text() == "initial state from encoder_lstm h, encoder_lstm c"
    editor.text_edit.setPlainText(text_of(ENCODER))
    tabs.setCurrentIndex(1)
    editor.text_edit.setPlainText(text_of(DECODER))
    assert editor.grid.batch_model.rowCount() == 2 and editor.grid.batch_model.columnCount() == 3  # the decoder's
    settle(qtbot, win)
    assert win.runs.last_reply.ok, win.session.status_text
    result = win.session.result
    for shown in result.layers:
        expected = keras.Model(model.inputs, model.get_layer(shown.name).output).predict(batches, verbose=0)
        expected = expected[0] if isinstance(expected, list) else expected   # an LSTM's output before h and c
        np.testing.assert_allclose(shown.output, expected, atol=1e-5, err_msg=shown.name)
    np.testing.assert_allclose(result.layer("next_char").output, model.predict(batches, verbose=0), atol=1e-5)
    assert win.stack_editor.input_shape_label.text().splitlines() == [   # each input's shape, by name
        "encoder (None, None, 4)   this batch (2, 3, 4)", "decoder (None, None, 3)   this batch (2, 3, 3)"]
    win.stack_editor.card("next_char").param_widget("units").setValue(4)    # a card edit keeps both inputs
    settle(qtbot, win)
    assert win.runs.last_reply.ok and win.session.result.layer("next_char").shape == (2, 3, 4)
    win.history.undo_action.trigger()
    tabs.setCurrentIndex(0)
    assert editor.text() == text_of(ENCODER)
    win.history.undo_action.trigger()                             # the decoder's edit goes back …
    assert win.session.text_of("decoder") != text_of(DECODER) and win.session.text == text_of(ENCODER)
    tabs.setCurrentIndex(1)
    assert editor.text() == win.session.text_of("decoder")
    editor.text_edit.setPlainText(text_of(DECODER[:1]))           # … and a line fewer than the encoder's is refused
    settle(qtbot, win)
    assert "encoder has 2, decoder has 1" in win.session.state.reason


def test_the_input_box_edits_the_input_chosen_in_it_and_undo_restores_it(make_window, qtbot, translation):
    """The Input box of a model of several inputs edits the one chosen in its `input` list: the decoder's features
    changed there are the decoder's alone, its text no longer fits them, and undo brings the model back."""
    model, batches, path = translation
    win = make_window()
    settle(qtbot, win)
    stack = win.stack_editor
    assert stack.input_choice_combo.isHidden()                     # one input: nothing to choose
    with qtbot.waitSignal(win.files.opened, timeout=RUN_TIMEOUT_MS):
        win.files.open(str(path))
    win.session.set_text(text_of(ENCODER))
    win.session.set_text(text_of(DECODER), "decoder")
    settle(qtbot, win)
    assert win.runs.last_reply.ok, win.session.status_text
    assert stack.input_choice_combo.isVisible() and stack.edited_input.name == "encoder"
    assert stack.features_spin.value() == 4
    stack.choose_input("decoder")
    assert stack.edited_input.name == "decoder" and stack.features_spin.value() == 3
    stack.features_spin.setValue(5)
    settle(qtbot, win)
    document = win.session.document
    assert (document.input.features, document.more_inputs[0].features) == (4, 5)
    assert "decoder" in win.session.state.reason and not win.session.state.current
    assert win.session.text_of("decoder") == text_of(DECODER)    # the texts stay the Sequences panel's
    win.history.undo_action.trigger()
    settle(qtbot, win)
    assert win.session.document.more_inputs[0].features == 3 and stack.features_spin.value() == 3
    assert win.runs.last_reply.ok, win.session.status_text
    np.testing.assert_allclose(win.session.result.layer("next_char").output, model.predict(batches, verbose=0),
                               atol=1e-5)


@pytest.fixture(scope="module")
def inference_decoder(tmp_path_factory):
    """keras-io's inference decoder: a character sequence and the states h and c, one vector per example."""
    keras.utils.set_random_seed(6)
    characters = keras.Input(shape=(None, 3), name="characters")
    state_h, state_c = keras.Input(shape=(2,), name="state_h"), keras.Input(shape=(2,), name="state_c")
    sequence, h, c = layers.LSTM(2, return_sequences=True, return_state=True,
                                 name="decoder_lstm")(characters, initial_state=[state_h, state_c])
    model = keras.Model([characters, state_h, state_c],
                        [layers.Dense(3, activation="softmax", name="next_char")(sequence), h, c])
    path = tmp_path_factory.mktemp("models") / "decoder.keras"
    model.save(path)
    return model, path


def test_a_state_input_is_typed_as_one_vector_per_line_and_runs_as_predict(make_window, qtbot, inference_decoder):
    model, path = inference_decoder
    win = make_window()
    settle(qtbot, win)
    with qtbot.waitSignal(win.files.opened, timeout=RUN_TIMEOUT_MS):
        win.files.open(str(path))
    stack, editor = win.stack_editor, win.sequence_editor
    kinds = stack.input_kind_combo
    vector = kinds.model().item(kinds.findData("vector"))
    assert stack.edited_input.name == "characters" and kinds.currentData() == "features"
    stack.choose_input("state_h")
    assert kinds.currentData() == "vector" and vector.isEnabled() and stack.features_spin.value() == 2
    win.session.set_text(text_of(DECODER))
    win.session.set_text("0.5 -1\n2 0.25\n", "state_h")
    win.session.set_text("1 1\n-0.5 0\n", "state_c")
    editor.input_tabs.setCurrentIndex(1)
    assert editor.grid_caption.text().startswith("<b>Vectors</b> 2 × 2 — one per example")
    settle(qtbot, win)
    assert win.runs.last_reply.ok, win.session.status_text
    batch = [keras.utils.pad_sequences(DECODER, dtype="float32", padding="post"),
             np.array([[0.5, -1], [2, 0.25]], "float32"), np.array([[1, 1], [-0.5, 0]], "float32")]
    for name, expected in zip(("next_char", "decoder_lstm/state/h", "decoder_lstm/state/c"),
                              model.predict(batch, verbose=0)):
        np.testing.assert_allclose(win.session.result.output_value(name), expected, atol=1e-5, err_msg=name)
    assert stack.input_shape_label.text().splitlines()[1] == "state_h (None, 2)   this batch (2, 2)"
    editor.text_edit.setPlainText("0.5 -1; 1 1\n2 0.25\n")          # timesteps in a vector: refused where typed
    assert editor.errors and "a vector input takes one vector per line (2 numbers)" in editor.errors[0].message


def test_a_vector_input_greys_the_batching_out(make_window, qtbot):
    from explorer.core.spec import from_dict
    spec = from_dict({"input": {"kind": "vector", "features": 2}, "sequences": "0.5 -1\n2 0.25\n", "layers": [
        {"type": "keras", "name": "repeat", "class_name": "RepeatVector", "config": {"n": 3}},
        {"type": "gru", "name": "gru", "units": 2, "return_sequences": True}]})
    win = make_window(spec, source=None)
    settle(qtbot, win)
    assert win.runs.last_reply.ok, win.session.status_text
    editor = win.sequence_editor
    assert not any(widget.isEnabled() for widget in editor._controls())   # nothing to pad, truncate or split
    assert editor.grid_caption.text().startswith("<b>Vectors</b> 2 × 2 — one per example")
    assert win.session.result.layer("gru").shape == (2, 3, 2)   # its own 3 steps, from one vector each
