"""`explorer.doctor(model, sequences, **batching)`: a Keras model in memory, a preset, a stack dict."""

import keras

import explorer
from explorer.core.presets import load_preset
from explorer.core.spec import to_dict


def test_a_keras_model_in_memory_with_a_batching_override():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(20, 4, name="emb"),
                              keras.layers.LSTM(4, name="lstm"), keras.layers.Dense(2, name="head")])
    report = explorer.doctor(model, "1 2 3 4\n5 6\n", padding="pre")
    leak = next(f for f in report.findings if f.kind == "padding_leak")
    assert leak.layer == "lstm" and leak.lines == [2]
    assert report.to_json()["checked"] == list(report.checked)


def test_a_preset_and_the_same_stack_as_a_dict_agree():
    by_name = explorer.doctor("preset:forgotten_mask_post").to_json()
    by_dict = explorer.doctor(to_dict(load_preset("forgotten_mask_post"))).to_json()
    assert [f["kind"] for f in by_name["findings"]] == [f["kind"] for f in by_dict["findings"]] == ["padding_leak"]
