"""HDF5 models (`.h5`, the format of Keras 2 and of `model.save("model.h5")`): written here with plain Keras, opened
as a user opens them, every layer equal to a Keras sub-model and the output to `predict`; a hostile HDF5 file is
refused from its sizes and classes before Keras reads it."""

import json
import shutil

import h5py
import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from keras import layers

from explorer import cli
from explorer.core import keras_io
from explorer.core.errors import SpecError, StackError
from explorer.core.run import Engine

from .keras_files import trained_and_saved

ENGINE = Engine()
TEXTS = [[1, 2, 3, 4], [5, 6], [7, 8, 9]]


def stacked():
    """Embedding → Bidirectional LSTM → LayerNormalization → LSTM → Dense, as the issue's list writes it."""
    return keras.Sequential([keras.Input((None,), dtype="int32"), layers.Embedding(12, 4, mask_zero=True, name="emb"),
                             layers.Bidirectional(layers.LSTM(3, return_sequences=True), name="bi"),
                             layers.LayerNormalization(name="norm"), layers.LSTM(3, name="lstm"),
                             layers.Dense(2, name="head")])


def plain():
    """Embedding → LSTM → GRU → Dense: the recurrent model of many Keras 2 tutorials."""
    return keras.Sequential([keras.Input((None,), dtype="int32"), layers.Embedding(12, 4, mask_zero=True, name="emb"),
                             layers.LSTM(3, return_sequences=True, name="lstm"), layers.GRU(3, name="gru"),
                             layers.Dense(2, name="head")])


def encoder_decoder():
    """Two inputs; the decoder starts from the encoder's states (initial_state=[h, c]). Unmasked: Keras records a
    masked Embedding feeding such a call as a NotEqual operation, which its HDF5 loader cannot find."""
    source = keras.Input((None,), dtype="int32", name="source")
    target = keras.Input((None,), dtype="int32", name="target")
    _, h, c = layers.LSTM(4, return_state=True, name="encoder")(layers.Embedding(12, 3, name="source_emb")(source))
    decoded = layers.LSTM(4, return_sequences=True, name="decoder")(
        layers.Embedding(10, 3, name="target_emb")(target), initial_state=[h, c])
    return keras.Model([source, target], layers.Dense(10, name="logits")(decoded))


def text(rows) -> str:
    return "\n".join(" ".join(map(str, row)) for row in rows) + "\n"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hdf5")
    ids = keras.utils.pad_sequences(TEXTS, padding="post")
    return {"stacked": trained_and_saved(stacked, [ids], folder / "stacked.h5"),
            "pair": trained_and_saved(encoder_decoder, [ids, ids], folder / "pair.h5"),
            "plain": trained_and_saved(plain, [ids], folder / "plain.h5"), "folder": folder}


ROWS = st.lists(st.lists(st.integers(1, 9), min_size=1, max_size=6), min_size=1, max_size=4)


@settings(max_examples=4, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ROWS, st.sampled_from(["pre", "post"]))
def test_an_hdf5_model_opens_and_every_layer_equals_keras(saved, rows, padding):
    model = saved["stacked"]
    spec, _, _ = keras_io.import_model(saved["folder"] / "stacked.h5")
    assert spec.layer_names() == ["emb", "bi", "norm", "lstm", "head"]
    spec.batching.padding = padding
    result = ENGINE.run(spec, text(rows))
    batch = keras.utils.pad_sequences(rows, padding=padding)
    for shown in result.layers:
        expected = keras.Model(model.inputs, model.get_layer(shown.name).output).predict(batch, verbose=0)
        valid = batch != 0 if shown.output.ndim == 3 else np.ones(len(rows), bool)
        np.testing.assert_allclose(shown.output[valid], expected[valid], atol=1e-5, err_msg=shown.name)
    np.testing.assert_allclose(result.layers[-1].output, model.predict(batch, verbose=0), atol=1e-5)


def test_an_hdf5_encoder_decoder_with_initial_state_equals_predict(saved):
    model = saved["pair"]
    spec, _, _ = keras_io.import_model(saved["folder"] / "pair.h5")
    assert spec.layers[spec.layer_names().index("decoder")].initial_state == ["encoder/state/h", "encoder/state/c"]
    targets = [[1, 2], [3, 4, 5], [6]]
    result = ENGINE.run(spec, {"source": text(TEXTS), "target": text(targets)})
    batch = {"source": keras.utils.pad_sequences(TEXTS, padding="post"),
             "target": keras.utils.pad_sequences(targets, padding="post")}
    np.testing.assert_allclose(result.layer("logits").output, model.predict(batch, verbose=0), atol=1e-5)


def test_run_opens_an_hdf5_model_from_the_command_line(saved, tmp_path, capsys):
    (tmp_path / "ids.txt").write_text(text(TEXTS))
    npz = tmp_path / "out.npz"
    code = cli.main(["run", str(saved["folder"] / "stacked.h5"), "--input", str(tmp_path / "ids.txt"),
                     "--npz", str(npz)])
    assert code == 0, capsys.readouterr().err
    batch = keras.utils.pad_sequences(TEXTS, padding="post")
    np.testing.assert_allclose(np.load(npz)["out/head"], saved["stacked"].predict(batch, verbose=0), atol=1e-5)


def rewritten(source, target, edit) -> None:
    """Copies an HDF5 model with its model_config passed through `edit(config)`."""
    shutil.copy(source, target)
    with h5py.File(target, "r+") as file:
        file.attrs["model_config"] = json.dumps(edit(json.loads(file.attrs["model_config"])))


def as_keras_2_wrote_it(node):
    """A config as Keras 2 wrote it: no `module` nor `registered_name`, a dtype as its name."""
    if isinstance(node, list):
        return [as_keras_2_wrote_it(item) for item in node]
    if not isinstance(node, dict):
        return node
    if node.get("class_name") == "DTypePolicy":
        return node["config"]["name"]
    return {key: as_keras_2_wrote_it(value) for key, value in node.items() if key not in ("module", "registered_name")}


def test_an_hdf5_model_whose_config_is_keras_2_s_opens_and_equals_predict(saved, tmp_path):
    rewritten(saved["folder"] / "plain.h5", tmp_path / "old.h5", as_keras_2_wrote_it)
    with h5py.File(tmp_path / "old.h5") as file:
        assert '"module"' not in file.attrs["model_config"]
    spec, _, _ = keras_io.import_model(tmp_path / "old.h5")
    batch = keras.utils.pad_sequences(TEXTS, padding="post")
    np.testing.assert_allclose(ENGINE.run(spec, text(TEXTS)).layers[-1].output,
                               saved["plain"].predict(batch, verbose=0), atol=1e-5)


def keras_2_lambda(config):
    """Keras 2's Lambda: its function as marshalled bytecode."""
    config["config"]["layers"].insert(2, {"class_name": "Lambda", "config": {
        "name": "doubled", "function": ["4wEAAAAAAAAAAAAAAAEAAAACAAAAQwAAAHMIAAAAfABkARQAUwApAk7p", None, None],
        "function_type": "lambda", "output_shape": None}})
    return config


def unknown_class(config):
    config["config"]["layers"][2]["class_name"] = "TFOpLambda"   # a Keras 2 class Keras 3 does not have
    return config


@pytest.mark.parametrize("edit, message", [
    (keras_2_lambda, r"__lambda__ \(Python code saved with a Lambda layer\) \(used by doubled\)"),
    (unknown_class, r"classes that neither Keras nor the explorer knows: TFOpLambda \(used by bi\)\. .*Keras reads "
                    r"them from a \.keras file only"),
])
def test_an_hdf5_model_s_classes_are_checked_before_keras_reads_it(saved, tmp_path, monkeypatch, edit, message):
    rewritten(saved["folder"] / "stacked.h5", tmp_path / "model.h5", edit)
    monkeypatch.setattr(keras.saving, "load_model", lambda *a, **k: pytest.fail("Keras read a refused file"))
    with pytest.raises(StackError, match=message):
        keras_io.import_model(tmp_path / "model.h5")


def test_an_hdf5_file_too_large_or_without_a_model_is_refused_before_keras_reads_it(saved, tmp_path, monkeypatch):
    monkeypatch.setattr(keras.saving, "load_model", lambda *a, **k: pytest.fail("Keras read a refused file"))
    huge = tmp_path / "huge.h5"
    shutil.copy(saved["folder"] / "stacked.h5", huge)
    with h5py.File(huge, "r+") as file:   # announced, never written: the file stays small
        file.create_dataset("model_weights/extra/kernel", shape=(2**20, 2**12), dtype="float32")
    with pytest.raises(SpecError, match=r"huge\.h5 holds more than .* MB of weights: the file is damaged or hostile"):
        keras_io.import_model(huge)
    weights = tmp_path / "only.weights.h5"
    saved["stacked"].save_weights(weights)
    with pytest.raises(SpecError, match=r"only\.weights\.h5 holds weights only \(save_weights\), no model"):
        keras_io.import_model(weights)
