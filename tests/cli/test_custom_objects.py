"""Custom layer classes: a model saved by plain Keras with the user's own layer opens with --custom-objects
FILE.py --trust and equals model.predict; without the file the refusal names the class and the layer using it."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys

import keras
import numpy as np
import pytest

CUSTOM = '''
import keras
from keras import ops


@keras.saving.register_keras_serializable(package="demo")
class MyActivation(keras.layers.Layer):
    """x * sigmoid(scale * x), with a learned scale per feature; passes the mask on."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="scale")

    def call(self, x):
        return x * ops.sigmoid(self.scale * x)
'''
TOKENS = [[3, 7, 1, 9], [5, 2], [8, 8, 6, 1, 4]]


def run(*args):
    return subprocess.run([sys.executable, "main.py", *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("custom")
    (folder / "layers.py").write_text(CUSTOM)
    my_activation = runpy.run_path(str(folder / "layers.py"))["MyActivation"]
    keras.utils.set_random_seed(4)
    model = keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(20, 4, mask_zero=True),
                              my_activation(name="act"), keras.layers.LSTM(3), keras.layers.Dense(2)])
    model.compile("adam", "mse")
    batch = keras.utils.pad_sequences(TOKENS, padding="post")
    model.fit(batch, np.ones((3, 2)), verbose=0)
    model.save(folder / "model.keras")
    (folder / "input.txt").write_text("\n".join(" ".join(map(str, row)) for row in TOKENS) + "\n")
    return model, batch, folder


def test_a_custom_layer_loaded_with_custom_objects_equals_predict(saved):
    model, batch, folder = saved
    done = run("run", folder / "model.keras", "--input", folder / "input.txt", "--custom-objects",
               folder / "layers.py", "--trust", "--npz", folder / "out.npz", "--json", "-")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [layer["type"] for layer in report["layers"]] == ["embedding", "keras", "lstm", "dense"]
    assert report["layers"][1]["mask_role"] == "carries"
    arrays = np.load(folder / "out.npz")
    expected = keras.Model(model.inputs, model.get_layer("act").output).predict(batch, verbose=0)
    np.testing.assert_allclose(arrays["out/act"], expected, atol=1e-5)
    np.testing.assert_allclose(arrays[f"out/{model.layers[-1].name}"], model.predict(batch, verbose=0), atol=1e-5)


def test_without_the_file_the_refusal_names_the_class_and_its_layer(saved):
    _, _, folder = saved
    done = run("run", folder / "model.keras", "--input", folder / "input.txt")
    assert done.returncode == 2
    assert "classes that neither Keras nor the explorer knows: " in done.stderr and "MyActivation" in done.stderr
    assert "(used by act)" in done.stderr
    assert "--custom-objects" in done.stderr and "Traceback" not in done.stderr


def test_custom_objects_run_only_with_trust(saved):
    _, _, folder = saved
    done = run("export-code", folder / "model.keras", "--custom-objects", folder / "layers.py")
    assert done.returncode == 2
    assert "--custom-objects runs" in done.stderr and "--trust" in done.stderr
    broken = folder / "broken.py"
    broken.write_text("raise RuntimeError('no')\n")
    done = run("run", folder / "model.keras", "--custom-objects", broken, "--trust")
    assert done.returncode == 2 and "broken.py failed while it ran: RuntimeError: no" in done.stderr
