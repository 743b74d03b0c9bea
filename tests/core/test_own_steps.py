"""Layers that change the number of timesteps (Conv1D "valid", MaxPooling1D): each shows its own steps and its own
mask, as Keras computes them, never the input's. Models written here with plain Keras, trained one step, saved as
.keras and opened as a user would; Keras's own layers (the functional graph's masks, compute_mask, output shapes)
are the reference."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers

from explorer.core import keras_io
from explorer.core.run import Engine

from .keras_files import trained_and_saved

pytestmark = pytest.mark.filterwarnings("ignore:.*does not support masking")

ENGINE = Engine()
TOKENS = [[3, 7, 1, 9, 4, 2, 6, 5, 8], [5, 2, 4], [8, 8, 6, 1, 3, 2]]
FEATURES = [np.random.default_rng(4).uniform(0.5, 1.5, size=(n, 2)).round(3).tolist() for n in (7, 2, 5)]


def conv_pool_lstm():
    """A CNN-LSTM text model: the mask of mask_zero reaches Conv1D, which does not support masking."""
    i = keras.Input((None,), dtype="int32")
    x = layers.Embedding(20, 3, mask_zero=True, name="emb")(i)
    x = layers.Conv1D(4, 3, padding="valid", name="conv")(x)
    x = layers.MaxPooling1D(2, name="pool")(x)
    x = layers.LSTM(5, return_sequences=True, name="lstm")(x)
    return keras.Model(i, layers.Dense(2, name="head")(layers.GlobalAveragePooling1D(name="mean")(x)))


def conv_then_masking():
    """Masking after a convolution makes a mask of the convolution's own steps: windows of padding give 0."""
    i = keras.Input((None, 2))
    x = layers.Conv1D(3, 2, padding="valid", use_bias=False, name="conv")(i)
    x = layers.Masking(0.0, name="remask")(x)
    x = layers.LSTM(4, return_sequences=True, name="lstm")(x)
    return keras.Model(i, layers.Dense(2, name="head")(layers.GlobalAveragePooling1D(name="mean")(x)))


def saved(build, data, path):
    dtype = "int32" if np.ndim(data[0]) == 1 else "float32"
    batch = keras.utils.pad_sequences(data, padding="post", dtype=dtype)
    return trained_and_saved(build, [batch], path, seed=2), batch


def text_of(data) -> str:
    if np.ndim(data[0]) == 1:
        return "\n".join(" ".join(map(str, row)) for row in data) + "\n"
    return "\n".join("; ".join(" ".join(map(str, step)) for step in row) for row in data) + "\n"


def keras_mask(model, name):
    """The mask Keras's functional graph attaches to a layer's output (None: Keras dropped it)."""
    return keras.backend.get_keras_mask(model.get_layer(name).output) if hasattr(keras.backend, "get_keras_mask") \
        else getattr(model.get_layer(name).output, "_keras_mask", None)


def test_conv1d_and_max_pooling_show_their_own_steps_and_no_mask(tmp_path):
    model, batch = saved(conv_pool_lstm, TOKENS, tmp_path / "model.keras")
    spec, _, _ = keras_io.import_model(tmp_path / "model.keras")
    result = ENGINE.run(spec, text_of(TOKENS))
    steps = batch.shape[1]
    for name in ("conv", "pool", "lstm"):
        shown = result.layer(name)
        expected = keras.Model(model.inputs, model.get_layer(name).output).predict(batch, verbose=0)
        assert shown.output.shape == expected.shape and expected.shape[1] != steps, name
        np.testing.assert_allclose(shown.output, expected, atol=1e-5, err_msg=name)
        assert shown.own_steps, name
        assert keras_mask(model, name) is None and shown.mask is None, name   # Keras drops the mask at conv
    emb = result.layer("emb")     # the embedding's steps are the input's, its mask Keras's compute_mask
    assert not emb.own_steps
    np.testing.assert_array_equal(emb.mask, keras.ops.convert_to_numpy(model.get_layer("emb").compute_mask(batch)))
    assert result.layer("conv").mask_role == "drops"


def test_a_mask_made_after_a_convolution_has_the_convolutions_steps(tmp_path):
    model, batch = saved(conv_then_masking, FEATURES, tmp_path / "model.keras")
    spec, _, _ = keras_io.import_model(tmp_path / "model.keras")
    result = ENGINE.run(spec, text_of(FEATURES))
    conv = keras.Model(model.inputs, model.get_layer("conv").output).predict(batch, verbose=0)
    expected = keras.ops.convert_to_numpy(model.get_layer("remask").compute_mask(conv))
    assert expected.shape == (3, batch.shape[1] - 1) and not expected.all()
    for name in ("remask", "lstm"):
        shown = result.layer(name)
        assert shown.own_steps and shown.output.shape[1] == batch.shape[1] - 1, name
        np.testing.assert_array_equal(shown.mask, expected, err_msg=name)
    lstm = model.get_layer("lstm")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(lstm.compute_mask(keras.ops.convert_to_tensor(conv), expected)),
        result.layer("lstm").mask)


def test_a_batch_run_in_slices_of_rows_keeps_each_layers_own_steps(tmp_path, monkeypatch):
    from explorer.core import run
    model, batch = saved(conv_pool_lstm, TOKENS, tmp_path / "model.keras")
    spec, _, _ = keras_io.import_model(tmp_path / "model.keras")
    monkeypatch.setattr(run, "FIRST_SLICE_CELLS", batch.shape[1])            # a row at a time
    monkeypatch.setattr(run, "UNCANCELLABLE_FIRST_SLICE_CELLS", batch.shape[1])
    result = Engine().run(spec, text_of(TOKENS))
    for name in ("conv", "pool", "lstm"):
        expected = keras.Model(model.inputs, model.get_layer(name).output).predict(batch, verbose=0)
        np.testing.assert_allclose(result.layer(name).output, expected, atol=1e-5, err_msg=name)
        assert result.layer(name).own_steps


@pytest.mark.parametrize("mode", ["bucket", "one_by_one"])
def test_pieces_of_different_lengths_are_refused_when_a_layer_has_steps_of_its_own(mode, tmp_path):
    from explorer.core.errors import StackError
    saved(conv_pool_lstm, TOKENS, tmp_path / "model.keras")
    spec, _, _ = keras_io.import_model(tmp_path / "model.keras")
    spec.batching.mode = mode
    with pytest.raises(StackError, match=r"conv has steps of its own \(\d+ steps in, \d+ out\), so pieces of "
                                         "different lengths cannot share one time axis: use pad mode"):
        ENGINE.run(spec, text_of(TOKENS))
