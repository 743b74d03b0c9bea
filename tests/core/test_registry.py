"""Every layer type is one registry entry: it builds a Keras layer, reads one back (the inverse), declares its
memory estimate, its width and its gates. Checked against the Keras layer itself."""

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.core.registry import KERAS_STARTERS, TYPES, layer_width
from explorer.core.spec import InputSpec, LayerSpec, StackSpec

EXPRESSIONS = ("ops.mean(x, axis=1)", "x * 2.0", "ops.tile(x, (1, 1, 2))")


def _value(name, param):
    """Any value the parameter takes (small sizes: the layers are built)."""
    if name == "feeds":   # which output the next layer takes: the model's wiring, not the layer's setting
        return st.just("output")
    if name == "class_name":
        return st.sampled_from(sorted(KERAS_STARTERS))
    if name == "expression":
        return st.sampled_from(EXPRESSIONS)
    if param.options is not None:
        return st.sampled_from(param.options)
    if param.limit is not None:
        return st.integers(1, 16)
    if isinstance(param.default, bool):
        return st.booleans()
    return st.floats(-1e3, 1e3, allow_nan=False).map(lambda value: float(np.float32(value)))


@st.composite
def layers(draw, key):
    params = {name: draw(_value(name, param)) for name, param in TYPES[key].params.items()}
    if params.get("bidirectional"):    # Keras refuses go_backwards inside Bidirectional (and so does the stack)
        params["go_backwards"] = False
    elif "merge_mode" in params:       # one direction: merge_mode is no setting of its Keras layer
        params["merge_mode"] = TYPES[key].params["merge_mode"].default
    if key == "keras":
        params["config"] = KERAS_STARTERS[params["class_name"]]
    return LayerSpec(key, params, "probe")


def _made(layer):
    return TYPES[layer.type].make(layer, "probe", StackSpec(InputSpec("tokens", 50, None), layers=[layer]))


def _as_keras_names(params):
    """The params with each activation under the name Keras gives its function (swish is silu; a Dense without
    one reads back as None)."""
    named = dict(params)
    for key in ("activation", "recurrent_activation"):
        if named.get(key) is not None:
            named[key] = keras.activations.get(named[key]).__name__
    return named


def test_every_type_declares_its_keras_import_memory_width_and_gates():
    for key, kind in TYPES.items():
        for part in (kind.make, kind.code, kind.read, kind.memory, kind.width):
            assert callable(part), (key, part)
        assert (kind.gates > 0) == kind.recurrent, key
        assert set(kind.sigmoid_gates) <= set(kind.gate_names), key


@pytest.mark.parametrize("key", [key for key in TYPES if key != "keras"])
def test_reading_a_made_layer_back_gives_the_same_params(key):
    @settings(max_examples=15)
    @given(layers(key))
    def check(layer):
        made = _made(layer)
        read = TYPES[key].read(made)
        expected = _as_keras_names(layer.params)
        if key in ("dense", "time_distributed_dense") and expected["activation"] == "linear":
            expected["activation"] = None
        assert LayerSpec(key, read).params == expected
    check()


@given(layers("keras"))
@settings(max_examples=10)
def test_a_keras_layer_card_reads_back_its_class_and_a_config_that_builds_the_same_layer(layer):
    read = TYPES["keras"].read(_made(layer))
    assert read["class_name"] == layer.params["class_name"]
    assert TYPES["keras"].read(_made(LayerSpec("keras", read, "probe"))) == read


@pytest.mark.parametrize("key", [key for key, kind in TYPES.items() if kind.recurrent])
@given(data=st.data())
@settings(max_examples=8)
def test_a_recurrent_kernel_is_gates_times_units_wide(key, data):
    layer = data.draw(layers(key))
    made = _made(layer)
    made.build((2, 3, 5))
    cell = (made.forward_layer if layer.params["bidirectional"] else made).cell
    assert cell.kernel.shape == (5, TYPES[key].gates * layer.params["units"])


@pytest.mark.parametrize("key", [key for key in TYPES if key not in ("keras", "custom")])
@given(data=st.data())
@settings(max_examples=8)
def test_the_width_rule_is_the_last_axis_keras_gives(key, data):
    layer = data.draw(layers(key))
    width = layer_width(layer)
    inputs = (keras.Input((4,), dtype="int32") if key == "embedding" else keras.Input((4, 6)))
    output = _made(layer)(inputs)
    output = output[0] if isinstance(output, (list, tuple)) else output
    from_input = 4 * 6 if key == "flatten" else 6     # None: the input decides (flatten: steps × features)
    assert output.shape[-1] == (from_input if width is None else width), layer.params
