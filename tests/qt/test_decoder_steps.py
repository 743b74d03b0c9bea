"""The window of a two-input encoder-decoder: every plot of a decoder-side layer shows the decoder's steps and the mask
Keras gives that layer, not the encoder's; an encoder-side layer keeps the encoder's. The model is written here with
plain Keras (mask_zero embeddings on both inputs, other line lengths per input) and saved as .keras; the references
are keras.utils.pad_sequences and the `_keras_mask` of each layer's output in a Keras sub-model."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from explorer.core import keras_io
from explorer.qt.exports import csv_rows
from explorer.qt.plots.state import PADDED, VALID
from tests.cli.test_steps_from import DECODER, DECODER_SIDE, ENCODER, encoder_decoder, text_of

RUN_TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    keras.utils.set_random_seed(6)
    model = encoder_decoder()
    path = tmp_path_factory.mktemp("encoder_decoder") / "model.keras"
    model.save(path)
    return model, path


def keras_mask(model, name: str, batches) -> np.ndarray:
    return keras.ops.convert_to_numpy(keras.Model(model.inputs, model.get_layer(name).output)(batches)._keras_mask)


def test_a_decoder_side_layer_shows_the_decoders_steps_and_keras_mask(make_window, qtbot, saved):
    model, path = saved
    spec, _, _ = keras_io.import_model(path)
    spec.sequences, spec.more_sequences = text_of(ENCODER), {"decoder": text_of(DECODER)}
    window = make_window(spec, source=str(path))
    qtbot.waitUntil(lambda: window.session.result is not None and window.session.state.current, timeout=RUN_TIMEOUT_MS)
    result, panel = window.session.result, window.plots
    choice = window.stack_editor.input_choice_combo      # the Input box edits the input chosen there
    assert choice.isVisible() and [choice.itemText(i) for i in range(choice.count())] == ["encoder", "decoder"]
    batches = [keras.utils.pad_sequences(rows, padding="post") for rows in (ENCODER, DECODER)]
    valid_by_layer = {}
    for name in DECODER_SIDE:
        expected = keras_mask(model, name, batches)
        for row, decoder_ids in enumerate(batches[1]):
            panel.select(layer=name, row=row)
            assert panel.mask.codes.shape == batches[1].shape                        # the decoder's 3 steps, not 6
            np.testing.assert_array_equal(panel.mask.codes, np.where(expected, VALID, PADDED))
            assert "the steps of the input decoder" in panel.mask.plot.titleLabel.text
            assert panel.row_combo.currentText().endswith(f"({len(DECODER[row])} step{'s' * (len(DECODER[row]) > 1)})")
            np.testing.assert_array_equal(panel.heatmap.overlay.padded, ~expected[row])   # hatched: the decoder's
            for step, token in enumerate(decoder_ids):                                   # hover: its token, or padded
                assert panel.heatmap.step_state(step) == f" · token {token}" + ("" if expected[row, step] else " · padded")
        valid_by_layer[name] = expected
    assert "the batch has" not in panel.outputs[0].plot.titleLabel.text          # the output's steps are the decoder's
    panel.select(layer="encoder_ids", row=1)       # the encoder side keeps the encoder's steps and mask
    np.testing.assert_array_equal(panel.mask.codes, np.where(keras_mask(model, "encoder_ids", batches), VALID, PADDED))
    assert "the steps of the input encoder" in panel.mask.plot.titleLabel.text
    assert panel.row_combo.currentText().endswith(f"({len(ENCODER[1])} steps)")
    for layer, line, step, _, _, valid in csv_rows(result):   # the CSV's valid column: Keras's mask of that layer
        if layer in valid_by_layer:
            assert valid == int(valid_by_layer[layer][result.lines.index(line), step]), (layer, line, step)


def test_a_decoder_side_layer_of_a_words_input_shows_the_decoders_words(qtbot, engine):
    """A words decoder input: the ticks and hover text of a decoder-side layer name the decoder's words, step by step
    as keras.utils.pad_sequences lays them out, and the padding has none."""
    from explorer.core.spec import from_dict
    from explorer.qt.plots import PlotsPanel
    from explorer.session import Session
    spec = from_dict({
        "input": {"kind": "tokens", "vocab_size": 9, "name": "question"},
        "more_inputs": [{"kind": "words", "vocab_size": 20, "name": "answer"}],
        "layers": [{"type": "embedding", "name": "question_ids", "output_dim": 3, "mask_zero": True},
                   {"type": "gru", "name": "reader", "units": 4, "return_state": True},
                   {"type": "embedding", "name": "answer_ids", "inputs": ["answer"], "output_dim": 2, "mask_zero": True},
                   {"type": "gru", "name": "writer", "units": 4, "return_sequences": True, "inputs": ["answer_ids"],
                    "initial_state": ["reader/state/h"]}]})
    answers = ["the cat sat", "a dog", "the dog sat down"]
    result = engine.run(spec, {"question": "1 2 3 4 5 6 7\n2\n3 4\n", "answer": "\n".join(answers)})
    panel = PlotsPanel(Session(spec, trusted=True))
    qtbot.addWidget(panel)
    panel.resize(1100, 900)
    panel.show_result(result)
    laid_out = keras.utils.pad_sequences([answer.split() for answer in answers], dtype=object, value="",
                                         padding="post")
    for row, words in enumerate(laid_out):
        panel.select(layer="writer", row=row)
        assert panel.state.time_words() == list(words)           # the decoder's 4 steps, not the question's 7
        for step, word in enumerate(words):
            hover = panel.heatmap.step_state(step)
            assert f'"{word}" (token id' in hover if word else hover.endswith(" · padded")
