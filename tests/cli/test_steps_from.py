"""Each layer of a two-input encoder-decoder has the steps and the mask of the input it descends from: a decoder-side
layer the decoder's padded length and the mask Keras gives it, not the encoder's. The model is written here with
plain Keras (mask_zero embeddings on both inputs), saved as .keras and opened as a user would
(`run MODEL.keras --input NAME=FILE … --json --npz`); the references are keras.utils.pad_sequences and the
`_keras_mask` of each layer's output in a Keras sub-model."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from keras import layers

from explorer import cli
from explorer.core import keras_io

ENCODER = [[1, 2, 3, 4, 5, 6], [2, 3], [8, 8, 8, 1]]
DECODER = [[1, 2], [3, 4, 5], [6]]           # shorter than the encoder's lines, and other lengths per line
ENCODER_SIDE, DECODER_SIDE = ("encoder_ids",), ("decoder_ids", "decoder_lstm", "next_token")


def encoder_decoder():
    """Token ids in both inputs, embedded with mask_zero; the decoder starts from the encoder's states."""
    encoder = keras.Input((None,), dtype="int32", name="encoder")
    _, h, c = layers.LSTM(4, return_state=True, name="encoder_lstm")(
        layers.Embedding(9, 3, mask_zero=True, name="encoder_ids")(encoder))
    decoder = keras.Input((None,), dtype="int32", name="decoder")
    x = layers.Embedding(7, 3, mask_zero=True, name="decoder_ids")(decoder)
    x = layers.LSTM(4, return_sequences=True, name="decoder_lstm")(x, initial_state=[h, c])
    return keras.Model([encoder, decoder], layers.Dense(7, activation="softmax", name="next_token")(x))


def text_of(rows) -> str:
    return "\n".join(" ".join(map(str, row)) for row in rows) + "\n"


def keras_mask(model, name: str, batches) -> np.ndarray:
    """The mask Keras attaches to `name`'s output, in a sub-model called on the padded inputs."""
    return keras.ops.convert_to_numpy(keras.Model(model.inputs, model.get_layer(name).output)(batches)._keras_mask)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    keras.utils.set_random_seed(6)
    model = encoder_decoder()
    folder = tmp_path_factory.mktemp("encoder_decoder")
    model.save(folder / "model.keras")
    return model, folder


def test_run_gives_each_decoder_side_layer_the_decoders_steps_and_keras_mask(saved, capsys):
    model, folder = saved
    (folder / "encoder.txt").write_text(text_of(ENCODER))
    (folder / "decoder.txt").write_text(text_of(DECODER))
    status = cli.main(["run", str(folder / "model.keras"), "--input", f"encoder={folder / 'encoder.txt'}",
                       "--input", f"decoder={folder / 'decoder.txt'}", "--npz", str(folder / "out.npz"),
                       "--json", str(folder / "out.json")])
    assert status == 0, capsys.readouterr().err
    arrays, report = np.load(folder / "out.npz"), json.loads((folder / "out.json").read_text())
    batches = [keras.utils.pad_sequences(rows, padding="post") for rows in (ENCODER, DECODER)]
    layers_shown = {layer["name"]: layer for layer in report["layers"]}
    for name, batch, side in (("encoder", batches[0], ENCODER_SIDE), ("decoder", batches[1], DECODER_SIDE)):
        for layer in side:
            assert layers_shown[layer]["steps_from"] == name
            assert layers_shown[layer]["shape"][1] == batch.shape[1]
            np.testing.assert_array_equal(arrays[f"mask/{layer}"], keras_mask(model, layer, batches), err_msg=layer)
        np.testing.assert_array_equal(arrays[f"inputs/{name}/mask"], batch != 0)
    assert "steps_from" not in layers_shown["encoder_lstm"]     # its last state has no time axis


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(1, 5), st.integers(1, 5)), min_size=1, max_size=3), st.sampled_from(["pre", "post"]))
def test_any_line_lengths_show_the_decoders_mask_on_decoder_side_layers(saved, engine, lengths, padding):
    model, folder = saved
    spec, _, _ = keras_io.import_model(folder / "model.keras")
    spec.batching.padding = padding
    rows = {"encoder": [[1 + i % 8 for i in range(a)] for a, _ in lengths],
            "decoder": [[1 + i % 6 for i in range(b)] for _, b in lengths]}
    result = engine.run(spec, {name: text_of(data) for name, data in rows.items()})
    batches = [keras.utils.pad_sequences(rows[name], padding=padding) for name in ("encoder", "decoder")]
    for name in DECODER_SIDE:
        layer = result.layer(name)
        seen = result.seen_by(layer)
        expected = keras_mask(model, name, batches)
        assert layer.output.shape[1] == seen.mask.shape[1] == batches[1].shape[1]
        np.testing.assert_array_equal(seen.mask, batches[1] != 0)
        np.testing.assert_array_equal(layer.mask, expected)
        np.testing.assert_array_equal(seen.lengths, [len(row) for row in rows["decoder"]])
