"""Trained .keras models become editable stacks that keep their weights, and can be saved back."""

import zipfile

import keras
import numpy as np
import pytest

from explorer.core import keras_io
from explorer.core.errors import SpecError, StackError, TrustError
from explorer.core.spec import from_dict


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small model trained for a few steps and saved, as a user would bring one."""
    keras.utils.set_random_seed(3)
    model = keras.Sequential([
        keras.Input((None,), dtype="int32"),
        keras.layers.Embedding(30, 4, mask_zero=True, name="emb"),
        keras.layers.Bidirectional(keras.layers.GRU(3, return_sequences=True), name="bi"),
        keras.layers.Dropout(0.3, name="drop"),
        keras.layers.LSTM(5, name="lstm"),
        keras.layers.Dense(2, activation="softmax", name="out"),
    ])
    model.compile("adam", "sparse_categorical_crossentropy")
    x = np.random.default_rng(0).integers(1, 30, (32, 6))
    model.fit(x, x[:, 0] % 2, epochs=3, verbose=0)
    path = tmp_path_factory.mktemp("model") / "trained.keras"
    model.save(path)
    return model, path


def test_a_trained_model_becomes_a_stack_with_its_weights(trained, engine):
    model, path = trained
    spec, weights, notes = keras_io.import_model(path)
    assert [layer.type for layer in spec.layers] == ["embedding", "gru", "keras", "lstm", "dense"]
    assert spec.layer_names() == ["emb", "bi", "drop", "lstm", "out"]
    assert spec.layers[1].params["bidirectional"] and spec.layers[1].params["return_sequences"]
    assert spec.input.vocab_size == 30 and spec.layers[0].params["mask_zero"]
    assert spec.layers[2].params["class_name"] == "Dropout" and not notes
    result = engine.run(spec, "1 2 3 4\n5 6\n")
    expected = model.predict(np.array([[1, 2, 3, 4], [5, 6, 0, 0]]), verbose=0)
    np.testing.assert_allclose(result.layers[-1].output, expected, atol=1e-6)
    np.testing.assert_array_equal(engine.weights()["weights/out/0"], model.get_layer("out").get_weights()[0])


def test_editing_a_layer_keeps_the_other_trained_weights(trained, engine):
    model, path = trained
    spec, _, _ = keras_io.import_model(path)
    spec.layers[4].params["units"] = 4
    result = engine.run(spec, "1 2 3\n")
    assert any(d.layer == "out" and "no longer fit" in d.message for d in result.diagnostics)
    np.testing.assert_array_equal(engine.weights()["weights/emb/0"], model.get_layer("emb").get_weights()[0])


def test_a_stack_saves_back_as_keras_and_reloads_with_the_same_numbers(trained, engine, tmp_path):
    _, path = trained
    spec, _, _ = keras_io.import_model(path)
    before = engine.run(spec, "3 4 5\n").layers[-1].output
    keras_io.export_model(engine.built_for(spec), tmp_path / "again.keras")
    again, _, _ = keras_io.import_model(tmp_path / "again.keras")
    assert again.layer_names() == spec.layer_names()
    from explorer.core.run import Engine
    np.testing.assert_allclose(Engine().run(again, "3 4 5\n").layers[-1].output, before, atol=1e-7)


def test_layers_outside_the_registry_become_keras_layer_cards(tmp_path):
    model = keras.Sequential([keras.Input((None, 3)), keras.layers.Conv1D(4, 2, name="conv"),
                              keras.layers.LSTM(2, name="lstm"), keras.layers.LayerNormalization(name="norm")])
    model.save(tmp_path / "conv.keras")
    spec, weights, _ = keras_io.import_model(tmp_path / "conv.keras")
    assert [(layer.type, layer.params.get("class_name")) for layer in spec.layers] == [
        ("keras", "Conv1D"), ("lstm", None), ("keras", "LayerNormalization")]
    np.testing.assert_array_equal(weights["conv"][0], model.get_layer("conv").get_weights()[0])


def test_a_custom_expression_in_a_model_file_needs_trust(engine, tmp_path):
    spec = from_dict({"input": {"kind": "tokens", "vocab_size": 10},
                      "layers": [{"type": "embedding", "output_dim": 2},
                                 {"type": "lstm", "units": 2, "return_sequences": True},
                                 {"type": "custom", "expression": "ops.mean(x, axis=1)"}]})
    engine.run(spec, "1 2\n", trust=True)
    keras_io.export_model(engine.built_for(spec), tmp_path / "custom.keras")
    with pytest.raises(TrustError):
        keras_io.import_model(tmp_path / "custom.keras")
    loaded, _, _ = keras_io.import_model(tmp_path / "custom.keras", trust=True)
    assert loaded.layers[-1].params["expression"] == "ops.mean(x, axis=1)"


def test_a_lambda_layer_is_refused_by_safe_mode(tmp_path):
    model = keras.Sequential([keras.Input((None, 2)), keras.layers.Lambda(lambda x: x * 2, name="double")])
    model.save(tmp_path / "lambda.keras")
    with pytest.raises((SpecError, StackError)):
        keras_io.import_model(tmp_path / "lambda.keras")


@pytest.mark.parametrize("content", [b"", b"not a zip", None])
def test_a_broken_model_file_is_refused_with_a_message(tmp_path, content):
    path = tmp_path / "broken.keras"
    if content is None:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("config.json", "{not json")
    else:
        path.write_bytes(content)
    with pytest.raises(SpecError) as caught:
        keras_io.import_model(path)
    assert "broken.keras" in caught.value.message
