"""Trained .keras models, written here the way users write them (Sequential and functional), trained one step,
saved, opened by the explorer (the window's import) and run: the outputs equal model.predict on the same padded
batch, or the explorer refuses the model with a sentence that names what it cannot show."""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import layers

from explorer.core import keras_io
from explorer.core.errors import StackError
from explorer.core.run import Engine

ENGINE = Engine()
VOCAB = 20
TOKENS = [[3, 7, 1, 9, 4], [5, 2], [8, 8, 6, 1], [11, 12, 13, 14, 15, 16, 17, 18, 19]]
FEATURES = [[[0.5, -1.0], [1.5, 0.25]], [[-0.5, 2.0], [1.0, 1.0], [0.75, -0.25]], [[1.0, 0.5]]]


def tokens(shape=(None,)):
    return keras.Input(shape, dtype="int32", name="ids")


def functional(inputs, outputs, name="model"):
    return keras.Model(inputs, outputs, name=name)


def seq_classifier():
    return keras.Sequential([keras.Input((None,), dtype="int32"), layers.Embedding(VOCAB, 4, mask_zero=True),
                             layers.LSTM(5), layers.Dense(3, activation="softmax")])


def seq_built_by_fit():   # no Input: fit builds it at the training length; Keras runs it at any length
    return keras.Sequential([layers.Embedding(VOCAB, 4, mask_zero=True), layers.GRU(3), layers.Dense(2)])


def names_outside_the_old_rule():
    x = i = tokens()
    x = layers.Embedding(VOCAB, 4, mask_zero=True, name="word-embedding")(x)
    x = layers.LSTM(3, name="2nd_head")(x)
    return functional(i, layers.Dense(2, name="out.put")(x))


def no_bias():
    return keras.Sequential([keras.Input((None,), dtype="int32"), layers.Embedding(VOCAB, 3),
                             layers.LSTM(4, use_bias=False), layers.Dense(2, use_bias=False)])


def recurrent_activations():
    return keras.Sequential([keras.Input((None,), dtype="int32"), layers.Embedding(VOCAB, 3, mask_zero=True),
                             layers.LSTM(4, recurrent_activation="hard_sigmoid", return_sequences=True),
                             layers.GRU(3, activation="relu", recurrent_activation="tanh"), layers.Dense(2)])


def gru_reset_before():
    return keras.Sequential([keras.Input((None,), dtype="int32"), layers.Embedding(VOCAB, 3, mask_zero=True),
                             layers.GRU(4, reset_after=False), layers.Dense(2)])


def dense_on_cell_state():
    i = tokens()
    x = layers.Embedding(VOCAB, 4, mask_zero=True)(i)
    _, _h, c = layers.LSTM(5, return_state=True, name="encoder")(x)
    return functional(i, layers.Dense(3, name="from_c")(c))


def dense_on_backward_state():
    i = keras.Input((None, 2))
    x = layers.Masking()(i)
    _, _fh, _fc, bh, _bc = layers.Bidirectional(layers.LSTM(3, return_state=True), name="bi")(x)
    return functional(i, layers.Dense(2)(bh))


def gru_state_h():
    i = tokens()
    x = layers.Embedding(VOCAB, 3)(i)
    sequence, h = layers.GRU(4, return_sequences=True, return_state=True)(x)
    return functional(i, layers.Dense(2)(h))


def the_output_is_a_state():
    i = keras.Input((None, 2))
    _, _h, c = layers.LSTM(3, return_state=True, name="encoder")(i)
    return functional(i, c)


def output_of_a_layer_with_state():
    i = tokens()
    x = layers.Embedding(VOCAB, 3, mask_zero=True)(i)
    sequence, _h, _c = layers.LSTM(4, return_sequences=True, return_state=True)(x)
    return functional(i, layers.GlobalAveragePooling1D()(sequence))


def average_keepdims():
    return keras.Sequential([keras.Input((None,), dtype="int32"), layers.Embedding(VOCAB, 4, mask_zero=True),
                             layers.GRU(3, return_sequences=True), layers.GlobalAveragePooling1D(keepdims=True),
                             layers.Dense(2)])


def max_keepdims_then_lstm():
    return keras.Sequential([keras.Input((None, 2)), layers.SimpleRNN(3, return_sequences=True),
                             layers.GlobalMaxPooling1D(keepdims=True), layers.LSTM(2)])


def features_masking_time_distributed():
    # a fixed length: Keras 3.15's TimeDistributed cannot be trained with an unknown one
    return keras.Sequential([keras.Input((3, 2)), layers.Masking(0.0), layers.SimpleRNN(4, activation="relu",
                                                                                           use_bias=False,
                                                                                           return_sequences=True),
                             layers.TimeDistributed(layers.Dense(2, activation="sigmoid"))])


def bidirectional_gru_average():
    return keras.Sequential([keras.Input((None,), dtype="int32"), layers.Embedding(VOCAB, 4, mask_zero=True),
                             layers.Bidirectional(layers.GRU(3, return_sequences=True), merge_mode="sum"),
                             layers.GlobalAveragePooling1D(), layers.Dense(2, activation="swish")])


def flatten_fixed_length():
    i = tokens((9,))
    x = layers.Embedding(VOCAB, 2)(i)
    x = layers.LSTM(3, return_sequences=True)(x)
    return functional(i, layers.Dense(2)(layers.Flatten()(x)))


def functional_fixed_length():
    i = tokens((9,))
    x = layers.Embedding(VOCAB, 3, mask_zero=True)(i)
    return functional(i, layers.Dense(2)(layers.LSTM(3)(x)))


def dropout_between():
    return keras.Sequential([keras.Input((None,), dtype="int32"), layers.Embedding(VOCAB, 4, mask_zero=True),
                             layers.LSTM(4, return_sequences=True, dropout=0.2), layers.Dropout(0.5),
                             layers.LSTM(3, go_backwards=True), layers.Dense(2)])


def bidirectional_without_merge():
    i = tokens()
    forward, backward = layers.Bidirectional(layers.LSTM(2), merge_mode=None, name="bi")(
        layers.Embedding(VOCAB, 3)(i))
    return functional(i, layers.Dense(1)(forward))


def sequential_ending_without_merge():
    return keras.Sequential([keras.Input((None, 2)), layers.Bidirectional(layers.GRU(2), merge_mode=None,
                                                                          name="both_ways")])


def initial_state_from_a_branch():
    i = tokens()
    x = layers.Embedding(VOCAB, 3)(i)
    _, h = layers.GRU(2, return_state=True)(x)
    return functional(i, layers.GRU(2, name="decoder")(x, initial_state=h))


def adapted_normalization():
    """Normalization adapted to the data (its mean and variance are weights that Keras finalises on loading)."""
    normalize = layers.Normalization(name="normalize")
    normalize.adapt(np.concatenate(FEATURES))
    return keras.Sequential([keras.Input((None, 2)), normalize, layers.GRU(3), layers.Dense(2)])


def permuted_fixed_length():
    """A Sequential whose Dense reads the time axis as features after Permute: Keras needs the length fixed."""
    return keras.Sequential([keras.Input((3, 2)), layers.LSTM(4, return_sequences=True), layers.Permute((2, 1)),
                             layers.Dense(2)])


def integer_lookup_first():
    """Raw integer categories looked up before the Embedding (which has the lookup's rows, not the ids')."""
    return keras.Sequential([keras.Input((None,), dtype="int32"),
                             layers.IntegerLookup(vocabulary=list(range(1, VOCAB)), mask_token=0, name="lookup"),
                             layers.Embedding(VOCAB + 1, 3, mask_zero=True, name="emb"), layers.LSTM(2)])


def adapted_integer_lookup():
    """An IntegerLookup adapted to the data: Keras saves its vocabulary beside its config."""
    lookup = layers.IntegerLookup(mask_token=0, name="lookup")
    lookup.adapt(np.concatenate(TOKENS))
    return keras.Sequential([keras.Input((None,), dtype="int32"), lookup,
                             layers.Embedding(lookup.vocabulary_size(), 3, mask_zero=True, name="emb"),
                             layers.GRU(2)])


def one_hot_ids():
    """Ids one-hot encoded by keras.ops instead of embedded."""
    i = tokens()
    return functional(i, layers.GRU(2, name="gru")(keras.ops.one_hot(i, VOCAB)))


def stacked_cells_state():
    """keras.layers.RNN over stacked cells, the model ending in its last cell's state (the third tensor)."""
    i = tokens()
    cells = layers.StackedRNNCells([layers.GRUCell(3), layers.GRUCell(2)])
    return functional(i, layers.RNN(cells, return_state=True, name="rnn")(layers.Embedding(VOCAB, 4)(i))[2])


def merge_given_by_keyword():
    """Layers given their list of tensors by keyword (`inputs=[a, b]`) rather than positionally."""
    i = tokens()
    x = layers.Embedding(VOCAB, 3, mask_zero=True)(i)
    both = layers.Concatenate()(inputs=[layers.LSTM(2, return_sequences=True)(x), layers.GRU(2, return_sequences=True)(x)])
    return functional(i, layers.GlobalAveragePooling1D()(layers.Attention()(inputs=[both, both])))


def numpy_constants():
    """A sequence scaled by NumPy constants between layers (an array per feature, a NumPy number)."""
    i = tokens()
    x = layers.LSTM(3, return_sequences=True)(layers.Embedding(VOCAB, 3)(i))
    scaled = keras.ops.multiply(x, np.array([1.0, 2.0, 0.5], "float32")) * np.float32(2)
    return functional(i, layers.Dense(1)(layers.GlobalAveragePooling1D()(scaled)))


def einsum_of_two_sequences():
    """keras.ops.einsum over two recurrent layers' sequences: a call that takes its operands in turn."""
    i = tokens()
    x = layers.Embedding(VOCAB, 3)(i)
    a, b = layers.LSTM(3, return_sequences=True)(x), layers.GRU(3, return_sequences=True)(x)
    return functional(i, layers.Dense(1)(keras.ops.einsum("btd,btd->bd", a, b)))


# (builder, input, expected refusal or None)
CASES = {
    "sequential": (seq_classifier, TOKENS, None),
    "sequential built by fit": (seq_built_by_fit, TOKENS, None),
    "names": (names_outside_the_old_rule, TOKENS, None),
    "use_bias off": (no_bias, TOKENS, None),
    "recurrent_activation": (recurrent_activations, TOKENS, None),
    "reset_after off": (gru_reset_before, TOKENS, None),
    "dense on c": (dense_on_cell_state, TOKENS, None),
    "dense on backward h": (dense_on_backward_state, FEATURES, None),
    "dense on GRU h": (gru_state_h, TOKENS, None),
    "output beside states": (output_of_a_layer_with_state, TOKENS, None),
    "the output is c": (the_output_is_a_state, FEATURES, None),
    "average keepdims": (average_keepdims, TOKENS, None),
    "max keepdims": (max_keepdims_then_lstm, FEATURES, None),
    "masking, TimeDistributed": (features_masking_time_distributed, FEATURES, None),
    "bidirectional sum": (bidirectional_gru_average, TOKENS, None),
    "flatten, fixed length": (flatten_fixed_length, TOKENS, None),
    "functional, fixed length": (functional_fixed_length, TOKENS, None),
    "dropout": (dropout_between, TOKENS, None),
    "merge_mode None": (bidirectional_without_merge, TOKENS, None),
    "merge_mode None, last": (sequential_ending_without_merge, FEATURES, None),   # two outputs: both directions
    "initial_state": (initial_state_from_a_branch, TOKENS, None),
    "adapted Normalization": (adapted_normalization, FEATURES, None),
    "Permute, fixed length": (permuted_fixed_length, FEATURES, None),
    "IntegerLookup, then Embedding": (integer_lookup_first, TOKENS, None),
    "one_hot ids": (one_hot_ids, TOKENS, None),
    "adapted IntegerLookup": (adapted_integer_lookup, TOKENS, None),
    "a further output of the last card": (stacked_cells_state, TOKENS, None),
    "inputs=[a, b] by keyword": (merge_given_by_keyword, TOKENS, None),
    "NumPy constants": (numpy_constants, TOKENS, None),
    "einsum of two sequences": (einsum_of_two_sequences, TOKENS, None),
}


def train_one_step(model, data):
    """compile and fit one step on random targets, as a user would before saving."""
    model.compile("adam", "mse")
    rng = np.random.default_rng(0)
    batch = pad(data, model.inputs[0].shape[1])
    targets = [rng.normal(size=(len(batch), *tuple(out.shape)[1:])).astype("float32") for out in model.outputs]
    model.fit(batch, targets if len(targets) > 1 else targets[0], epochs=1, batch_size=len(batch), verbose=0)


def pad(data, maxlen=None):
    dtype = "int32" if np.ndim(data[0]) == 1 else "float32"
    return keras.utils.pad_sequences(data, maxlen=maxlen, dtype=dtype, padding="post", value=0)


def text_of(data) -> str:
    if np.ndim(data[0]) == 1:
        return "\n".join(" ".join(map(str, row)) for row in data) + "\n"
    return "\n".join("; ".join(" ".join(map(str, step)) for step in row) for row in data) + "\n"


def saved(name, tmp_path):
    build, data, _ = CASES[name]
    keras.utils.set_random_seed(1)
    model = build()
    if name == "sequential built by fit":
        model.compile("adam", "mse")
        short = pad([row[:6] for row in data], 6)   # trained at length 6, run at 9
        model.fit(short, np.zeros((len(short), 2), "float32"), epochs=1, batch_size=len(short), verbose=0)
    elif len(model.inputs) == 1:
        train_one_step(model, data)
    path = tmp_path / "model.keras"
    model.save(path)
    return model, path


@pytest.mark.parametrize("name", list(CASES))
def test_a_saved_model_runs_like_predict_or_is_refused_by_name(name, tmp_path):
    _, data, refusal = CASES[name]
    model, path = saved(name, tmp_path)
    if refusal is not None:
        with pytest.raises(StackError) as caught:
            keras_io.import_model(path)
        assert refusal in caught.value.message
        return
    spec, _weights, _notes = keras_io.import_model(path)
    result = ENGINE.run(spec, text_of(data))
    batch = pad(data, spec.batching.maxlen)
    np.testing.assert_array_equal(result.input, batch)
    expected = model.predict(batch, verbose=0)
    expected = list(expected) if isinstance(expected, (list, tuple)) else [expected]
    assert len(result.outputs) == len(expected)
    for output, values in zip(result.outputs, expected):
        np.testing.assert_allclose(result.output_value(output), values, atol=1e-5, rtol=1e-5, err_msg=output)


def test_names_and_settings_are_kept(tmp_path):
    _, path = saved("names", tmp_path)
    spec, _, _ = keras_io.import_model(path)
    assert spec.layer_names() == ["word-embedding", "2nd_head", "out.put"]
    _, path = saved("reset_after off", tmp_path)
    assert keras_io.import_model(path)[0].layers[1].params["reset_after"] is False
    _, path = saved("dense on c", tmp_path)
    encoder = keras_io.import_model(path)[0].layers[1]
    assert encoder.params["return_state"] and encoder.params["feeds"] == "c"


def test_a_sequential_built_by_fit_runs_at_any_length(tmp_path):
    _, path = saved("sequential built by fit", tmp_path)
    spec, _, notes = keras_io.import_model(path)
    assert spec.batching.maxlen is None and not notes
    model, path = saved("functional, fixed length", tmp_path)
    spec, _, notes = keras_io.import_model(path)
    assert spec.batching.maxlen == spec.input.length == 9
    assert notes == ["the model takes exactly 9 timesteps: maxlen is set to 9"]
    result = ENGINE.run(spec, text_of(TOKENS))
    assert [layer.symbolic_shape for layer in result.layers] == [tuple(layer.output.shape) for layer in model.layers[1:]]
    spec.batching.maxlen = 5
    with pytest.raises(StackError, match="takes exactly 9 timesteps"):   # as Keras refuses other lengths
        ENGINE.run(spec, text_of(TOKENS))


@pytest.mark.slow   # a fresh process: TensorFlow imported once more
def test_run_a_model_file_on_the_command_line_reports_its_states(tmp_path):
    _, path = saved("dense on c", tmp_path)
    text = tmp_path / "input.txt"
    text.write_text(text_of(TOKENS))
    done = subprocess.run([sys.executable, "main.py", "run", str(path), "--input", str(text), "--json", "-"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    encoder = next(layer for layer in report["layers"] if layer["name"] == "encoder")
    assert encoder["states"] == [{"name": "h", "symbolic_shape": [None, 5], "shape": [4, 5]},
                                 {"name": "c", "symbolic_shape": [None, 5], "shape": [4, 5]}]
    assert encoder["shape"] == [4, 5] and encoder["feeds"] == "c"   # its own output (h's shape); c feeds from_c
    assert report["output_shape"] == [4, 3]
    code = subprocess.run([sys.executable, "main.py", "export-code", str(path)], capture_output=True, text=True,
                          timeout=300)
    assert code.returncode == 0, code.stderr
    assert "x, encoder_h, encoder_c = keras.layers.LSTM(" in code.stdout and "x = encoder_c" in code.stdout
    script = tmp_path / "model.py"
    script.write_text(code.stdout)
    ran = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert ran.returncode == 0, ran.stderr   # it builds the same layers and loads the file's weights into them


def test_a_name_a_stack_cannot_hold_is_mapped_with_its_weights(tmp_path):
    """Keras accepts any name without "/"; TensorFlow's scopes refuse spaces (so this model is saved untrained)."""
    i = tokens()
    x = layers.LSTM(3, name="my encoder")(layers.Embedding(VOCAB, 4, name="emb")(i))
    model = functional(i, layers.Dense(2, name="head")(x))
    model.save(tmp_path / "spaces.keras")
    spec, _, notes = keras_io.import_model(tmp_path / "spaces.keras")
    assert spec.layer_names() == ["emb", "my_encoder", "head"]
    assert notes == ["my_encoder: the layer 'my encoder' is called my_encoder here (its weights stay with it)"]
    ENGINE.run(spec, text_of(TOKENS))
    for mine, theirs in zip((ENGINE.weights()[f"weights/my_encoder/{i}"] for i in range(3)),
                            model.get_layer("my encoder").get_weights()):
        np.testing.assert_array_equal(mine, theirs)


def test_a_model_saved_before_it_was_built_is_refused_with_the_reason(tmp_path):
    keras.Sequential([layers.Embedding(VOCAB, 4), layers.LSTM(3)]).save(tmp_path / "unbuilt.keras")
    with pytest.raises(StackError, match="saved before it was built"):
        keras_io.import_model(tmp_path / "unbuilt.keras")
