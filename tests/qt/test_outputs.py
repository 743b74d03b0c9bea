"""The window of a model with several outputs, and of one whose layers change the number of timesteps. The models are
written here with plain Keras and saved as .keras; the numbers come from Keras (model.predict, the functional
graph's masks, output shapes)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers
from PySide6.QtWidgets import QApplication

from explorer.core import keras_io
from explorer.qt.exports import csv_rows
from explorer.qt.layout import MIN_VIEW
from explorer.qt.plots import PlotsPanel
from explorer.qt.plots.state import NO_MASK, OWN_MASKED, VALID
from explorer.session import Session

TOKENS = [[3, 7, 1, 9, 4, 2, 6, 5, 8], [5, 2, 4], [8, 8, 6, 1, 3, 2]]
TEXT = "\n".join(" ".join(map(str, t)) for t in TOKENS) + "\n"

pytestmark = pytest.mark.filterwarnings("ignore:.*does not support masking")


def two_heads_on_one_gru():
    i = keras.Input((None,), dtype="int32")
    x = layers.GRU(4, return_sequences=True, name="shared")(layers.Embedding(20, 3, mask_zero=True, name="emb")(i))
    topic = layers.Dense(3, activation="softmax", name="topic")(layers.GlobalAveragePooling1D(name="pool")(x))
    return keras.Model(i, [topic, layers.Dense(2, activation="sigmoid", name="tags")(x)])


def conv_pool_lstm():
    i = keras.Input((None,), dtype="int32")
    x = layers.Embedding(20, 3, mask_zero=True, name="emb")(i)
    x = layers.MaxPooling1D(2, name="pool")(layers.Conv1D(4, 3, padding="valid", name="conv")(x))
    return keras.Model(i, layers.Dense(2, name="head")(layers.LSTM(5, name="lstm")(x)))


def opened(build, path):
    keras.utils.set_random_seed(3)
    model = build()
    model.save(path)
    spec, _, _ = keras_io.import_model(path)
    spec.sequences = TEXT
    return model, spec, keras.utils.pad_sequences(TOKENS, padding="post")


def test_removing_a_head_takes_it_out_of_the_models_outputs_and_undo_brings_it_back(make_window, qtbot, tmp_path):
    def head_and_state():
        i = keras.Input((None,), dtype="int32")
        last, h = layers.GRU(4, return_state=True, name="enc")(layers.Embedding(20, 3, mask_zero=True, name="emb")(i))
        return keras.Model(i, [layers.Dense(2, name="head")(last), h])

    model, spec, batch = opened(head_and_state, tmp_path / "model.keras")
    assert spec.model_outputs == ["head", "enc/state/h"]
    window = make_window(spec, source=str(tmp_path / "model.keras"))
    qtbot.waitUntil(lambda: window.session.result is not None and window.session.state.current, timeout=60000)
    _, state = model.predict(batch, verbose=0)
    window.stack_editor.card("head").remove_button.click()
    qtbot.waitUntil(lambda: window.runs.settled, timeout=60000)
    assert window.runs.last_reply.ok, window.session.state.reason
    assert window.session.spec().model_outputs == ["enc/state/h"]
    result = window.session.result
    assert result.outputs == ["enc/state/h"]
    np.testing.assert_allclose(result.output_value("enc/state/h"), state, atol=1e-5)
    window.history.undo()
    qtbot.waitUntil(lambda: window.runs.settled, timeout=60000)
    assert window.runs.last_reply.ok, window.session.state.reason
    assert window.session.spec().model_outputs == ["head", "enc/state/h"]
    assert window.stack_editor.spec().model_outputs == ["head", "enc/state/h"]


def test_the_window_shows_one_output_plot_per_output(make_window, qtbot, tmp_path):
    model, spec, batch = opened(two_heads_on_one_gru, tmp_path / "model.keras")
    window = make_window(spec, source=str(tmp_path / "model.keras"))
    qtbot.waitUntil(lambda: window.session.result is not None and window.session.state.current, timeout=60000)
    panel = window.plots
    topic, tags = model.predict(batch, verbose=0)
    assert [part.plot.isVisible() for part in panel.outputs] == [True, True]
    assert ["<b>topic</b>" in panel.outputs[0].plot.titleLabel.text,
            "<b>tags</b>" in panel.outputs[1].plot.titleLabel.text] == [True, True]
    panel.select(row=1)
    np.testing.assert_allclose(np.asarray(panel.outputs[0].bars.bars.opts["height"]), topic[1], atol=1e-5)
    np.testing.assert_allclose(panel.outputs[1].bars.image.image, tags[1].T, atol=1e-5)
    assert set(panel.plots()) >= {"output", "output_2"}
    # the FC input follows the head of the selected layer; the shapes panel explains both heads
    window.session.select_layer("tags")
    assert "FC input of <b>tags</b> from shared" in panel.fc.plot.titleLabel.text
    assert "(None, None, 4)" in panel.fc.plot.titleLabel.text
    window.session.select_layer("topic")
    assert "FC input of <b>topic</b> from pool" in panel.fc.plot.titleLabel.text
    shapes = window.shapes
    assert shapes.fc_title_label.text() == "FC input → topic, tags (2 heads)"
    assert [line.split(":")[0] for line in shapes.fc_shape_label.text().splitlines()] == ["topic", "tags"]
    assert "(None, 4)" in shapes.fc_shape_label.text() and "(None, None, 4)" in shapes.fc_shape_label.text()
    # at 1024 x 768 and 1280 x 800 every output plot keeps a readable view box (the plots scroll instead)
    for size in ((1024, 768), (1280, 800)):
        window.resize(*size)
        for _ in range(3):
            qtbot.waitUntil(lambda: not window.window_layout.plot_fit._pending.isActive(), timeout=5000)
            QApplication.processEvents()
        for part in panel.vector_parts():
            box = part.plot.vb.size()
            assert box.width() >= MIN_VIEW[0] - 0.5 and box.height() >= MIN_VIEW[1] - 0.5, (size, part.name)
    # a model with one output again: one output plot
    window.session.set_stack(keras_io.import_model(_saved_single(tmp_path))[0])
    qtbot.waitUntil(lambda: window.session.state.current and len(window.session.result.outputs) == 1, timeout=60000)
    assert len(panel.outputs) == 1 and "output_2" not in panel.plots()


def _saved_single(tmp_path):
    keras.utils.set_random_seed(3)
    i = keras.Input((None,), dtype="int32")
    model = keras.Model(i, layers.Dense(2, name="only")(layers.GRU(3)(layers.Embedding(20, 3)(i))))
    model.save(tmp_path / "single.keras")
    return tmp_path / "single.keras"


def test_the_mask_plot_of_a_layer_with_its_own_steps_shows_its_steps_and_keras_mask(qtbot, engine, tmp_path):
    model, spec, batch = opened(conv_pool_lstm, tmp_path / "model.keras")
    result = engine.run(spec, TEXT)
    panel = PlotsPanel(Session(spec, trusted=True))
    qtbot.addWidget(panel)
    panel.resize(1100, 900)
    panel.show_result(result)
    for name in ("conv", "pool"):
        panel.select(layer=name)
        keras_steps = keras.Model(model.inputs, model.get_layer(name).output).predict(batch, verbose=0).shape[1]
        assert panel.mask.codes.shape == (3, keras_steps) != batch.shape
        assert getattr(model.get_layer(name).output, "_keras_mask", None) is None    # Keras drops the mask
        assert (panel.mask.codes == NO_MASK).all()
        assert "Keras drops the mask at conv" in panel.mask.plot.titleLabel.text
        assert not panel.heatmap.overlay.padded.any()     # no padding hatched over steps that are not the input's
    panel.select(layer="emb")          # the input's own steps: the batch mask as Keras's Embedding computes it
    emb_mask = keras.ops.convert_to_numpy(model.get_layer("emb").compute_mask(batch))
    assert panel.mask.codes.shape == batch.shape
    np.testing.assert_array_equal(panel.mask.codes == VALID, emb_mask)
    assert OWN_MASKED not in panel.mask.codes


def test_a_mask_made_after_a_convolution_is_drawn_over_the_convolutions_steps(qtbot, engine, tmp_path):
    keras.utils.set_random_seed(3)
    i = keras.Input((None, 2))
    x = layers.Masking(0.0, name="remask")(layers.Conv1D(3, 2, use_bias=False, name="conv")(i))
    model = keras.Model(i, layers.LSTM(4, return_sequences=True, name="lstm")(x))
    model.save(tmp_path / "model.keras")
    spec, _, _ = keras_io.import_model(tmp_path / "model.keras")
    data = [np.random.default_rng(4).uniform(0.5, 1.5, size=(n, 2)).round(3) for n in (6, 2, 4)]
    text = "\n".join("; ".join(" ".join(map(str, step)) for step in row) for row in data) + "\n"
    spec.batching.padding = "pre"   # its own mask then differs from the input's cut to its length
    batch = keras.utils.pad_sequences(data, padding="pre", dtype="float32")
    conv = keras.Model(model.inputs, model.get_layer("conv").output).predict(batch, verbose=0)
    expected = keras.ops.convert_to_numpy(model.get_layer("remask").compute_mask(conv))   # Keras's own mask
    panel = PlotsPanel(Session(spec, trusted=True))
    qtbot.addWidget(panel)
    result = engine.run(spec, text)
    panel.show_result(result)
    panel.select(layer="remask", row=1)
    assert panel.mask.codes.shape == expected.shape == (3, 5)
    np.testing.assert_array_equal(panel.mask.codes, np.where(expected, VALID, OWN_MASKED))
    assert "masked by its own mask" in panel.mask.plot.titleLabel.text
    np.testing.assert_array_equal(panel.heatmap.overlay.padded, ~expected[1])    # hatched: what its mask hides
    # the CSV export counts the steps by the same mask
    valid = {(line, step): flag for layer, line, step, unit, _, flag in csv_rows(result) if layer == "remask"}
    assert valid == {(result.lines[row], step): int(expected[row, step])
                     for row in range(3) for step in range(expected.shape[1])}


def attention_with_its_scores():
    i = keras.Input((None,), dtype="int32")
    x = layers.LSTM(4, return_sequences=True, name="lstm")(layers.Embedding(20, 4, mask_zero=True, name="emb")(i))
    attended, scores = layers.MultiHeadAttention(2, 4, name="mha")(x, x, return_attention_scores=True)
    return keras.Model(i, [layers.GlobalAveragePooling1D(name="pool")(attended), scores])


def test_attention_scores_as_an_output_are_drawn_query_step_by_key_step(make_window, qtbot, tmp_path):
    model, spec, batch = opened(attention_with_its_scores, tmp_path / "model.keras")
    window = make_window(spec, source=str(tmp_path / "model.keras"))
    qtbot.waitUntil(lambda: window.session.result is not None and window.session.state.current, timeout=60000)
    panel = window.plots
    scores = model.predict(batch, verbose=0)[1]                     # (batch, heads, query steps, key steps)
    panel.select(row=1)
    plot = panel.outputs[1]
    assert "attention scores of <b>mha output 1</b> (3, 2, 9, 9)" in plot.plot.titleLabel.text
    assert "mean of 2 heads" in plot.plot.titleLabel.text
    np.testing.assert_allclose(plot.bars.image.image, scores[1].mean(axis=0).T, atol=1e-5)
    assert np.allclose(scores[1].mean(axis=0)[:, 3:], 0, atol=1e-6)   # line 2's padded keys get no weight


def one_reader_for_two_texts():
    left, right = keras.Input((None,), dtype="int32", name="left"), keras.Input((None,), dtype="int32", name="right")
    embed, reader = layers.Embedding(20, 3, mask_zero=True, name="emb"), layers.GRU(4, return_sequences=True,
                                                                                     name="reader")
    both = layers.Concatenate(name="join")([layers.GlobalAveragePooling1D(name="pool")(reader(embed(left))),
                                            layers.GlobalAveragePooling1D(name="pool_right")(reader(embed(right)))])
    return keras.Model([left, right], layers.Dense(1, name="same")(both))


def test_a_shared_layer_s_further_call_is_picked_and_drawn_on_its_own_input(make_window, qtbot, tmp_path):
    keras.utils.set_random_seed(3)
    model = one_reader_for_two_texts()
    model.save(tmp_path / "model.keras")
    spec, _, _ = keras_io.import_model(tmp_path / "model.keras")
    right_rows = [[4, 5], [6, 7, 8, 9, 1, 2, 3, 4, 5, 6, 7], [9]]
    spec.sequences = TEXT
    spec.more_sequences = {"right": "\n".join(" ".join(map(str, row)) for row in right_rows) + "\n"}
    window = make_window(spec, source=str(tmp_path / "model.keras"))
    qtbot.waitUntil(lambda: window.session.result is not None and window.session.state.current, timeout=60000)
    panel = window.plots
    combo = [panel.layer_combo.itemData(i) for i in range(panel.layer_combo.count())]
    assert combo[:4] == ["emb", "emb/call/1", "reader", "reader/call/1"]
    panel.layer_combo.setCurrentIndex(combo.index("reader/call/1"))
    panel.layer_combo.activated.emit(combo.index("reader/call/1"))         # as a click picks it
    assert window.session.selected_layer == "reader/call/1"
    assert window.stack_editor.selected_layer == "reader"              # its card, highlighted
    panel.select(row=0)
    left = keras.utils.pad_sequences(TOKENS, padding="post")
    right = keras.utils.pad_sequences(right_rows, padding="post")
    second = keras.Model(model.inputs, model.get_layer("reader")._inbound_nodes[1].outputs[0]).predict(
        [left, right], verbose=0)
    shown = panel.heatmap.item.image                                   # units × the right text's 11 steps
    assert shown.shape == (4, right.shape[1])
    np.testing.assert_allclose(shown[:, :2], second[0, :2].T, atol=1e-5)
    assert "<b>reader/call/1</b>" in panel.heatmap.plot.titleLabel.text
    np.testing.assert_array_equal(panel.mask.codes == VALID, right != 0)   # the right text's padding
