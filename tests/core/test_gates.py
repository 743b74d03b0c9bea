"""Gates per timestep: `h` recomposed from the reported gates by a NumPy recurrence written here equals the
output of the plain Keras layer on every valid step; steps the mask skips hold 0."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.core import gates as gates_module
from explorer.core.batches import batch_of
from explorer.core.errors import ExplorerError
from explorer.core.gates import cell_gates, gates
from explorer.core.run import Engine
from explorer.core.spec import from_dict

NUMPY_ACTIVATIONS = {
    "tanh": np.tanh,
    "relu": lambda v: np.maximum(v, 0.0),
    "sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)),
    "hard_sigmoid": lambda v: np.clip((v + 3.0) / 6.0, 0.0, 1.0),
}


def recompose(kind: str, gates: dict, valid: np.ndarray, activation: str) -> np.ndarray:
    """h at every step in processing order, from the gates alone; the state carries over invalid steps."""
    act = NUMPY_ACTIVATIONS[activation]
    first = next(iter(gates.values()))
    h = np.zeros(first.shape[::2], np.float64)
    c = np.zeros_like(h)
    out = np.zeros(first.shape, np.float64)
    for t in range(first.shape[1]):
        keep = valid[:, t][:, None]
        if kind == "lstm":
            new_c = gates["forget"][:, t] * c + gates["input"][:, t] * gates["candidate"][:, t]
            np.testing.assert_allclose(np.where(keep, new_c, 0), gates["cell"][:, t], atol=1e-5)
            new_h = gates["output"][:, t] * act(new_c)
            c = np.where(keep, new_c, c)
        else:
            z = gates["update"][:, t]
            new_h = z * h + (1.0 - z) * gates["candidate"][:, t]
        h = np.where(keep, new_h, h)
        out[:, t] = h
    return out


def padded(lengths, steps, padding, features, rng):
    items = [rng.normal(0, 1.5, size=(n, features)).astype("float32") for n in lengths]
    x = keras.utils.pad_sequences(items, maxlen=steps, dtype="float32", padding=padding, value=0.0)
    positions = np.arange(steps)[None, :]
    lengths = np.asarray(lengths)[:, None]
    mask = positions < lengths if padding == "post" else positions >= steps - lengths
    return x, mask


@settings(max_examples=24, deadline=None)
@given(kind=st.sampled_from(["lstm", "gru", "gru_reset_before"]),
       direction=st.sampled_from(["forward", "go_backwards", "bidirectional"]),
       padding=st.sampled_from(["pre", "post"]), masked=st.booleans(),
       activation=st.sampled_from(["tanh", "relu"]), recurrent_activation=st.sampled_from(["sigmoid", "hard_sigmoid"]),
       lengths=st.lists(st.integers(1, 9), min_size=1, max_size=4), units=st.integers(1, 6),
       seed=st.integers(0, 2**16))
def test_h_recomposed_from_the_gates_equals_keras(kind, direction, padding, masked, activation, recurrent_activation,
                                                   lengths, units, seed):
    rng = np.random.default_rng(seed)
    steps = max(lengths) + 1
    x, mask = padded(lengths, steps, padding, 3, rng)
    options = dict(units=units, return_sequences=True, activation=activation,
                   recurrent_activation=recurrent_activation, go_backwards=direction == "go_backwards")
    keras.utils.set_random_seed(seed)
    layer = keras.layers.LSTM(**options) if kind == "lstm" else \
        keras.layers.GRU(**options, reset_after=kind == "gru")
    if direction == "bidirectional":
        layer = keras.layers.Bidirectional(layer, merge_mode=None)
    given_mask = mask if masked else None
    layer.build(x.shape)     # random weights everywhere: Keras starts biases at 0, which would hide a swapped bias
    layer.set_weights([rng.normal(0, 0.6, size=w.shape).astype("float32") for w in layer.get_weights()])
    outputs = layer(x, mask=given_mask)
    found = cell_gates(layer, x, given_mask)
    valid = mask if masked else np.ones_like(mask)
    family = "lstm" if kind == "lstm" else "gru"
    halves = {"forward": outputs} if direction != "bidirectional" else dict(zip(("forward", "backward"), outputs))
    for half, output in halves.items():
        prefix = f"{half}/" if direction == "bidirectional" else ""
        own = {name[len(prefix):]: values for name, values in found.items() if name.startswith(prefix)}
        for values in own.values():
            assert values.shape == (len(lengths), steps, units)
            assert np.all(values[~valid] == 0.0), "steps the mask skips hold 0"
        backwards = direction == "go_backwards" or half == "backward"
        order = (lambda a: a[:, ::-1]) if backwards else (lambda a: a)
        h = recompose(family, {name: order(values) for name, values in own.items()}, order(valid), activation)
        expected = np.asarray(output)
        if half == "backward":     # Bidirectional turns the backward outputs back into input order
            expected = expected[:, ::-1]
        check = order(mask)        # the layer's output on the sequence's valid steps, in processing order
        np.testing.assert_allclose(h[check], expected[check], atol=1e-5, rtol=0)


@pytest.mark.backends
def test_stack_gates_per_piece_match_the_run():
    """Through the explorer: bucket mode, pre-padding, an embedding's mask; gates of the stack's LSTM recompose
    the output the run reports, on the valid steps of every sequence."""
    spec = from_dict({"format": "rnn-shape-explorer/stack", "version": 1,
                      "input": {"kind": "tokens", "vocab_size": 50},
                      "batching": {"mode": "bucket", "padding": "pre", "bucket_width": 2},
                      "layers": [{"type": "embedding", "output_dim": 4, "mask_zero": True},
                                 {"type": "lstm", "units": 5, "return_sequences": True},
                                 {"type": "global_average_pooling"}],
                      "seed": 3, "sequences": "1 2 3 4 5 6 7\n8 9\n10 11 12\n13 14 15 16 17 18\n"})
    engine = Engine()
    result = engine.run(spec)
    built, layout = batch_of(engine, spec)
    found = gates(built, layout)
    assert set(found) == {f"lstm_1/{g}" for g in ("input", "forget", "candidate", "output", "cell")}
    own = {key.split("/")[1]: value for key, value in found.items()}
    h = recompose("lstm", own, result.mask, "tanh")
    np.testing.assert_allclose(h[result.mask], result.layer("lstm_1").output[result.mask], atol=1e-5)
    computed = np.zeros_like(result.mask)       # the steps of the pieces the bucket plan ran
    for piece in layout.pieces:
        computed[piece.rows, piece.offset:piece.offset + piece.batch.shape[1]] = True
    assert np.all(found["lstm_1/forget"][~computed] == 0.0)
    rows = gates(built, layout, rows=[2, 0])
    # the same numbers up to float rounding (a bucket of fewer rows multiplies in another order)
    np.testing.assert_allclose(rows["lstm_1/cell"], found["lstm_1/cell"][[2, 0]], atol=1e-6, rtol=0)


def test_gates_over_the_memory_limit_are_refused_with_the_estimate(monkeypatch):
    spec = from_dict({"format": "rnn-shape-explorer/stack", "version": 1, "input": {"kind": "features", "features": 2},
                      "layers": [{"type": "gru", "units": 8, "bidirectional": True}], "sequences": "1 2; 3 4\n"})
    built, layout = batch_of(Engine(), spec)
    monkeypatch.setattr(gates_module, "MEMORY_LIMIT_MB", 1e-4)
    with pytest.raises(ExplorerError, match=r"the gates of 1 sequence × 2 steps need about 0 MB, over the limit"):
        gates(built, layout)
