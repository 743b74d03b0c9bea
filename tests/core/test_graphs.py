"""Models that branch, merge or have several outputs (one input): written here with plain Keras, trained one step,
saved and opened; every layer equals a Keras sub-model of the saved model, every output equals model.predict."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from keras import layers

from explorer.core import keras_io, spec as specs
from explorer.core.errors import SpecError, StackError
from explorer.core.run import Engine

from .keras_files import trained_and_saved

ENGINE = Engine()
TOKENS = [[3, 7, 1, 9, 4], [5, 2], [8, 8, 6, 1]]


def two_heads_on_one_gru():
    i = keras.Input((None,), dtype="int32")
    x = layers.GRU(4, name="shared")(layers.Embedding(20, 3, mask_zero=True, name="emb")(i))
    return keras.Model(i, [layers.Dense(3, activation="softmax", name="topic")(x),
                           layers.Dense(1, activation="sigmoid", name="score")(x)])


def residual_add_of_two_lstms():
    i = keras.Input((None,), dtype="int32")
    x = layers.Embedding(20, 4, mask_zero=True, name="emb")(i)
    first = layers.LSTM(4, return_sequences=True, name="first")(x)
    second = layers.LSTM(4, return_sequences=True, name="second")(first)
    joined = layers.Add(name="residual")([first, second])
    return keras.Model(i, layers.Dense(2, name="head")(layers.GlobalAveragePooling1D(name="pool")(joined)))


def concatenated_branches():
    i = keras.Input((None,), dtype="int32")
    x = layers.Embedding(20, 3, name="emb")(i)
    joined = layers.Concatenate(name="join")([layers.LSTM(2, name="left")(x), layers.GRU(3, name="right")(x)])
    return keras.Model(i, layers.Dense(1, name="head")(joined))


def saved(build, path):
    batch = keras.utils.pad_sequences(TOKENS, padding="post")
    return trained_and_saved(build, [batch], path, seed=8), batch


@pytest.mark.parametrize("build, inputs", [
    (two_heads_on_one_gru, {"score": ["shared"]}),
    (residual_add_of_two_lstms, {"residual": ["first", "second"]}),
    (concatenated_branches, {"right": ["emb"], "join": ["left", "right"]}),
])
def test_a_model_that_branches_opens_and_every_layer_and_output_equals_keras(build, inputs, tmp_path):
    model, batch = saved(build, tmp_path / "model.keras")
    spec, _, _ = keras_io.import_model(tmp_path / "model.keras")
    assert {layer.name: layer.inputs for layer in spec.layers if layer.inputs} == inputs
    assert spec.outputs() == [tensor._keras_history.operation.name for tensor in model.outputs]
    result = ENGINE.run(specs.loads(specs.dumps(spec)), "\n".join(" ".join(map(str, t)) for t in TOKENS) + "\n")
    for shown in result.layers:
        expected = keras.Model(model.inputs, model.get_layer(shown.name).output).predict(batch, verbose=0)
        np.testing.assert_allclose(shown.output, expected, atol=1e-5, err_msg=shown.name)
    fc = result.fc_input   # what the dense head takes, as Keras's graph says
    assert fc.source == model.get_layer(fc.layer).input._keras_history.operation.name
    assert fc.shape == result.layer(fc.source).shape
    predicted = model.predict(batch, verbose=0)
    for name, values in zip(spec.outputs(), predicted if len(model.outputs) > 1 else [predicted]):
        np.testing.assert_allclose(result.layer(name).output, values, atol=1e-5)


def test_a_branching_stack_exports_as_keras_with_all_its_outputs(tmp_path):
    saved(two_heads_on_one_gru, tmp_path / "model.keras")
    spec, _, _ = keras_io.import_model(tmp_path / "model.keras")
    result = ENGINE.run(spec, "1 2 3\n4 5\n")
    keras_io.export_model(ENGINE.built_for(spec), tmp_path / "again.keras")
    loaded = keras.saving.load_model(tmp_path / "again.keras", compile=False)
    topic, score = loaded.predict(keras.utils.pad_sequences([[1, 2, 3], [4, 5]], padding="post"), verbose=0)
    np.testing.assert_allclose(result.layer("topic").output, topic, atol=1e-6)
    np.testing.assert_allclose(result.layer("score").output, score, atol=1e-6)


def test_inputs_must_name_an_earlier_layer_and_chunked_mode_refuses_a_graph():
    document = {"input": {"kind": "tokens", "vocab_size": 10}, "layers": [
        {"type": "embedding"}, {"type": "lstm", "name": "a"}, {"type": "dense", "inputs": ["b"]}]}
    with pytest.raises(SpecError, match=r'layers\[2\].inputs: "b" is not a layer before this one'):
        specs.from_dict(document)
    document["layers"][2]["inputs"] = ["a"]
    document["layers"].append({"type": "dense", "inputs": ["a"]})
    spec = specs.from_dict({**document, "batching": {"mode": "chunked"}})
    with pytest.raises(StackError, match="chunked mode runs one chain of layers"):
        ENGINE.run(spec, "1 2\n")


def test_the_exported_code_of_a_branching_model_builds_the_same_layers(tmp_path):
    import subprocess
    import sys
    model, _ = saved(residual_add_of_two_lstms, tmp_path / "model.keras")
    code = subprocess.run([sys.executable, "main.py", "export-code", str(tmp_path / "model.keras")],
                          capture_output=True, text=True, timeout=300)
    assert code.returncode == 0, code.stderr
    assert "x = [outputs['first'], outputs['second']]" in code.stdout
    (tmp_path / "model.py").write_text(code.stdout)
    ran = subprocess.run([sys.executable, "model.py"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert ran.returncode == 0, ran.stderr
    assert "residual                     (None, None, 4)" in ran.stdout


def encoder_decoder():
    """The decoder starts from the encoder's final states (initial_state=[h, c]), as in sequence-to-sequence."""
    i = keras.Input((None,), dtype="int32")
    x = layers.Embedding(20, 4, mask_zero=True, name="emb")(i)
    _, h, c = layers.LSTM(5, return_state=True, name="encoder")(x)
    y = layers.LSTM(5, return_sequences=True, name="decoder")(x, initial_state=[h, c])
    return keras.Model(i, layers.Dense(3, activation="softmax", name="per_step")(y))


def test_an_encoder_decoder_with_initial_state_runs_and_its_card_says_which_state_feeds_it(tmp_path):
    model, batch = saved(encoder_decoder, tmp_path / "model.keras")
    spec, _, _ = keras_io.import_model(tmp_path / "model.keras")
    decoder = spec.layers[spec.layer_names().index("decoder")]
    assert decoder.initial_state == ["encoder/state/h", "encoder/state/c"] and decoder.inputs == ["emb"]
    assert spec.outputs() == ["per_step"]
    result = ENGINE.run(specs.loads(specs.dumps(spec)), "\n".join(" ".join(map(str, t)) for t in TOKENS) + "\n")
    for shown in result.layers:
        expected = keras.Model(model.inputs, model.get_layer(shown.name).output).predict(batch, verbose=0)
        if shown.name == "encoder":   # its output, h and c
            expected, h, c = expected
            np.testing.assert_allclose(shown.extras["encoder/state/h"], h, atol=1e-5)
            np.testing.assert_allclose(shown.extras["encoder/state/c"], c, atol=1e-5)
        np.testing.assert_allclose(shown.output, expected, atol=1e-5, err_msg=shown.name)
    np.testing.assert_allclose(result.layer("per_step").output, model.predict(batch, verbose=0), atol=1e-5)
    with pytest.raises(SpecError, match=r'layers\[2\].initial_state: "encoder/state/c" is not a state'):
        specs.from_dict({"input": {"kind": "tokens", "vocab_size": 10}, "layers": [
            {"type": "embedding"}, {"type": "gru", "name": "encoder", "return_state": True},
            {"type": "gru", "initial_state": ["encoder/state/c"], "inputs": ["embedding_1"]}]})


def test_the_exported_code_of_an_encoder_decoder_passes_the_states(tmp_path):
    import subprocess
    import sys

    from explorer.core.codegen import export_code
    saved(encoder_decoder, tmp_path / "model.keras")
    spec, _, _ = keras_io.import_model(tmp_path / "model.keras")
    spec.sequences = "1 2 3\n4 5\n"
    code = export_code(spec)
    assert "(x, initial_state=[outputs['encoder/state/h'], outputs['encoder/state/c']])" in code
    (tmp_path / "model.py").write_text(code)
    ran = subprocess.run([sys.executable, "model.py"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert ran.returncode == 0, ran.stderr
    assert "decoder                      (None, None, 5)      (2, 3, 5)" in ran.stdout


@settings(max_examples=4, deadline=None)
@example(encoder_units=3, decoder_units=3, kind="lstm").via("the same width")
@example(encoder_units=4, decoder_units=5, kind="gru").via("the reported case")
@given(encoder_units=st.integers(1, 6), decoder_units=st.integers(1, 6), kind=st.sampled_from(["lstm", "gru"]))
def test_states_as_wide_as_the_units_run_and_others_are_refused_before_keras_runs(encoder_units, decoder_units,
                                                                                 kind):
    """Plain Keras decides: the model runs when each state is as wide as the decoder's units, and fails inside the
    run otherwise; the explorer then names the decoder, the state and the fix before running."""
    cell = {"lstm": layers.LSTM, "gru": layers.GRU}[kind]
    i = keras.Input((None,), dtype="int32")
    x = layers.Embedding(20, 3, name="emb")(i)
    _, *states = cell(encoder_units, return_state=True, name="encoder")(x)
    try:
        keras.Model(i, cell(decoder_units, name="decoder")(x, initial_state=states)).predict(
            np.array([[1, 2, 3]]), verbose=0)
        keras_runs = True
    except Exception:
        keras_runs = False
    names = ["h", "c"] if kind == "lstm" else ["h"]
    spec = specs.from_dict({"input": {"kind": "tokens", "vocab_size": 20}, "layers": [
        {"type": "embedding", "name": "emb", "output_dim": 3},
        {"type": kind, "name": "encoder", "units": encoder_units, "return_state": True},
        {"type": kind, "name": "decoder", "units": decoder_units, "inputs": ["emb"],
         "initial_state": [f"encoder/state/{name}" for name in names]}]})
    assert keras_runs == (encoder_units == decoder_units)
    if keras_runs:
        assert ENGINE.run(spec, "1 2 3\n").layer("decoder").output.shape == (1, decoder_units)
        return
    with pytest.raises(StackError, match=f"decoder starts from encoder/state/h, which holds {encoder_units} values "
                                         f".* set decoder's units to {encoder_units}") as refused:
        ENGINE.run(spec, "1 2 3\n")
    fixed = refused.value.fix.apply(spec)
    assert ENGINE.run(fixed, "1 2 3\n").layer("decoder").output.shape == (1, encoder_units)
