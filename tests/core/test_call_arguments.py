"""Layers called with several tensors by parameter, or with keyword arguments: self-attention
(`MultiHeadAttention()(x, x)`), cross-attention from a decoder to an encoder (`query=…, value=…`, two inputs) and
a causal `Attention(…)([q, v], use_causal_mask=True)`. Each model is written here with plain Keras, trained one
step, saved and opened as a user opens it; every shown layer equals a Keras sub-model of the saved model on valid
steps, and the outputs equal model.predict."""

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
TEXTS = [[1, 2, 3], [4, 5], [6, 7, 8, 2]]


def self_attention():
    """An LSTM whose steps attend to each other, pooled into a head (positional query and value)."""
    ids = keras.Input((None,), dtype="int32", name="ids")
    x = layers.LSTM(4, return_sequences=True, name="lstm")(layers.Embedding(9, 3, mask_zero=True, name="emb")(ids))
    attended = layers.MultiHeadAttention(2, 2, name="mha")(x, x)
    x = layers.LayerNormalization(name="norm")(layers.Add(name="residual")([x, attended]))
    return keras.Model(ids, layers.Dense(1, name="head")(layers.GlobalAveragePooling1D(name="pool")(x)))


def cross_attention():
    """A decoder LSTM that attends to the encoder's steps (keyword query, value and key), two inputs."""
    source = keras.Input((None,), dtype="int32", name="source")
    target = keras.Input((None,), dtype="int32", name="target")
    encoded = layers.LSTM(4, return_sequences=True, name="encoder")(layers.Embedding(9, 3, mask_zero=True,
                                                                                     name="source_ids")(source))
    decoded = layers.LSTM(4, return_sequences=True, name="decoder")(layers.Embedding(7, 3, mask_zero=True,
                                                                                     name="target_ids")(target))
    context = layers.MultiHeadAttention(1, 4, name="cross")(query=decoded, value=encoded, key=encoded)
    both = layers.Concatenate(name="both")([decoded, context])
    return keras.Model([source, target], layers.Dense(7, name="logits")(both))


def causal_attention():
    """Dot-product attention over an LSTM's steps, each step seeing only the steps before it."""
    ids = keras.Input((None,), dtype="int32", name="ids")
    x = layers.LSTM(3, return_sequences=True, name="lstm")(layers.Embedding(9, 3, mask_zero=True, name="emb")(ids))
    attended = layers.Attention(name="attend")([x, x], use_causal_mask=True)
    return keras.Model(ids, layers.Dense(2, name="head")(attended))


def text(rows) -> str:
    return "\n".join(" ".join(map(str, row)) for row in rows) + "\n"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("attention")
    ids = keras.utils.pad_sequences(TEXTS, padding="post")
    targets = keras.utils.pad_sequences([[1, 2], [3, 4, 5], [6]], padding="post", maxlen=ids.shape[1])
    return {"self": trained_and_saved(self_attention, [ids], folder / "self.keras"),
            "cross": trained_and_saved(cross_attention, [ids, targets], folder / "cross.keras"),
            "causal": trained_and_saved(causal_attention, [ids], folder / "causal.keras"), "folder": folder}


def same_as_keras(model, result, batch, valid) -> None:
    """Every shown layer equals the saved model's sub-model on valid steps (the whole tensor without steps)."""
    for shown in result.layers:
        expected = np.asarray(keras.Model(model.input, model.get_layer(shown.name).output)(batch, training=False))
        got = shown.output
        if got.ndim >= 3 and got.shape[:2] == valid.shape:
            got, expected = got[valid], expected[valid]
        np.testing.assert_allclose(got, expected, atol=1e-5, err_msg=shown.name)


def test_self_attention_runs_from_the_command_line_as_predict(saved, tmp_path, capsys):
    model, path = saved["self"], saved["folder"] / "self.keras"
    (tmp_path / "texts.txt").write_text(text(TEXTS))
    status = cli.main(["run", str(path), "--input", str(tmp_path / "texts.txt"), "--npz", str(tmp_path / "out.npz"),
                       "--json", str(tmp_path / "out.json")])
    assert status == 0, capsys.readouterr().err
    arrays, report = np.load(tmp_path / "out.npz"), json.loads((tmp_path / "out.json").read_text())
    batch = keras.utils.pad_sequences(TEXTS, padding="post")
    np.testing.assert_allclose(arrays["out/head"], model.predict(batch, verbose=0), atol=1e-5)
    valid = batch != 0
    np.testing.assert_allclose(arrays["out/mha"][valid], keras.Model(model.inputs, model.get_layer("mha").output)
                               .predict(batch, verbose=0)[valid], atol=1e-5)
    mha = next(layer for layer in report["layers"] if layer["name"] == "mha")
    assert mha["symbolic_shape"] == [None, None, 4] and mha["mask"]


ids = st.lists(st.integers(1, 8), min_size=1, max_size=7)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(ids, min_size=1, max_size=4), st.sampled_from(["pre", "post"]))
def test_any_texts_through_self_attention_equal_keras_layer_by_layer(saved, rows, padding):
    model = saved["self"]
    spec, _, _ = keras_io.import_model(saved["folder"] / "self.keras")
    assert spec.layers[spec.layer_names().index("mha")].arguments == ["query", "value"]
    spec.batching.padding = padding
    result = ENGINE.run(spec, text(rows))
    batch = keras.utils.pad_sequences(rows, padding=padding)
    same_as_keras(model, result, batch, batch != 0)


def test_cross_attention_names_query_value_and_key_and_equals_predict(saved):
    model = saved["cross"]
    spec, _, _ = keras_io.import_model(saved["folder"] / "cross.keras")
    cross = spec.layers[spec.layer_names().index("cross")]
    assert (cross.inputs, cross.arguments) == (["decoder", "encoder", "encoder"], ["query", "value", "key"])
    targets = [[1, 2], [3, 4, 5], [6]]
    result = ENGINE.run(spec, {"source": text(TEXTS), "target": text(targets)})
    batch = {"source": keras.utils.pad_sequences(TEXTS, padding="post"),
             "target": keras.utils.pad_sequences(targets, padding="post")}
    np.testing.assert_allclose(result.layer("logits").output, model.predict(batch, verbose=0), atol=1e-5)
    assert result.layer("cross").steps_from == "target"    # the query's steps: the decoder's
    same_as_keras(model, ENGINE.run(spec, {"source": text(TEXTS), "target": text(targets)}), batch,
                  batch["target"] != 0)


def test_a_causal_mask_given_to_the_call_is_kept_and_changes_the_numbers(saved, tmp_path):
    model = saved["causal"]
    spec, _, _ = keras_io.import_model(saved["folder"] / "causal.keras")
    attend = spec.layers[spec.layer_names().index("attend")]
    assert attend.options == {"use_causal_mask": True}
    batch = keras.utils.pad_sequences(TEXTS, padding="post")
    result = ENGINE.run(spec, text(TEXTS))
    np.testing.assert_allclose(result.layer("head").output, model.predict(batch, verbose=0), atol=1e-5)
    again = specs.loads(specs.dumps(spec))
    assert specs.to_dict(again)["layers"][2]["options"] == {"use_causal_mask": True}
    attend_in_file = again.layers[2]
    attend_in_file.options = None    # the same layer called without it: other numbers, so the option matters
    assert not np.allclose(ENGINE.run(again, text(TEXTS)).layer("head").output, result.layer("head").output)


def test_the_exported_script_calls_each_parameter_by_name_and_gives_predicts_numbers(saved, tmp_path):
    from explorer.core.codegen import export_code
    model, path = saved["cross"], saved["folder"] / "cross.keras"
    spec, _, _ = keras_io.import_model(path)
    targets = [[1, 2], [3, 4, 5], [6]]
    spec.sequences, spec.more_sequences = text(TEXTS), {"target": text(targets)}
    code = export_code(spec, weights_from=str(path))
    assert "(query=outputs['decoder'], value=outputs['encoder'], key=outputs['encoder'])" in code
    exported = exported_output(code, "logits", tmp_path)
    batch = {"source": keras.utils.pad_sequences(TEXTS, padding="post"),
             "target": keras.utils.pad_sequences(targets, padding="post")}
    np.testing.assert_allclose(exported, model.predict(batch, verbose=0), atol=1e-5)


KERAS_CARD = {"type": "keras", "class_name": "Attention", "config": {}}


@pytest.mark.parametrize("layer, message", [
    ({**KERAS_CARD, "inputs": ["lstm_1", "lstm_1"], "arguments": ["query"]},
     r"layers\[2\].arguments: names 1 parameters, but the layer takes 2 tensors"),
    ({**KERAS_CARD, "inputs": ["lstm_1"], "arguments": ["query", "query"]}, r"layers\[2\].arguments: must be a list"),
    ({**KERAS_CARD, "options": {"training": True}}, r"layers\[2\].options: \"training\" is not a keyword argument"),
    ({**KERAS_CARD, "options": {"use_causal_mask": {"class_name": "Lambda"}}},
     r'use_causal_mask must be \{"slice": \[start, stop, step\]\}, \{"tuple": \[...\]\}, \{"dict": \{...\}\}, '
     r'\{"ellipsis": true\} or \{"array": '),
    ({**KERAS_CARD, "options": {"key": {"slice": [0, "a", None]}}}, r'key must be \{"slice"'),
    ({"type": "dense", "options": {"use_causal_mask": True}}, r"layers\[2\].options: unknown key; known keys: activation, calls, initial_state, inputs"),
])
def test_a_stack_file_gives_each_argument_a_tensor_and_plain_options(layer, message):
    with pytest.raises(SpecError, match=message):
        specs.from_dict({"layers": [{"type": "embedding"}, {"type": "lstm", "return_sequences": True}, layer]})


def ops_in_the_graph():
    """Keras 3 functional code that calls keras.ops (and Python operators) between layers."""
    ids = keras.Input((None,), dtype="int32", name="ids")
    x = layers.Embedding(9, 3, name="emb")(ids)
    forward = layers.LSTM(4, return_sequences=True, name="forward")(x)
    other = layers.GRU(4, return_sequences=True, name="other")(x)
    summed = keras.ops.add(forward, other) * 0.5            # two positional tensors; a tensor and a number
    last = summed[:, -1, :]                                 # GetItem with a key of slices
    mean = keras.ops.mean(summed, axis=1)
    both = keras.ops.concatenate([last, mean], axis=-1)     # one list of tensors
    return keras.Model(ids, layers.Dense(2, name="head")(both))


@pytest.fixture(scope="module")
def saved_ops(tmp_path_factory):
    path = tmp_path_factory.mktemp("ops") / "ops.keras"
    return trained_and_saved(ops_in_the_graph, [keras.utils.pad_sequences(TEXTS, padding="post")], path), path


def test_keras_ops_between_layers_are_cards_that_equal_keras(saved_ops, tmp_path):
    model, path = saved_ops
    spec, _, _ = keras_io.import_model(path)
    cards = {name: layer for name, layer in zip(spec.layer_names(), spec.layers) if layer.type == "keras"}
    assert [layer.params["class_name"] for layer in cards.values()] == [
        "ops.numpy.Add", "ops.numpy.Multiply", "ops.numpy.GetItem", "ops.numpy.Mean", "ops.numpy.Concatenate"]
    multiply = next(layer for layer in cards.values() if layer.params["class_name"] == "ops.numpy.Multiply")
    assert (multiply.arguments, multiply.options) == (["x1"], {"x2": 0.5})
    batch = keras.utils.pad_sequences(TEXTS, padding="post")
    result = ENGINE.run(spec, text(TEXTS))
    for name in cards:   # each operation's output, as the saved model computes it
        expected = keras.Model(model.input, model.get_layer(name).output if name in [layer.name for layer in
                               model.layers] else next(op for op in model.operations if op.name == name).output)
        np.testing.assert_allclose(result.layer(name).output, expected.predict(batch, verbose=0), atol=1e-5,
                                   err_msg=name)
    np.testing.assert_allclose(result.layer("head").output, model.predict(batch, verbose=0), atol=1e-5)
    again = specs.loads(specs.dumps(spec))     # the stack file keeps each operation and its options
    np.testing.assert_allclose(ENGINE.run(again, text(TEXTS)).layer("head").output, result.layer("head").output,
                               atol=1e-6)


def test_the_exported_script_calls_the_operations_and_gives_predicts_numbers(saved_ops, tmp_path):
    from explorer.core.codegen import export_code
    model, path = saved_ops
    spec, _, _ = keras_io.import_model(path)
    spec.sequences = text(TEXTS)
    code = export_code(spec, weights_from=str(path))
    exported = exported_output(code, "head", tmp_path)
    batch = keras.utils.pad_sequences(TEXTS, padding="post")
    np.testing.assert_allclose(exported, model.predict(batch, verbose=0), atol=1e-5)


@pytest.mark.parametrize("class_name, message", [
    ("ops.os.system", "ops.os.system is not an operation of keras.ops"),
    ("ops.numpy.np", "ops.numpy.np is not an operation of keras.ops"),
    ("ops.numpy.Mean.x", r"class_name: must be the name of a Keras layer class"),
])
def test_a_card_names_only_keras_operations(class_name, message):
    document = {"input": {"kind": "features", "features": 2},
                "layers": [{"type": "lstm", "units": 2}, {"type": "keras", "class_name": class_name, "config": {}}]}
    with pytest.raises(ExplorerError, match=message):
        ENGINE.built_for(specs.from_dict(document))


def attention_with_scores():
    """Self-attention that also returns its scores, which the model gives as a second output."""
    ids = keras.Input((None,), dtype="int32", name="ids")
    x = layers.LSTM(4, return_sequences=True, name="lstm")(layers.Embedding(9, 3, mask_zero=True, name="emb")(ids))
    attended, scores = layers.MultiHeadAttention(2, 2, name="mha")(x, x, return_attention_scores=True)
    return keras.Model(ids, [layers.Dense(1, name="head")(layers.GlobalAveragePooling1D(name="pool")(attended)),
                             scores])


def test_a_card_that_returns_several_tensors_names_each_and_equals_predict(tmp_path, capsys):
    batch = keras.utils.pad_sequences(TEXTS, padding="post")
    keras.utils.set_random_seed(3)
    model = attention_with_scores()
    model.save(tmp_path / "scores.keras")
    spec, _, _ = keras_io.import_model(tmp_path / "scores.keras")
    mha = spec.layers[spec.layer_names().index("mha")]
    assert (mha.returns, spec.outputs()) == (2, ["head", "mha/output/1"])
    (tmp_path / "texts.txt").write_text(text(TEXTS))
    assert cli.main(["run", str(tmp_path / "scores.keras"), "--input", str(tmp_path / "texts.txt"),
                     "--npz", str(tmp_path / "out.npz")]) == 0, capsys.readouterr().err
    arrays = np.load(tmp_path / "out.npz")
    head, scores = model.predict(batch, verbose=0)
    np.testing.assert_allclose(arrays["out/head"], head, atol=1e-5)
    np.testing.assert_allclose(arrays["out/mha/output/1"], scores, atol=1e-5)
    without = specs.loads(specs.dumps(spec))
    without.layers[spec.layer_names().index("mha")].returns = None
    without.model_outputs = None
    with pytest.raises(ExplorerError, match=r'mha: MultiHeadAttention returns 2 tensors, but the card passes on one: '
                                            r'set "returns": 2 to name the others mha/output/1'):
        ENGINE.run(without, text(TEXTS))


def explicit_mask():
    """An Embedding without mask_zero, and the mask computed by the model and given to the LSTM itself."""
    ids = keras.Input((None,), dtype="int32", name="ids")
    x = layers.Embedding(9, 3, name="emb")(ids)
    read = layers.LSTM(4, name="lstm")(x, mask=keras.ops.not_equal(ids, 0))
    return keras.Model(ids, layers.Dense(2, name="head")(read))


@pytest.fixture(scope="module")
def saved_mask(tmp_path_factory):
    path = tmp_path_factory.mktemp("mask") / "mask.keras"
    return trained_and_saved(explicit_mask, [keras.utils.pad_sequences(TEXTS, padding="post")], path), path


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(ids, min_size=1, max_size=4), st.sampled_from(["pre", "post"]))
def test_a_mask_the_model_computes_is_passed_as_keras_passes_it(saved_mask, rows, padding):
    model, path = saved_mask
    spec, _, _ = keras_io.import_model(path)
    lstm = spec.layers[spec.layer_names().index("lstm")]
    computed = spec.layers[spec.layer_names().index(lstm.mask)]    # Keras names the operation
    assert computed.params["class_name"] == "ops.numpy.NotEqual" and spec.outputs() == ["head"]
    spec.batching.padding = padding
    result = ENGINE.run(spec, text(rows))
    batch = keras.utils.pad_sequences(rows, padding=padding)
    np.testing.assert_allclose(result.layer("head").output, model.predict(batch, verbose=0), atol=1e-5)
    np.testing.assert_allclose(result.layer("lstm").output, keras.Model(model.input, model.get_layer("lstm").output)
                               .predict(batch, verbose=0), atol=1e-5)
    assert result.layer("lstm").mask_role == "consumes"
    assert not any("padding without a mask" in warning for warning in result.warnings)   # the lstm has one


def test_a_computed_mask_survives_the_stack_file_and_the_exported_script(saved_mask, tmp_path):
    from explorer.core.codegen import export_code
    model, path = saved_mask
    spec, _, _ = keras_io.import_model(path)
    spec.sequences = text(TEXTS)
    again = specs.loads(specs.dumps(spec))
    mask = spec.layers[spec.layer_names().index("lstm")].mask
    assert specs.to_dict(again)["layers"][spec.layer_names().index("lstm")]["mask"] == mask
    batch = keras.utils.pad_sequences(TEXTS, padding="post")
    np.testing.assert_allclose(ENGINE.run(again).layer("head").output, model.predict(batch, verbose=0), atol=1e-5)
    code = export_code(spec, weights_from=str(path))
    assert f"(x, mask=outputs[{mask!r}])" in code
    exported = exported_output(code, "head", tmp_path)
    np.testing.assert_allclose(exported, model.predict(batch, verbose=0), atol=1e-5)


def attention_with_a_value_mask():
    """Attention over an Embedding without mask_zero, given a mask for the values only: a list of masks."""
    ids = keras.Input((None,), dtype="int32", name="ids")
    x = layers.Embedding(9, 3, name="emb")(ids)
    query = layers.LSTM(3, return_sequences=True, name="query")(x)
    attended = layers.Attention(name="att")([query, x], mask=[None, keras.ops.not_equal(ids, 0)])
    return keras.Model(ids, layers.Dense(2, name="head")(layers.GlobalAveragePooling1D(name="pool")(attended)))


@pytest.fixture(scope="module")
def saved_value_mask(tmp_path_factory):
    path = tmp_path_factory.mktemp("value_mask") / "value_mask.keras"
    batch = keras.utils.pad_sequences(TEXTS, padding="post")
    return trained_and_saved(attention_with_a_value_mask, [batch], path), path


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(ids, min_size=2, max_size=4), st.sampled_from(["pre", "post"]))
def test_a_list_of_masks_the_model_computes_is_passed_as_keras_passes_it(saved_value_mask, rows, padding):
    model, path = saved_value_mask
    spec, _, _ = keras_io.import_model(path)
    mask = spec.layers[spec.layer_names().index("att")].mask
    assert mask[0] is None and spec.layers[spec.layer_names().index(mask[1])].params["class_name"] == \
        "ops.numpy.NotEqual"
    spec.batching.padding = padding
    batch = keras.utils.pad_sequences(rows, padding=padding)
    for document in (spec, specs.loads(specs.dumps(spec))):          # and through the stack file
        result = ENGINE.run(document, text(rows))
        np.testing.assert_allclose(result.layer("head").output, model.predict(batch, verbose=0), atol=1e-5)


def test_a_list_of_masks_survives_the_exported_script(saved_value_mask, tmp_path):
    from explorer.core.codegen import export_code
    model, path = saved_value_mask
    spec, _, _ = keras_io.import_model(path)
    spec.sequences = text(TEXTS)
    mask = spec.layers[spec.layer_names().index("att")].mask
    code = export_code(spec, weights_from=str(path))
    assert f"mask=[None, outputs[{mask[1]!r}]]" in code
    batch = keras.utils.pad_sequences(TEXTS, padding="post")
    np.testing.assert_allclose(exported_output(code, "head", tmp_path), model.predict(batch, verbose=0), atol=1e-5)


@pytest.mark.parametrize("mask, message", [
    ([None, None], "must be a tensor's name, or a list of up to 16 names and nulls"),
    ([None, "nowhere"], r'layers\[1\]\.mask: "nowhere" is not a tensor of a layer before this one'),
    (7, "must be a tensor's name")])
def test_a_stack_file_s_mask_names_tensors_before_the_layer(mask, message):
    document = {"input": {"kind": "tokens", "vocab_size": 9}, "layers": [
        {"type": "embedding", "output_dim": 3, "name": "emb"},
        {"type": "keras", "class_name": "Attention", "config": {}, "inputs": ["emb", "emb"], "mask": mask}]}
    with pytest.raises(SpecError, match=message):
        specs.from_dict(document)


def selected_branches():
    """keras.ops.select between two recurrent branches: its parameters each take a list of tensors."""
    ids = keras.Input((None,), dtype="int32", name="ids")
    x = layers.Embedding(9, 3, mask_zero=True, name="emb")(ids)
    first = layers.LSTM(3, return_sequences=True, name="first")(x)
    second = layers.GRU(3, return_sequences=True, name="second")(x)
    chosen = keras.ops.select([keras.ops.greater(first, second), keras.ops.less(first, 0.0)], [first, second], 0.5)
    return keras.Model(ids, layers.Dense(2, name="head")(layers.GlobalAveragePooling1D(name="pool")(chosen)))


def test_parameters_that_take_lists_of_tensors_get_them_item_by_item(tmp_path):
    from explorer.core.codegen import export_code
    batch = keras.utils.pad_sequences(TEXTS, padding="post")
    model = trained_and_saved(selected_branches, [batch], tmp_path / "select.keras")
    spec, _, _ = keras_io.import_model(tmp_path / "select.keras")
    select = spec.layers[spec.layer_names().index("select")]
    assert select.arguments == ["condlist[0]", "condlist[1]", "choicelist[0]", "choicelist[1]"]
    assert select.inputs[2:] == ["first", "second"] and select.options == {"default": 0.5}
    spec.sequences = text(TEXTS)
    for document in (spec, specs.loads(specs.dumps(spec))):          # and through the stack file
        np.testing.assert_allclose(ENGINE.run(document).layer("head").output, model.predict(batch, verbose=0),
                                   atol=1e-5)
    code = export_code(spec, weights_from=str(tmp_path / "select.keras"))
    assert "choicelist=[outputs['first'], outputs['second']]" in code
    np.testing.assert_allclose(exported_output(code, "head", tmp_path), model.predict(batch, verbose=0), atol=1e-5)


def tensors_among_values(gated: bool = True):
    """keras.ops.select whose choices are a branch's output and a constant (a list of a tensor and a NumPy array),
    and a custom layer given a nested list of tensors, [x, [gate, bias]] (`gated`)."""
    ids = keras.Input((None,), dtype="int32", name="ids")
    x = layers.Embedding(9, 3, mask_zero=True, name="emb")(ids)
    first = layers.LSTM(3, return_sequences=True, name="first")(x)
    second = layers.GRU(3, return_sequences=True, name="second")(x)
    half = np.full((1, 1, 3), 0.5, "float32")
    chosen = keras.ops.select([keras.ops.greater(first, second), keras.ops.less(first, 0.0)], [first, half], 0.0)
    if gated:
        chosen = Gated(name="gated")([chosen, [second, layers.Dense(3, name="bias")(first)]])
    return keras.Model(ids, layers.Dense(2, name="head")(layers.GlobalAveragePooling1D(name="pool")(chosen)))


@keras.saving.register_keras_serializable(package="call_arguments_test")
class Gated(layers.Layer):
    def call(self, inputs):
        x, (gate, bias) = inputs
        return x * keras.ops.sigmoid(gate) + bias


@pytest.fixture(scope="module")
def saved_among(tmp_path_factory):
    path = tmp_path_factory.mktemp("among") / "among.keras"
    return trained_and_saved(tensors_among_values, [keras.utils.pad_sequences(TEXTS, padding="post")], path), path


@settings(max_examples=4, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(ids, min_size=1, max_size=4), st.sampled_from(["pre", "post"]))
def test_tensors_among_values_or_in_nested_lists_take_their_places_as_in_keras(saved_among, rows, padding):
    model, path = saved_among
    spec, _, _ = keras_io.import_model(path)
    selected = select_of(spec)      # Keras numbers an operation's name by the models made before it
    select = spec.layers[spec.layer_names().index(selected)]
    assert (select.arguments, select.options["choicelist"][0]) == (["condlist[0]", "condlist[1]", "choicelist[0]"],
                                                                   None)
    gated = spec.layers[spec.layer_names().index("gated")]
    assert (gated.arguments, gated.inputs) == (["inputs[0]", "inputs[1][0]", "inputs[1][1]"],
                                               [selected, "second", "bias"])
    spec.batching.padding = padding
    batch = keras.utils.pad_sequences(rows, padding=padding)
    for document in (spec, specs.loads(specs.dumps(spec))):          # and through the stack file
        result = ENGINE.run(document, text(rows))
        for name in (selected, "gated", "head"):
            expected = keras.Model(model.input, next(op for op in model.operations if op.name == name).output)
            np.testing.assert_allclose(result.layer(name).output, expected.predict(batch, verbose=0), atol=1e-5,
                                       err_msg=name)


@keras.saving.register_keras_serializable(package="call_arguments_test")
class Mixer(layers.Layer):
    """A custom layer called on a dict of tensors, {"gate": …, "value": …}."""
    def call(self, inputs):
        return inputs["value"] * keras.ops.sigmoid(inputs["gate"]) + 0.1 * inputs["value"]


def mixed_by_name():
    ids = keras.Input((None,), dtype="int32", name="ids")
    x = layers.Embedding(9, 3, mask_zero=True, name="emb")(ids)
    gate = layers.LSTM(3, return_sequences=True, name="gate")(x)
    value = layers.GRU(3, return_sequences=True, name="value")(x)
    mixed = Mixer(name="mixer")({"gate": gate, "value": value})
    return keras.Model(ids, layers.Dense(2, name="head")(layers.GlobalAveragePooling1D(name="pool")(mixed)))


@pytest.fixture(scope="module")
def saved_mixed(tmp_path_factory):
    path = tmp_path_factory.mktemp("mixed") / "mixed.keras"
    return trained_and_saved(mixed_by_name, [keras.utils.pad_sequences(TEXTS, padding="post")], path), path


@settings(max_examples=3, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(ids, min_size=1, max_size=4))
def test_a_dict_of_tensors_reaches_the_call_by_its_keys_as_in_keras(saved_mixed, rows):
    """A dict was given as a list of its tensors, which failed to build."""
    model, path = saved_mixed
    spec, _, _ = keras_io.import_model(path)
    mixer = spec.layers[spec.layer_names().index("mixer")]
    assert (mixer.arguments, mixer.options) == (["inputs[gate]", "inputs[value]"],
                                                {"inputs": {"dict": {"gate": None, "value": None}}})
    assert specs.option_text(specs.shown_options(mixer)["inputs"]) == "{'gate': gate, 'value': value}"
    batch = keras.utils.pad_sequences(rows, padding="post")
    for document in (spec, specs.loads(specs.dumps(spec))):
        result = ENGINE.run(document, text(rows))
        for name in ("mixer", "head"):
            expected = keras.Model(model.input, model.get_layer(name).output).predict(batch, verbose=0)
            np.testing.assert_allclose(result.layer(name).output, expected, atol=1e-5, err_msg=name)


def select_of(spec) -> str:
    return next(name for name, layer in zip(spec.layer_names(), spec.layers)
                if layer.params.get("class_name") == "ops.numpy.Select")


def test_tensors_among_values_survive_the_exported_script(saved_among, tmp_path):
    from explorer.core.codegen import export_code
    spec, _, _ = keras_io.import_model(saved_among[1])   # the nested list, written as it is called
    assert f"inputs=[outputs[{select_of(spec)!r}], [outputs['second'], outputs['bias']]]" in export_code(spec)
    batch = keras.utils.pad_sequences(TEXTS, padding="post")   # a script runs without the test's class: no Gated
    model = trained_and_saved(lambda: tensors_among_values(gated=False), [batch], tmp_path / "chosen.keras")
    spec, _, _ = keras_io.import_model(tmp_path / "chosen.keras")
    spec.sequences = text(TEXTS)
    code = export_code(spec, weights_from=str(tmp_path / "chosen.keras"))
    assert "choicelist=[outputs['first'], np.array(" in code
    np.testing.assert_allclose(exported_output(code, "head", tmp_path), model.predict(batch, verbose=0), atol=1e-5)


def test_a_list_of_a_tensor_and_a_constant_given_positionally_is_placed_by_the_parameter_s_name(tmp_path):
    """ops.concatenate([x, constant]): Keras records the list as the call's one positional argument."""
    def joined():
        ids = keras.Input((4,), dtype="int32", name="ids")
        x = layers.LSTM(3, return_sequences=True, name="lstm")(layers.Embedding(9, 3, name="emb")(ids))
        x = keras.ops.concatenate([x, np.linspace(0, 1, 24, dtype="float32").reshape(3, 4, 2)], axis=-1)
        return keras.Model(ids, layers.GRU(2, name="gru")(x))
    batch = keras.utils.pad_sequences(TEXTS, padding="post", maxlen=4)
    model = trained_and_saved(joined, [batch], tmp_path / "joined.keras")
    spec, _, _ = keras_io.import_model(tmp_path / "joined.keras")
    concatenate = next(layer for layer in spec.layers if layer.params.get("class_name") == "ops.numpy.Concatenate")
    assert concatenate.arguments == ["xs[0]"] and concatenate.options["xs"][1]["array"]["shape"] == [3, 4, 2]
    np.testing.assert_allclose(ENGINE.run(spec, text(TEXTS)).layer("gru").output, model.predict(batch, verbose=0),
                               atol=1e-5)


@pytest.mark.parametrize("arguments, options, message", [
    (["xs[1]", "y"], {}, r"arguments: gives xs\[1\]: without a list or dict in options.xs to place them in"),
    (["xs[0][1]", "y"], {}, r"arguments: gives xs\[0\]\[1\]: without a list"),
    (["xs[2]", "y"], {"xs": [None, 1]}, r"options.xs: has no item at each place arguments gives a tensor"),
    (["xs[0][0]", "y"], {"xs": [None, 1]}, r"options.xs: has no item at each place"),
    (["xs", "y"], {"xs": [None]}, r"options: names xs, a parameter that arguments gives a tensor"),
    (["xs[a]", "y"], {}, r"arguments: gives xs\[a\]: without a list or dict in options.xs"),
    (["xs[b]", "y"], {"xs": {"dict": {"a": None}}}, r"options.xs: has no item at each place"),
    (["xs[0]", "y"], {"xs": {"dict": {"a": None}}}, r"options.xs: has no item at each place"),
])
def test_tensors_placed_in_a_list_need_the_list_to_hold_their_places(arguments, options, message):
    document = {"input": {"kind": "features", "features": 2}, "layers": [
        {"type": "lstm", "units": 2, "return_sequences": True, "name": "a"},
        {"type": "keras", "class_name": "ops.numpy.Concatenate", "config": {}, "inputs": ["a", "a"],
         "arguments": arguments, "options": options}]}
    with pytest.raises(SpecError, match=r"layers\[1\]\." + message):
        specs.from_dict(document)


@keras.saving.register_keras_serializable(package="call_arguments_test")
def softer(x):
    """A function of the user's own, registered with Keras (as --custom-objects FILE.py does)."""
    return keras.ops.tanh(x) * 0.5


@keras.saving.register_keras_serializable(package="call_arguments_test")
class Applied(layers.Layer):
    """A custom layer whose call takes a function and an initializer, as some published layers do."""
    def call(self, x, activation_fn=None, init=None):
        return activation_fn(x) + init(shape=(1, 1, x.shape[-1]), dtype=x.dtype)


def applied_objects(function):
    ids = keras.Input((None,), dtype="int32", name="ids")
    x = layers.LSTM(3, return_sequences=True, name="lstm")(layers.Embedding(9, 3, mask_zero=True, name="emb")(ids))
    x = Applied(name="applied")(x, activation_fn=function, init=keras.initializers.Constant(0.25))
    return keras.Model(ids, layers.GRU(2, name="gru")(x))


@pytest.mark.parametrize("function, name", [(keras.activations.hard_sigmoid, "hard_sigmoid"),
                                            (softer, "call_arguments_test>softer")])
def test_a_call_given_a_keras_function_and_an_initializer_holds_them_as_keras_saves_them(tmp_path, function, name):
    batch = keras.utils.pad_sequences(TEXTS, padding="post")
    model = trained_and_saved(lambda: applied_objects(function), [batch], tmp_path / "applied.keras")
    spec, _, _ = keras_io.import_model(tmp_path / "applied.keras")
    applied = spec.layers[spec.layer_names().index("applied")]
    assert applied.options["activation_fn"]["keras"]["config"] == name
    assert applied.options["init"]["keras"]["class_name"] == "Constant"
    assert specs.option_text(applied.options["init"]) == "Constant(value=0.25)"
    for document in (spec, specs.loads(specs.dumps(spec))):
        np.testing.assert_allclose(ENGINE.run(document, text(TEXTS)).layer("gru").output,
                                   model.predict(batch, verbose=0), atol=1e-5)


@keras.saving.register_keras_serializable(package="call_arguments_test")
class Penalized(layers.Layer):
    """A custom layer whose call takes a loss object: its output shrinks by the loss between it and zeros."""
    def call(self, x, loss_fn=None):
        return x - 0.1 * keras.ops.expand_dims(loss_fn(keras.ops.zeros_like(x), x), -1)


def test_a_call_given_a_keras_loss_object_holds_it_as_keras_saves_it(tmp_path):
    def penalized():
        ids = keras.Input((None,), dtype="int32", name="ids")
        x = layers.LSTM(3, return_sequences=True, name="lstm")(layers.Embedding(9, 3, name="emb")(ids))
        x = Penalized(name="penalized")(x, loss_fn=keras.losses.MeanSquaredError(reduction="none"))
        return keras.Model(ids, layers.GRU(2, name="gru")(x))
    batch = keras.utils.pad_sequences(TEXTS, padding="post")
    model = trained_and_saved(penalized, [batch], tmp_path / "penalized.keras")
    spec, _, _ = keras_io.import_model(tmp_path / "penalized.keras")
    held = spec.layers[spec.layer_names().index("penalized")].options["loss_fn"]
    assert held["keras"]["class_name"] == "MeanSquaredError"
    assert specs.option_text(held).startswith("MeanSquaredError(")
    for document in (spec, specs.loads(specs.dumps(spec))):
        np.testing.assert_allclose(ENGINE.run(document, text(TEXTS)).layer("gru").output,
                                   model.predict(batch, verbose=0), atol=1e-5)


def test_a_file_naming_a_function_of_code_not_loaded_here_is_refused_before_keras_reads_it(tmp_path, monkeypatch):
    batch = keras.utils.pad_sequences(TEXTS, padding="post")
    trained_and_saved(lambda: applied_objects(softer), [batch], tmp_path / "applied.keras")
    registered = keras.saving.get_custom_objects()
    monkeypatch.delitem(registered, "call_arguments_test>softer")   # a stranger's file: their code is not here
    monkeypatch.setattr(keras.saving, "load_model", lambda *a, **k: pytest.fail("Keras read a refused file"))
    with pytest.raises(StackError, match=r"classes that neither Keras nor the explorer knows: "
                                         r"'call_arguments_test>softer' \(used by applied\)"):
        keras_io.import_model(tmp_path / "applied.keras")


@keras.saving.register_keras_serializable(package="call_arguments_test")
class Uses(layers.Layer):
    def call(self, x, sub=None):
        return sub(x)


def test_a_layer_given_to_a_call_as_an_object_is_refused_with_keras_s_own_limit(tmp_path):
    """Keras saves such a layer's config, not its weights: its own loaded model differs from the trained one."""
    def uses_a_dense():
        ids = keras.Input((None,), dtype="int32", name="ids")
        x = layers.LSTM(3, return_sequences=True, name="lstm")(layers.Embedding(9, 3, name="emb")(ids))
        dense = layers.Dense(2, name="inner")
        dense.build((None, None, 3))
        return keras.Model(ids, layers.GlobalAveragePooling1D(name="pool")(Uses(name="uses")(x, sub=dense)))
    batch = keras.utils.pad_sequences(TEXTS, padding="post")
    model = trained_and_saved(uses_a_dense, [batch], tmp_path / "uses.keras")
    loaded = keras.saving.load_model(tmp_path / "uses.keras")
    assert np.abs(loaded.predict(batch, verbose=0) - model.predict(batch, verbose=0)).max() > 1e-3
    with pytest.raises(StackError, match=r"uses \(Uses\) is called with sub that is the layer inner given as an "
                                         r"object, not a tensor: Keras saves its config but not its weights"):
        keras_io.import_model(tmp_path / "uses.keras")


@pytest.mark.parametrize("saved, message", [
    ({"module": "builtins", "class_name": "function", "config": "eval", "registered_name": "function"},
     "activation_fn is eval, which Keras cannot make"),
    ({"module": "keras.layers", "class_name": "Lambda", "config": {"function": "print"}}, r'must be \{"keras": …\}'),
    ({"module": "os", "class_name": "function", "config": "system"}, r'must be \{"keras": …\}'),
])
def test_a_stack_file_gives_a_call_only_keras_s_own_functions_and_initializers(saved, message):
    document = {"input": {"kind": "features", "features": 2}, "layers": [
        {"type": "lstm", "units": 2, "return_sequences": True},
        {"type": "keras", "class_name": "ops.numpy.Mean", "config": {"axis": 1},
         "options": {"activation_fn": {"keras": saved}}}]}
    with pytest.raises(ExplorerError, match=message):
        ENGINE.built_for(specs.from_dict(document))


@pytest.mark.parametrize("arguments", [["x", "x[0]"], ["x[0]", "x[0]"], ["x[", "y"], ["[0]", "y"], ["x[0]x", "y"],
                                       ["x[0][0][0][0][0]", "y"]])
def test_items_of_a_listed_parameter_are_named_once_each_in_order(arguments):
    document = {"input": {"kind": "features", "features": 2}, "layers": [
        {"type": "lstm", "units": 2, "return_sequences": True, "name": "a"},
        {"type": "keras", "class_name": "Add", "config": {}, "inputs": ["a", "a"], "arguments": arguments}]}
    with pytest.raises(SpecError, match=r"layers\[1\]\.arguments: must be a list of 1 to 16 distinct parameter"):
        specs.from_dict(document)


def test_the_mask_keras_passes_on_is_no_computed_mask(saved):
    spec, _, _ = keras_io.import_model(saved["folder"] / "self.keras")   # an Embedding with mask_zero
    assert all(layer.mask is None for layer in spec.layers)


def test_an_operation_keras_cannot_run_gives_keras_s_reason_not_its_wrapper():
    document = {"input": {"kind": "features", "features": 2}, "layers": [
        {"type": "lstm", "units": 2, "return_sequences": True},
        {"type": "keras", "class_name": "ops.numpy.Mean", "config": {"axis": "x"}}]}
    with pytest.raises(ExplorerError) as caught:
        ENGINE.built_for(specs.from_dict(document))
    message = caught.value.message
    assert message.startswith("keras_1 cannot be built: ") and "Exception encountered" not in message, message


def test_an_operation_card_saved_in_a_file_holds_only_an_operation_of_keras_ops():
    from explorer.core.layers import KerasOperation
    from keras.src.ops.numpy import Mean   # the class Keras saves for keras.ops.mean in a model
    mean = KerasOperation(Mean(axis=1), name="mean")
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(mean), safe_mode=True)
    assert type(again.operation).__name__ == "Mean"
    forged = {**keras.saving.serialize_keras_object(mean)}
    forged["config"] = {**forged["config"], "operation": keras.saving.serialize_keras_object(layers.Dense(2))}
    with pytest.raises(Exception, match="Dense is not an operation of keras.ops"):
        keras.saving.deserialize_keras_object(forged, safe_mode=True)


STEPS, WIDTH = 40, 16   # a positional encoding: more values a dimension than a card's option lists


def positional_encoding(dtype):
    def build():
        angles = np.arange(STEPS)[:, None] / (10000 ** (np.arange(WIDTH)[None] / WIDTH))
        ids = keras.Input((STEPS,), dtype="int32", name="ids")
        x = layers.Embedding(9, WIDTH, mask_zero=True, name="emb")(ids)
        x = x + np.sin(angles).astype(dtype)                 # as transformer-style encoders add it
        return keras.Model(ids, layers.Dense(2, name="head")(layers.LSTM(3, name="lstm")(x)))
    return build


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_large_numpy_constant_in_the_graph_is_kept_whole_and_equals_predict(tmp_path, dtype):
    from explorer.core.codegen import export_code
    batch = keras.utils.pad_sequences(TEXTS, padding="post", maxlen=STEPS)
    model = trained_and_saved(positional_encoding(dtype), [batch], tmp_path / "encoded.keras")
    spec, _, _ = keras_io.import_model(tmp_path / "encoded.keras")
    add = next(layer for layer in spec.layers if layer.params.get("class_name") == "ops.numpy.Add")
    assert add.options["x2"]["array"]["dtype"] == dtype and specs.option_text(add.options["x2"]) == \
        f"array({STEPS} × {WIDTH}, {dtype})"
    spec.sequences = text(TEXTS)
    for document in (spec, specs.loads(specs.dumps(spec))):          # and through the stack file
        np.testing.assert_allclose(ENGINE.run(document).layer("head").output, model.predict(batch, verbose=0),
                                   atol=1e-5)
    code = export_code(spec, weights_from=str(tmp_path / "encoded.keras"))
    np.testing.assert_allclose(exported_output(code, "head", tmp_path), model.predict(batch, verbose=0), atol=1e-5)


@pytest.mark.parametrize("array, message", [
    ({"shape": [2], "dtype": "complex64", "data": ""}, "dtype must be one of float32"),
    ({"shape": [3], "dtype": "float32", "data": "AAAA"}, r"data holds 0 numbers; shape \[3\] needs 3"),
    ({"shape": [3], "dtype": "float32", "data": "not base64!"}, "data must be base64 text"),
    ({"shape": [10**8], "dtype": "float32", "data": ""}, "shape must be a list of at most 8 sizes")])
def test_a_constant_in_a_stack_file_is_checked_before_it_is_read(array, message):
    document = {"input": {"kind": "features", "features": 3}, "layers": [
        {"type": "keras", "class_name": "ops.numpy.Add", "config": {}, "options": {"x2": {"array": array}}}]}
    with pytest.raises(SpecError, match=message):
        specs.from_dict(document)
