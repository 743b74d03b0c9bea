"""Inputs without a time axis, one vector per example (input kind "vector"): the inference decoder of Keras's
character-level translation example, which starts from states given as model inputs, and a text model with a side
vector of tags (Keras's functional API guide). Each is written here with plain Keras, trained one step, saved and
opened as a user opens it (`run MODEL.keras --input NAME=FILE …`); every shown layer equals a Keras sub-model of the
saved model and the outputs equal model.predict on the same inputs."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from keras import layers

from explorer import cli
from explorer.core import keras_io, spec as specs
from explorer.core.errors import ExplorerError, SpecError, StackError
from explorer.core.run import Engine

from .keras_files import exported_output, trained_and_saved

ENGINE = Engine()
TOKENS, LATENT, TAGS = 3, 4, 3


def inference_decoder():
    """keras-io lstm_seq2seq's decoder_model: the next character and the states, from a character and states."""
    characters = keras.Input(shape=(None, TOKENS), name="characters")
    state_h, state_c = keras.Input(shape=(LATENT,), name="state_h"), keras.Input(shape=(LATENT,), name="state_c")
    outputs, h, c = layers.LSTM(LATENT, return_sequences=True, return_state=True,
                                name="decoder_lstm")(characters, initial_state=[state_h, state_c])
    outputs = layers.Dense(TOKENS, activation="softmax", name="next_char")(outputs)
    return keras.Model([characters, state_h, state_c], [outputs, h, c])


def tagged_text():
    """A text and a vector of tags per example, merged before the head; the tags come first in the model."""
    tags = keras.Input(shape=(TAGS,), name="tags")
    text = keras.Input(shape=(None,), dtype="int32", name="text")
    x = layers.LSTM(LATENT, name="reader")(layers.Embedding(9, 3, mask_zero=True, name="words")(text))
    both = layers.Concatenate(name="both")([x, layers.Dense(2, activation="relu", name="tag_features")(tags)])
    return keras.Model([tags, text], layers.Dense(1, name="score")(both))


def vectors_text(rows: np.ndarray) -> str:
    return "\n".join(" ".join(f"{value:.9g}" for value in row) for row in rows) + "\n"


def steps_text(rows: list[np.ndarray]) -> str:
    return "\n".join("; ".join(" ".join(f"{v:.9g}" for v in step) for step in row) for row in rows) + "\n"


CHARACTERS = [np.eye(TOKENS, dtype="float32")[row] for row in ([0, 2], [1, 2, 0, 1], [2])]
RNG = np.random.default_rng(3)
STATES = RNG.normal(size=(2, 3, LATENT)).astype("float32")


@pytest.fixture(scope="module")
def decoder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("decoder")
    batch = keras.utils.pad_sequences(CHARACTERS, dtype="float32", padding="post")
    model = trained_and_saved(inference_decoder, [batch, *STATES], folder / "model.keras")
    return model, folder


def test_run_with_the_states_as_inputs_equals_keras_layer_by_layer(decoder, tmp_path, capsys):
    model, folder = decoder
    files = {"characters": steps_text(CHARACTERS), "state_h": vectors_text(STATES[0]),
             "state_c": vectors_text(STATES[1])}
    arguments = []
    for name, text in files.items():
        (tmp_path / f"{name}.txt").write_text(text)
        arguments += ["--input", f"{name}={tmp_path / f'{name}.txt'}"]
    status = cli.main(["run", str(folder / "model.keras"), *arguments, "--npz", str(tmp_path / "out.npz"),
                       "--json", str(tmp_path / "out.json")])
    assert status == 0, capsys.readouterr().err
    arrays, report = np.load(tmp_path / "out.npz"), json.loads((tmp_path / "out.json").read_text())
    batch = [keras.utils.pad_sequences(CHARACTERS, dtype="float32", padding="post"), *STATES]
    expected, h, c = keras.Model(model.inputs, model.get_layer("decoder_lstm").output).predict(batch, verbose=0)
    np.testing.assert_allclose(arrays["out/decoder_lstm"], expected, atol=1e-5)
    np.testing.assert_allclose(arrays["out/decoder_lstm/state/h"], h, atol=1e-5)
    np.testing.assert_allclose(arrays["out/decoder_lstm/state/c"], c, atol=1e-5)
    for name, value in zip(("next_char", "decoder_lstm/state/h", "decoder_lstm/state/c"),
                           model.predict(batch, verbose=0)):
        np.testing.assert_allclose(arrays[f"out/{name}"], value, atol=1e-5, err_msg=name)
    assert [output["name"] for output in report["outputs"]] == ["next_char", "decoder_lstm/state/h",
                                                                 "decoder_lstm/state/c"]
    np.testing.assert_array_equal(arrays["inputs/state_h/input"], STATES[0])
    assert report["inputs"]["state_c"]["padded_shape"] == [3, LATENT]


def test_the_decoder_card_names_the_inputs_that_start_it_and_the_stack_file_keeps_them(decoder):
    _, folder = decoder
    spec, _, _ = keras_io.import_model(folder / "model.keras")
    assert [(item.name, item.kind, item.features, item.length) for item in spec.all_inputs()] == [
        ("characters", "features", TOKENS, None), ("state_h", "vector", LATENT, None),
        ("state_c", "vector", LATENT, None)]
    lstm = spec.layers[spec.layer_names().index("decoder_lstm")]
    assert lstm.initial_state == ["state_h", "state_c"]
    again = specs.loads(specs.dumps(spec))
    assert specs.to_dict(again) == specs.to_dict(spec)
    assert specs.to_dict(again)["more_inputs"][0] == {"kind": "vector", "features": LATENT, "name": "state_h"}


vector = st.lists(st.floats(-3, 3, width=32), min_size=LATENT, max_size=LATENT)
character = st.integers(0, TOKENS - 1)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.lists(character, min_size=1, max_size=5), vector, vector), min_size=1, max_size=4))
def test_any_states_and_characters_give_predicts_numbers(decoder, examples):
    model, folder = decoder
    spec, _, _ = keras_io.import_model(folder / "model.keras")
    rows = [np.eye(TOKENS, dtype="float32")[row] for row, _, _ in examples]
    h, c = (np.array([example[k] for example in examples], dtype="float32") for k in (1, 2))
    result = ENGINE.run(spec, {"characters": steps_text(rows), "state_h": vectors_text(h), "state_c": vectors_text(c)})
    batch = [keras.utils.pad_sequences(rows, dtype="float32", padding="post"), h, c]
    for name, value in zip(("next_char", "decoder_lstm/state/h", "decoder_lstm/state/c"), model(batch, training=False)):
        np.testing.assert_allclose(result.output_value(name), value, atol=1e-5, err_msg=name)


@pytest.fixture(scope="module")
def tagged(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tagged")
    tags = RNG.normal(size=(3, TAGS)).astype("float32")
    text = keras.utils.pad_sequences([[1, 2, 3], [4, 5], [6, 7, 8, 2]], padding="post")
    model = trained_and_saved(tagged_text, [tags, text], folder / "model.keras")
    return model, tags, text, folder


def test_a_side_vector_merged_with_the_text_equals_predict_and_the_sequence_input_comes_first(tagged):
    model, tags, text, folder = tagged
    spec, _, notes = keras_io.import_model(folder / "model.keras")
    assert [(item.name, item.kind) for item in spec.all_inputs()] == [("text", "tokens"), ("tags", "vector")]
    assert any("takes the sequence input text first" in note for note in notes)
    result = ENGINE.run(spec, {"text": "1 2 3\n4 5\n6 7 8 2\n", "tags": vectors_text(tags)})
    feeds = {"tags": tags, "text": text}   # by name: the explorer's order is not the model's
    for name in ("reader", "tag_features", "both", "score"):
        expected = keras.Model(model.inputs, model.get_layer(name).output)(feeds, training=False)
        np.testing.assert_allclose(result.layer(name).output, expected, atol=1e-5, err_msg=name)
    assert result.layer("tag_features").steps_from == ""   # no time axis: nothing to hatch


@pytest.mark.parametrize("texts, message", [
    ({"text": "1 2\n", "tags": "1 2 3; 4 5 6\n"}, r"input tags: line 1, column 6: a vector input takes one vector per "
                                                  r"line \(3 numbers\), not timesteps separated by ;"),
    ({"text": "1 2\n", "tags": "1 2\n"}, r"input tags: line 1, column 1: .* has 2 values; input.features is 3"),
    ({"text": "1 2\n3\n", "tags": "1 2 3\n"}, "text has 2 sequences, tags has 1 sequence"),
])
def test_a_wrong_vector_is_refused_naming_its_input_and_place(tagged, texts, message):
    _, _, _, folder = tagged
    spec, _, _ = keras_io.import_model(folder / "model.keras")
    with pytest.raises(ExplorerError, match=message):
        ENGINE.run(spec, texts)


@pytest.mark.parametrize("document, message", [
    ({"input": {"kind": "tokens", "vocab_size": 5, "name": "a"}, "more_inputs": [{"name": "b", "kind": "vector"}]},
     r'more_inputs\[0\].features: is required when input.kind is "vector"'),
    ({"input": {"kind": "tokens", "vocab_size": 5, "name": "a"},
      "more_inputs": [{"name": "b", "kind": "vector", "features": 2, "length": 4}]},
     r'more_inputs\[0\].length: is for sequences: a "vector" input has no timesteps'),
])
def test_a_vector_input_has_features_and_no_length(document, message):
    with pytest.raises(SpecError, match=message):
        specs.from_dict({"layers": [{"type": "embedding"}, {"type": "lstm"}], **document})


def test_a_state_input_as_wide_as_another_units_count_is_refused_before_keras_runs():
    document = {"input": {"kind": "tokens", "vocab_size": 5, "name": "a"},
                "more_inputs": [{"name": "h", "kind": "vector", "features": 3}],
                "layers": [{"type": "embedding"}, {"type": "gru", "units": 4, "initial_state": ["h"]}]}
    with pytest.raises(StackError, match="gru_1 starts from h, which holds 3 values per sequence, but gru_1 has 4 "
                                         "units"):
        ENGINE.built_for(specs.from_dict(document))


def generator():
    """One vector per example repeated over time into an LSTM: the decoder half of a sequence autoencoder."""
    start = keras.Input(shape=(LATENT,), name="start")
    x = layers.RepeatVector(3, name="repeat")(start)
    x = layers.LSTM(2, return_sequences=True, name="lstm")(x)
    return keras.Model(start, layers.TimeDistributed(layers.Dense(TOKENS), name="steps")(x))


@pytest.fixture(scope="module")
def saved_generator(tmp_path_factory):
    path = tmp_path_factory.mktemp("generator") / "model.keras"
    return trained_and_saved(generator, [STATES[0]], path), path


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(vector, min_size=1, max_size=5))
def test_a_model_whose_only_input_is_a_vector_equals_keras_layer_by_layer(saved_generator, rows):
    model, path = saved_generator
    spec, _, _ = keras_io.import_model(path)
    assert (spec.input.kind, spec.input.features, spec.batching.maxlen) == ("vector", LATENT, None)
    batch = np.array(rows, dtype="float32")
    result = ENGINE.run(spec, vectors_text(batch))
    np.testing.assert_array_equal(result.input, batch)
    for name in ("repeat", "lstm", "steps"):
        expected = keras.Model(model.input, model.get_layer(name).output)(batch, training=False)
        np.testing.assert_allclose(result.layer(name).output, expected, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("command, message", [
    (["run", "--gradients", "--npz", "out.npz"], "gradients per step need a sequence input, but this model's input is "
                                                 "one vector per example"),
    (["run", "--mode", "bucket"], 'batching mode "bucket" splits sequences by their steps, but the input is one '
                                  "vector per example: use pad mode"),
])
def test_what_needs_steps_of_the_input_refuses_a_vector_input_in_one_line(saved_generator, tmp_path, command,
                                                                           message, capsys):
    _, path = saved_generator
    (tmp_path / "vectors.txt").write_text(vectors_text(STATES[0]))
    status = cli.main([command[0], str(path), "--input", str(tmp_path / "vectors.txt"), *command[1:]])
    error = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and error[-1].startswith(f"error: {message}"), error


def test_the_gates_leak_check_and_doctor_of_a_vector_input_model_run(saved_generator, tmp_path, capsys):
    """Nothing is padded: the leak check finds none; the LSTM's gates, over the steps RepeatVector makes, recompose
    its Keras output (h = o · tanh(c))."""
    model, path = saved_generator
    (tmp_path / "vectors.txt").write_text(vectors_text(STATES[0]))
    status = cli.main(["run", str(path), "--input", str(tmp_path / "vectors.txt"), "--gates", "--leak-check",
                       "--npz", str(tmp_path / "out.npz"), "--json", str(tmp_path / "out.json")])
    assert status == 0, capsys.readouterr().err
    arrays = np.load(tmp_path / "out.npz")
    own = keras.Model(model.input, model.get_layer("lstm").output)(STATES[0], training=False)
    np.testing.assert_allclose(arrays["gates/lstm/output"] * np.tanh(arrays["gates/lstm/cell"]), own, atol=1e-5)
    assert json.loads((tmp_path / "out.json").read_text())["leak_check"]["verdict"].startswith("no leak")
    assert cli.main(["doctor", str(path), "--input", str(tmp_path / "vectors.txt")]) == 0
    assert "checked: " in capsys.readouterr().out


def test_a_decoder_started_from_state_inputs_has_gates_that_start_from_them(decoder, tmp_path, capsys):
    from .test_inside_graphs import numpy_lstm
    model, folder = decoder
    batch = keras.utils.pad_sequences(CHARACTERS, dtype="float32", padding="post")
    (tmp_path / "characters.txt").write_text(steps_text(CHARACTERS))
    for i, name in enumerate(("state_h", "state_c")):
        (tmp_path / f"{name}.txt").write_text(vectors_text(STATES[i]))
    status = cli.main(["run", str(folder / "model.keras"), "--gates", "--gradients", "--npz", str(tmp_path / "out.npz"),
                       *(f"--input={name}={tmp_path / name}.txt" for name in ("characters", "state_h", "state_c"))])
    assert status == 0, capsys.readouterr().err
    arrays = np.load(tmp_path / "out.npz")
    reference = numpy_lstm(model.get_layer("decoder_lstm").get_weights(), batch.astype(np.float64),
                           np.ones(batch.shape[:2], bool), STATES[0], STATES[1])
    own = keras.Model(model.inputs, model.get_layer("decoder_lstm").output[0]).predict([batch, *STATES], verbose=0)
    np.testing.assert_allclose(reference["h"], own, atol=1e-5)   # the reference is the layer
    for gate in ("input", "forget", "candidate", "output", "cell"):
        np.testing.assert_allclose(arrays[f"gates/decoder_lstm/{gate}"], reference[gate], atol=1e-5, err_msg=gate)
    assert arrays["grad/input"].shape == batch.shape[:2]   # over the characters' steps, the first sequence input


def test_a_recurrent_layer_on_a_vector_input_is_refused_with_the_fix():
    spec = specs.from_dict({"input": {"kind": "vector", "features": 3}, "layers": [{"type": "gru", "units": 2}]})
    with pytest.raises(StackError, match=r"gru_1 needs a sequence \(batch, T, features\), but the input is one vector "
                                         r"per example \(3 values\): repeat it over time first"):
        ENGINE.built_for(spec)


def test_inspect_takes_the_state_vectors_as_arrays(decoder):
    import explorer
    model, folder = decoder
    report = explorer.inspect(folder / "model.keras", {"characters": CHARACTERS, "state_h": STATES[0],
                                                       "state_c": STATES[1]})
    batch = [keras.utils.pad_sequences(CHARACTERS, dtype="float32", padding="post"), *STATES]
    np.testing.assert_allclose(report.result.layer("next_char").output, model.predict(batch, verbose=0)[0],
                               atol=1e-5)
    with pytest.raises(ExplorerError, match=r"sequence 0: the model takes one vector \(features,\), got an array of "
                                            r"shape \(1, 4\)"):
        explorer.inspect(folder / "model.keras", {"characters": CHARACTERS, "state_h": STATES[0][:, None],
                                                  "state_c": STATES[1]})


def test_the_exported_code_feeds_the_vectors_unpadded_and_gives_predicts_numbers(decoder, tmp_path):
    from explorer.core.codegen import export_code
    model, folder = decoder
    spec, _, _ = keras_io.import_model(folder / "model.keras")
    spec.sequences = steps_text(CHARACTERS)
    spec.more_sequences = {"state_h": vectors_text(STATES[0]), "state_c": vectors_text(STATES[1])}
    code = export_code(spec, weights_from=str(folder / "model.keras"))
    exported = exported_output(code, "next_char", tmp_path)
    batch = [keras.utils.pad_sequences(CHARACTERS, dtype="float32", padding="post"), *STATES]
    np.testing.assert_allclose(exported, model.predict(batch, verbose=0)[0], atol=1e-5)


def test_the_exported_code_of_a_model_whose_only_input_is_a_vector_gives_predicts_numbers(saved_generator, tmp_path):
    from explorer.core.codegen import export_code
    model, path = saved_generator
    spec, _, _ = keras_io.import_model(path)
    spec.sequences = vectors_text(STATES[0])
    exported = exported_output(export_code(spec, weights_from=str(path)), "steps", tmp_path)
    np.testing.assert_allclose(exported, model.predict(STATES[0], verbose=0), atol=1e-5)
