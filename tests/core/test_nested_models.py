"""Models inside models: an encoder Sequential called as a layer, one encoder applied to two inputs (a siamese
model), an inner layer named like an outer one, and a Sequential of Sequentials built by fit. Each is written with
plain Keras, trained one step, saved and opened as a user opens it: every inner layer is a card of its own and
equals the inner model's sub-model, and the outputs equal model.predict."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from keras import layers

from explorer.core import keras_io
from explorer.core.run import Engine

from .keras_files import trained_and_saved

ENGINE = Engine()
TEXTS = [[1, 2, 3], [4, 5], [6, 7, 8, 2]]


def text(rows) -> str:
    return "\n".join(" ".join(map(str, row)) for row in rows) + "\n"


def encoder(name: str = "encoder"):
    return keras.Sequential([keras.Input((None,), dtype="int32"), layers.Embedding(9, 3, mask_zero=True, name="emb"),
                             layers.LSTM(4, return_sequences=True, name="lstm"),
                             layers.GlobalAveragePooling1D(name="pool")], name=name)


def classifier():
    ids = keras.Input((None,), dtype="int32", name="ids")
    return keras.Model(ids, layers.Dense(2, name="head")(encoder()(ids)))


def siamese():
    """One encoder applied to two texts, the two encodings compared by a head."""
    shared = encoder()
    left, right = keras.Input((None,), dtype="int32", name="left"), keras.Input((None,), dtype="int32", name="right")
    both = layers.Concatenate(name="both")([shared(left), shared(right)])
    return keras.Model([left, right], layers.Dense(1, name="same")(both))


def clashing_names():
    """The inner model has a layer called "head" too."""
    inner = keras.Sequential([keras.Input((None, 2)), layers.GRU(3, name="gru"), layers.Dense(3, name="head")],
                             name="inner")
    steps = keras.Input((None, 2), name="steps")
    return keras.Model(steps, layers.Dense(1, name="head")(inner(steps)))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("nested")


@pytest.fixture(scope="module")
def saved_classifier(folder):
    return trained_and_saved(classifier, [keras.utils.pad_sequences(TEXTS, padding="post")], folder / "model.keras")


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.integers(1, 8), min_size=1, max_size=6), min_size=1, max_size=4))
def test_an_inner_model_s_layers_are_cards_that_equal_its_sub_models(saved_classifier, folder, rows):
    spec, _, notes = keras_io.import_model(folder / "model.keras")
    assert spec.layer_names() == ["emb", "lstm", "pool", "head"]
    assert "encoder is a model inside the model: its layers are shown one by one" in notes
    result = ENGINE.run(spec, text(rows))
    batch = keras.utils.pad_sequences(rows, padding="post")
    inner = saved_classifier.get_layer("encoder")
    valid = batch != 0
    expected = batch
    for name in ("emb", "lstm"):   # the inner layers called one after the other, the mask passed on by Keras
        expected = inner.get_layer(name)(expected)
        np.testing.assert_allclose(result.layer(name).output[valid], np.asarray(expected)[valid], atol=1e-5,
                                   err_msg=name)
    assert result.layer("lstm").mask is not None     # the mask crosses into the inner model, as in Keras
    np.testing.assert_allclose(result.layer("head").output, saved_classifier.predict(batch, verbose=0), atol=1e-5)


def test_one_encoder_applied_to_two_inputs_is_one_set_of_shared_cards(folder):
    batches = [keras.utils.pad_sequences(rows, padding="post", maxlen=4) for rows in (TEXTS, [[2, 2], [3], [4, 5, 6]])]
    model = trained_and_saved(siamese, batches, folder / "siamese.keras")
    spec, weights, _ = keras_io.import_model(folder / "siamese.keras")
    lstm = spec.layers[spec.layer_names().index("lstm")]
    assert lstm.calls == [["emb/call/1"]] and len(weights["lstm"]) == 3
    result = ENGINE.run(spec, {"left": text(TEXTS), "right": text([[2, 2], [3], [4, 5, 6]])})
    batch = {"left": keras.utils.pad_sequences(TEXTS, padding="post"),
             "right": keras.utils.pad_sequences([[2, 2], [3], [4, 5, 6]], padding="post")}
    np.testing.assert_allclose(result.layer("same").output, model(batch, training=False), atol=1e-5)


def test_an_inner_layer_named_like_an_outer_one_keeps_its_weights_under_its_model_s_name(folder):
    rows = [np.arange(6, dtype="float32").reshape(3, 2) / 6, np.ones((2, 2), "float32")]
    batch = keras.utils.pad_sequences(rows, dtype="float32", padding="post")
    model = trained_and_saved(clashing_names, [batch], folder / "clash.keras")
    spec, _, _ = keras_io.import_model(folder / "clash.keras")
    assert spec.layer_names() == ["gru", "inner_head", "head"]
    result = ENGINE.run(spec, "\n".join("; ".join(" ".join(f"{v:.9g}" for v in step) for step in row)
                                        for row in rows) + "\n")
    np.testing.assert_allclose(result.layer("inner_head").output,
                               model.get_layer("inner").predict(batch, verbose=0), atol=1e-5)
    np.testing.assert_allclose(result.layer("head").output, model.predict(batch, verbose=0), atol=1e-5)


def test_a_sequential_of_sequentials_built_by_fit_runs_at_any_length(folder):
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Sequential([layers.Embedding(9, 3), layers.GRU(2)], name="reader"),
                              layers.Dense(1, name="score")])
    model.compile("adam", "mse")
    model.fit(keras.utils.pad_sequences(TEXTS, padding="post"), np.ones((3, 1)), verbose=0)
    model.save(folder / "fit.keras")
    spec, _, _ = keras_io.import_model(folder / "fit.keras")
    assert spec.batching.maxlen is None and spec.input.length is None
    rows = [[1, 2, 3, 4, 5, 6, 7], [8]]
    batch = keras.utils.pad_sequences(rows, padding="post")
    np.testing.assert_allclose(ENGINE.run(spec, text(rows)).layer("score").output, model.predict(batch, verbose=0),
                               atol=1e-5)
