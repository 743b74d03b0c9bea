"""Models whose outputs include a further output of a layer: an encoder that returns its states, a merge_mode None
backward output, a shared layer's second call. Written here with plain Keras, trained one step, saved as .keras and
opened as a user would (`run MODEL.keras --json - --npz`): every output equals model.predict's on valid steps, and
Export as .keras gives a model whose predict equals the original's."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from keras import layers

from explorer import cli
from explorer.core import build, codegen, keras_io, spec
from explorer.core.errors import SpecError, StackError

TOKENS = [[3, 7, 1, 9, 4], [5, 2], [8, 8, 6, 1]]

pytestmark = pytest.mark.filterwarnings("ignore:Gradients do not exist")


def encoder():
    i = keras.Input((None,), dtype="int32")
    x = layers.Embedding(20, 3, mask_zero=True, name="emb")(i)
    out, h, c = layers.LSTM(4, return_state=True, name="encoder")(x)
    return keras.Model(i, [out, h, c])


def backward():
    i = keras.Input((None,), dtype="int32")
    x = layers.Embedding(20, 3, mask_zero=True, name="emb")(i)
    forward, back = layers.Bidirectional(layers.GRU(4, return_sequences=True), merge_mode=None, name="bi")(x)
    return keras.Model(i, [layers.Dense(2, name="head")(forward), back])


def shared_call():
    i = keras.Input((None,), dtype="int32")
    emb = layers.Embedding(20, 3, name="emb")
    return keras.Model(i, [layers.LSTM(4, name="lstm")(emb(i)), emb(i)])


MODELS = {"encoder": (encoder, ["encoder", "encoder/state/h", "encoder/state/c"]),
          "backward": (backward, ["head", "bi/backward"]),
          "shared_call": (shared_call, ["lstm", "emb/call/1"])}


def saved(build_model, path):
    keras.utils.set_random_seed(7)
    model = build_model()
    batch = keras.utils.pad_sequences(TOKENS, padding="post")
    model.compile("adam", ["mse"] + [None] * (len(model.outputs) - 1))   # loss on the first output only
    first = model.outputs[0].shape
    model.fit(batch, np.ones((len(TOKENS), *([batch.shape[1]] if len(first) == 3 else []), first[-1]), "float32"),
              verbose=0)
    model.save(path)
    return model, batch


def valid(value, mask):
    """The value on valid steps only (a tensor with a time axis), else the whole value."""
    return value[mask] if value.ndim >= 3 else value


@pytest.mark.parametrize("case", MODELS)
def test_every_output_equals_predict(case, tmp_path, capsys):
    build_model, expected_names = MODELS[case]
    model, batch = saved(build_model, tmp_path / "model.keras")
    (tmp_path / "input.txt").write_text("\n".join(" ".join(map(str, t)) for t in TOKENS) + "\n")
    assert cli.main(["run", str(tmp_path / "model.keras"), "--input", str(tmp_path / "input.txt"),
                     "--json", "-", "--npz", str(tmp_path / "out.npz")]) == 0
    report = json.loads(capsys.readouterr().out)
    arrays = np.load(tmp_path / "out.npz")
    mask = batch != 0
    predicted = model.predict(batch, verbose=0)
    assert [output["name"] for output in report["outputs"]] == expected_names
    for output, expected in zip(report["outputs"], predicted):
        assert output["shape"] == list(expected.shape)
        np.testing.assert_allclose(valid(arrays[f"out/{output['name']}"], mask), valid(expected, mask), atol=1e-5)


@pytest.mark.parametrize("case", MODELS)
def test_export_as_keras_keeps_every_output(case, tmp_path):
    model, batch = saved(MODELS[case][0], tmp_path / "model.keras")
    spec, _, _ = keras_io.import_model(tmp_path / "model.keras")
    keras_io.export_model(build.build(spec), tmp_path / "again.keras")
    again = keras.saving.load_model(tmp_path / "again.keras")
    mask = batch != 0
    expected, exported = model.predict(batch, verbose=0), again.predict(batch, verbose=0)
    assert len(exported) == len(expected)
    for ours, theirs in zip(exported, expected):
        np.testing.assert_allclose(valid(ours, mask), valid(theirs, mask), atol=1e-5)


@pytest.mark.parametrize("case", MODELS)
def test_export_as_code_keeps_every_output(case, tmp_path, capsys):
    model, batch = saved(MODELS[case][0], tmp_path / "model.keras")
    spec, _, _ = keras_io.import_model(tmp_path / "model.keras")
    script = {}
    exec(compile(codegen.export_code(spec, weights_from=str(tmp_path / "model.keras")), "stack.py", "exec"), script)
    mask = batch != 0
    expected, exported = model.predict(batch, verbose=0), script["model"].predict(batch, verbose=0)
    assert len(exported) == len(expected)
    for ours, theirs in zip(exported, expected):
        np.testing.assert_allclose(valid(ours, mask), valid(theirs, mask), atol=1e-5)


def test_the_stack_file_holds_the_outputs_only_when_they_are_not_the_untaken_layers(tmp_path):
    saved(encoder, tmp_path / "encoder.keras")
    stack, _, _ = keras_io.import_model(tmp_path / "encoder.keras")
    document = json.loads(spec.dumps(stack))
    assert document["outputs"] == ["encoder", "encoder/state/h", "encoder/state/c"]
    assert spec.loads(spec.dumps(stack)).outputs() == document["outputs"]
    i = keras.Input((None,), dtype="int32")
    keras.Model(i, layers.LSTM(4, name="lstm")(layers.Embedding(20, 3)(i))).save(tmp_path / "plain.keras")
    assert "outputs" not in json.loads(spec.dumps(keras_io.import_model(tmp_path / "plain.keras")[0]))
    with pytest.raises(SpecError, match="encoder/state/x"):
        spec.from_dict({**document, "outputs": ["encoder/state/x"]})
    stack.layers[-1].params["return_state"] = False   # edited: the states are gone
    with pytest.raises(StackError, match="encoder/state/h, encoder/state/c"):
        build.build(stack)
