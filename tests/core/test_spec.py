"""Stack documents: load, validate, save, round-trip; errors name the exact place."""

from __future__ import annotations

import json
import os

import pytest

from explorer.core import presets
from explorer.core import spec as specs
from explorer.core.errors import SpecError
from explorer.core.spec import FORMAT, VERSION, LayerSpec, StackSpec

EVERY_LAYER = [
    {"type": "embedding", "output_dim": 8, "mask_zero": True},
    {"type": "masking", "mask_value": -1.5},
    {"type": "simple_rnn", "units": 3, "return_sequences": True, "activation": "relu"},
    {"type": "lstm", "units": 4, "return_sequences": True, "return_state": True, "bidirectional": True,
     "merge_mode": "ave"},
    {"type": "gru", "units": 5, "return_sequences": True, "go_backwards": True, "name": "my_gru"},
    {"type": "time_distributed_dense", "units": 6, "activation": None},
    {"type": "dense", "units": 2, "activation": "softmax"},
    {"type": "global_average_pooling"},
    {"type": "global_max_pooling"},
    {"type": "masked_mean_pooling"},
    {"type": "time_average"},
    {"type": "last_timestep"},
    {"type": "attention_pooling"},
    {"type": "flatten"},
    {"type": "keras", "class_name": "LayerNormalization", "config": {"epsilon": 0.01}},
    {"type": "custom", "expression": "ops.sum(x, axis=1)"},
]


def document(**changes):
    data = {"format": FORMAT, "version": VERSION, "input": {"kind": "tokens", "vocab_size": 100},
            "batching": {"mode": "bucket", "padding": "pre", "truncating": "pre", "maxlen": 12, "pad_value": 3,
                         "bucket_width": 4, "chunk": 5},
            "layers": [dict(layer) for layer in EVERY_LAYER], "seed": 42, "sequences": "1 2 3\n4 5\n"}
    data.update(changes)
    return data


def error_of(data) -> str:
    with pytest.raises(SpecError) as caught:
        specs.from_dict(data)
    return str(caught.value)


def with_layer(layer: dict, index: int = 1, **changes) -> dict:
    layers = [{"type": "embedding"}, {"type": "lstm"}, {"type": "dense"}]
    layers[index] = layer
    return document(layers=layers, **changes)


# --- round trips ---

def test_every_layer_type_round_trips_through_dict_json_and_file(tmp_path):
    spec = specs.from_dict(document())
    assert [layer.type for layer in spec.layers] == [layer["type"] for layer in EVERY_LAYER]
    assert {layer.type for layer in spec.layers} == set(specs.LAYER_TYPES)
    data = specs.to_dict(spec)
    for given, written in zip(EVERY_LAYER, data["layers"]):
        for key, value in given.items():
            assert written[key] == value
    assert specs.from_dict(data) == spec
    assert specs.loads(specs.dumps(spec)) == spec
    path = tmp_path / "every.stack.json"
    specs.save(spec, path)
    assert specs.load(path) == spec
    assert json.loads(path.read_text(encoding="utf-8")) == data
    assert os.listdir(tmp_path) == ["every.stack.json"]   # no temporary file left behind


def test_written_document_has_format_version_and_every_default():
    spec = specs.from_dict({"layers": [{"type": "lstm"}, {"type": "dense"}], "input": {"kind": "features",
                                                                                       "features": 3}})
    data = specs.to_dict(spec)
    assert data["format"] == "rnn-shape-explorer/stack" and data["version"] == 1
    assert data["input"] == {"kind": "features", "features": 3}
    assert data["batching"] == {"mode": "pad", "padding": "post", "truncating": "post", "maxlen": None,
                                "pad_value": 0, "bucket_width": 8, "chunk": 16}
    assert data["layers"][0] == {"type": "lstm", "units": 64, "return_sequences": False, "return_state": False,
                                 "bidirectional": False, "merge_mode": "concat", "go_backwards": False,
                                 "activation": "tanh"}
    assert data["layers"][1] == {"type": "dense", "units": 10, "activation": None}
    assert data["seed"] == 0
    assert "sequences" not in data


def test_defaults_follow_keras():
    import keras
    spec = specs.from_dict({"layers": [{"type": t} for t in ("embedding", "masking", "lstm", "gru", "simple_rnn")]})
    lstm = keras.layers.LSTM(1)
    assert spec.layers[2].params["return_sequences"] == lstm.return_sequences
    assert spec.layers[2].params["return_state"] == lstm.return_state
    assert spec.layers[2].params["go_backwards"] == lstm.go_backwards
    assert spec.layers[1].params["mask_value"] == keras.layers.Masking().mask_value
    assert spec.layers[0].params["mask_zero"] == keras.layers.Embedding(2, 2).mask_zero
    assert keras.layers.Bidirectional(lstm).merge_mode == spec.layers[2].params["merge_mode"]


def test_save_overwrites_atomically(tmp_path):
    path = tmp_path / "a.stack.json"
    path.write_text("old", encoding="utf-8")
    spec = specs.from_dict(document())
    specs.save(spec, path)
    assert specs.load(path) == spec
    assert sorted(os.listdir(tmp_path)) == ["a.stack.json"]


def test_save_to_a_missing_folder_raises_and_leaves_nothing(tmp_path):
    with pytest.raises(OSError):
        specs.save(specs.from_dict(document()), tmp_path / "missing" / "a.stack.json")
    assert os.listdir(tmp_path) == []


def test_every_preset_loads_validates_and_round_trips():
    names = presets.names()
    assert len(names) >= 10 and "average_pooling" in names
    for name in names:
        spec = presets.load_stack(f"preset:{name}")
        assert spec.title and spec.lesson and spec.sequences, name
        assert specs.loads(specs.dumps(spec)) == spec, name


def test_unknown_preset():
    with pytest.raises(SpecError, match='unknown preset "nope"; presets: attention_pooling, '):
        presets.load_stack("preset:nope")


# --- names ---

def test_layer_names_are_type_and_index_and_stable():
    spec = specs.from_dict({"layers": [{"type": "embedding"}, {"type": "lstm", "return_sequences": True},
                                       {"type": "lstm", "name": "lstm_1", "return_sequences": True},
                                       {"type": "lstm"}, {"type": "dense", "name": "head"}]})
    assert spec.layer_names() == ["embedding_1", "lstm_2", "lstm_1", "lstm_3", "head"]
    assert spec.layer_names() == specs.from_dict(specs.to_dict(spec)).layer_names()


def test_duplicate_and_bad_names():
    layers = [{"type": "embedding", "name": "a"}, {"type": "lstm", "name": "a"}]
    assert error_of(document(layers=layers)) == 'layers[0].name: "a" is used by more than one layer'
    # Keras's rule: any name without "/" (names such as "word-embedding" or "2nd_head" come from .keras files)
    assert specs.from_dict(with_layer({"type": "lstm", "name": "2nd-head"})).layers[1].name == "2nd-head"
    assert error_of(with_layer({"type": "lstm", "name": "a/b"})) == (
        'layers[1].name: must be 1 to 128 letters, digits and _ . - > (no spaces), got "a/b"')
    assert error_of(with_layer({"type": "lstm", "name": 3})).endswith("got 3")
    assert error_of(with_layer({"type": "lstm", "name": "a b"})).startswith("layers[1].name: must be 1 to 128")


# --- errors name the place ---

@pytest.mark.parametrize("value, problem", [
    (-3, "must be a positive integer, got -3"),
    (0, "must be a positive integer, got 0"),
    (2.5, "must be a positive integer, got 2.5"),
    ("3", 'must be a positive integer, got "3"'),
    (True, "must be a positive integer, got true"),
    (None, "must be a positive integer, got null"),
    ([3], "must be a positive integer, got [3]"),
    (5000, "must be at most 4096, got 5000"),
])
def test_units_errors_name_the_place(value, problem):
    data = document(layers=[{"type": "embedding"}, {"type": "lstm", "return_sequences": True},
                            {"type": "gru", "units": value}])
    assert error_of(data) == f"layers[2].units: {problem}"


def test_the_contract_example_message():
    data = document(layers=[{"type": "embedding"}, {"type": "lstm"}, {"type": "dense", "units": -3}])
    assert error_of(data) == "layers[2].units: must be a positive integer, got -3"


@pytest.mark.parametrize("layer, message", [
    ({"type": "conv1d"}, 'layers[1].type: unknown layer type "conv1d"; known types: embedding, masking, '),
    ({"units": 3}, "layers[1].type: is missing"),
    ({"type": None}, "layers[1].type: unknown layer type null"),
    ({"type": ["lstm"]}, 'layers[1].type: unknown layer type ["lstm"]'),
    ({"type": {"a": 1}}, 'layers[1].type: unknown layer type {"a": 1}'),
    ({"type": "lstm", "unit": 3}, "layers[1].unit: unknown key; known keys: activation, bidirectional, "),
    ({"type": "lstm", "return_sequences": 1}, "layers[1].return_sequences: must be true or false, got 1"),
    ({"type": "lstm", "merge_mode": "max"}, 'layers[1].merge_mode: must be one of "concat", "sum", "mul", "ave", '
                                            'null, got "max"'),
    ({"type": "lstm", "activation": "swishy"}, 'layers[1].activation: must be one of "linear", '),
    ({"type": "dense", "activation": "nope"}, 'layers[1].activation: must be one of "linear", '),
    ({"type": "embedding", "output_dim": 0}, "layers[1].output_dim: must be a positive integer, got 0"),
    ({"type": "embedding", "mask_zero": "yes"}, 'layers[1].mask_zero: must be true or false, got "yes"'),
    ({"type": "masking", "mask_value": "0"}, 'layers[1].mask_value: must be a finite number, got "0"'),
    ({"type": "masking", "mask_value": float("nan")}, "layers[1].mask_value: must be a finite number (at most "
                                                      "±3.4e38), got nan"),
    ({"type": "masking", "mask_value": 10 ** 400}, "layers[1].mask_value: must be a finite number (at most ±3.4e38), "
                                                   "got 1000"),
    ({"type": "masking", "mask_value": 1e39}, "layers[1].mask_value: must be a finite number (at most ±3.4e38), "
                                              "got 1e+39"),
    ({"type": "custom", "expression": ""}, 'layers[1].expression: must be a non-empty Python expression, got ""'),
    ({"type": "custom", "expression": "x" * 2001}, "layers[1].expression: must be at most 2000 characters long"),
    ({"type": "global_average_pooling", "units": 3}, "layers[1].units: unknown key; known keys: calls, initial_state, inputs, keepdims, mask, name, type"),
    ("lstm", 'layers[1]: must be an object, got "lstm"'),
])
def test_layer_errors(layer, message):
    assert error_of(with_layer(layer)).startswith(message)


def test_dense_activation_may_be_null_but_recurrent_may_not():
    spec = specs.from_dict(with_layer({"type": "dense", "activation": None}, 2))
    assert spec.layers[2].params["activation"] is None
    assert error_of(with_layer({"type": "gru", "activation": None})).startswith("layers[1].activation: must be one of")


@pytest.mark.parametrize("changes, message", [
    ({"input": {"kind": "tokens"}}, 'input.vocab_size: is required when input.kind is "tokens"'),
    ({"input": {"kind": "features"}}, 'input.features: is required when input.kind is "features"'),
    ({"input": {"kind": "images", "vocab_size": 3}}, 'input.kind: must be one of "tokens", "features"'),
    ({"input": {"kind": "tokens", "vocab_size": 0}}, "input.vocab_size: must be a positive integer, got 0"),
    ({"input": {"kind": "tokens", "vocab_size": 10 ** 9}}, "input.vocab_size: must be at most 10000000, got"),
    ({"input": {"kind": "tokens", "vocab_size": 10, "extra": 1}}, "input.extra: unknown key; known keys: "
                                                                   "features, idf_weights, kind, length, mask_token, "
                                                                   "name, ngrams, output_mode, split, standardize, "
                                                                   "step_shape, vocab_size, vocabulary"),
    ({"input": {"kind": "tokens", "vocab_size": 10, "split": "character"}},
     'input.split: is for words input only (input.kind "words")'),
    ({"input": {"kind": "words", "vocab_size": 10, "split": "letters"}}, "input.split: must be one of"),
    ({"input": {"kind": "words", "vocab_size": 10, "ngrams": [1, 0]}}, "input.ngrams: must be a width from 1 to 32"),
    ({"input": {"kind": "words", "vocab_size": 10, "ngrams": True}}, "input.ngrams: must be a width"),
    ({"input": [1]}, "input: must be an object, got [1]"),
    ({"batching": {"mode": "stream"}}, 'batching.mode: must be one of "pad", "bucket", "one_by_one", "chunked", '
                                       'got "stream"'),
    ({"batching": {"padding": "both"}}, 'batching.padding: must be one of "pre", "post", got "both"'),
    ({"batching": {"truncating": None}}, 'batching.truncating: must be one of "pre", "post", got null'),
    ({"batching": {"maxlen": 0}}, "batching.maxlen: must be a positive integer, got 0"),
    ({"batching": {"maxlen": -1}}, "batching.maxlen: must be a positive integer, got -1"),
    ({"batching": {"bucket_width": 0}}, "batching.bucket_width: must be a positive integer, got 0"),
    ({"batching": {"chunk": 1.5}}, "batching.chunk: must be a positive integer, got 1.5"),
    ({"batching": {"pad_value": 100}}, "batching.pad_value: must be a token id from 0 to 99, got 100"),
    ({"batching": {"pad_value": -1}}, "batching.pad_value: must be a token id from 0 to 99, got -1"),
    ({"batching": {"pad_value": 1.5}}, "batching.pad_value: must be a token id (an integer) for token input, got 1.5"),
    ({"batching": {"pad_value": "0"}}, 'batching.pad_value: must be a finite number, got "0"'),
    ({"batching": {"pad": 0}}, "batching.pad: unknown key; known keys: bucket_width, chunk, maxlen, mode, "),
    ({"seed": -1}, "seed: must be an integer from 0 to 2147483647, got -1"),
    ({"seed": 2 ** 31}, "seed: must be an integer from 0 to 2147483647, got 2147483648"),
    ({"seed": 1.0}, "seed: must be an integer from 0 to 2147483647, got 1.0"),
    ({"sequences": 3}, "sequences: must be a string, got 3"),
    ({"title": ["x"]}, 'title: must be a string, got ["x"]'),
    ({"layers": None}, "layers: must be a list of layers, got null"),
    ({"layers": {"type": "lstm"}}, 'layers: must be a list of layers, got {"type": "lstm"}'),
    ({"layers": [{"type": "dense"}] * 65}, "layers: holds 65 layers; at most 64 are allowed"),
    ({"colour": "red"}, "colour: unknown key; known keys: batching, format, input, layers, lesson, more_inputs, outputs, seed, "),
])
def test_document_errors(changes, message):
    assert error_of(document(**changes)).startswith(message)


def test_missing_layers_key():
    data = document()
    del data["layers"]
    assert error_of(data) == "layers: must be a list of layers, got null"


def test_float_pad_value_for_features_is_kept():
    spec = specs.from_dict(document(input={"kind": "features", "features": 2}, batching={"pad_value": -0.5},
                                    layers=[{"type": "lstm"}]))
    assert spec.batching.pad_value == -0.5
    assert error_of(document(input={"kind": "features", "features": 2}, batching={"pad_value": -1e300},
                             layers=[])) == "batching.pad_value: must be a finite number (at most ±3.4e38), got -1e+300"
    integral = specs.from_dict(document(batching={"pad_value": 2.0}))
    assert integral.batching.pad_value == 2 and isinstance(integral.batching.pad_value, int)


def test_not_an_object():
    assert error_of([1, 2]) == "must be an object, got [1, 2]"
    assert error_of("stack") == 'must be an object, got "stack"'


# --- versions and formats ---

def test_version_and_format_refusal():
    assert error_of(document(version=2)) == ("version: this file was written by a newer explorer (version 2); "
                                             "this one reads versions up to 1")
    assert error_of(document(version=0)) == "version: must be a positive integer, got 0"
    assert error_of(document(version="1")) == 'version: must be a positive integer, got "1"'
    assert error_of(document(version=True)) == "version: must be a positive integer, got true"
    assert error_of(document(version=1.0)) == "version: must be a positive integer, got 1.0"
    assert error_of(document(format="keras/model")) == (
        'format: must be "rnn-shape-explorer/stack", got "keras/model"')
    assert error_of(document(format=None)) == 'format: must be "rnn-shape-explorer/stack", got null'


def test_format_and_version_may_be_left_out():
    data = document()
    del data["format"], data["version"]
    assert specs.from_dict(data) == specs.from_dict(document())


# --- text and files ---

def test_loads_reports_json_syntax_with_line_and_column():
    with pytest.raises(SpecError) as caught:
        specs.loads('{\n  "layers": [,]\n}', "my.stack.json")
    assert str(caught.value) == "my.stack.json is not valid JSON: Expecting value at line 2, column 14"


@pytest.mark.parametrize("text", ["[" * 100_000, '{"seed": ' + "1" * 5000 + "}", "", "NaN x"])
def test_loads_never_lets_other_errors_out(text):
    with pytest.raises(SpecError, match="^stack is "):
        specs.loads(text)


def test_load_errors(tmp_path):
    with pytest.raises(SpecError, match="^cannot read .*missing.stack.json: No such file or directory$"):
        specs.load(tmp_path / "missing.stack.json")
    binary = tmp_path / "binary.stack.json"
    binary.write_bytes(b"\xff\xfe\x00{")
    with pytest.raises(SpecError, match="is not a UTF-8 text file$"):
        specs.load(binary)
    with pytest.raises(SpecError, match="^cannot read "):
        specs.load(tmp_path)                          # a folder
    bad = tmp_path / "bad.stack.json"
    bad.write_text('{"layers": [{"type": "lstm", "units": "many"}]}', encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        specs.load(bad)
    assert str(caught.value) == 'layers[0].units: must be a positive integer, got "many"'
    assert caught.value.path == "layers[0].units"
    assert caught.value.problem == 'must be a positive integer, got "many"'


# --- the model key and copies ---

def test_architecture_key_ignores_sequences_and_batching_but_not_layers_or_seed():
    spec = specs.from_dict(document(layers=[{"type": "embedding"}, {"type": "lstm"}]))
    key = spec.architecture_key()
    other = spec.copy()
    other.sequences = "9 9 9"
    other.batching.padding = "post"
    other.batching.maxlen = 3
    assert other.architecture_key() == key
    other.seed = 1
    assert other.architecture_key() != key
    changed = spec.copy()
    changed.layers[1].params["units"] = 3
    assert changed.architecture_key() != key
    assert spec.layers[1].params["units"] == 64          # copy() is deep


def test_flatten_makes_maxlen_part_of_the_key():
    spec = specs.from_dict(document(layers=[{"type": "embedding"}, {"type": "flatten"}]))
    other = spec.copy()
    other.batching.maxlen = 5
    assert other.architecture_key() != spec.architecture_key()
    assert spec.needs_fixed_length() and not specs.from_dict(document(layers=[])).needs_fixed_length()


def test_layer_spec_fills_defaults_and_keeps_given_values():
    layer = LayerSpec("gru", {"units": 3})
    assert layer.params["units"] == 3 and layer.params["merge_mode"] == "concat"
    assert layer.is_recurrent and not LayerSpec("dense").is_recurrent
    assert StackSpec().layers == [] and not StackSpec().has_custom()
    assert StackSpec(layers=[LayerSpec("custom")]).has_custom()


def test_the_newer_layer_parameters_have_keras_s_defaults_and_are_written_only_when_set():
    """use_bias, recurrent_activation, reset_after, keepdims and feeds: Keras's names and defaults; a file that
    does not set them reads and writes exactly as before (explorers that predate them read it)."""
    import inspect

    import keras
    from explorer.core.registry import TYPES
    keras_classes = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "simple_rnn": keras.layers.SimpleRNN,
                     "dense": keras.layers.Dense, "time_distributed_dense": keras.layers.Dense,
                     "global_average_pooling": keras.layers.GlobalAveragePooling1D,
                     "global_max_pooling": keras.layers.GlobalMaxPooling1D}
    newer = set()
    for key, kind in TYPES.items():
        for name, param in kind.params.items():
            if param.omit_default and name != "feeds":   # feeds is the explorer's: which output goes on
                newer.add(name)
                default = inspect.signature(keras_classes[key].__init__).parameters[name].default
                assert param.default == default, (key, name)
    assert newer == {"use_bias", "recurrent_activation", "reset_after", "keepdims"}
    for name in presets.names():
        text = (presets.resources.files("explorer") / "presets" / f"{name}.stack.json").read_text()
        for layer in specs.to_dict(specs.loads(text))["layers"]:
            assert not (newer | {"feeds"}) & set(layer), (name, layer)
    changed = specs.from_dict(document(layers=[{"type": "embedding"},
                                               {"type": "gru", "reset_after": False, "use_bias": False}]))
    assert specs.to_dict(changed)["layers"][1] == {
        "type": "gru", "units": 64, "return_sequences": False, "return_state": False, "bidirectional": False,
        "merge_mode": "concat", "go_backwards": False, "activation": "tanh", "use_bias": False, "reset_after": False}


def test_a_fixed_input_length_is_read_and_written_only_when_set():
    data = document()
    data["input"]["length"] = 12
    data["batching"]["maxlen"] = 12
    spec = specs.from_dict(data)
    assert spec.input.length == 12 and spec.fixed_length() == 12
    assert specs.to_dict(spec)["input"]["length"] == 12
    assert "length" not in specs.to_dict(specs.from_dict(document()))["input"]
    data["input"]["length"] = 0
    assert error_of(data) == "input.length: must be a positive integer, got 0"
