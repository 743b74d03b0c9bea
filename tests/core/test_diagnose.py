"""Every explanation the explorer gives is triggered here, with the layer it concerns and its fix."""

import numpy as np
import pytest

from explorer.core import diagnose
from explorer.core.errors import SequenceError, StackError
from explorer.core.spec import from_dict

TEXT = "1 2 3 4 5\n6 7\n"


def stack(layers, *, kind="tokens", batching=None, **extra):
    data = {"input": {"kind": "tokens", "vocab_size": 50} if kind == "tokens" else {"kind": "features", "features": 2},
            "batching": batching or {}, "layers": layers, **extra}
    return from_dict(data)


EMB = {"type": "embedding", "output_dim": 4, "mask_zero": True}
EMB_NO_MASK = {"type": "embedding", "output_dim": 4}


def messages(result, layer=None):
    return [d.message for d in result.diagnostics if layer is None or d.layer == layer]


def test_recurrent_after_last_state_is_refused_with_the_fix(engine):
    spec = stack([EMB, {"type": "lstm", "units": 3}, {"type": "gru", "units": 2}])
    with pytest.raises(StackError) as caught:
        engine.run(spec, TEXT)
    assert caught.value.layer == "gru_1"
    assert "lstm_1 returns only its last state (batch, 3)" in caught.value.message
    assert "turn on return_sequences in lstm_1" in caught.value.message


def test_flatten_with_a_variable_number_of_timesteps_suggests_maxlen_or_pooling(engine):
    spec = stack([EMB, {"type": "lstm", "units": 3, "return_sequences": True}, {"type": "flatten"},
                  {"type": "dense", "units": 2}])
    with pytest.raises(StackError) as caught:
        engine.run(spec, TEXT)
    assert caught.value.layer == "flatten_1"
    assert "set maxlen" in caught.value.message and "pooling" in caught.value.message


def test_flatten_with_a_fixed_maxlen_runs_and_explains_its_size(engine):
    spec = stack([EMB_NO_MASK, {"type": "lstm", "units": 3, "return_sequences": True}, {"type": "flatten"},
                  {"type": "dense", "units": 2}], batching={"maxlen": 6})
    result = engine.run(spec, TEXT)
    assert result.fc_input.shape == (2, 18)
    assert result.fc_input.explanation.startswith("18 = 6 timesteps × 3")
    assert "depends on maxlen" in result.fc_input.explanation


def test_dense_on_a_sequence_says_it_works_per_timestep(engine):
    spec = stack([EMB, {"type": "lstm", "units": 3, "return_sequences": True}, {"type": "dense", "units": 2}])
    result = engine.run(spec, TEXT)
    assert result.layer("dense_1").shape == (2, 5, 2)
    [message] = messages(result, "dense_1")
    assert "every timestep separately" in message and "Last valid timestep" in message   # the label on screen
    assert "last_timestep" not in message
    assert "runs at every timestep" in result.fc_input.explanation


@pytest.mark.parametrize("padding, effect", [("post", "final state"), ("pre", "every step")])
def test_padding_without_a_mask_names_the_effect_and_the_fix(engine, padding, effect):
    spec = stack([EMB_NO_MASK, {"type": "lstm", "units": 3}], batching={"padding": padding})
    [message] = messages(engine.run(spec, TEXT), "lstm_1")
    assert message.startswith("padding without a mask: 3 padded steps")
    assert effect in message and "tick mask_zero on embedding_1" in message


def test_no_padding_no_mask_warning_when_nothing_is_padded(engine):
    spec = stack([EMB_NO_MASK, {"type": "lstm", "units": 3}])
    assert messages(engine.run(spec, "1 2\n3 4\n")) == []


@pytest.mark.parametrize("head, fix", [
    ({"type": "global_max_pooling"}, "Masked mean pooling"),
    ({"type": "time_average"}, "Masked mean pooling"),
    ({"type": "custom", "expression": "ops.max(x, axis=1)"}, "use mask in the expression"),
])
def test_a_layer_that_drops_the_mask_is_named(engine, head, fix):
    spec = stack([EMB, {"type": "lstm", "units": 3, "return_sequences": True}, head])
    result = engine.run(spec, TEXT, trust=True)
    name = result.layers[-1].name
    assert result.layers[-1].mask_role == "drops"
    [message] = messages(result, name)
    assert "ignores the mask" in message and fix in message


def test_a_custom_layer_that_uses_the_mask_consumes_it(engine):
    expression = "ops.sum(x * ops.expand_dims(ops.cast(mask, 'float32'), -1), axis=1)"
    spec = stack([EMB, {"type": "lstm", "units": 3, "return_sequences": True},
                  {"type": "custom", "expression": expression}])
    result = engine.run(spec, TEXT, trust=True)
    assert result.layers[-1].mask_role == "consumes"
    assert messages(result) == []


def test_embedding_on_features_is_refused(engine):
    spec = stack([EMB, {"type": "lstm", "units": 3}], kind="features")
    with pytest.raises(StackError) as caught:
        engine.run(spec, "1 2; 3 4\n")
    assert caught.value.layer == "embedding_1"
    assert "input is feature vectors" in caught.value.message and "switch the input to tokens" in caught.value.message


def test_token_ids_outside_the_vocabulary_are_refused_before_tensorflow(engine):
    spec = stack([EMB, {"type": "lstm", "units": 3}])
    with pytest.raises(SequenceError) as caught:
        engine.run(spec, "1 2\n3 77 4\n")
    assert (caught.value.line, caught.value.column) == (2, 3)
    assert "token id 77 is outside the vocabulary (vocab_size 50: ids 0 to 49)" in caught.value.message


def test_a_fully_padded_sequence_warns_about_nan_in_averages(engine):
    spec = stack([EMB, {"type": "lstm", "units": 3, "return_sequences": True}, {"type": "global_average_pooling"}])
    result = engine.run(spec, "1 2 3\n0 0\n")
    found = messages(result)
    assert any("line 2 is fully masked after embedding_1" in m for m in found)
    assert any("line 2 contains token id 0" in m for m in found)
    assert np.isnan(result.layer("global_average_pooling_1").output[1]).all()
    assert any(m.startswith("global_average_pooling_1 gives NaN for line(s) 2") for m in found)


def test_mask_zero_with_a_nonzero_pad_value_warns(engine):
    spec = stack([EMB, {"type": "lstm", "units": 3}], batching={"pad_value": 9})
    assert any("pad value is 9" in m for m in messages(engine.run(spec, TEXT), "embedding_1"))


def test_pre_padding_with_a_mask_on_gpu_warns_about_cudnn(engine):
    spec = stack([EMB, {"type": "lstm", "units": 3}], batching={"padding": "pre"})
    result = engine.run(spec, TEXT)
    built = engine.built_for(spec)
    args = (spec, built, result.mask, result.lengths, [], [], {}, {})
    on_gpu = [d.message for d in diagnose.warnings_for(*args, "GPU")]
    on_cpu = [d.message for d in diagnose.warnings_for(*args, "CPU")]
    assert any("cuDNN needs right-padded" in m for m in on_gpu)
    assert not any("cuDNN" in m for m in on_cpu)


def test_a_failing_custom_expression_reports_its_message_and_expression(engine):
    spec = stack([EMB, {"type": "lstm", "units": 3, "return_sequences": True},
                  {"type": "custom", "expression": "ops.reshape(x, (5, 7, 11))"}])
    with pytest.raises(StackError) as caught:
        engine.run(spec, TEXT, trust=True)
    assert caught.value.layer == "custom_1"
    assert 'the expression "ops.reshape(x, (5, 7, 11))" failed' in caught.value.message


def test_a_custom_expression_may_not_reach_beyond_ops_x_and_mask(engine):
    for expression in ("__import__('os')", "x.__class__", "open('f')", "[y for y in x]"):
        spec = stack([EMB, {"type": "custom", "expression": expression}])
        with pytest.raises(StackError):
            engine.run(spec, TEXT, trust=True)


def test_a_custom_expression_does_not_run_without_trust(engine):
    from explorer.core.errors import TrustError
    spec = stack([EMB, {"type": "lstm", "units": 3, "return_sequences": True},
                  {"type": "custom", "expression": "ops.mean(x, axis=1)"}])
    with pytest.raises(TrustError):
        engine.run(spec, TEXT)
    assert engine.run(spec, TEXT, trust=True).layer("custom_1").shape == (2, 3)


@pytest.mark.parametrize("layers, role", [
    ([EMB], ["creates"]),
    ([EMB_NO_MASK], ["none"]),
    ([EMB, {"type": "lstm", "units": 3, "return_sequences": True}], ["creates", "carries"]),
    ([EMB, {"type": "lstm", "units": 3}], ["creates", "consumes"]),
    ([EMB, {"type": "gru", "units": 3, "return_sequences": True}, {"type": "masked_mean_pooling"}],
     ["creates", "carries", "consumes"]),
    ([EMB, {"type": "gru", "units": 3, "return_sequences": True}, {"type": "flatten"}],
     ["creates", "carries", "drops"]),
])
def test_mask_trace(engine, layers, role):
    spec = stack(layers, batching={"maxlen": 5})
    assert [layer.mask_role for layer in engine.run(spec, TEXT).layers] == role


def test_fc_input_explanations(engine):
    spec = stack([EMB, {"type": "gru", "units": 3, "bidirectional": True}, {"type": "dense", "units": 2}])
    fc = engine.run(spec, TEXT).fc_input
    assert fc.layer == "dense_1" and fc.symbolic_shape == (None, 6) and fc.shape == (2, 6)
    assert fc.explanation.startswith("6 = 2 × 3 units of bidirectional gru_1 (merge_mode concat)")
    assert "independent of the number of timesteps" in fc.explanation


# --- what Keras runs runs; what it refuses is said with the layer's name ---

def _plain_keras_runs(build):
    """The same stack in plain Keras: it runs (the explorer must not refuse it)."""
    import keras
    inputs = keras.Input((None,), dtype="int32")
    return build(keras, keras.layers.Embedding(50, 4)(inputs))


def test_masking_after_a_last_state_runs_with_a_warning_like_keras(engine):
    assert _plain_keras_runs(lambda keras, x: keras.layers.Masking()(keras.layers.LSTM(3)(x))).shape == (None, 3)
    spec = stack([EMB_NO_MASK, {"type": "lstm", "units": 3}, {"type": "masking"}, {"type": "dense", "units": 2}])
    result = engine.run(spec, TEXT)
    assert result.layer("masking_1").shape == (2, 3)
    [message] = messages(result, "masking_1")
    assert "no time axis" in message and "(None, 3)" in message


def test_flatten_on_a_flat_tensor_runs_with_a_warning_like_keras(engine):
    assert _plain_keras_runs(lambda keras, x: keras.layers.Flatten()(keras.layers.GRU(3)(x))).shape == (None, 3)
    spec = stack([EMB, {"type": "gru", "units": 3}, {"type": "flatten"}, {"type": "dense", "units": 2}])
    result = engine.run(spec, TEXT)    # no maxlen needed: there is no time axis left to fix
    assert result.layer("flatten_1").symbolic_shape == (None, 3)
    assert any("already flat" in message for message in messages(result, "flatten_1"))


@pytest.mark.parametrize("padding, warned", [("post", True), ("pre", False)])
def test_last_timestep_without_a_mask_says_it_takes_a_padded_step(engine, padding, warned):
    spec = stack([EMB_NO_MASK, {"type": "lstm", "units": 3, "return_sequences": True}, {"type": "last_timestep"}],
                 batching={"padding": padding})
    result = engine.run(spec, TEXT)
    np.testing.assert_array_equal(result.layer("last_timestep_1").output, result.layer("lstm_1").output[:, -1])
    assert any("last step of the padded batch" in m for m in messages(result, "last_timestep_1")) == warned


def test_bidirectional_with_go_backwards_is_keras_s_refusal_in_a_sentence(engine):
    import keras
    with pytest.raises(ValueError, match="go_backwards"):
        keras.layers.Bidirectional(keras.layers.LSTM(2, go_backwards=True))
    spec = stack([EMB, {"type": "lstm", "units": 3, "bidirectional": True, "go_backwards": True}])
    with pytest.raises(StackError) as caught:
        engine.run(spec, TEXT)
    assert caught.value.layer == "lstm_1"
    assert caught.value.message.startswith("lstm_1: Keras refuses go_backwards inside bidirectional")


@pytest.mark.parametrize("layer, problem", [
    ({"type": "lstm", "units": 3, "feeds": "c"}, 'lstm_1 feeds its state "c" to the next layer, but return_state is off'),
    ({"type": "gru", "units": 3, "return_state": True, "feeds": "c"}, 'gru_1 has no state "c": its states are h'),
    ({"type": "lstm", "units": 3, "return_state": True, "feeds": "forward_h"},
     'lstm_1 has no state "forward_h": its states are h, c'),
])
def test_a_state_that_does_not_exist_cannot_feed_the_next_layer(engine, layer, problem):
    with pytest.raises(StackError) as caught:
        engine.run(stack([EMB, layer, {"type": "dense", "units": 2}]), TEXT)
    assert caught.value.message.startswith(problem)


def test_a_dense_on_the_cell_state_explains_its_size(engine):
    spec = stack([EMB, {"type": "lstm", "units": 3, "return_state": True, "feeds": "c"}, {"type": "dense", "units": 2}])
    result = engine.run(spec, TEXT)
    lstm = result.layer("lstm_1")
    np.testing.assert_array_equal(lstm.output, lstm.extras["lstm_1/state/h"])   # Keras's first output: h
    np.testing.assert_array_equal(lstm.passed, lstm.extras["lstm_1/state/c"])
    assert [(s.name, s.symbolic_shape, s.shape) for s in lstm.states] == [("h", (None, 3), (2, 3)),
                                                                           ("c", (None, 3), (2, 3))]
    assert result.fc_input.explanation.startswith("3 = lstm_1's 3 units: its final state c")


# --- one-setting fixes ---

@pytest.mark.parametrize("cut", [0, 1])
def test_the_fix_for_a_lost_time_axis_turns_on_return_sequences_and_keras_then_builds_it(engine, cut):
    import keras
    layers = [EMB, {"type": "lstm", "units": 3, "return_sequences": True}, {"type": "gru", "units": 3,
                                                                             "return_sequences": True},
              {"type": "lstm", "units": 2}]
    layers[1 + cut] = {**layers[1 + cut], "return_sequences": False}
    spec = stack(layers)
    fix = diagnose.structure_fix(spec)
    assert fix is not None and (fix.setting, fix.value, fix.layer) == ("return_sequences", True, 1 + cut)
    assert fix.label == f"Turn on return_sequences in {spec.layer_names()[1 + cut]}"
    fixed = fix.apply(spec)
    assert diagnose.structure_fix(fixed) is None and spec.layers[1 + cut].params["return_sequences"] is False
    inputs = keras.Input((None,), dtype="int32")                     # the same stack in plain Keras builds
    x = keras.layers.Embedding(50, 4, mask_zero=True)(inputs)
    x = keras.layers.LSTM(3, return_sequences=fixed.layers[1].params["return_sequences"])(x)
    x = keras.layers.GRU(3, return_sequences=fixed.layers[2].params["return_sequences"])(x)
    assert keras.layers.LSTM(2)(x).shape == (None, 2)
    assert engine.run(fixed, TEXT).layers[-1].shape == (2, 2)


def test_the_fix_for_flatten_sets_maxlen_to_the_longest_sequence(engine):
    spec = stack([EMB, {"type": "lstm", "units": 3, "return_sequences": True}, {"type": "flatten"},
                  {"type": "dense", "units": 2}])
    fix = diagnose.structure_fix(spec)
    assert (fix.setting, fix.value, fix.layer) == ("maxlen", None, None)
    longest = max(len(line.split()) for line in TEXT.splitlines())
    fixed = fix.apply(spec, longest)
    assert fixed.batching.maxlen == longest and spec.batching.maxlen is None
    assert engine.run(fixed, TEXT).layer("flatten_1").shape == (2, longest * 3)


def test_padding_without_a_mask_offers_to_tick_mask_zero(engine):
    spec = stack([EMB_NO_MASK, {"type": "lstm", "units": 3}, {"type": "dense", "units": 2}])
    [warning] = [d for d in engine.run(spec, TEXT).diagnostics if "padding without a mask" in d.message]
    assert (warning.fix.setting, warning.fix.value, warning.fix.layer) == ("mask_zero", True, 0)
    assert "tick mask_zero on embedding_1" in warning.message
    fixed = warning.fix.apply(spec)
    assert not [d for d in engine.run(fixed, TEXT).diagnostics if "padding without a mask" in d.message]
