"""Keras layer cards: models written here with plain Keras, trained one step, saved as .keras and opened as a user
would; every layer the explorer shows equals a Keras sub-model of the saved model on the same padded batch, and
the final output equals model.predict. Random chains of registry types and Keras layers equal plain Keras."""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from keras import layers

from explorer.core import keras_io, memory, spec as specs
from explorer.core.errors import ExplorerError
from explorer.core.run import Engine

from .keras_files import trained_and_saved

ENGINE = Engine()
VOCAB = 20
TOKENS = [[3, 7, 1, 9, 4, 2, 6, 5], [5, 2, 4], [8, 8, 6, 1, 3, 2], [11, 12, 13, 14, 15, 16, 17, 18]]
RNG = np.random.default_rng(3)
FEATURES = [RNG.normal(size=(n, 2)).round(3).tolist() for n in (8, 5, 6)]


def cnn_lstm():
    return keras.Sequential([keras.Input((None, 2)), layers.Conv1D(6, 3, activation="relu", name="conv"),
                             layers.MaxPooling1D(2, name="pool"), layers.LSTM(4, name="lstm"),
                             layers.Dense(3, name="head")])


def bidirectional_normalised():
    return keras.Sequential([keras.Input((None,), dtype="int32"), layers.Embedding(VOCAB, 4, mask_zero=True),
                             layers.Bidirectional(layers.LSTM(3, return_sequences=True)),
                             layers.LayerNormalization(name="norm"), layers.LSTM(4), layers.Dense(2)])


def repeat_decoder():
    return keras.Sequential([keras.Input((None, 2)), layers.LSTM(5, name="encoder"), layers.RepeatVector(4),
                             layers.LSTM(3, return_sequences=True, name="decoder"),
                             layers.TimeDistributed(layers.Dense(2, activation="softmax"), name="per_step")])


def assorted():
    return keras.Sequential([keras.Input((None, 2)), layers.Conv1D(4, 2, padding="same"),
                             layers.BatchNormalization(), layers.Activation("gelu"), layers.Dropout(0.3),
                             layers.GRU(3, return_sequences=True),
                             layers.TimeDistributed(layers.Dense(2)),
                             layers.GlobalAveragePooling1D()])


MODELS = {"Conv1D → MaxPooling1D → LSTM → Dense": (cnn_lstm, FEATURES),
          "Embedding → Bidirectional LSTM → LayerNormalization → LSTM → Dense": (bidirectional_normalised, TOKENS),
          "LSTM → RepeatVector → LSTM → TimeDistributed(Dense)": (repeat_decoder, FEATURES),
          "BatchNormalization, Activation, Dropout": (assorted, FEATURES)}


def pad(data, maxlen=None):
    dtype = "int32" if np.ndim(data[0]) == 1 else "float32"
    return keras.utils.pad_sequences(data, maxlen=maxlen, dtype=dtype, padding="post", value=0)


def text_of(data) -> str:
    if np.ndim(data[0]) == 1:
        return "\n".join(" ".join(map(str, row)) for row in data) + "\n"
    return "\n".join("; ".join(" ".join(map(str, step)) for step in row) for row in data) + "\n"


def saved(build, data, path):
    batch = pad(data)
    return trained_and_saved(build, [batch], path, seed=1), batch


def assert_every_layer_equals_keras(model, batch, outputs: dict[str, np.ndarray]):
    """Each shown layer against the saved model's sub-model up to that layer, the last against predict."""
    for layer in model.layers:
        if layer.name not in outputs:
            continue
        expected = keras.Model(model.inputs, layer.output).predict(batch, verbose=0)
        np.testing.assert_allclose(outputs[layer.name], expected, atol=1e-5, rtol=1e-5, err_msg=layer.name)
    last = model.layers[-1].name
    np.testing.assert_allclose(outputs[last], model.predict(batch, verbose=0), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", list(MODELS))
def test_a_model_with_keras_layers_opens_and_every_layer_equals_keras(name, tmp_path):
    build, data = MODELS[name]
    model, batch = saved(build, data, tmp_path / "model.keras")
    spec, _weights, _notes = keras_io.import_model(tmp_path / "model.keras")
    assert spec.layer_names() == [layer.name for layer in model.layers]
    result = ENGINE.run(spec, text_of(data))
    np.testing.assert_array_equal(result.input, batch)
    assert_every_layer_equals_keras(model, batch, {layer.name: layer.output for layer in result.layers})
    assert [layer.symbolic_shape for layer in result.layers] == [tuple(layer.output.shape) for layer in model.layers]


def test_a_card_holds_the_class_and_the_config_keras_saved(tmp_path):
    saved(cnn_lstm, FEATURES, tmp_path / "model.keras")
    spec, _, _ = keras_io.import_model(tmp_path / "model.keras")
    conv = specs.to_dict(spec)["layers"][0]
    assert conv["type"] == "keras" and conv["class_name"] == "Conv1D" and conv["name"] == "conv"
    assert conv["config"]["filters"] == 6 and conv["config"]["kernel_size"] == [3]
    assert conv["config"]["activation"] == "relu"
    again = specs.loads(specs.dumps(spec))   # a stack file keeps the card and its trained weights
    result = ENGINE.run(again, text_of(FEATURES))
    assert result.layers[0].mask_role == "none" and result.layers[0].shape == (3, 6, 6)


def test_mask_roles_of_keras_layers_come_from_keras():
    spec = specs.from_dict({"input": {"kind": "tokens", "vocab_size": VOCAB}, "layers": [
        {"type": "embedding", "output_dim": 4, "mask_zero": True},
        {"type": "keras", "class_name": "LayerNormalization", "config": {}},
        {"type": "keras", "class_name": "Conv1D", "config": {"filters": 3, "kernel_size": 1}},
        {"type": "lstm", "units": 2}]})
    result = ENGINE.run(spec, text_of(TOKENS))
    assert [layer.mask_role for layer in result.layers] == ["creates", "carries", "drops", "none"]
    pooled = specs.from_dict({"input": {"kind": "tokens", "vocab_size": VOCAB}, "layers": [
        {"type": "embedding", "output_dim": 4, "mask_zero": True},
        {"type": "keras", "class_name": "GlobalAveragePooling1D", "config": {}}]})
    assert ENGINE.run(pooled, text_of(TOKENS)).layers[1].mask_role == "consumes"


@pytest.mark.slow   # a fresh process: TensorFlow imported once more
def test_the_command_line_runs_a_model_file_with_keras_layers(tmp_path):
    model, batch = saved(cnn_lstm, FEATURES, tmp_path / "model.keras")
    (tmp_path / "input.txt").write_text(text_of(FEATURES))
    done = subprocess.run([sys.executable, "main.py", "run", str(tmp_path / "model.keras"), "--input",
                           str(tmp_path / "input.txt"), "--npz", str(tmp_path / "out.npz"), "--json", "-"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [layer["type"] for layer in report["layers"]] == ["keras", "keras", "lstm", "dense"]
    arrays = np.load(tmp_path / "out.npz")
    assert_every_layer_equals_keras(model, batch, {layer.name: arrays[f"out/{layer.name}"]
                                                   for layer in model.layers})
    code = subprocess.run([sys.executable, "main.py", "export-code", str(tmp_path / "model.keras")],
                          capture_output=True, text=True, timeout=300)
    assert code.returncode == 0, code.stderr
    assert "keras.layers.deserialize(" in code.stdout
    (tmp_path / "model.py").write_text(code.stdout)
    ran = subprocess.run([sys.executable, "model.py"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert ran.returncode == 0, ran.stderr
    assert "conv                         (None, None, 6)" in ran.stdout


def test_open_edit_units_export_and_load_with_keras(tmp_path):
    saved(cnn_lstm, FEATURES, tmp_path / "model.keras")
    spec, _, _ = keras_io.import_model(tmp_path / "model.keras")
    spec.layers[2].params["units"] = 7       # the LSTM: fresh weights from here on, the others stay trained
    result = ENGINE.run(spec, text_of(FEATURES))
    keras_io.export_model(ENGINE.built_for(spec), tmp_path / "edited.keras")
    loaded = keras.saving.load_model(tmp_path / "edited.keras", compile=False, safe_mode=True)
    assert loaded.get_layer("lstm").units == 7
    np.testing.assert_allclose(result.layers[-1].output, loaded.predict(pad(FEATURES), verbose=0), atol=1e-5)


@pytest.mark.parametrize("card, problem", [
    ({"class_name": "NoSuchLayer", "config": {}}, "NoSuchLayer is not a layer of keras.layers"),
    ({"class_name": "InputLayer", "config": {}}, "InputLayer is not a layer a card can hold"),
    ({"class_name": "deserialize", "config": {}}, "deserialize is not a layer a card can hold"),
    ({"class_name": "Conv1D", "config": {"filters": 2}}, "keras_1: Keras cannot build Conv1D from this config"),
    ({"class_name": "Lambda", "config": {"function": {"class_name": "__lambda__", "config": {
        "code": "lambda x: x", "defaults": None, "closure": None}}}}, "keras_1: Keras cannot build Lambda"),
])
def test_a_card_keras_cannot_build_safely_is_refused_with_a_sentence(card, problem):
    spec = specs.from_dict({"input": {"kind": "features", "features": 2}, "layers": [{"type": "keras", **card}]})
    with pytest.raises(ExplorerError) as caught:
        ENGINE.run(spec, text_of(FEATURES))
    assert problem in caught.value.message


@pytest.mark.parametrize("card, problem", [
    ({"class_name": "os.system"}, "layers[0].class_name: must be the name of a Keras layer class"),
    ({"config": [1, 2]}, "layers[0].config: must be an object"),
])
def test_a_card_that_is_not_a_class_and_a_config_is_refused_in_the_file(card, problem):
    with pytest.raises(ExplorerError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        specs.from_dict({"input": {"kind": "features", "features": 2}, "layers": [{"type": "keras", **card}]})


def test_the_memory_estimate_of_cards_comes_from_keras_and_covers_what_a_run_holds():
    spec = specs.from_dict({"input": {"kind": "features", "features": 2}, "layers": [
        {"type": "keras", "class_name": "UpSampling1D", "config": {"size": 8}},
        {"type": "keras", "class_name": "Conv1D", "config": {"filters": 64, "kernel_size": 3, "padding": "same"}},
        {"type": "keras", "class_name": "MaxPooling1D", "config": {"pool_size": 2}},
        {"type": "lstm", "units": 3}]})
    result = ENGINE.run(spec, text_of(FEATURES))
    held = sum(layer.output.nbytes for layer in result.layers)
    estimate = memory.estimate_mb(spec, *result.input.shape[:2])
    assert 2 * held / 1e6 <= estimate <= 8 * held / 1e6


CARDS = {
    "conv": lambda d: layers.Conv1D(d.draw(st.integers(1, 4)), d.draw(st.integers(1, 3)), padding="same"),
    "pool": lambda d: layers.MaxPooling1D(d.draw(st.integers(1, 2)), padding="same"),
    "average": lambda d: layers.AveragePooling1D(2, padding="same"),
    "batch_norm": lambda d: layers.BatchNormalization(),
    "layer_norm": lambda d: layers.LayerNormalization(),
    "dropout": lambda d: layers.Dropout(0.4),
    "activation": lambda d: layers.Activation(d.draw(st.sampled_from(["relu", "tanh", "softplus"]))),
}
REGISTERED = {
    "lstm": lambda d: (layers.LSTM(d.draw(st.integers(1, 3)), return_sequences=True), "lstm"),
    "gru": lambda d: (layers.GRU(d.draw(st.integers(1, 3)), return_sequences=True), "gru"),
    "dense": lambda d: (layers.Dense(d.draw(st.integers(1, 3))), "dense"),
}


@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_random_chain_of_registry_types_and_keras_cards_equals_plain_keras(data):
    keras.utils.set_random_seed(0)
    chosen = data.draw(st.lists(st.sampled_from([*CARDS, *REGISTERED]), min_size=1, max_size=4))
    inputs = keras.Input((None, 2))
    x, stack = inputs, []
    for kind in chosen:
        if kind in CARDS:
            layer = CARDS[kind](data)
            config = json.loads(json.dumps(layer.get_config()))
            config.pop("name")
            stack.append({"type": "keras", "class_name": type(layer).__name__, "config": config})
        else:
            layer, key = REGISTERED[kind](data)
            entry = {"type": key, "units": layer.units}
            stack.append(entry if key == "dense" else {**entry, "return_sequences": True})
        x = layer(x)
    model = keras.Model(inputs, layers.LSTM(2)(x))
    stack.append({"type": "lstm", "units": 2})
    spec = specs.from_dict({"input": {"kind": "features", "features": 2}, "layers": stack})
    spec.weights = {name: keras_layer.get_weights() for name, keras_layer in zip(spec.layer_names(), model.layers[1:])}
    spec.weights_id = "test"
    result = ENGINE.run(spec, text_of(FEATURES))
    np.testing.assert_allclose(result.layers[-1].output, model.predict(pad(FEATURES), verbose=0), atol=1e-5)


@keras.saving.register_keras_serializable(package="cards_test")
def shifted_tanh(x):
    return keras.ops.tanh(x) + 0.5


def unnamed_activation():
    return keras.Sequential([keras.Input((None, 2)), layers.LSTM(3, activation=shifted_tanh, name="odd"),
                             layers.Dense(2)])


def backward_of_its_own():
    return keras.Sequential([keras.Input((None, 2)), layers.Bidirectional(
        layers.GRU(3), backward_layer=layers.GRU(3, go_backwards=True, activation="relu"), name="both"),
        layers.Dense(2)])


def channels_first_pooling():
    return keras.Sequential([keras.Input((8, 2)), layers.LSTM(3, return_sequences=True),   # pools over time's
                             layers.GlobalAveragePooling1D(data_format="channels_first", name="pool")])  # 3 units


def stateful():
    return keras.Sequential([keras.Input(batch_shape=(3, None, 2)), layers.LSTM(3, stateful=True, name="memory"),
                             layers.Dense(2)])


@pytest.mark.parametrize("build, note", [
    (unnamed_activation, "odd uses the activation shifted_tanh, which is not one of Keras's named activations; Keras "
                         "computes it as it is"),
    (backward_of_its_own, "both (Bidirectional) has a backward layer with its own settings; Keras computes it"),
    (channels_first_pooling, "pool (GlobalAveragePooling1D) has data_format channels_first; Keras computes it"),
    (stateful, "memory is stateful: the explorer runs every batch from zero states"),
])
def test_settings_no_registry_type_holds_open_with_a_note_and_equal_keras(build, note, tmp_path):
    model, batch = saved(build, FEATURES, tmp_path / "model.keras")
    spec, _, notes = keras_io.import_model(tmp_path / "model.keras")
    assert any(note in text for text in notes), notes
    result = ENGINE.run(spec, text_of(FEATURES))
    fresh = keras.saving.load_model(tmp_path / "model.keras")   # a fresh model: a stateful one starts from zeros
    np.testing.assert_allclose(result.layers[-1].output, fresh.predict(batch, verbose=0), atol=1e-5)


@pytest.mark.parametrize("key, cls", [("simple_rnn", layers.SimpleRNN), ("lstm", layers.LSTM), ("gru", layers.GRU)])
def test_a_recurrent_types_gate_count_is_the_width_of_its_keras_kernel(key, cls):
    from explorer.core.registry import TYPES
    layer = cls(5)
    layer.build((None, None, 3))
    assert layer.cell.kernel.shape[1] == TYPES[key].gates * 5
