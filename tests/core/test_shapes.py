"""Symbolic and concrete shapes of every layer type, the states, the FC input, seeds.

Expected shapes and parameter counts are computed by rule in the test (Keras's formulas), never copied
from the explorer's output.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from explorer.core import spec as specs
from explorer.core.errors import StackError

TEXT = "1 2 3 4 5\n6 7\n8 9 10\n"     # B = 3, T = 5
B, T = 3, 5
EMB = 4


def tokens_stack(layers, **batching):
    return specs.from_dict({"input": {"kind": "tokens", "vocab_size": 50}, "batching": batching,
                            "layers": [{"type": "embedding", "output_dim": EMB, "mask_zero": True}, *layers],
                            "seed": 4})


def recurrent_params(kind: str, inputs: int, units: int, bidirectional: bool) -> int:
    gates = {"simple_rnn": 1, "lstm": 4, "gru": 3}[kind]
    biases = 2 if kind == "gru" else 1         # GRU reset_after=True keeps a second (recurrent) bias
    one = gates * units * (inputs + units + biases)
    return one * (2 if bidirectional else 1)


def recurrent_width(units: int, options: dict) -> int:
    return 2 * units if options.get("bidirectional") and options.get("merge_mode", "concat") == "concat" else units


def expected_states(name: str, kind: str, units: int, options: dict) -> dict[str, tuple]:
    own = ["h", "c"] if kind == "lstm" else ["h"]
    if options.get("bidirectional"):
        own = [f"forward_{s}" for s in own] + [f"backward_{s}" for s in own]
    return {f"{name}/state/{s}": (None, units) for s in own}


BIDIRECTIONAL = [{}] + [{"bidirectional": True, "merge_mode": m} for m in specs.MERGE_MODES]


@pytest.mark.parametrize("options", BIDIRECTIONAL, ids=["uni", *specs.MERGE_MODES])
@pytest.mark.parametrize("kind", specs.RECURRENT_TYPES)
@pytest.mark.parametrize("last_state", [False, True], ids=["last-plain", "last-state"])
def test_recurrent_shapes_and_states(engine, kind, options, last_state):
    """Every return_sequences × return_state × bidirectional × merge_mode combination."""
    combos = [(True, False, 3), (True, True, 4), (False, last_state, 5)]
    layers = [{"type": kind, "units": u, "return_sequences": rs, "return_state": st, **options}
              for rs, st, u in combos]
    spec = tokens_stack(layers)
    result = engine.run(spec, TEXT)
    built = engine.built_for(spec)
    inputs = EMB
    for (sequences, state, units), name, info in zip(combos, spec.layer_names()[1:], built.layers[1:]):
        width = recurrent_width(units, options)
        symbolic = (None, None, width) if sequences else (None, width)
        concrete = (B, T, width) if sequences else (B, width)
        layer = result.layer(name)
        assert layer.symbolic_shape == symbolic
        assert layer.shape == concrete == layer.output.shape
        assert layer.time_major == sequences
        assert layer.params == recurrent_params(kind, inputs, units, bool(options))
        states = expected_states(name, kind, units, options) if state else {}
        assert info.extra == states
        assert set(layer.extras) == set(states)
        for key in states:
            assert layer.extras[key].shape == (B, units)
        assert (layer.mask is not None) == sequences            # the mask goes on only with the time axis
        assert layer.mask_role == ("carries" if sequences else "consumes")
        inputs = width
    final = result.layer(spec.layer_names()[-1])
    assert result.output_shape == final.shape
    if not options and last_state:
        # unidirectional: the returned last output is the final h
        np.testing.assert_allclose(final.output, final.extras[f"{spec.layer_names()[-1]}/state/h"], atol=1e-6)


def test_bidirectional_states_are_the_two_directions(engine):
    spec = tokens_stack([{"type": "lstm", "units": 3, "return_state": True, "bidirectional": True}])
    layer = engine.run(spec, TEXT).layer("lstm_1")
    out = layer.output
    np.testing.assert_allclose(out[:, :3], layer.extras["lstm_1/state/forward_h"], atol=1e-6)
    np.testing.assert_allclose(out[:, 3:], layer.extras["lstm_1/state/backward_h"], atol=1e-6)
    assert not np.allclose(layer.extras["lstm_1/state/forward_c"], layer.extras["lstm_1/state/forward_h"])


# --- every other layer type: (layers after embedding + LSTM(6, sequences)) → expected per-layer shapes ---

U = 6
HEAD_CASES = {
    "global_average_pooling": ([{"type": "global_average_pooling"}], [((None, U), (B, U), 0)]),
    "global_max_pooling": ([{"type": "global_max_pooling"}], [((None, U), (B, U), 0)]),
    "masked_mean_pooling": ([{"type": "masked_mean_pooling"}], [((None, U), (B, U), 0)]),
    "time_average": ([{"type": "time_average"}], [((None, U), (B, U), 0)]),
    "last_timestep": ([{"type": "last_timestep"}], [((None, U), (B, U), 0)]),
    "attention_pooling": ([{"type": "attention_pooling"}], [((None, U), (B, U), U + 1)]),
    "dense_on_sequence": ([{"type": "dense", "units": 7}], [((None, None, 7), (B, T, 7), (U + 1) * 7)]),
    "time_distributed_dense": ([{"type": "time_distributed_dense", "units": 7, "activation": "relu"}],
                               [((None, None, 7), (B, T, 7), (U + 1) * 7)]),
    "pool_then_dense": ([{"type": "masked_mean_pooling"}, {"type": "dense", "units": 2, "activation": "softmax"}],
                        [((None, U), (B, U), 0), ((None, 2), (B, 2), (U + 1) * 2)]),
    "custom_mean": ([{"type": "custom", "expression": "ops.mean(x, axis=1)"}], [((None, U), (B, U), 0)]),
    "custom_keeps_time": ([{"type": "custom", "expression": "x * 2 + 1"}], [((None, None, U), (B, T, U), 0)]),
    "custom_drops_units": ([{"type": "custom", "expression": "ops.max(x, axis=-1)"}], [((None, None), (B, T), 0)]),
}


@pytest.mark.parametrize("case", HEAD_CASES)
def test_layer_type_shapes(engine, case):
    heads, expected = HEAD_CASES[case]
    spec = tokens_stack([{"type": "lstm", "units": U, "return_sequences": True}, *heads])
    result = engine.run(spec, TEXT, trust=True)
    assert result.layer("embedding_1").symbolic_shape == (None, None, EMB)
    assert result.layer("embedding_1").shape == (B, T, EMB)
    assert result.layer("embedding_1").params == 50 * EMB
    for layer, (symbolic, concrete, params) in zip(result.layers[2:], expected):
        assert layer.symbolic_shape == symbolic, layer.name
        assert layer.shape == concrete == layer.output.shape, layer.name
        assert layer.params == params, layer.name
    if case == "attention_pooling":
        assert result.layer("attention_pooling_1").extras["attention_pooling_1/attention"].shape == (B, T)
        assert engine.built_for(spec).layers[2].extra == {"attention_pooling_1/attention": (None, None)}
    assert result.output_shape == expected[-1][1]


@pytest.mark.parametrize("maxlen", [5, 8])
def test_flatten_shape_depends_on_maxlen(engine, maxlen):
    spec = tokens_stack([{"type": "gru", "units": 3, "return_sequences": True}, {"type": "flatten"},
                         {"type": "dense", "units": 2}], maxlen=maxlen)
    result = engine.run(spec, TEXT)
    assert result.input.shape == (B, maxlen)
    assert result.layer("embedding_1").symbolic_shape == (None, maxlen, EMB)
    assert result.layer("gru_1").symbolic_shape == (None, maxlen, 3)
    assert result.layer("flatten_1").symbolic_shape == (None, maxlen * 3)
    assert result.layer("flatten_1").shape == (B, maxlen * 3)
    assert result.layer("dense_1").params == (maxlen * 3 + 1) * 2
    fc = result.fc_input
    assert fc.layer == "dense_1" and fc.symbolic_shape == (None, maxlen * 3) and fc.shape == (B, maxlen * 3)
    assert f"{maxlen * 3} = {maxlen} timesteps × 3" in fc.explanation
    assert "maxlen" in fc.explanation


def test_flatten_without_maxlen_is_refused(engine):
    spec = tokens_stack([{"type": "lstm", "units": 3, "return_sequences": True}, {"type": "flatten"}])
    with pytest.raises(StackError, match="flatten_1 .*set maxlen"):
        engine.run(spec, TEXT)


def test_masking_on_features_shapes(engine):
    spec = specs.from_dict({"input": {"kind": "features", "features": 3},
                            "layers": [{"type": "masking"}, {"type": "simple_rnn", "units": 2}]})
    result = engine.run(spec, "1 2 3; 4 5 6\n7 8 9\n")
    assert result.layer("masking_1").symbolic_shape == (None, None, 3)
    assert result.layer("masking_1").shape == (2, 2, 3)
    assert result.layer("masking_1").mask_role == "creates"
    assert result.layer("simple_rnn_1").shape == (2, 2)
    assert result.layer("simple_rnn_1").params == 2 * (3 + 2 + 1)


def test_mask_roles(engine):
    spec = tokens_stack([{"type": "lstm", "units": 3, "return_sequences": True},
                         {"type": "time_distributed_dense", "units": 3},
                         {"type": "global_max_pooling"}, {"type": "dense", "units": 2}])
    result = engine.run(spec, TEXT)
    roles = {layer.name: layer.mask_role for layer in result.layers}
    assert roles == {"embedding_1": "creates", "lstm_1": "carries", "time_distributed_dense_1": "carries",
                     "global_max_pooling_1": "drops", "dense_1": "none"}
    report = result.to_json()
    assert [layer["mask"] for layer in report["layers"]] == [True, True, True, False, False]
    assert any("global_max_pooling_1 ignores the mask" in w for w in result.warnings)


# --- FC input ---

@pytest.mark.parametrize("options, width, phrase", [
    ({}, 5, "5 = lstm_1's 5 units"),
    ({"bidirectional": True}, 10, "10 = 2 × 5 units of bidirectional lstm_1 (merge_mode concat)"),
    ({"bidirectional": True, "merge_mode": "ave"}, 5, "5 = 5 units of bidirectional lstm_1 (merge_mode ave)"),
])
def test_fc_input_after_pooling(engine, options, width, phrase):
    spec = tokens_stack([{"type": "lstm", "units": 5, "return_sequences": True, **options},
                         {"type": "global_average_pooling"}, {"type": "dense", "units": 2}])
    result = engine.run(spec, TEXT)
    fc = result.fc_input
    assert fc.layer == "dense_1"
    assert fc.symbolic_shape == (None, width)
    assert fc.shape == (B, width)
    assert phrase in fc.explanation
    assert "global average pooling over time by global_average_pooling_1" in fc.explanation
    assert "independent of the number of timesteps" in fc.explanation
    report = result.to_json()["fc_input"]
    assert report == {"layer": "dense_1", "symbolic_shape": [None, width], "shape": [B, width],
                      "explanation": fc.explanation}


def test_fc_input_after_last_state(engine):
    spec = tokens_stack([{"type": "gru", "units": 7}, {"type": "dense", "units": 2}])
    fc = engine.run(spec, TEXT).fc_input
    assert (fc.layer, fc.symbolic_shape, fc.shape) == ("dense_1", (None, 7), (B, 7))
    assert "7 = gru_1's 7 units (last state, return_sequences off)" in fc.explanation


def test_fc_input_on_a_sequence_explains_per_timestep(engine):
    spec = tokens_stack([{"type": "gru", "units": 7, "return_sequences": True}, {"type": "dense", "units": 2}])
    result = engine.run(spec, TEXT)
    fc = result.fc_input
    assert (fc.symbolic_shape, fc.shape) == ((None, None, 7), (B, T, 7))
    assert "receives a sequence (None, None, 7)" in fc.explanation and "every timestep" in fc.explanation
    assert any("dense_1 is applied at every timestep" in w for w in result.warnings)


def test_fc_input_absent_without_dense_after_the_rnn(engine):
    spec = tokens_stack([{"type": "gru", "units": 7}])
    result = engine.run(spec, TEXT)
    assert result.fc_input is None
    assert result.to_json()["fc_input"] is None


def test_symbolic_shapes_independent_of_batch(engine):
    spec = tokens_stack([{"type": "lstm", "units": 3, "return_sequences": True}, {"type": "dense", "units": 2}])
    small = engine.run(spec, "1\n")
    large = engine.run(spec, "1 2 3 4 5 6 7 8 9\n" * 4)
    assert [l.symbolic_shape for l in small.layers] == [l.symbolic_shape for l in large.layers]
    assert small.layer("dense_1").shape == (1, 1, 2)
    assert large.layer("dense_1").shape == (4, 9, 2)


# --- seeds ---

def _numbers(engine, spec):
    result = engine.run(spec, TEXT)
    return {layer.name: layer.output.copy() for layer in result.layers}


def test_same_seed_same_numbers_different_seed_different(engine):
    spec = tokens_stack([{"type": "lstm", "units": 3, "return_sequences": True},
                         {"type": "attention_pooling"}, {"type": "dense", "units": 2}])
    first = _numbers(engine, spec)
    other = spec.copy()
    other.seed = 5
    different = _numbers(engine, other)
    again = _numbers(engine, spec.copy())           # a rebuild after another model
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])
        assert not np.allclose(first[name], different[name]), name


def test_same_seed_same_numbers_in_a_fresh_engine(engine):
    from explorer.core.run import Engine
    spec = tokens_stack([{"type": "simple_rnn", "units": 3}])
    first = _numbers(engine, spec)
    fresh = _numbers(Engine(), spec)
    for name in first:
        np.testing.assert_array_equal(first[name], fresh[name])


@pytest.mark.parametrize("expression, reason", [("1 / 0", "division by zero"),
                                                ("x * ops.cast(mask, x.dtype)", "None values not supported.")])
def test_a_failing_custom_expression_says_why(engine, expression, reason):
    """Keras wraps the error in "Exception encountered when calling …": the reason itself must reach the user."""
    spec = specs.from_dict({"input": {"kind": "tokens", "vocab_size": 50},
                            "layers": [{"type": "embedding", "output_dim": 4},      # no mask: mask is None
                                       {"type": "custom", "expression": expression}]})
    with pytest.raises(StackError) as caught:
        engine.run(spec, TEXT, trust=True)
    assert caught.value.message == f'custom_1: the expression "{expression}" failed: {reason}'
    assert caught.value.layer == "custom_1"


@pytest.mark.parametrize("expression", ["mask", "(x, x)", "[x, mask]"])
def test_a_custom_expression_must_give_one_tensor(engine, expression):
    spec = specs.from_dict({"input": {"kind": "tokens", "vocab_size": 50},
                            "layers": [{"type": "embedding", "output_dim": 4},
                                       {"type": "custom", "expression": expression}]})
    with pytest.raises(StackError) as caught:
        engine.run(spec, TEXT, trust=True)
    # Keras itself refuses some non-tensors; the explorer catches the rest (None, tuples)
    assert re.match(r'^custom_1: the expression ".*" (must give one tensor, got |failed: All operation outputs '
                    r"must be tensors)", caught.value.message)


def test_a_layer_may_take_the_input_s_name(engine):
    """A .keras model's layer may be called "sequences": the model input then takes another name."""
    spec = specs.from_dict({"input": {"kind": "tokens", "vocab_size": 50},
                            "layers": [{"type": "embedding", "output_dim": 4},
                                       {"type": "gru", "units": 2, "name": "sequences"}]})
    result = engine.run(spec, TEXT)
    assert [layer.name for layer in result.layers] == ["embedding_1", "sequences"]
    assert result.layers[1].shape == (result.input.shape[0], 2)
