"""Inputs whose steps have several axes: an image whose width is the time axis (the CRNN of Keras's captcha and
handwriting OCR examples, Input((width, height, 1))), and a spectrogram reshaped to 4-D inside the model (Keras's
DeepSpeech2-like speech example). Written in plain Keras, trained one step, saved, opened; every layer equals a
Keras sub-model and the output model.predict."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from keras import layers

from explorer.core import keras_io, spec as specs
from explorer.core.codegen import export_code
from explorer.core.errors import SpecError
from explorer.core.run import Engine

from .keras_files import exported_output, trained_and_saved

ENGINE = Engine()
WIDTH, HEIGHT, FFT, SIDE = 12, 6, 5, 6


def crnn():
    image = keras.Input((WIDTH, HEIGHT, 1), name="image")
    x = layers.Conv2D(3, (3, 3), activation="relu", padding="same", name="conv")(image)
    x = layers.MaxPooling2D((2, 2), name="pool")(x)
    x = layers.Reshape((WIDTH // 2, (HEIGHT // 2) * 3), name="columns")(x)
    x = layers.Dense(4, activation="relu", name="dense")(x)
    x = layers.Bidirectional(layers.LSTM(3, return_sequences=True), name="bi")(x)
    return keras.Model(image, layers.Dense(5, activation="softmax", name="letters")(x))


def speech():
    spectrogram = keras.Input((None, FFT), name="spectrogram")
    x = layers.Reshape((-1, FFT, 1), name="expand")(spectrogram)
    x = layers.Conv2D(2, (3, 3), strides=(1, 2), padding="same", use_bias=False, name="conv")(x)
    x = layers.BatchNormalization(name="bn")(x)
    x = layers.Reshape((-1, x.shape[-2] * x.shape[-1]), name="flat")(x)
    x = layers.Bidirectional(layers.GRU(3, return_sequences=True), name="bi")(x)
    return keras.Model(spectrogram, layers.Dense(4, activation="softmax", name="chars")(x))


def cnn_lstm():
    """A video classifier: a small CNN applied to every frame (TimeDistributed), then an LSTM over the frames."""
    frames = keras.Input((None, SIDE, SIDE, 1), name="frames")
    x = layers.TimeDistributed(layers.Conv2D(2, 3, activation="relu"), name="conv")(frames)
    x = layers.TimeDistributed(layers.MaxPooling2D(2), name="pool")(x)
    x = layers.TimeDistributed(layers.Flatten(), name="flat")(x)
    x = layers.LSTM(3, name="lstm")(x)
    return keras.Model(frames, layers.Dense(2, activation="softmax", name="label")(x))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("steps")
    rng = np.random.default_rng(0)
    return {"video": (trained_and_saved(cnn_lstm, [rng.random((2, 3, SIDE, SIDE, 1))], folder / "video.keras"),
                      folder / "video.keras"),
            "crnn": (trained_and_saved(crnn, [rng.random((2, WIDTH, HEIGHT, 1))], folder / "crnn.keras"),
                     folder / "crnn.keras"),
            "speech": (trained_and_saved(speech, [rng.random((2, 8, FFT))], folder / "speech.keras"),
                       folder / "speech.keras")}


def typed(batch: np.ndarray) -> str:
    """Each example a line, each step its values typed flat (C order), steps separated by ;"""
    return "\n".join("; ".join(" ".join(repr(float(v)) for v in step.ravel()) for step in example)
                     for example in batch) + "\n"


def same_as_keras(model, result, batch) -> None:
    for shown in result.layers:
        expected = keras.Model(model.inputs, model.get_layer(shown.name).output).predict(batch, verbose=0)
        np.testing.assert_allclose(shown.output, expected, atol=1e-5, err_msg=shown.name)
    np.testing.assert_allclose(result.layers[-1].output, model.predict(batch, verbose=0), atol=1e-5)


values = st.floats(0, 1, width=32).map(lambda v: round(v, 3))


@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(values, min_size=WIDTH * HEIGHT, max_size=WIDTH * HEIGHT), min_size=1, max_size=3))
def test_an_image_whose_width_is_the_time_axis_equals_keras_layer_by_layer(saved, pixels):
    model, path = saved["crnn"]
    spec, _, _ = keras_io.import_model(path)
    assert (spec.input.kind, spec.input.features, spec.input.step_shape, spec.input.length) == (
        "features", HEIGHT, (HEIGHT, 1), WIDTH)
    batch = np.array(pixels, np.float32).reshape(-1, WIDTH, HEIGHT, 1)
    result = ENGINE.run(spec, typed(batch))
    assert result.input.shape == batch.shape
    same_as_keras(model, result, batch)


def test_the_step_shape_survives_the_stack_file_and_the_exported_script(saved, tmp_path):
    model, path = saved["crnn"]
    spec, _, _ = keras_io.import_model(path)
    batch = np.random.default_rng(1).random((2, WIDTH, HEIGHT, 1)).round(3).astype(np.float32)
    spec.sequences = typed(batch)
    again = specs.loads(specs.dumps(spec))
    assert specs.to_dict(again)["input"]["step_shape"] == [HEIGHT, 1]
    same_as_keras(model, ENGINE.run(again), batch)
    code = export_code(spec, weights_from=str(path))
    np.testing.assert_allclose(exported_output(code, "letters", tmp_path), model.predict(batch, verbose=0),
                               atol=1e-5)


@settings(max_examples=4, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.lists(values, min_size=FFT, max_size=FFT), min_size=1, max_size=7), min_size=1,
                max_size=3))
def test_a_spectrogram_reshaped_to_four_axes_inside_the_model_equals_keras(saved, frames):
    model, path = saved["speech"]
    spec, _, _ = keras_io.import_model(path)
    result = ENGINE.run(spec, typed([np.array(example) for example in frames]))
    batch = keras.utils.pad_sequences(frames, padding="post", dtype="float32")
    same_as_keras(model, result, batch)


@pytest.mark.parametrize("step_shape, kind, message", [
    ([3, 2], "features", "input.step_shape: is the shape of a step's 4 features"),
    ([2, 2], "tokens", "input.step_shape: is the shape of a step's"),
    ([4], "features", "input.step_shape: must be a list of 2 to 4 positive sizes"),
    ([2, 0], "features", "input.step_shape: must be a list of 2 to 4 positive sizes")])
def test_a_step_shape_holds_the_features_of_a_step(step_shape, kind, message):
    document = {"input": {"kind": kind, "features": 4, "vocab_size": 10, "step_shape": step_shape},
                "layers": [{"type": "lstm", "units": 2}]}
    with pytest.raises(SpecError, match=message):
        specs.from_dict(document)


@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(1, 4), st.integers(1, 5), st.integers(0, 2**16))
def test_a_cnn_applied_to_every_frame_equals_keras_for_any_count_of_frames(saved, examples, frames, seed):
    """TimeDistributed over frames of unknown count: Keras's graph path maps over the batch size instead (it reads
    the shape before swapping batch and steps); every layer must equal the layer called on the frames."""
    model, path = saved["video"]
    spec, _, _ = keras_io.import_model(path)
    assert spec.input.step_shape == (SIDE, SIDE, 1)
    batch = np.random.default_rng(seed).random((examples, frames, SIDE, SIDE, 1)).round(3).astype(np.float32)
    result = ENGINE.run(spec, typed(batch))
    for shown in result.layers:
        expected = keras.Model(model.inputs, model.get_layer(shown.name).output)(batch, training=False)
        np.testing.assert_allclose(shown.output, expected, atol=1e-5, err_msg=shown.name)
