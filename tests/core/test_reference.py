"""The explorer's per-timestep outputs against an independent NumPy forward pass (tests/core/numpy_rnn.py).

Every recurrent type, plain / go_backwards / bidirectional in each merge mode, masked and unmasked,
pre- and post-padding: every timestep (padded ones included) must match to 1e-5.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from explorer.core import spec as specs
from explorer.core.errors import StackError

from .numpy_rnn import mask_by_hand, pad_by_hand, recurrent_layer

pytestmark = pytest.mark.backends   # NumPy references: the backend matrix runs them all

TOL = dict(atol=1e-5, rtol=1e-5)
TOKENS = [[3, 14, 15, 9, 26, 5], [8, 1], [40, 2, 7, 11], [33]]
TEXT = "\n".join(" ".join(map(str, row)) for row in TOKENS) + "\n"
FEATURES = [[[0.5, -1.0], [1.5, 0.25], [-0.75, 2.0]], [[1.0, 1.0]], [[0.2, -0.4], [0.3, 0.9]]]
FEATURE_TEXT = "\n".join("; ".join(" ".join(str(v) for v in step) for step in row) for row in FEATURES) + "\n"

VARIANTS = [("plain", {}), ("go_backwards", {"go_backwards": True})] + [
    (f"bidirectional-{mode}", {"bidirectional": True, "merge_mode": mode}) for mode in specs.MERGE_MODES]


def token_stack(kind: str, options: dict, masked: bool, *, activation: str = "tanh") -> specs.StackSpec:
    return specs.from_dict({
        "input": {"kind": "tokens", "vocab_size": 50},
        "layers": [
            {"type": "embedding", "output_dim": 4, "mask_zero": masked},
            {"type": kind, "units": 3, "return_sequences": True, "return_state": True, "activation": activation,
             **options},
            {"type": kind, "units": 5, "return_sequences": False, "return_state": True, **options},
        ],
        "seed": 7,
    })


@contextlib.contextmanager
def widened_embedding(engine, spec):
    """Keras initialises embeddings in ±0.05, which keeps every activation near 0 where gate mix-ups hide:
    O(1) vectors make each gate matter. The traced probe reads the same variables; restored afterwards so
    that the shared engine's model keeps its seeded weights."""
    layer = engine.built_for(spec).keras_layers["embedding_1"]
    original = layer.get_weights()
    table = np.random.default_rng(0).normal(size=original[0].shape).astype(np.float32)
    layer.set_weights([table])
    try:
        yield
    finally:
        layer.set_weights(original)


def weights_of(engine, spec, name):
    return engine.built_for(spec).keras_layers[name].get_weights()


def check_recurrent(engine, spec, result, name, x, mask):
    """Compares one recurrent layer (output and states) with the reference; returns the reference output."""
    layer_spec = spec.layers[spec.layer_names().index(name)]
    expected, states = recurrent_layer(layer_spec.type, layer_spec.params, weights_of(engine, spec, name), x, mask)
    got = result.layer(name)
    assert got.output.shape == expected.shape
    np.testing.assert_allclose(got.output, expected, **TOL, err_msg=f"{name} output")
    if not layer_spec.params["return_state"]:
        assert got.extras == {}
        return expected
    assert set(got.extras) == {f"{name}/state/{key}" for key in states}
    for key, value in states.items():
        np.testing.assert_allclose(got.extras[f"{name}/state/{key}"], value, **TOL, err_msg=f"{name} state {key}")
    return expected


@pytest.mark.parametrize("masked", [True, False], ids=["masked", "unmasked"])
@pytest.mark.parametrize("variant", VARIANTS, ids=[v[0] for v in VARIANTS])
@pytest.mark.parametrize("kind", specs.RECURRENT_TYPES)
def test_token_stack_matches_numpy(engine, kind, variant, masked):
    spec = token_stack(kind, variant[1], masked)
    with widened_embedding(engine, spec):
        check_token_stack(engine, spec, kind, masked)


def check_token_stack(engine, spec, kind, masked):
    lengths = [len(row) for row in TOKENS]
    steps = max(lengths)
    for padding in ("post", "pre"):   # same architecture: one build, two batches
        spec.batching.padding = padding
        result = engine.run(spec, TEXT)
        batch = pad_by_hand(TOKENS, steps, padding)
        np.testing.assert_array_equal(result.input, batch)
        valid = mask_by_hand(lengths, steps, padding)
        np.testing.assert_array_equal(result.mask, valid)
        mask = valid if masked else None

        embedded = weights_of(engine, spec, "embedding_1")[0][batch]
        np.testing.assert_allclose(result.layer("embedding_1").output, embedded, **TOL)
        if masked:
            np.testing.assert_array_equal(result.layer("embedding_1").mask, valid)
            np.testing.assert_array_equal(result.layer(f"{kind}_1").mask, valid)
        else:
            assert result.layer("embedding_1").mask is None
            assert result.layer(f"{kind}_1").mask is None
        assert result.layer(f"{kind}_2").mask is None

        first = check_recurrent(engine, spec, result, f"{kind}_1", embedded, mask)
        check_recurrent(engine, spec, result, f"{kind}_2", first, mask)
        assert np.abs(first).max() > 0.05  # far from 0, where gate mix-ups would hide


@pytest.mark.parametrize("kind", specs.RECURRENT_TYPES)
def test_masked_steps_follow_keras_rules(engine, kind):
    """The rules the reference encodes, checked directly on the explorer's output."""
    spec = token_stack(kind, {}, True)
    spec.batching.padding = "post"
    post = engine.run(spec, TEXT).layer(f"{kind}_1").output
    spec.batching.padding = "pre"
    pre = engine.run(spec, TEXT).layer(f"{kind}_1").output
    short = 1   # [8, 1]: two valid steps of six
    # post: padded steps repeat the last valid output; pre: zeros before the first token
    for t in range(2, 6):
        np.testing.assert_array_equal(post[short, t], post[short, 1])
    assert np.all(pre[short, :4] == 0.0)
    # valid steps do not depend on where the padding went
    np.testing.assert_allclose(post[short, :2], pre[short, 4:], **TOL)
    assert np.abs(post[short, :2]).min() > 0


@pytest.mark.parametrize("kind", specs.RECURRENT_TYPES)
def test_unmasked_padding_changes_the_result(engine, kind):
    """Without a mask the padded ids are data: the reference proves the leak is real, not noise."""
    masked = engine.run(token_stack(kind, {}, True), TEXT).layer(f"{kind}_2").output
    spec = token_stack(kind, {}, False)
    unmasked = engine.run(spec, TEXT).layer(f"{kind}_2").output
    # the longest sequence has no padding: same weights (same seed), same final state
    np.testing.assert_allclose(masked[0], unmasked[0], **TOL)
    assert np.abs(masked[1] - unmasked[1]).max() > 1e-4


@pytest.mark.parametrize("padding", ["post", "pre"])
@pytest.mark.parametrize("variant", [VARIANTS[0], VARIANTS[2], VARIANTS[4]], ids=["plain", "bi-concat", "bi-mul"])
@pytest.mark.parametrize("kind", specs.RECURRENT_TYPES)
def test_feature_stack_with_masking_layer(engine, kind, variant, padding):
    spec = specs.from_dict({
        "input": {"kind": "features", "features": 2},
        "batching": {"padding": padding},
        "layers": [{"type": "masking", "mask_value": 0.0},
                   {"type": kind, "units": 4, "return_sequences": True, "activation": "relu", **variant[1]}],
        "seed": 3,
    })
    result = engine.run(spec, FEATURE_TEXT)
    lengths = [len(row) for row in FEATURES]
    batch = pad_by_hand(FEATURES, max(lengths), padding, 0.0, np.float32)
    np.testing.assert_allclose(result.input, batch, **TOL)
    valid = mask_by_hand(lengths, max(lengths), padding)
    np.testing.assert_array_equal(result.layer("masking_1").mask, valid)
    np.testing.assert_allclose(result.layer("masking_1").output, batch * valid[..., None], **TOL)
    check_recurrent(engine, spec, result, f"{kind}_1", batch, valid)


def test_masking_layer_masks_only_all_equal_steps(engine):
    """A step is masked only when *every* feature equals mask_value."""
    spec = specs.from_dict({"input": {"kind": "features", "features": 2},
                            "layers": [{"type": "masking", "mask_value": 1.5}, {"type": "gru", "units": 3}]})
    result = engine.run(spec, "1.5 1.5; 1.5 0; 0 1.5; 2 2\n")
    np.testing.assert_array_equal(result.layer("masking_1").mask, [[False, True, True, True]])
    np.testing.assert_array_equal(result.layer("masking_1").output[0, 0], [0, 0])


@pytest.mark.parametrize("kind", specs.RECURRENT_TYPES)
def test_bidirectional_with_go_backwards_is_refused(engine, kind):
    spec = token_stack(kind, {"bidirectional": True, "go_backwards": True}, True)
    with pytest.raises(StackError) as caught:
        engine.run(spec, TEXT)
    assert f"{kind}_1" in str(caught.value)


# --- the heads after a recurrent layer, from the recurrent output and the mask ---

def _last_valid(x, mask):
    positions = np.where(mask, np.arange(mask.shape[1])[None, :], -1).max(axis=1)
    return x[np.arange(len(x)), positions]


def _masked_mean(x, mask):
    weights = mask[..., None].astype(np.float64)
    return (x * weights).sum(axis=1) / weights.sum(axis=1)


HEADS = {
    "global_average_pooling": lambda x, mask, w: _masked_mean(x, mask),
    "masked_mean_pooling": lambda x, mask, w: _masked_mean(x, mask),
    "global_max_pooling": lambda x, mask, w: x.max(axis=1),            # the mask is ignored
    "time_average": lambda x, mask, w: x.mean(axis=1),                 # the mask is ignored
    "last_timestep": lambda x, mask, w: _last_valid(x, mask),
}


@pytest.mark.parametrize("padding", ["post", "pre"])
@pytest.mark.parametrize("head", [*HEADS, "attention_pooling", "custom"])
def test_heads_match_numpy(engine, head, padding):
    layers = [{"type": "embedding", "output_dim": 4, "mask_zero": True},
              {"type": "gru", "units": 3, "return_sequences": True}, {"type": head},
              {"type": "dense", "units": 2, "activation": "softmax"}]
    if head == "custom":
        layers[2]["expression"] = "ops.sum(x * ops.expand_dims(ops.cast(mask, x.dtype), -1), axis=1)"
    spec = specs.from_dict({"input": {"kind": "tokens", "vocab_size": 50}, "batching": {"padding": padding},
                            "layers": layers, "seed": 5})
    result = engine.run(spec, TEXT, trust=True)
    x = result.layer("gru_1").output.astype(np.float64)
    valid = result.layer("gru_1").mask
    np.testing.assert_array_equal(valid, mask_by_hand([len(row) for row in TOKENS], 6, padding))
    name = spec.layer_names()[2]
    if head in HEADS:
        expected = HEADS[head](x, valid, None)
    elif head == "custom":
        expected = (x * valid[..., None]).sum(axis=1)
    else:
        kernel, bias = weights_of(engine, spec, name)
        scores = (x @ kernel)[..., 0] + bias[0]
        scores = np.where(valid, scores, -np.inf)
        weights = np.exp(scores - scores.max(axis=1, keepdims=True))
        weights /= weights.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(result.layer(name).extras[f"{name}/attention"], weights, **TOL)
        assert np.all(result.layer(name).extras[f"{name}/attention"][~valid] == 0.0)
        expected = (x * weights[..., None]).sum(axis=1)
    np.testing.assert_allclose(result.layer(name).output, expected, **TOL)
    assert result.layer(name).mask is None
    kernel, bias = weights_of(engine, spec, "dense_1")
    logits = expected @ kernel + bias
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(result.layer("dense_1").output, probabilities, **TOL)


@pytest.mark.parametrize("padding", ["post", "pre"])
def test_flatten_and_time_distributed_match_numpy(engine, padding):
    spec = specs.from_dict({
        "input": {"kind": "tokens", "vocab_size": 50},
        "batching": {"padding": padding, "maxlen": 7},
        "layers": [{"type": "embedding", "output_dim": 4},
                   {"type": "simple_rnn", "units": 3, "return_sequences": True},
                   {"type": "time_distributed_dense", "units": 2, "activation": "relu"},
                   {"type": "flatten"}, {"type": "dense", "units": 3, "activation": "tanh"}],
        "seed": 2,
    })
    result = engine.run(spec, TEXT)
    assert result.input.shape == (4, 7)
    x = result.layer("simple_rnn_1").output.astype(np.float64)
    kernel, bias = weights_of(engine, spec, "time_distributed_dense_1")
    per_step = np.maximum(x @ kernel + bias, 0.0)
    np.testing.assert_allclose(result.layer("time_distributed_dense_1").output, per_step, **TOL)
    flat = per_step.reshape(4, 14)
    np.testing.assert_allclose(result.layer("flatten_1").output, flat, **TOL)
    kernel, bias = weights_of(engine, spec, "dense_1")
    np.testing.assert_allclose(result.layer("dense_1").output, np.tanh(flat @ kernel + bias), **TOL)


@pytest.mark.parametrize("padding", ["post", "pre"])
@pytest.mark.parametrize("kind", specs.RECURRENT_TYPES)
def test_bidirectional_backward_half_reverses_only_the_valid_part(engine, kind, padding):
    """With a mask, the backward direction starts at each sequence's last *valid* step, so a short line's
    backward outputs equal those of the line alone; Bidirectional zeroes the padded steps of both halves."""
    spec = token_stack(kind, {"bidirectional": True, "merge_mode": "concat"}, True)
    spec.batching.padding = padding
    padded = engine.run(spec, TEXT)
    alone = engine.run(spec, "8 1\n")
    name = f"{kind}_1"
    out, valid = padded.layer(name).output, padded.mask
    short = 1
    np.testing.assert_allclose(out[short][valid[short]], alone.layer(name).output[0], **TOL)
    assert np.all(out[short][~valid[short]] == 0.0)
    np.testing.assert_allclose(padded.layer(f"{kind}_2").output[short], alone.layer(f"{kind}_2").output[0], **TOL)
