"""Models of several inputs: the encoder-decoder of Keras's character-level translation example, written here with
plain Keras, trained one step, saved and opened as a user opens it (`run MODEL.keras --input NAME=FILE …`). Every
shown layer equals a Keras sub-model of the saved model, the output equals model.predict on inputs padded with
keras.utils.pad_sequences; lines of the inputs go together by order."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from keras import layers

from explorer import cli
from explorer.core import keras_io, spec as specs
from explorer.core.errors import ExplorerError, SpecError, StackError
from explorer.core.run import Engine

ENGINE = Engine()
ENCODER_TOKENS, DECODER_TOKENS, LATENT = 4, 3, 5


def translation_model():
    """keras-io's lstm_seq2seq, smaller: one-hot characters in, the decoder starts from the encoder's states."""
    encoder_inputs = keras.Input(shape=(None, ENCODER_TOKENS), name="encoder")
    _, state_h, state_c = layers.LSTM(LATENT, return_state=True, name="encoder_lstm")(encoder_inputs)
    decoder_inputs = keras.Input(shape=(None, DECODER_TOKENS), name="decoder")
    decoder_outputs, _, _ = layers.LSTM(LATENT, return_sequences=True, return_state=True,
                                        name="decoder_lstm")(decoder_inputs, initial_state=[state_h, state_c])
    outputs = layers.Dense(DECODER_TOKENS, activation="softmax", name="next_char")(decoder_outputs)
    return keras.Model([encoder_inputs, decoder_inputs], outputs)


def one_hot(rows: list[list[int]], size: int) -> list[np.ndarray]:
    return [np.eye(size, dtype="float32")[row] for row in rows]


def text_of(sequences: list[np.ndarray]) -> str:
    return "\n".join("; ".join(" ".join(f"{v:g}" for v in step) for step in row) for row in sequences) + "\n"


ENCODER = one_hot([[0, 1, 2], [3, 3, 1, 0, 2], [1]], ENCODER_TOKENS)
DECODER = one_hot([[0, 2], [1, 2, 0, 1], [2, 2, 2]], DECODER_TOKENS)


@pytest.fixture(scope="module")
def translation(tmp_path_factory):
    keras.utils.set_random_seed(5)
    model = translation_model()
    model.compile("rmsprop", "categorical_crossentropy")
    batches = [keras.utils.pad_sequences(data, dtype="float32", padding="post") for data in (ENCODER, DECODER)]
    model.fit(batches, np.roll(batches[1], -1, axis=1), batch_size=3, epochs=1, verbose=0)
    folder = tmp_path_factory.mktemp("translation")
    model.save(folder / "model.keras")
    (folder / "encoder.txt").write_text(text_of(ENCODER))
    (folder / "decoder.txt").write_text(text_of(DECODER))
    return model, batches, folder


def test_run_with_one_input_file_each_equals_keras_layer_by_layer(translation, tmp_path, capsys):
    model, batches, folder = translation
    status = cli.main(["run", str(folder / "model.keras"), "--input", f"encoder={folder / 'encoder.txt'}",
                       "--input", f"decoder={folder / 'decoder.txt'}", "--npz", str(tmp_path / "out.npz"),
                       "--json", str(tmp_path / "out.json")])
    assert status == 0, capsys.readouterr().err
    arrays = np.load(tmp_path / "out.npz")
    report = json.loads((tmp_path / "out.json").read_text())
    for layer in report["layers"]:
        expected = keras.Model(model.inputs, model.get_layer(layer["name"]).output).predict(batches, verbose=0)
        if layer["name"].endswith("_lstm"):   # the output, then the states h and c
            expected, h, c = expected
            np.testing.assert_allclose(arrays[f"out/{layer['name']}/state/h"], h, atol=1e-5)
            np.testing.assert_allclose(arrays[f"out/{layer['name']}/state/c"], c, atol=1e-5)
        np.testing.assert_allclose(arrays[f"out/{layer['name']}"], expected, atol=1e-5, err_msg=layer["name"])
    np.testing.assert_allclose(arrays["out/next_char"], model.predict(batches, verbose=0), atol=1e-5)
    for name, batch, data in zip(("encoder", "decoder"), batches, (ENCODER, DECODER)):
        np.testing.assert_array_equal(arrays[f"inputs/{name}/input"], batch)
        assert report["inputs"][name]["lengths"] == [len(row) for row in data]
        assert report["inputs"][name]["padded_shape"] == list(batch.shape)
    assert report["batch"]["padded_shape"] == list(batches[0].shape)   # the first input's, as with one input


def test_the_stack_of_a_two_input_model_names_its_inputs_and_keeps_their_texts(translation):
    _, _, folder = translation
    spec, _, _ = keras_io.import_model(folder / "model.keras")
    assert [(item.name, item.kind, item.features) for item in spec.all_inputs()] == [
        ("encoder", "features", ENCODER_TOKENS), ("decoder", "features", DECODER_TOKENS)]
    decoder = spec.layers[spec.layer_names().index("decoder_lstm")]
    assert decoder.inputs == ["decoder"]
    assert decoder.initial_state == ["encoder_lstm/state/h", "encoder_lstm/state/c"]
    spec.sequences, spec.more_sequences = "1 0 0 0\n", {"decoder": "0 1 0; 1 0 0\n"}
    again = specs.loads(specs.dumps(spec))
    assert again.texts() == {"encoder": "1 0 0 0\n", "decoder": "0 1 0; 1 0 0\n"}
    assert specs.to_dict(again) == specs.to_dict(spec)
    result = ENGINE.run(again)   # the stack's own texts
    assert result.inputs["decoder"].batch.shape == (1, 2, DECODER_TOKENS)


@pytest.mark.parametrize("document, message", [
    ({"more_inputs": [{"name": "b", "kind": "tokens", "vocab_size": 5}]}, "input.name: is required"),
    ({"input": {"kind": "tokens", "vocab_size": 5, "name": "a"}, "more_inputs": [{"kind": "tokens", "vocab_size": 5}]},
     r"more_inputs\[0\].name: is missing"),
    ({"input": {"kind": "tokens", "vocab_size": 5, "name": "a"},
      "more_inputs": [{"name": "a", "kind": "tokens", "vocab_size": 5}]}, r'more_inputs\[0\].name: "a" names another'),
    ({"input": {"kind": "tokens", "vocab_size": 5, "name": "a"},
      "more_inputs": [{"name": "lstm_1", "kind": "tokens", "vocab_size": 5}]}, '"lstm_1" is also a layer'),
    ({"input": {"kind": "tokens", "vocab_size": 5, "name": "a"},
      "more_inputs": [{"name": "b", "kind": "tokens", "vocab_size": 5}], "layers": [{"type": "lstm", "inputs": ["c"]}]},
     r'layers\[0\].inputs: "c" is not a layer before this one .*nor the input "b"'),
    ({"input": {"kind": "tokens", "vocab_size": 5, "name": "a"},
      "more_inputs": [{"name": "b", "kind": "tokens", "vocab_size": 2}], "batching": {"pad_value": 3}},
     "batching.pad_value: must be a token id from 0 to 1"),
])
def test_a_stack_of_several_inputs_names_each_one_once(document, message):
    with pytest.raises(SpecError, match=message):
        specs.from_dict({"layers": [{"type": "lstm"}], **document})


def test_a_one_input_stack_file_is_written_as_before():
    document = {"format": specs.FORMAT, "version": 1, "input": {"kind": "tokens", "vocab_size": 9},
                "layers": [{"type": "embedding"}, {"type": "lstm"}]}
    written = specs.to_dict(specs.from_dict(document))
    assert written["input"] == {"kind": "tokens", "vocab_size": 9} and "more_inputs" not in written


TWO_TOKEN_INPUTS = {
    "input": {"kind": "tokens", "vocab_size": 9, "name": "question"},
    "more_inputs": [{"kind": "tokens", "vocab_size": 7, "name": "answer"}],
    "batching": {"padding": "pre"},
    "layers": [
        {"type": "embedding", "name": "question_ids", "output_dim": 3, "mask_zero": True},
        {"type": "gru", "name": "reader", "units": 4, "return_state": True},
        {"type": "embedding", "name": "answer_ids", "inputs": ["answer"], "output_dim": 2, "mask_zero": True},
        {"type": "gru", "name": "writer", "units": 4, "return_sequences": True, "inputs": ["answer_ids"],
         "initial_state": ["reader/state/h"]},
        {"type": "time_distributed_dense", "name": "logits", "units": 7}],
}


def keras_twin(built):
    """The same two-input model in plain Keras, with the built stack's weights."""
    question, answer = keras.Input((None,), dtype="int32"), keras.Input((None,), dtype="int32")
    _, h = layers.GRU(4, return_state=True, name="reader")(layers.Embedding(9, 3, mask_zero=True,
                                                                           name="question_ids")(question))
    x = layers.Embedding(7, 2, mask_zero=True, name="answer_ids")(answer)
    x = layers.GRU(4, return_sequences=True, name="writer")(x, initial_state=h)
    model = keras.Model([question, answer], layers.TimeDistributed(layers.Dense(7), name="logits")(x))
    for layer in model.layers[2:]:
        layer.set_weights(built.keras_layers[layer.name].get_weights())
    return model


@pytest.fixture(scope="module")
def two_token_inputs():
    spec = specs.from_dict(TWO_TOKEN_INPUTS)
    return spec, keras_twin(ENGINE.built_for(spec))


ids = st.lists(st.integers(1, 6), min_size=1, max_size=6)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(ids, ids), min_size=1, max_size=4), st.integers(0, 2))
def test_any_lines_of_two_inputs_run_as_keras_pads_each(two_token_inputs, pairs, extra):
    spec, model = two_token_inputs
    questions, answers = [q for q, _ in pairs], [a for _, a in pairs]
    texts = {"question": "\n".join(" ".join(map(str, q)) for q in questions),
             "answer": "\n".join(" ".join(map(str, a)) for a in answers + [[1]] * extra)}
    if extra:   # a line more in one input: refused, naming both counts
        with pytest.raises(StackError, match=f"question has {len(pairs)} sequence.*answer has {len(pairs) + extra} "):
            ENGINE.run(spec, texts)
        return
    result = ENGINE.run(spec, texts)
    batches = [keras.utils.pad_sequences(rows, padding="pre") for rows in (questions, answers)]
    # called eagerly: a model's traced predict, called again on inputs of other lengths, can keep an earlier
    # call's time axis when its two inputs differ in length (Keras 3.15)
    np.testing.assert_allclose(result.layer("logits").output, model(batches, training=False), atol=1e-5)
    valid = batches[1] != 0
    for name in ("answer_ids", "writer"):   # valid steps of every layer on the answer's time axis
        expected = np.asarray(keras.Model(model.inputs, model.get_layer(name).output)(batches, training=False))
        np.testing.assert_allclose(result.layer(name).output[valid], expected[valid], atol=1e-5)
    np.testing.assert_array_equal(result.inputs["answer"].mask, valid)


def test_a_bad_value_names_its_input_and_other_modes_are_refused(two_token_inputs):
    spec, _ = two_token_inputs
    with pytest.raises(ExplorerError, match=r"input answer: line 2, column 3: token id 8 is outside"):
        ENGINE.run(spec, {"question": "1\n2\n", "answer": "1\n1 8\n"})
    with pytest.raises(StackError, match="the input answer has no sequences"):
        ENGINE.run(spec, {"question": "1\n"})
    bucket = spec.copy()
    bucket.batching.mode = "bucket"
    with pytest.raises(StackError, match='mode "bucket" splits one input.*use pad mode'):
        ENGINE.run(bucket, {"question": "1\n", "answer": "1\n"})


@pytest.mark.parametrize("given, message", [
    (["encoder=E"], "no sequences for the input decoder: pass --input decoder=FILE"),
    (["encoder=E", "decoder=E", "encoder=D"], r"--input encoder=… is given twice"),
    (["coder=E", "decoder=D"], r"the model has no input 'coder'; its inputs: encoder, decoder"),
    (["E"], r"this model takes 2 inputs \(encoder, decoder\): write --input NAME=FILE once per input"),
    (["encoder=E", "decoder=missing.txt"], "cannot read .*missing.txt"),
    (["encoder=E", "decoder=SHORT"], "encoder has 3 sequences, decoder has 1 sequence"),
])
def test_run_refuses_each_wrong_input_option_in_one_line(translation, given, message, capsys):
    _, _, folder = translation
    (folder / "short.txt").write_text("1 0 0\n")
    files = {"E": folder / "encoder.txt", "D": folder / "decoder.txt", "SHORT": folder / "short.txt"}
    arguments = []
    for value in given:
        name, equals, path = value.rpartition("=")
        arguments += ["--input", f"{name}{equals}{files.get(path, folder / path)}"]
    assert cli.main(["run", str(folder / "model.keras"), *arguments]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("error: ") and "Traceback" not in error[0]
    assert __import__("re").search(message, error[0]), error[0]


def test_the_exported_code_of_a_two_input_model_pads_each_input_and_gives_keras_numbers(translation, tmp_path):
    import subprocess
    import sys

    from explorer.core.codegen import export_code
    model, batches, folder = translation
    spec, _, _ = keras_io.import_model(folder / "model.keras")
    spec.sequences, spec.more_sequences = text_of(ENCODER), {"decoder": text_of(DECODER)}
    code = export_code(spec, weights_from=str(folder / "model.keras"))
    (tmp_path / "model.py").write_text(code + "np.save('next_char.npy', results['next_char'])\n"
                                       .replace("np.", "__import__('numpy')."))
    ran = subprocess.run([sys.executable, "model.py"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert ran.returncode == 0, ran.stderr
    assert "decoder_lstm                 (None, None, 5)      (3, 4, 5)" in ran.stdout
    np.testing.assert_allclose(np.load(tmp_path / "next_char.npy"), model.predict(batches, verbose=0), atol=1e-5)


def test_inspect_takes_a_dict_of_sequences_by_input_name(translation):
    import explorer
    model, batches, folder = translation
    report = explorer.inspect(folder / "model.keras", {"encoder": ENCODER, "decoder": DECODER})
    np.testing.assert_allclose(report.result.layer("next_char").output, model.predict(batches, verbose=0),
                               atol=1e-5)
    with pytest.raises(ExplorerError, match="the model has no input 'decodr'; its inputs: encoder, decoder"):
        explorer.inspect(folder / "model.keras", {"encoder": ENCODER, "decodr": DECODER})
    with pytest.raises(ExplorerError, match=r"takes 2 inputs \(encoder, decoder\): give the sequences as a dict"):
        explorer.inspect(folder / "model.keras", ENCODER)


def test_run_gives_the_gates_gradients_and_leak_check_of_a_two_input_model_and_doctor_examines_it(translation,
                                                                                                 tmp_path, capsys):
    model, batches, folder = translation
    inputs = ["--input", f"encoder={folder / 'encoder.txt'}", "--input", f"decoder={folder / 'decoder.txt'}"]
    status = cli.main(["run", str(folder / "model.keras"), *inputs, "--gates", "--gradients", "--leak-check",
                       "--npz", str(tmp_path / "out.npz"), "--json", str(tmp_path / "out.json")])
    assert status == 0, capsys.readouterr().err
    arrays = np.load(tmp_path / "out.npz")
    for name in ("encoder_lstm", "decoder_lstm"):   # h = o · tanh(c) at every step: the decoder's own output
        h = arrays[f"gates/{name}/output"] * np.tanh(arrays[f"gates/{name}/cell"])
        if name == "decoder_lstm":
            np.testing.assert_allclose(h, arrays["out/decoder_lstm"], atol=1e-5)
        else:
            last = [len(row) - 1 for row in ENCODER]   # no mask: the encoder runs over the padding too
            np.testing.assert_allclose(h[:, -1], arrays["out/encoder_lstm/state/h"], atol=1e-5)
            assert last != [batches[0].shape[1] - 1] * len(last)
    assert arrays["grad/input"].shape == batches[0].shape[:2]   # the first sequence input: the encoder's
    alone = max(float(np.abs(model.predict([b[None, :len(e)], d[None, :len(f)]], verbose=0)[0]
                             - model.predict(batches, verbose=0)[row, :len(f)]).max())
                for row, (b, d, e, f) in enumerate(zip(*batches, ENCODER, DECODER)))
    leak = json.loads((tmp_path / "out.json").read_text())["leak_check"]
    assert abs(leak["max_abs_difference"]["next_char"] - alone) < 1e-5
    assert cli.main(["doctor", str(folder / "model.keras"), *inputs]) == 0
    assert "checked: " in capsys.readouterr().out
    assert cli.main(["run", str(folder / "model.keras"), *inputs, "--gradients", "--gradient-input", "decoder",
                     "--npz", str(tmp_path / "decoder.npz")]) == 0
    assert np.load(tmp_path / "decoder.npz")["grad/input"].shape == batches[1].shape[:2]
    assert cli.main(["run", str(folder / "model.keras"), *inputs, "--gradients", "--gradient-input", "nope",
                     "--npz", str(tmp_path / "nope.npz")]) == 2
    assert capsys.readouterr().err.strip() == 'error: no input is called "nope": the inputs are encoder, decoder'


def test_train_on_the_decoders_labels_equals_keras_train_on_batch(translation, tmp_path, capsys):
    """Labels per step on the decoder's lines (the next character); the encoder's lines go with them by order."""
    _, batches, folder = translation
    labels = [[int(np.argmax(step)) for step in np.roll(row, -1, axis=0)] for row in DECODER]
    labelled = "".join(line + " | " + " ".join(map(str, label)) + "\n"
                       for line, label in zip(text_of(DECODER).splitlines(), labels))
    (tmp_path / "decoder.txt").write_text(labelled)
    status = cli.main(["train", str(folder / "model.keras"), "--input", f"encoder={folder / 'encoder.txt'}",
                       "--input", f"decoder={tmp_path / 'decoder.txt'}", "--steps", "2", "--lr", "0.01",
                       "--json", str(tmp_path / "train.json")])
    assert status == 0, capsys.readouterr().err
    found = json.loads((tmp_path / "train.json").read_text())["loss"]
    model = keras.saving.load_model(folder / "model.keras")
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    targets = keras.utils.pad_sequences(labels, padding="post")
    expected = [float(model.train_on_batch(batches, targets)) for _ in range(2)]
    np.testing.assert_allclose(found, expected, rtol=1e-5, atol=1e-6)
    assert cli.main(["train", str(folder / "model.keras"), "--task", "contains_7", "--steps", "1"]) == 2
    assert capsys.readouterr().err.strip().startswith("error: task contains_7 needs a tokens input, but the stack's "
                                                      "inputs are encoder (features), decoder (features)")


def test_another_input_shape_builds_another_model_but_another_text_does_not(two_token_inputs):
    spec, _ = two_token_inputs
    retyped, resized = spec.copy(), spec.copy()
    retyped.more_sequences = {"answer": "1 2\n"}
    resized.more_inputs[0].vocab_size = 8
    assert retyped.architecture_key() == spec.architecture_key() != resized.architecture_key()
