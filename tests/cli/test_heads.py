"""Models with several outputs on the command line: every output equals model.predict's, and every head's FC input
has the shape of what that Dense takes in the Keras model itself. Models written here with plain Keras, trained one
step, saved as .keras and opened as a user would (`run MODEL.keras --json`)."""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
from keras import layers

from explorer import cli

TOKENS = [[3, 7, 1, 9, 4], [5, 2], [8, 8, 6, 1]]


def two_heads_on_one_gru():
    """A topic per sequence (pooled, through a hidden Dense) and a tag per step, both from one GRU."""
    i = keras.Input((None,), dtype="int32")
    x = layers.GRU(4, return_sequences=True, name="shared")(layers.Embedding(20, 3, mask_zero=True, name="emb")(i))
    pooled = layers.GlobalAveragePooling1D(name="pool")(x)
    topic = layers.Dense(3, activation="softmax", name="topic")(layers.Dense(5, activation="relu", name="hidden")(pooled))
    tags = layers.Dense(2, activation="sigmoid", name="tags")(x)
    return keras.Model(i, [topic, tags])


def saved(path):
    keras.utils.set_random_seed(5)
    model = two_heads_on_one_gru()
    model.compile("adam", ["categorical_crossentropy", "binary_crossentropy"])
    batch = keras.utils.pad_sequences(TOKENS, padding="post")
    model.fit(batch, [np.eye(3, dtype="float32")[[0, 1, 2]], np.ones((3, batch.shape[1], 2), "float32")],
              verbose=0)
    model.save(path)
    return model, batch


def test_two_heads_on_one_gru_show_both_outputs_and_both_fc_inputs(tmp_path, capsys):
    model, batch = saved(tmp_path / "model.keras")
    (tmp_path / "input.txt").write_text("\n".join(" ".join(map(str, t)) for t in TOKENS) + "\n")
    done = subprocess.run([sys.executable, "main.py", "run", str(tmp_path / "model.keras"), "--input",
                           str(tmp_path / "input.txt"), "--npz", str(tmp_path / "out.npz"), "--json", "-"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    arrays = np.load(tmp_path / "out.npz")
    names = [tensor._keras_history.operation.name for tensor in model.outputs]
    assert [output["name"] for output in report["outputs"]] == names == ["topic", "tags"]
    for output, expected in zip(report["outputs"], model.predict(batch, verbose=0)):
        assert output["shape"] == list(expected.shape)
        np.testing.assert_allclose(arrays[f"out/{output['name']}"], expected, atol=1e-5)
    # each head's FC input is what its first Dense takes in Keras's own graph
    heads = {fc["output"]: fc for fc in report["fc_inputs"]}
    assert {output: fc["layer"] for output, fc in heads.items()} == {"topic": "hidden", "tags": "tags"}
    for fc in heads.values():
        dense_input = model.get_layer(fc["layer"]).input
        assert fc["symbolic_shape"] == list(dense_input.shape)
        assert fc["source"] == dense_input._keras_history.operation.name
        assert fc["shape"] == list(arrays[f"out/{fc['source']}"].shape)
    assert "runs at every timestep" in heads["tags"]["explanation"]
    assert heads["topic"]["explanation"].startswith("4 = shared's 4 units, global average pooling over time")
    assert "tags is applied at every timestep separately (its input is a sequence (None, None, 4))" in \
        " ".join(report["warnings"])
    assert report["fc_input"] == {key: heads["topic"][key] for key in ("layer", "symbolic_shape", "shape",
                                                                       "explanation")}
    # the plain report names both heads
    assert cli.main(["run", str(tmp_path / "model.keras"), "--input", str(tmp_path / "input.txt")]) == 0
    printed = capsys.readouterr().out
    assert "FC input of hidden: (None, 4)" in printed and "FC input of tags: (None, None, 4)" in printed


def test_a_merge_and_a_keras_layer_that_changes_the_width_explain_the_fc_input_size(tmp_path):
    from explorer.core import keras_io
    from explorer.core.run import Engine
    i = keras.Input((None,), dtype="int32")
    x = layers.Embedding(20, 3, name="emb")(i)
    joined = layers.Concatenate(name="join")([layers.LSTM(2, name="left")(x), layers.GRU(3, name="right")(x)])
    convolved = layers.GlobalMaxPooling1D(name="pool")(
        layers.Conv1D(7, 2, name="conv")(layers.LSTM(4, return_sequences=True, name="seq")(x)))
    model = keras.Model(i, [layers.Dense(1, name="merged")(joined), layers.Dense(2, name="convolved")(convolved)])
    model.save(tmp_path / "model.keras")
    spec, _, _ = keras_io.import_model(tmp_path / "model.keras")
    heads = {fc.layer: fc for fc in Engine().run(spec, "1 2 3\n4 5\n").fc_inputs}
    merged, convolved = model.get_layer("merged").input.shape[-1], model.get_layer("convolved").input.shape[-1]
    assert heads["merged"].explanation.startswith(f"{merged} = join's {merged} features, merged from left, right")
    assert heads["convolved"].explanation.startswith(f"{convolved} = conv's {convolved} features (Conv1D)")
