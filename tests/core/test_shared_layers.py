"""Shared layers, as Keras's functional API guide writes them: one layer (one set of weights) called on several
tensors. Written here with plain Keras, trained one step, saved and opened as a user would (`run MODEL.keras
--json --npz`): one card per layer, each further call's output (`out/<layer>/call/<k>`) equals a Keras sub-model
on valid steps, and the outputs equal model.predict."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from keras import layers

from explorer import cli
from explorer.core import keras_io, spec as specs
from explorer.core.codegen import export_code
from explorer.core.errors import SpecError, StackError

from .keras_files import trained_and_saved

LEFT = [[3, 7, 1, 9, 4], [5, 2], [8, 8, 6, 1]]
RIGHT = [[2, 2], [9, 1, 4, 4], [7]]


def one_reader_for_two_texts():
    """The guide's shared Embedding and LSTM: two texts read by the same layers, then compared."""
    left = keras.Input((None,), dtype="int32", name="left")
    right = keras.Input((None,), dtype="int32", name="right")
    embed = layers.Embedding(20, 3, mask_zero=True, name="emb")
    reader = layers.LSTM(4, name="reader")
    joined = layers.Concatenate(name="join")([reader(embed(left)), reader(embed(right))])
    return keras.Model([left, right], layers.Dense(1, activation="sigmoid", name="same")(joined))


def one_gru_twice():
    """A GRU applied to its own output: the same weights, twice in a row."""
    i = keras.Input((None,), dtype="int32")
    x = layers.Embedding(20, 3, mask_zero=True, name="emb")(i)
    twice = layers.GRU(3, return_sequences=True, name="twice")
    pooled = layers.GlobalAveragePooling1D(name="pool")(twice(twice(x)))
    return keras.Model(i, layers.Dense(2, name="head")(pooled))


def text(rows) -> str:
    return "\n".join(" ".join(map(str, row)) for row in rows) + "\n"


def saved(build, path, data):
    batches = [keras.utils.pad_sequences(rows, padding="post") for rows in data]
    return trained_and_saved(build, batches, path, seed=4), batches


@pytest.mark.parametrize("build, data, calls, taken", [
    (one_reader_for_two_texts, [LEFT, RIGHT], {"emb": [["right"]], "reader": [["emb/call/1"]]},
     {"emb": ["left"], "join": ["reader", "reader/call/1"]}),
    (one_gru_twice, [LEFT], {"twice": [["twice"]]}, {"pool": ["twice/call/1"]}),
])
def test_a_shared_layer_is_one_card_and_every_call_equals_keras(build, data, calls, taken, tmp_path, capsys):
    model, batches = saved(build, tmp_path / "model.keras", data)
    spec, _, _ = keras_io.import_model(tmp_path / "model.keras")
    assert spec.layer_names() == [layer.name for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    assert {layer.name: layer.calls for layer in spec.layers if layer.calls} == calls
    assert {layer.name: layer.inputs for layer in spec.layers if layer.inputs} == taken
    names = [tensor._keras_history.operation.name for tensor in model.inputs]
    options = []
    for name, rows in zip(names, data):
        (tmp_path / f"{name}.txt").write_text(text(rows))
        options += ["--input", f"{name}={tmp_path / f'{name}.txt'}" if len(data) > 1 else str(tmp_path / f"{name}.txt")]
    code = cli.main(["run", str(tmp_path / "model.keras"), *options, "--npz", str(tmp_path / "out.npz"), "--json", "-"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report, arrays = json.loads(captured.out), np.load(tmp_path / "out.npz")
    feed = batches if len(batches) > 1 else batches[0]
    for shown in report["layers"]:
        layer = model.get_layer(shown["name"])
        for k, node in enumerate(layer._inbound_nodes):   # each call's output tensor, as Keras's graph holds it
            key = f"out/{layer.name}" + (f"/call/{k}" if k else "")
            expected = keras.Model(model.inputs, node.outputs[0]).predict(feed, verbose=0)
            shown_values = arrays[key]
            assert shown_values.shape == expected.shape, key
            if expected.ndim == 3:   # a sequence: compare its valid steps, those of the input it reads
                steps = expected.shape[1]
                lengths = [min(len(row), steps) for row in (data[1] if k and len(data) > 1 else data[0])]
                valid = np.arange(steps)[None, :] < np.asarray(lengths)[:, None]
                shown_values, expected = shown_values[valid], expected[valid]
            np.testing.assert_allclose(shown_values, expected, atol=1e-5, err_msg=key)
        if len(layer._inbound_nodes) > 1:
            assert [call["key"] for call in shown["calls"]] == [f"{layer.name}/call/{k}"
                                                               for k in range(1, len(layer._inbound_nodes))]
    np.testing.assert_allclose(arrays["out/" + report["outputs"][0]["name"]], model.predict(feed, verbose=0),
                               atol=1e-5)
    weights = model.count_params()
    assert sum(shown["params"] for shown in report["layers"]) == weights   # each weight once


def test_the_exported_code_of_a_shared_layer_makes_it_once_and_calls_it_again(tmp_path):
    import subprocess
    import sys
    model, (batch,) = saved(one_gru_twice, tmp_path / "model.keras", [LEFT])
    spec, _, _ = keras_io.import_model(tmp_path / "model.keras")
    spec.sequences = text(LEFT)
    code = export_code(spec, weights_from=str(tmp_path / "model.keras"))
    assert "outputs['twice/call/1'] = twice_layer(outputs['twice'])" in code
    (tmp_path / "model.py").write_text(code + "\nimport numpy\nnumpy.save('head.npy', results['head'])\n")
    ran = subprocess.run([sys.executable, "model.py"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert ran.returncode == 0, ran.stderr
    np.testing.assert_allclose(np.load(tmp_path / "head.npy"), model.predict(batch, verbose=0), atol=1e-5)


def test_a_call_names_tensors_before_it_and_a_shared_layer_returns_one_tensor_per_call():
    document = {"input": {"kind": "tokens", "vocab_size": 10}, "layers": [
        {"type": "embedding", "name": "emb"}, {"type": "gru", "name": "g", "return_sequences": True,
                                               "calls": [["g"], ["g/call/1"]]}]}
    spec = specs.loads(specs.dumps(specs.from_dict(document)))
    assert spec.layers[1].calls == [["g"], ["g/call/1"]]
    document["layers"][1]["calls"] = [["g/call/1"]]
    with pytest.raises(SpecError, match=r'layers\[1\].calls: "g/call/1" is not a layer before this call'):
        specs.from_dict(document)
    document["layers"][1].update(calls=[["emb"]], return_state=True)
    with pytest.raises(SpecError, match=r"layers\[1\].calls: a layer called several times passes on one tensor"):
        specs.from_dict(document)


def test_each_call_keeps_its_steps_when_sequences_run_apart(tmp_path):
    from explorer.core.run import Engine
    model, (batch,) = saved(one_gru_twice, tmp_path / "model.keras", [LEFT])
    spec, _, _ = keras_io.import_model(tmp_path / "model.keras")
    spec.batching.mode = "one_by_one"
    result = Engine().run(spec, text(LEFT))
    again = keras.Model(model.inputs, model.get_layer("twice")._inbound_nodes[1].outputs[0]).predict(batch, verbose=0)
    mask = batch != 0
    np.testing.assert_allclose(result.layer("twice").extras["twice/call/1"][mask], again[mask], atol=1e-5)


def test_a_shared_layer_called_again_on_a_later_layer_is_refused_naming_both(tmp_path):
    i = keras.Input((None,), dtype="int32")
    x = layers.Embedding(20, 3, name="emb")(i)
    reader = layers.GRU(3, return_sequences=True, name="reader")
    first = reader(x)
    again = reader(layers.Dense(3, name="project")(first))
    keras.Model(i, layers.Add(name="sum")([first, again])).save(tmp_path / "model.keras")
    with pytest.raises(StackError, match="reader \\(GRU\\) is called again on project, which Keras computes after"):
        keras_io.import_model(tmp_path / "model.keras")
