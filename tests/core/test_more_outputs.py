"""Layers that return several tensors, and tensors passed on beyond a layer's first output: a Bidirectional with
merge_mode None, a return_state state taken by a merge, any tensor passed as initial_state. Each model is written
here with plain Keras, trained one step, saved and opened as a user would (`run MODEL.keras --json --npz`): every
tensor shown equals a Keras sub-model of the saved model on valid steps, the outputs equal model.predict."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from keras import layers

from explorer import cli
from explorer.core import keras_io, spec as specs
from explorer.core.errors import SpecError, StackError
from explorer.core.run import Engine

from .keras_files import trained_and_saved

TOKENS = [[3, 7, 1, 9, 4], [5, 2], [8, 8, 6, 1]]


def both_directions_kept():
    """Bidirectional(merge_mode=None) returns the forward and the backward sequences; a Concatenate joins them."""
    i = keras.Input((None,), dtype="int32")
    x = layers.Embedding(20, 3, mask_zero=True, name="emb")(i)
    forward, backward = layers.Bidirectional(layers.LSTM(3, return_sequences=True), merge_mode=None, name="bi")(x)
    joined = layers.Concatenate(name="join")([forward, backward])
    return keras.Model(i, layers.Dense(2, name="head")(layers.GlobalAveragePooling1D(name="pool")(joined)))


def the_backward_direction_alone():
    """Only the backward last state of a merge_mode None GRU, with its states, goes on."""
    i = keras.Input((None,), dtype="int32")
    x = layers.Embedding(20, 3, name="emb")(i)
    _, backward, *_ = layers.Bidirectional(layers.GRU(2, return_state=True), merge_mode=None, name="bi")(x)
    return keras.Model(i, layers.Dense(1, name="head")(backward))


def a_state_joins_a_branch():
    """The pooled sequence of an LSTM and its final state h, concatenated: a state passed on in a model that
    branches."""
    i = keras.Input((None,), dtype="int32")
    x = layers.Embedding(20, 4, mask_zero=True, name="emb")(i)
    sequence, h, _ = layers.LSTM(3, return_sequences=True, return_state=True, name="encoder")(x)
    pooled = layers.GlobalMaxPooling1D(name="pool")(sequence)
    return keras.Model(i, layers.Dense(2, name="head")(layers.Concatenate(name="join")([pooled, h])))


def initial_state_from_dense_layers():
    """A decoder started from states computed by Dense layers (not return_state states)."""
    i = keras.Input((None,), dtype="int32")
    x = layers.Embedding(20, 4, mask_zero=True, name="emb")(i)
    summary = layers.GlobalAveragePooling1D(name="summary")(x)
    h = layers.Dense(3, activation="tanh", name="start_h")(summary)
    c = layers.Dense(3, name="start_c")(summary)
    y = layers.LSTM(3, return_sequences=True, name="decoder")(x, initial_state=[h, c])
    return keras.Model(i, layers.Dense(2, name="per_step")(y))


def saved(build, path):
    batch = keras.utils.pad_sequences(TOKENS, padding="post")
    return trained_and_saved(build, [batch], path, seed=3), batch


def run_cli(path, tmp_path, capsys) -> tuple[dict, dict]:
    (tmp_path / "input.txt").write_text("\n".join(" ".join(map(str, t)) for t in TOKENS) + "\n")
    code = cli.main(["run", str(path), "--input", str(tmp_path / "input.txt"), "--npz", str(tmp_path / "out.npz"),
                     "--json", "-"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out), dict(np.load(tmp_path / "out.npz"))


def assert_valid_steps_equal(shown, expected, mask, name):
    assert shown.shape == expected.shape, name
    if shown.ndim >= 3 and shown.shape[1] == mask.shape[1]:   # a sequence: its valid steps
        shown, expected = shown[mask], expected[mask]
    np.testing.assert_allclose(shown, expected, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("build, more, taken", [
    (both_directions_kept, {"bi": ["backward"]}, {"join": ["bi", "bi/backward"]}),
    (the_backward_direction_alone, {"bi": ["backward", "state/forward_h", "state/backward_h"]},
     {"head": ["bi/backward"]}),
    (a_state_joins_a_branch, {"encoder": ["state/h", "state/c"]}, {"join": ["pool", "encoder/state/h"]}),
    (initial_state_from_dense_layers, {}, {"start_c": ["summary"], "decoder": ["emb"]}),
])
def test_every_tensor_of_a_layer_with_several_outputs_equals_keras(build, more, taken, tmp_path, capsys):
    model, batch = saved(build, tmp_path / "model.keras")
    spec, _, _ = keras_io.import_model(tmp_path / "model.keras")
    assert {layer.name: layer.inputs for layer in spec.layers if layer.inputs} == taken
    report, arrays = run_cli(tmp_path / "model.keras", tmp_path, capsys)
    mask = np.asarray(report["batch"]["mask"], bool)
    np.testing.assert_array_equal(arrays["input"], batch)
    for shown in report["layers"]:
        name = shown["name"]
        expected = keras.Model(model.inputs, model.get_layer(name).output).predict(batch, verbose=0)
        expected = expected if isinstance(expected, list) else [expected]
        keys = [f"out/{name}"] + [f"out/{name}/{key}" for key in more.get(name, [])]
        assert len(keys) == len(expected), name
        for key, values in zip(keys, expected):
            assert_valid_steps_equal(arrays[key], values, mask, key)
        assert shown["shape"] == list(expected[0].shape)
        if "backward" in more.get(name, []):
            assert shown["backward"] == {"shape": list(expected[1].shape)}
    predicted = model.predict(batch, verbose=0)
    (output,) = report["outputs"]
    assert output["name"] == model.outputs[0]._keras_history.operation.name
    np.testing.assert_allclose(arrays[f"out/{output['name']}"], predicted, atol=1e-5)


def test_initial_states_from_dense_layers_are_named_on_the_decoder(tmp_path):
    saved(initial_state_from_dense_layers, tmp_path / "model.keras")
    spec, _, _ = keras_io.import_model(tmp_path / "model.keras")
    assert spec.layers[spec.layer_names().index("decoder")].initial_state == ["start_h", "start_c"]
    assert spec.outputs() == ["per_step"]


def test_a_stack_file_names_further_outputs_and_refuses_ones_a_layer_does_not_return():
    document = {"input": {"kind": "tokens", "vocab_size": 10}, "layers": [
        {"type": "embedding", "name": "emb"},
        {"type": "gru", "name": "bi", "units": 2, "bidirectional": True, "merge_mode": None,
         "return_sequences": True},
        {"type": "keras", "name": "join", "class_name": "Concatenate", "config": {}, "inputs": ["bi", "bi/backward"]}]}
    spec = specs.loads(specs.dumps(specs.from_dict(document)))
    assert spec.layers[1].params["merge_mode"] is None and spec.layers[2].inputs == ["bi", "bi/backward"]
    document["layers"][2]["inputs"] = ["bi", "bi/state/h"]
    with pytest.raises(SpecError, match=r'layers\[2\].inputs: "bi/state/h" is not a layer before this one'):
        specs.from_dict(document)


def test_the_card_of_a_layer_with_merge_mode_none_keeps_it_when_saved_back(tmp_path):
    model, batch = saved(both_directions_kept, tmp_path / "model.keras")
    spec, _, _ = keras_io.import_model(tmp_path / "model.keras")
    from explorer.core.run import Engine
    engine = Engine()
    engine.run(spec, "1 2 3\n4 5\n")
    keras_io.export_model(engine.built_for(spec), tmp_path / "again.keras")
    again = keras.saving.load_model(tmp_path / "again.keras", compile=False)
    assert again.get_layer("bi").merge_mode is None
    np.testing.assert_allclose(again.predict(batch, verbose=0), model.predict(batch, verbose=0), atol=1e-5)


def test_a_state_given_from_outside_the_model_is_a_vector_input_that_starts_the_layer(tmp_path):
    sequence = keras.Input((None, 2), name="steps")
    start = keras.Input((3,), name="start")
    model = keras.Model([sequence, start], layers.GRU(3, name="decoder")(sequence, initial_state=start))
    model.save(tmp_path / "model.keras")
    spec, _, _ = keras_io.import_model(tmp_path / "model.keras")
    assert spec.layers[0].initial_state == ["start"] and spec.more_inputs[0].kind == "vector"
    result = Engine().run(spec, {"steps": "1 2; 3 4\n5 6\n", "start": "0.5 0 -1\n1 1 1\n"})
    batch = [keras.utils.pad_sequences([[[1, 2], [3, 4]], [[5, 6]]], dtype="float32", padding="post"),
             np.array([[0.5, 0, -1], [1, 1, 1]], "float32")]
    np.testing.assert_allclose(result.layer("decoder").output, model.predict(batch, verbose=0), atol=1e-5)


def test_the_exported_code_of_a_merge_mode_none_model_gives_keras_numbers(tmp_path):
    import subprocess
    import sys

    from explorer.core.codegen import export_code
    model, _ = saved(both_directions_kept, tmp_path / "model.keras")
    spec, _, _ = keras_io.import_model(tmp_path / "model.keras")
    spec.sequences = "1 2 3\n4 5\n"
    code = export_code(spec, weights_from=str(tmp_path / "model.keras"))
    assert "x, bi_backward = " in code and "x = [outputs['bi'], outputs['bi/backward']]" in code
    (tmp_path / "model.py").write_text(code + "\nimport numpy\nnumpy.save('head.npy', results['head'])\n")
    ran = subprocess.run([sys.executable, "model.py"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert ran.returncode == 0, ran.stderr
    assert "bi/backward                  (None, None, 3)      (2, 3, 3)" in ran.stdout
    batch = keras.utils.pad_sequences([[1, 2, 3], [4, 5]], padding="post")
    np.testing.assert_allclose(np.load(tmp_path / "head.npy"), model.predict(batch, verbose=0), atol=1e-5)


@pytest.mark.parametrize("mode", ["bucket", "one_by_one"])
def test_the_backward_output_keeps_its_steps_when_sequences_run_apart(mode, tmp_path):
    from explorer.core.run import Engine
    model, batch = saved(both_directions_kept, tmp_path / "model.keras")
    spec, _, _ = keras_io.import_model(tmp_path / "model.keras")
    spec.batching.mode, spec.batching.bucket_width = mode, 2
    result = Engine().run(spec, "\n".join(" ".join(map(str, t)) for t in TOKENS) + "\n")
    forward, backward = keras.Model(model.inputs, model.get_layer("bi").output).predict(batch, verbose=0)
    mask = batch != 0
    np.testing.assert_allclose(result.layer("bi").extras["bi/backward"][mask], backward[mask], atol=1e-5)
    np.testing.assert_allclose(result.layer("bi").output[mask], forward[mask], atol=1e-5)


def test_a_tensor_that_an_edit_took_away_is_named_when_the_stack_runs():
    from explorer.core.run import Engine
    spec = specs.from_dict({"input": {"kind": "tokens", "vocab_size": 10}, "layers": [
        {"type": "embedding", "name": "emb"},
        {"type": "gru", "name": "bi", "units": 2, "bidirectional": True, "merge_mode": None},
        {"type": "keras", "class_name": "Concatenate", "config": {}, "name": "join", "inputs": ["bi", "bi/backward"]}]})
    spec.layers[1].params["merge_mode"] = "concat"   # as the card's merge_mode chooser does
    with pytest.raises(StackError, match="join takes bi/backward, which no layer above it gives"):
        Engine().run(spec, "1 2\n")


def a_chain_on_the_backward_sequence():
    """An LSTM that reads only the backward sequence of a merge_mode None Bidirectional."""
    i = keras.Input((None,), dtype="int32")
    x = layers.Embedding(20, 3, mask_zero=True, name="emb")(i)
    _, backward = layers.Bidirectional(layers.LSTM(3, return_sequences=True), merge_mode=None, name="bi")(x)
    return keras.Model(i, layers.LSTM(2, return_sequences=True, name="after")(backward))


def test_a_layer_fed_the_backward_sequence_has_the_inputs_steps_and_keras_mask(tmp_path):
    model, batch = saved(a_chain_on_the_backward_sequence, tmp_path / "model.keras")
    from explorer.core.run import Engine
    spec, _, _ = keras_io.import_model(tmp_path / "model.keras")
    result = Engine().run(spec, "\n".join(" ".join(map(str, t)) for t in TOKENS) + "\n")
    after = result.layer("after")
    keras_mask = model.get_layer("after").compute_mask(None, model.get_layer("emb").compute_mask(batch))
    assert model.predict(batch, verbose=0).shape[1] == batch.shape[1]      # Keras: the input's steps, masked
    assert not after.own_steps and after.output.shape[1] == batch.shape[1]
    np.testing.assert_array_equal(result.seen_by(after).mask, np.asarray(keras_mask))
    assert_valid_steps_equal(after.output, model.predict(batch, verbose=0), np.asarray(keras_mask), "after")
