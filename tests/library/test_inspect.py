"""`explorer.inspect` on Keras models built here equals `model.predict` and Keras sub-models on
`keras.utils.pad_sequences` of the same sequences, for every kind of `sequences` argument."""

from __future__ import annotations

import base64
import re
import struct
import zlib

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import explorer
from explorer.core.errors import ExplorerError

TOLERANCE = 1e-5
IDS = [[3, 1, 4, 1, 5], [9, 2], [6, 5, 3, 5, 8, 9, 7], [2]]


def token_model(mask_zero: bool = False) -> keras.Model:
    keras.utils.set_random_seed(1)
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(12, 4, mask_zero=mask_zero, name="embed")(inputs)
    x = keras.layers.LSTM(5, return_sequences=True, name="lstm")(x)
    x = keras.layers.Bidirectional(keras.layers.GRU(3), name="bigru")(x)
    outputs = keras.layers.Dense(2, name="head")(x)
    return keras.Model(inputs, outputs)


def feature_model() -> keras.Model:
    keras.utils.set_random_seed(2)
    inputs = keras.Input((None, 3))
    x = keras.layers.Masking(0.0, name="masking")(inputs)
    x = keras.layers.SimpleRNN(4, return_sequences=True, name="rnn")(x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    outputs = keras.layers.Dense(2, name="head")(x)
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def tokens() -> keras.Model:
    return token_model()


def assert_like_keras(report: explorer.Report, model: keras.Model, padded: np.ndarray) -> None:
    """The model's output and every layer's output equal Keras on `padded`."""
    np.testing.assert_array_equal(report.input, padded)
    np.testing.assert_allclose(report.output, model.predict(padded, verbose=0), atol=TOLERANCE)
    for layer in model.layers[1:]:
        expected = keras.Model(model.inputs, layer.output).predict(padded, verbose=0)
        np.testing.assert_allclose(report.layer(layer.name).output, expected, atol=TOLERANCE, err_msg=layer.name)
        assert [np.shape(w) for w in report.layer(layer.name).weights] == [w.shape for w in layer.get_weights()]


@pytest.mark.parametrize("kind", ["lists", "array", "strings", "text"])
def test_ids_in_every_form_equal_keras(tokens, kind):
    padded = keras.utils.pad_sequences(IDS, padding="post")
    given_as = {"lists": IDS, "array": padded, "strings": [" ".join(map(str, s)) for s in IDS],
                "text": "".join(" ".join(map(str, s)) + "\n" for s in IDS)}[kind]
    report = explorer.inspect(tokens, given_as)
    if kind == "array":   # a 2-D array is taken as it is: every row its full length
        np.testing.assert_array_equal(report.lengths, [padded.shape[1]] * len(IDS))
    else:
        np.testing.assert_array_equal(report.lengths, [len(s) for s in IDS])
        np.testing.assert_array_equal(report.mask, keras.utils.pad_sequences(IDS, padding="post", value=-1) != -1)
    assert_like_keras(report, tokens, padded)


@settings(max_examples=6, deadline=None)
@given(padding=st.sampled_from(["pre", "post"]), truncating=st.sampled_from(["pre", "post"]),
       maxlen=st.one_of(st.none(), st.integers(1, 9)))
def test_batching_keywords_equal_pad_sequences(tokens, padding, truncating, maxlen):
    report = explorer.inspect(tokens, IDS, padding=padding, truncating=truncating, maxlen=maxlen, pad_value=0)
    padded = keras.utils.pad_sequences(IDS, maxlen=maxlen, padding=padding, truncating=truncating)
    assert_like_keras(report, tokens, padded)


def test_words_are_looked_up_as_string_lookup_does():
    model = token_model(mask_zero=True)
    sentences = ["the cat sat on the mat", "the dog", "a cat"]
    lookup = keras.layers.StringLookup(max_tokens=12, mask_token="", oov_token="[UNK]")
    lookup.adapt(np.array(" ".join(sentences).split()))
    ids = [np.asarray(lookup(np.array(s.split()))).tolist() for s in sentences]
    padded = keras.utils.pad_sequences(ids, padding="post")
    for given_as in (sentences, [s.split() for s in sentences]):
        report = explorer.inspect(model, given_as)
        assert report.result.vocabulary == [str(w) for w in lookup.get_vocabulary()]
        assert_like_keras(report, model, padded)
        assert report.notes == []        # the embedding masks: no padding note


@pytest.mark.parametrize("kind", ["ragged", "lists", "array"])
def test_feature_vectors_equal_keras(kind):
    model = feature_model()
    rng = np.random.default_rng(3)
    ragged = [rng.normal(size=(length, 3)).astype(np.float32) for length in (4, 2, 6)]
    padded = keras.utils.pad_sequences(ragged, dtype="float32", padding="pre")
    given_as = {"ragged": ragged, "lists": [r.tolist() for r in ragged], "array": padded}[kind]
    report = explorer.inspect(model, given_as, padding="pre")
    assert_like_keras(report, model, padded)


def test_states_of_return_state_are_keras_states():
    keras.utils.set_random_seed(4)
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(10, 3, mask_zero=True, name="embed")(inputs)
    _, h, c = keras.layers.LSTM(4, return_state=True, name="enc")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(h))
    padded = keras.utils.pad_sequences(IDS[:3], padding="post")
    report = explorer.inspect(model, IDS[:3])
    _, h_expected, c_expected = keras.Model(inputs, model.get_layer("enc").output).predict(padded, verbose=0)
    np.testing.assert_allclose(report.layer("enc").states["h"], h_expected, atol=TOLERANCE)
    np.testing.assert_allclose(report.layer("enc").states["c"], c_expected, atol=TOLERANCE)
    np.testing.assert_allclose(report.output, model.predict(padded, verbose=0), atol=TOLERANCE)


def test_a_model_without_a_mask_is_noted_with_its_padding(tokens):
    report = explorer.inspect(tokens, IDS[:2])
    assert any("padded post" in note and "pads pre by default" in note for note in report.notes)
    assert "padded pre" in explorer.inspect(tokens, IDS[:2], padding="pre").notes[-1]


@pytest.mark.parametrize("model, sequences, fragment", [
    ("preset:nope", "1 2", 'unknown preset "nope"'),
    (42, "1 2", "model must be a Keras model"),
    ("preset:average_pooling", [[1, 2], [[0.5, 1.0]]], "sequence 1: the model takes token ids"),
    ("preset:average_pooling", np.zeros(3), "batch × steps"),
    ("preset:sensor_features", [[1, 2]], "sequence 0: the model takes feature vectors"),
    ("preset:average_pooling", ["1 2 # 3"], "'#' cannot be part of a sequence"),
    ("preset:average_pooling", [], "non-empty list"),
])
def test_bad_arguments_are_named(model, sequences, fragment):
    with pytest.raises(ExplorerError) as caught:
        explorer.inspect(model, sequences)
    assert fragment in caught.value.message


def test_a_bad_batching_keyword_is_named():
    with pytest.raises(ExplorerError) as caught:
        explorer.inspect("preset:average_pooling", padding="middle")
    assert "batching.padding" in caught.value.message
    with pytest.raises(ExplorerError) as caught:
        explorer.inspect("preset:average_pooling", pad_value=10 ** 6)
    assert "batching.pad_value" in caught.value.message


def test_one_by_one_runs_each_sequence_alone_as_keras_does(tokens):
    report = explorer.inspect(tokens, IDS, mode="one_by_one")
    for row, sequence in enumerate(IDS):
        alone = tokens.predict(np.array([sequence]), verbose=0)
        np.testing.assert_allclose(report.output[row], alone[0], atol=TOLERANCE)


def test_a_backend_other_than_the_loaded_one_is_refused():
    with pytest.raises(ExplorerError) as caught:
        explorer.inspect("preset:average_pooling", backend="jax")
    assert "jax" in caught.value.message


def read_png(data: bytes) -> np.ndarray:
    """An 8-bit RGB PNG without filters, read by the format's rules (chunks, zlib, one filter byte a row)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, idat, width, height = 8, b"", 0, 0
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert (depth, colour) == (8, 2)
        elif kind == b"IDAT":
            idat += body
        position += 12 + length
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, 1 + width * 3)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:].reshape(height, width, 3)


def test_the_html_and_markdown_show_the_table_and_hatch_the_padded_steps(tokens):
    report = explorer.inspect(tokens, IDS, padding="pre")
    markdown = report.to_markdown()
    for layer in tokens.layers[1:]:
        assert f"| {layer.name} |" in markdown
    assert "FC input of head" in markdown
    page = report._repr_html_()
    images = dict(re.findall(r'<img alt="([^"]+) over time"[^>]*base64,([^"]+)"', page))
    assert set(images) == {"embed", "lstm"}            # the layers with a time axis
    image = read_png(base64.b64decode(images["lstm"]))
    steps = report.input.shape[1]
    cell = image.shape[1] // steps
    grey = (image == 150).all(axis=2)
    strip = 5 * 3 + 4                                    # lstm's 5 units, 3 pixels each, and a gap
    second = grey[strip:2 * strip]                       # the sequence [9, 2], padded pre: 5 steps of 7
    hatched_steps = [bool(second[:, step * cell:(step + 1) * cell].any()) for step in range(steps)]
    assert hatched_steps == [True] * 5 + [False] * 2


def test_images_whose_width_is_the_time_axis_equal_keras():
    image = keras.Input((6, 4, 1))
    x = keras.layers.Conv2D(2, 3, padding="same")(image)
    x = keras.layers.Reshape((6, 8))(x)
    model = keras.Model(image, keras.layers.LSTM(3, return_sequences=True)(x))
    images = np.random.default_rng(4).random((3, 6, 4, 1)).astype(np.float32)
    report = explorer.inspect(model, images)
    assert report.result.input.shape == images.shape
    assert_like_keras(report, model, images)
