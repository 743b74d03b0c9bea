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

from .keras_files import exported_output, trained_and_saved

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


def one_gru_again_after_a_projection():
    """y1 = shared(x); z = other(y1); y2 = shared(z): the second call takes a layer that Keras computes after the
    shared layer's first call."""
    i = keras.Input((None,), dtype="int32")
    x = layers.Embedding(20, 3, mask_zero=True, name="emb")(i)
    reader = layers.GRU(3, return_sequences=True, name="reader")
    first = reader(x)
    again = reader(layers.Dense(3, name="project")(first))
    return keras.Model(i, layers.Add(name="sum")([again, first]))


def one_dense_on_a_later_lstm():
    """A shared Dense on the output of one LSTM, then on a second LSTM that Keras orders after the Dense (its
    first call feeds a deeper branch); the model returns both branches."""
    i = keras.Input((None,), dtype="int32")
    x = layers.Embedding(20, 3, mask_zero=True, name="emb")(i)
    head = layers.Dense(2, name="head")
    near = head(layers.LSTM(4, return_sequences=True, name="first")(x))
    deep = layers.LSTM(3, name="summary")(layers.LSTM(4, return_sequences=True, name="deeper")(near))
    far = head(layers.LSTM(4, return_sequences=True, name="second")(x))
    return keras.Model(i, [deep, far])


def the_states_of_the_second_call():
    """One encoder LSTM with return_state read on two texts; the model uses the second call's states."""
    left = keras.Input((None,), dtype="int32", name="left")
    right = keras.Input((None,), dtype="int32", name="right")
    embed = layers.Embedding(20, 3, mask_zero=True, name="emb")
    encoder = layers.LSTM(4, return_state=True, name="enc")
    _, h_left, _ = encoder(embed(left))
    _, h_right, c_right = encoder(embed(right))
    score = layers.Dense(1, name="score")(layers.Concatenate(name="join")([h_left, h_right]))
    return keras.Model([left, right], [score, c_right])


def one_bidirectional_twice_with_both_directions():
    """A Bidirectional with merge_mode None (two sequences per call) called again on the sum of its directions."""
    i = keras.Input((None,), dtype="int32")
    x = layers.Embedding(20, 3, mask_zero=True, name="emb")(i)
    bi = layers.Bidirectional(layers.LSTM(3, return_sequences=True), merge_mode=None, name="bi")
    forward, backward = bi(x)
    forward, backward = bi(layers.Add(name="both")([forward, backward]))
    joined = layers.Concatenate(name="join")([forward, backward])
    return keras.Model(i, layers.Dense(2, name="head")(layers.GlobalAveragePooling1D(name="pool")(joined)))


# what a layer returns after its first output in each call, as the stack names it
FURTHER = {"enc": ["state/h", "state/c"], "bi": ["backward"]}


def text(rows) -> str:
    return "\n".join(" ".join(map(str, row)) for row in rows) + "\n"


def saved(build, path, data):
    batches = [keras.utils.pad_sequences(rows, padding="post") for rows in data]
    return trained_and_saved(build, batches, path, seed=4), batches


@pytest.mark.parametrize("build, data, calls, taken", [
    (one_reader_for_two_texts, [LEFT, RIGHT], {"emb": [["right"]], "reader": [["emb/call/1"]]},
     {"emb": ["left"], "join": ["reader", "reader/call/1"]}),
    (one_gru_twice, [LEFT], {"twice": [["twice"]]}, {"pool": ["twice/call/1"]}),
    (one_gru_again_after_a_projection, [LEFT], {"reader": [["project"]]}, {"sum": ["reader/call/1", "reader"]}),
    (one_dense_on_a_later_lstm, [LEFT], {"head": [["second"]]}, {"second": ["emb"], "summary": ["deeper"]}),
    (the_states_of_the_second_call, [LEFT, RIGHT], {"emb": [["right"]], "enc": [["emb/call/1"]]},
     {"emb": ["left"], "join": ["enc/state/h", "enc/call/1/state/h"]}),
    (one_bidirectional_twice_with_both_directions, [LEFT], {"bi": [["both"]]},
     {"both": ["bi", "bi/backward"], "join": ["bi/call/1", "bi/call/1/backward"]}),
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
        keys = []
        for k, node in enumerate(layer._inbound_nodes):   # each call's output tensors, as Keras's graph holds them
            call = f"{layer.name}/call/{k}" if k else layer.name
            given = [call, *(f"{call}/{more}" for more in FURTHER.get(layer.name, []))]
            assert len(given) == len(node.outputs), layer.name
            keys += given[:1] if not k else given
            reads = data[1] if k and len(data) > 1 else data[0]   # the input this call reads
            for key, tensor in zip(given, node.outputs):
                expected = keras.Model(model.inputs, tensor).predict(feed, verbose=0)
                shown_values = arrays[f"out/{key}"]
                assert shown_values.shape == expected.shape, key
                if expected.ndim == 3:   # a sequence: compare its valid steps, those of the input it reads
                    steps = expected.shape[1]
                    valid = np.arange(steps)[None, :] < np.asarray([min(len(row), steps) for row in reads])[:, None]
                    shown_values, expected = shown_values[valid], expected[valid]
                np.testing.assert_allclose(shown_values, expected, atol=1e-5, err_msg=key)
        if len(layer._inbound_nodes) > 1:
            assert [call["key"] for call in shown["calls"]] == keys[1:]
    predicted = model.predict(feed, verbose=0)
    for output, expected in zip(report["outputs"], predicted if len(model.outputs) > 1 else [predicted]):
        np.testing.assert_allclose(arrays[f"out/{output['name']}"], expected, atol=1e-5, err_msg=output["name"])
    assert len(report["outputs"]) == len(model.outputs)
    weights = model.count_params()
    assert sum(shown["params"] for shown in report["layers"]) == weights   # each weight once


@pytest.mark.parametrize("build, data", [(one_dense_on_a_later_lstm, [LEFT]),
                                         (the_states_of_the_second_call, [LEFT, RIGHT])])
def test_a_stack_file_keeps_the_calls_and_gives_the_same_numbers(build, data, tmp_path):
    from explorer.core.run import Engine
    model, batches = saved(build, tmp_path / "model.keras", data)
    spec, _, _ = keras_io.import_model(tmp_path / "model.keras")
    specs.save(spec, tmp_path / "stack.json")
    again = specs.load(tmp_path / "stack.json")
    assert [layer.calls for layer in again.layers] == [layer.calls for layer in spec.layers]
    names = [item.name for item in again.all_inputs()]
    result = Engine().run(again, dict(zip(names, map(text, data))) if len(data) > 1 else text(data[0]))
    predicted = model.predict(batches if len(batches) > 1 else batches[0], verbose=0)
    assert len(result.outputs) == len(model.outputs)
    for output, expected in zip(result.outputs, predicted):
        np.testing.assert_allclose(result.output_value(output), expected, atol=1e-5, err_msg=output)


@pytest.mark.parametrize("build, printed", [
    (one_dense_on_a_later_lstm, "outputs['head/call/1'] = head_layer(outputs['second'])"),
    (one_bidirectional_twice_with_both_directions,
     "outputs['bi/call/1'], outputs['bi/call/1/backward'] = bi_layer(outputs['both'])"),
])
def test_the_exported_code_calls_a_shared_layer_again_once_its_tensors_exist(build, printed, tmp_path):
    import subprocess
    import sys
    model, (batch,) = saved(build, tmp_path / "model.keras", [LEFT])
    spec, _, _ = keras_io.import_model(tmp_path / "model.keras")
    spec.sequences = text(LEFT)
    code = export_code(spec, weights_from=str(tmp_path / "model.keras"))
    assert printed in code
    (tmp_path / "model.py").write_text(code + "\nimport numpy\nends = model(batch)\n"
                                       "numpy.savez('out.npz', *(ends if isinstance(ends, list) else [ends]))\n")
    ran = subprocess.run([sys.executable, "model.py"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert ran.returncode == 0, ran.stderr
    predicted = model.predict(batch, verbose=0)
    saved_outputs = np.load(tmp_path / "out.npz")
    predicted = predicted if len(model.outputs) > 1 else [predicted]
    assert len(saved_outputs.files) == len(predicted)
    for k, expected in enumerate(predicted):
        np.testing.assert_allclose(saved_outputs[f"arr_{k}"], expected, atol=1e-5)


def test_a_call_runs_once_its_tensors_exist_and_names_each_tensor_it_returns():
    document = {"input": {"kind": "tokens", "vocab_size": 10}, "layers": [
        {"type": "embedding", "name": "emb"}, {"type": "gru", "name": "g", "return_sequences": True,
                                               "calls": [["g"], ["g/call/1"]]}]}
    spec = specs.loads(specs.dumps(specs.from_dict(document)))
    assert spec.layers[1].calls == [["g"], ["g/call/1"]]
    document["layers"][1]["calls"] = [["g/call/1"]]
    with pytest.raises(SpecError, match=r'layers\[1\].calls: call 1 takes "g/call/1", which exists only after this '
                                        r"call"):
        specs.from_dict(document)
    document["layers"][1]["calls"] = [["g/call/2"]]
    with pytest.raises(SpecError, match=r'layers\[1\].calls: "g/call/2" is not a tensor any layer gives'):
        specs.from_dict(document)
    # a call on a layer below the card, with return_state: it runs after that layer and names its states
    document["layers"][1].update(calls=[["d"]], return_state=True)
    document["layers"].append({"type": "time_distributed_dense", "name": "d", "units": 2})
    document["outputs"] = ["g/call/1", "g/call/1/state/h"]
    spec = specs.loads(specs.dumps(specs.from_dict(document)))
    assert spec.call_order() == [(0, 0), (1, 0), (2, 0), (1, 1)] and spec.model_outputs == document["outputs"]
    # a layer may take a call's tensor only once that call has run
    document["layers"].insert(2, {"type": "time_distributed_dense", "name": "early", "inputs": ["g/call/1"]})
    with pytest.raises(SpecError, match=r'layers\[2\].inputs: "g/call/1" is given by a further call that runs only '
                                        r"after this layer"):
        specs.from_dict(document)


def test_a_call_whose_tensor_an_edit_took_away_is_refused_naming_it():
    document = {"input": {"kind": "tokens", "vocab_size": 10}, "layers": [
        {"type": "embedding", "name": "emb"}, {"type": "gru", "name": "g", "return_sequences": True,
                                               "calls": [["d"]]},
        {"type": "time_distributed_dense", "name": "d", "units": 3}]}
    spec = specs.from_dict(document)
    del spec.layers[2]   # the editor removes the layer the call takes
    from explorer.core.build import build
    with pytest.raises(StackError, match="g's call 1 takes d, which no layer gives"):
        build(spec)


def test_each_call_keeps_its_steps_when_sequences_run_apart(tmp_path):
    from explorer.core.run import Engine
    model, (batch,) = saved(one_gru_twice, tmp_path / "model.keras", [LEFT])
    spec, _, _ = keras_io.import_model(tmp_path / "model.keras")
    spec.batching.mode = "one_by_one"
    result = Engine().run(spec, text(LEFT))
    again = keras.Model(model.inputs, model.get_layer("twice")._inbound_nodes[1].outputs[0]).predict(batch, verbose=0)
    mask = batch != 0
    np.testing.assert_allclose(result.layer("twice").extras["twice/call/1"][mask], again[mask], atol=1e-5)
    np.testing.assert_array_equal(result.layer("twice/call/1").mask, mask)   # each sequence's mask, in its place


def test_a_layer_that_takes_a_later_call_has_the_input_s_steps(tmp_path):
    from explorer.core.run import Engine
    saved(one_gru_again_after_a_projection, tmp_path / "model.keras", [LEFT])
    spec, _, _ = keras_io.import_model(tmp_path / "model.keras")
    result = Engine().run(spec, text(LEFT))
    assert [layer.name for layer in result.layers if layer.own_steps] == []   # sum's steps come from reader/call/1


def a_decoding_loop():
    """A decoder unrolled in the graph: each step's LSTM call starts from the states of the step before and reads
    the prediction of the step before, as a greedy decoder written with the functional API does."""
    ids = keras.Input((None,), dtype="int32", name="ids")
    _, h, c = layers.LSTM(3, return_state=True, name="encoder")(layers.Embedding(20, 3, mask_zero=True,
                                                                               name="emb")(ids))
    decoder = layers.LSTM(3, return_sequences=True, return_state=True, name="decoder")
    predict = layers.Dense(2, name="predict")
    step = layers.Dense(2, name="start")(h)[:, None, :]
    steps = []
    for _ in range(3):
        out, h, c = decoder(step, initial_state=[h, c])
        step = predict(out)
        steps.append(step)
    return keras.Model(ids, layers.Concatenate(axis=1, name="steps")(steps))


def test_a_decoding_loop_unrolled_in_the_graph_equals_keras_call_by_call(tmp_path):
    from explorer.core.run import Engine
    model, (batch,) = saved(a_decoding_loop, tmp_path / "model.keras", [LEFT])
    spec, _, _ = keras_io.import_model(tmp_path / "model.keras")
    decoder = spec.layers[spec.layer_names().index("decoder")]
    assert decoder.initial_state == ["encoder/state/h", "encoder/state/c"]
    assert decoder.call_states == [["decoder/state/h", "decoder/state/c"],
                                   ["decoder/call/1/state/h", "decoder/call/1/state/c"]]
    result = Engine().run(spec, text(LEFT))
    np.testing.assert_allclose(result.layer("steps").output, model.predict(batch, verbose=0), atol=1e-5)
    for k, node in enumerate(model.get_layer("decoder")._inbound_nodes[1:], start=1):   # each step as Keras has it
        for key, tensor in zip(specs.call_outputs(decoder, "decoder", k), node.outputs):
            expected = keras.Model(model.inputs, tensor).predict(batch, verbose=0)
            np.testing.assert_allclose(result.layer("decoder").extras[key], expected, atol=1e-5, err_msg=key)
    specs.save(spec, tmp_path / "stack.json")     # the calls' states survive the stack file
    again = specs.load(tmp_path / "stack.json")
    assert again.layers[spec.layer_names().index("decoder")].call_states == decoder.call_states
    np.testing.assert_allclose(Engine().run(again, text(LEFT)).layer("steps").output, result.layer("steps").output,
                               atol=1e-6)


@pytest.mark.parametrize("build, printed, output", [
    (one_gru_twice, "outputs['twice/call/1'] = twice_layer(outputs['twice'])", "head"),
    (a_decoding_loop, "initial_state=[outputs['decoder/state/h'], outputs['decoder/state/c']])", "steps"),
])
def test_the_exported_code_makes_a_shared_layer_once_and_calls_it_as_the_model_does(build, printed, output,
                                                                                    tmp_path):
    model, (batch,) = saved(build, tmp_path / "model.keras", [LEFT])
    spec, _, _ = keras_io.import_model(tmp_path / "model.keras")
    spec.sequences = text(LEFT)
    code = export_code(spec, weights_from=str(tmp_path / "model.keras"))
    assert printed in code
    np.testing.assert_allclose(exported_output(code, output, tmp_path), model.predict(batch, verbose=0), atol=1e-5)


def one_reader_with_computed_masks():
    """One Embedding (without mask_zero) and one LSTM reading two texts, each call given the mask the model
    computes from its own ids."""
    left, right = keras.Input((None,), dtype="int32", name="left"), keras.Input((None,), dtype="int32", name="right")
    embed, read = layers.Embedding(20, 3, name="emb"), layers.LSTM(3, name="reader")
    both = [read(embed(ids), mask=keras.ops.not_equal(ids, 0)) for ids in (left, right)]
    return keras.Model([left, right], layers.Dense(1, name="same")(layers.Concatenate(name="join")(both)))


def test_each_call_of_a_shared_layer_takes_the_mask_the_model_computes_for_it(tmp_path):
    from explorer.core.run import Engine
    model, batches = saved(one_reader_with_computed_masks, tmp_path / "model.keras", [LEFT, RIGHT])
    spec, _, _ = keras_io.import_model(tmp_path / "model.keras")
    reader = spec.layers[spec.layer_names().index("reader")]
    assert reader.mask and reader.call_masks and reader.call_masks[0] != reader.mask   # each call its own mask
    result = Engine().run(spec, {"left": text(LEFT), "right": text(RIGHT)})
    np.testing.assert_allclose(result.layer("same").output, model.predict(batches, verbose=0), atol=1e-5)
    second = model.get_layer("reader")._inbound_nodes[1].outputs[0]   # the right text's call, as Keras has it
    np.testing.assert_allclose(result.layer("reader").extras["reader/call/1"],
                               keras.Model(model.inputs, second).predict(batches, verbose=0), atol=1e-5)
    specs.save(spec, tmp_path / "stack.json")     # the call's mask survives the stack file and the exported script
    again = specs.load(tmp_path / "stack.json")
    assert again.layers[spec.layer_names().index("reader")].call_masks == reader.call_masks
    spec.sequences, spec.more_sequences = text(LEFT), {"right": text(RIGHT)}
    code = export_code(spec, weights_from=str(tmp_path / "model.keras"))
    np.testing.assert_allclose(exported_output(code, "same", tmp_path), model.predict(batches, verbose=0), atol=1e-5)


@pytest.mark.parametrize("padding", ["post", "pre"])
def test_a_further_call_is_a_result_with_its_own_mask_and_its_input_s_steps(tmp_path, padding):
    """What the window shows for a shared layer's further call: its output, the mask Keras gives it (the right
    text's padding), on the right text's steps, in every mode."""
    from explorer.core.run import Engine
    model, (left, right) = saved(one_reader_for_two_texts, tmp_path / "model.keras", [LEFT, RIGHT])
    spec, _, _ = keras_io.import_model(tmp_path / "model.keras")
    spec.batching.padding = padding
    result = Engine().run(spec, {"left": text(LEFT), "right": text(RIGHT)})
    assert [layer.name for layer in result.shown()] == ["emb", "emb/call/1", "reader", "reader/call/1", "join", "same"]
    right = keras.utils.pad_sequences(RIGHT, padding=padding)
    left = keras.utils.pad_sequences(LEFT, padding=padding)
    call = result.layer("emb/call/1")
    expected = keras.Model(model.inputs, model.get_layer("emb")._inbound_nodes[1].outputs[0]).predict(
        [left, right], verbose=0)
    np.testing.assert_array_equal(call.mask, right != 0)
    np.testing.assert_allclose(call.output[call.mask], expected[right != 0], atol=1e-5)
    assert call.steps_from == "right" and not call.own_steps
    assert result.layer("reader/call/1").mask is None                  # an LSTM's last state has no mask
    np.testing.assert_array_equal(result.arrays()["mask/emb/call/1"], (right != 0).astype(np.int8))
