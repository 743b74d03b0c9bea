"""Gradients through time against references the explorer did not compute: tf.GradientTape on a plain Keras model
built here and loaded with the explorer's weights, and finite differences; plus the lessons' claims."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.core.batches import batch_of
from explorer.core.errors import ExplorerError
from explorer.core.gates import gates
from explorer.core.gradients import gradients
from explorer.core.presets import load_preset
from explorer.core.spec import from_dict

VOCAB = 30
KERAS_RNN = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}


def stack(kind, bidirectional, mask_zero, padding, head, rows):
    rnn = {"type": kind, "units": 4, "bidirectional": bidirectional, "return_sequences": head != "last"}
    tail = {"pool": [{"type": "global_average_pooling"}, {"type": "dense", "units": 3, "activation": "softmax"}],
            "last": [{"type": "dense", "units": 3}],
            "per_step": [{"type": "time_distributed_dense", "units": 3}]}[head]
    return from_dict({"format": "rnn-shape-explorer/stack", "version": 1,
                      "input": {"kind": "tokens", "vocab_size": VOCAB}, "batching": {"padding": padding},
                      "layers": [{"type": "embedding", "output_dim": 5, "mask_zero": mask_zero}, rnn, *tail],
                      "seed": 7, "sequences": "\n".join(" ".join(map(str, row)) for row in rows) + "\n"})


def tape_reference(spec, weights, rows, head, target):
    """Plain Keras, by hand: the gradient norms of the chosen output at the embedding's and the RNN's outputs."""
    kind, rnn_spec = spec.layers[1].type, spec.layers[1].params
    padding = spec.batching.padding
    embedding = keras.layers.Embedding(VOCAB, 5, mask_zero=spec.layers[0].params["mask_zero"])
    rnn = KERAS_RNN[kind](4, return_sequences=head != "last")
    if rnn_spec["bidirectional"]:
        rnn = keras.layers.Bidirectional(rnn)
    dense = keras.layers.Dense(3, activation="softmax" if head == "pool" else None)
    x = keras.utils.pad_sequences(rows, padding=padding, value=0)
    steps = x.shape[1]
    names = spec.layer_names()
    pool = keras.layers.GlobalAveragePooling1D() if head == "pool" else (lambda h, mask: h)
    built = pool(rnn(embedding(x), mask=embedding.compute_mask(x)), mask=embedding.compute_mask(x))
    dense.build(built.shape)
    for layer, name in ((embedding, names[0]), (rnn, names[1]), (dense, names[-1])):
        layer.set_weights([weights[f"weights/{name}/{i}"] for i in range(len(layer.get_weights()))])
    with tf.GradientTape(persistent=True) as tape:
        e = embedding(x)
        mask = embedding.compute_mask(x)
        h = rnn(e, mask=mask)
        y = dense(pool(h, mask=mask))
        lengths = np.array([len(row) for row in rows])
        index = np.arange(len(rows))
        if head == "per_step":
            last = lengths - 1 if padding == "post" else np.full(len(rows), steps - 1)
            chosen = y.numpy()[index, last]
        else:
            chosen = y.numpy()
        units = np.full(len(rows), target) if target is not None else chosen.argmax(axis=1)
        selector = np.zeros(y.shape, np.float32)
        if head == "per_step":
            selector[index, last, units] = 1
        else:
            selector[index, units] = 1
        value = tf.reduce_sum(y * selector)
    found = {"input": tape.gradient(value, e), names[1]: tape.gradient(value, h)}
    if head == "per_step":
        found[names[-1]] = tape.gradient(value, y)
    norms = {name: np.linalg.norm(grad.numpy().astype(np.float64), axis=-1)
             for name, grad in found.items() if grad.shape.rank == 3}
    norms[names[0]] = norms["input"]
    return norms, units


@settings(max_examples=16, deadline=None)
@given(kind=st.sampled_from(["simple_rnn", "lstm", "gru"]), bidirectional=st.booleans(), mask_zero=st.booleans(),
       padding=st.sampled_from(["pre", "post"]), head=st.sampled_from(["pool", "last", "per_step"]),
       target=st.none() | st.integers(0, 2),
       rows=st.lists(st.lists(st.integers(1, VOCAB - 1), min_size=1, max_size=7), min_size=1, max_size=3))
def test_gradients_equal_gradient_tape_on_plain_keras(engine, kind, bidirectional, mask_zero, padding, head, target,
                                                      rows):
    spec = stack(kind, bidirectional, mask_zero, padding, head, rows)
    engine.run(spec)
    built, layout = batch_of(engine, spec)
    found = gradients(built, layout, target=target)
    expected, units = tape_reference(spec, engine.weights(), rows, head, target)
    np.testing.assert_array_equal(found.target, units)
    assert set(found.norms) == set(expected)
    for name, values in expected.items():
        assert found.norms[name].shape == layout.mask.shape
        np.testing.assert_allclose(found.norms[name], values, rtol=1e-4, atol=1e-4 * values.max() + 1e-12)
    padded = ~layout.mask
    if mask_zero:
        for name, values in found.norms.items():
            assert np.all(values[padded] == 0.0), f"{name}: a masked padded step has a gradient"
    elif head != "per_step" and padded.any():
        assert np.all(found.norms["input"][padded] > 0), "unmasked padding must show its leak"


@pytest.mark.backends
@pytest.mark.parametrize("lstm", [{}, {"return_state": True, "feeds": "c"}], ids=["output", "state c feeds dense"])
def test_gradients_agree_with_finite_differences(engine, lstm):
    spec = from_dict({"format": "rnn-shape-explorer/stack", "version": 1,
                      "input": {"kind": "features", "features": 2},
                      "layers": [{"type": "lstm", "units": 3, **lstm}, {"type": "dense", "units": 2}], "seed": 1,
                      "sequences": "0.5 -1; 0.2 0.3; -0.7 0.9; 1.1 0.1\n0.3 0.3; -0.4 0.8\n"})
    engine.run(spec)
    built, layout = batch_of(engine, spec)
    found = gradients(built, layout, target=1)
    x = layout.batch.astype(np.float64)
    step = 1e-2
    numeric = np.zeros(x.shape)
    for index in np.ndindex(*x.shape):
        plus, minus = x.copy(), x.copy()
        plus[index] += step
        minus[index] -= step
        row = index[0]
        up = np.asarray(built.model(plus.astype(np.float32)))[row, 1]
        down = np.asarray(built.model(minus.astype(np.float32)))[row, 1]
        numeric[index] = (up - down) / (2 * step)
    np.testing.assert_allclose(found.norms["input"], np.linalg.norm(numeric, axis=-1), rtol=1e-2, atol=1e-5)


def test_target_out_of_range_is_a_clear_error(engine):
    spec = stack("lstm", False, True, "post", "pool", [[1, 2, 3]])
    built, layout = batch_of(engine, spec)
    with pytest.raises(ExplorerError, match="target unit 3 is out of range: the final output has 3 units"):
        gradients(built, layout, target=3)


def ratio_first_to_last(engine, spec) -> float:
    built, layout = batch_of(engine, spec)
    norms = gradients(built, layout).norms["input"][0]
    return norms[0] / norms[-1]


def test_lesson_simple_rnn_forgets_lstm_remembers(engine):
    spec = load_preset("forgetting_simple_rnn")
    assert spec.layers[0].type == "simple_rnn" and len(spec.sequences.splitlines()) == 2
    simple = ratio_first_to_last(engine, spec)
    spec.layers[0].type = "lstm"
    lstm = ratio_first_to_last(engine, spec)
    assert simple < 1e-3, "SimpleRNN: the first step's gradient is orders of magnitude below the last step's"
    assert lstm > 10 * simple, "LSTM: the gradient falls off far less"


@pytest.mark.backends
def test_lesson_mask_stops_the_gradient(engine):
    spec = load_preset("mask_stops_gradient")
    built, layout = batch_of(engine, spec)
    padded = ~layout.mask
    assert padded.any()
    assert np.all(gradients(built, layout).norms["input"][padded] == 0.0)
    spec.layers[0].params["mask_zero"] = False
    built, layout = batch_of(engine, spec)
    leaking = gradients(built, layout).norms["input"]
    assert np.all(leaking[padded] > 0)
    short = int(np.argmin(layout.lengths))         # post-padding: the padding after the tokens weighs most
    assert leaking[short][padded[short]].max() > leaking[short][layout.mask[short]].max()


def test_lesson_forget_gate_saturation(engine):
    spec = load_preset("forget_gate_saturation")

    def saturated(text):
        built, layout = batch_of(engine, spec, text)
        forget = gates(built, layout)["lstm_1/forget"][layout.mask]
        return np.mean((forget < 0.1) | (forget > 0.9))

    scaled = re.sub(r"\d+(\.\d+)?", lambda m: f"{float(m.group()) / 100:.4f}", spec.sequences.split("\n", 1)[1])
    assert saturated(spec.sequences) > 0.8
    assert saturated(scaled) < 0.1


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed here")
def test_jax_gives_the_same_gates_and_gradients(engine, tmp_path):
    spec = load_preset("mask_stops_gradient")
    built, layout = batch_of(engine, spec)
    expected = {**{f"gates/{k}": v for k, v in gates(built, layout).items()}, **gradients(built, layout).arrays()}
    out, weights = tmp_path / "jax.npz", tmp_path / "weights.npz"
    np.savez(weights, **{f"{name}/{i}": value for name, layer in built.keras_layers.items()
                         for i, value in enumerate(layer.get_weights())})
    code = f"""if True:
        import numpy as np
        from explorer.core.batches import batch_of
        from explorer.core.gates import gates
        from explorer.core.gradients import gradients
        from explorer.core.presets import load_preset
        from explorer.core.run import Engine
        built, layout = batch_of(Engine(), load_preset("mask_stops_gradient"))
        saved = np.load({str(weights)!r})    # initial weights differ between backends: the same ones here
        for name, layer in built.keras_layers.items():
            layer.set_weights([saved[f"{{name}}/{{i}}"] for i in range(len(layer.get_weights()))])
        found = {{**{{f"gates/{{k}}": v for k, v in gates(built, layout).items()}}, **gradients(built, layout).arrays()}}
        np.savez({str(out)!r}, **found)
    """
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "KERAS_BACKEND": "jax"})
    assert done.returncode == 0, done.stderr
    found = np.load(out)
    assert set(found.files) == set(expected)
    for name, values in expected.items():
        np.testing.assert_allclose(found[name], values, rtol=1e-4, atol=1e-6, err_msg=name)
