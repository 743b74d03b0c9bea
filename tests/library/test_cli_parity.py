"""`inspect(...).to_json()` and `.to_npz()` equal `run --json` and `run --npz` on the same stack and text; the
batching options of `run`, `train` and `export-code` equal the pipeline's `keras.utils.pad_sequences`."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

import explorer
from explorer import cli

TEXT = "1 2 3 4\n5 6\n7 8 9\n"


def without_timing(document: dict) -> dict:
    return {key: value for key, value in document.items() if key != "timing_ms"}


def run_cli(capsys, *args) -> tuple[int, str]:
    code = cli.main([str(arg) for arg in args])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("stack, extra, keywords", [
    ("preset:last_state", [], {}),
    ("preset:bidirectional_gru", ["--padding", "pre", "--maxlen", "3", "--truncating", "pre"],
     {"padding": "pre", "maxlen": 3, "truncating": "pre"}),
])
def test_inspect_equals_run_json_and_npz(tmp_path, capsys, stack, extra, keywords):
    (tmp_path / "in.txt").write_text(TEXT)
    code, err = run_cli(capsys, "run", stack, "--input", tmp_path / "in.txt", "--json", tmp_path / "run.json",
                        "--npz", tmp_path / "run.npz", "--gates", "--gradients", *extra)
    assert code == 0, err
    report = explorer.inspect(stack, TEXT, gates=True, gradients=True, **keywords)
    assert without_timing(report.to_json()) == without_timing(json.loads((tmp_path / "run.json").read_text()))
    report.to_npz(tmp_path / "lib.npz")
    with np.load(tmp_path / "run.npz") as ran, np.load(tmp_path / "lib.npz") as written:
        assert sorted(ran.files) == sorted(written.files)
        assert any(key.startswith("gates/") for key in ran.files) and "grad/input" in ran.files
        for key in ran.files:
            np.testing.assert_array_equal(written[key], ran[key], err_msg=key)


def test_inspect_of_a_stack_dict_equals_run_of_its_file(tmp_path, capsys):
    document = {"format": "rnn-shape-explorer/stack", "version": 1, "input": {"kind": "tokens", "vocab_size": 20},
                "layers": [{"type": "embedding", "output_dim": 3, "mask_zero": True},
                           {"type": "gru", "units": 4, "return_sequences": True},
                           {"type": "masked_mean_pooling"}, {"type": "dense", "units": 2}],
                "seed": 5, "sequences": TEXT}
    (tmp_path / "s.stack.json").write_text(json.dumps(document))
    code, err = run_cli(capsys, "run", tmp_path / "s.stack.json", "--json", tmp_path / "run.json")
    assert code == 0, err
    assert without_timing(explorer.inspect(document).to_json()) == \
        without_timing(json.loads((tmp_path / "run.json").read_text()))


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """An IMDB-style model written and saved with plain Keras: no mask, fixed length 200."""
    keras.utils.set_random_seed(7)
    model = keras.Sequential([keras.Input((200,), dtype="int32"), keras.layers.Embedding(40, 4),
                              keras.layers.LSTM(3), keras.layers.Dense(1, activation="sigmoid")])
    path = tmp_path_factory.mktemp("model") / "imdb.keras"
    model.save(path)
    return path


def sequences_text(rows) -> str:
    return "".join(" ".join(map(str, row)) + "\n" for row in rows)


def test_run_keras_with_padding_pre_equals_pad_sequences(tmp_path, capsys, saved_model):
    rng = np.random.default_rng(0)
    rows = [rng.integers(1, 40, size=n).tolist() for n in (5, 150, 37, 1)]
    (tmp_path / "in.txt").write_text(sequences_text(rows))
    code, err = run_cli(capsys, "run", saved_model, "--input", tmp_path / "in.txt", "--padding", "pre",
                        "--maxlen", "200", "--npz", tmp_path / "out.npz")
    assert code == 0, err
    model = keras.saving.load_model(saved_model)
    expected = model.predict(keras.utils.pad_sequences(rows, maxlen=200), verbose=0)
    with np.load(tmp_path / "out.npz") as arrays:
        np.testing.assert_allclose(arrays[f"out/{model.layers[-1].name}"], expected, atol=1e-5)
    notes = [line for line in err.splitlines() if line.startswith("note: ")]
    assert any("first layer has no mask" in n and "padded pre to maxlen 200" in n for n in notes), err


def test_run_keras_by_default_says_pad_sequences_pads_pre(tmp_path, capsys, saved_model):
    (tmp_path / "in.txt").write_text("1 2 3\n4\n")
    code, err = run_cli(capsys, "run", saved_model, "--input", tmp_path / "in.txt", "--json", tmp_path / "r.json")
    assert code == 0, err
    assert "padded post" in err and "keras.utils.pad_sequences pads pre by default" in err and "--padding pre" in err


def test_truncating_and_pad_value_reach_a_stack_file(tmp_path, capsys):
    rows = [[1, 2, 3, 4, 5, 6], [7, 8]]
    (tmp_path / "in.txt").write_text(sequences_text(rows))
    code, err = run_cli(capsys, "run", "preset:average_pooling", "--input", tmp_path / "in.txt", "--maxlen", "4",
                        "--truncating", "pre", "--padding", "pre", "--pad-value", "9", "--npz", tmp_path / "o.npz")
    assert code == 0, err
    with np.load(tmp_path / "o.npz") as arrays:
        np.testing.assert_array_equal(arrays["input"], keras.utils.pad_sequences(rows, maxlen=4, value=9))


def test_export_code_and_train_take_the_batching(tmp_path, capsys, saved_model):
    code = cli.main(["export-code", str(saved_model), "--padding", "pre", "--truncating", "pre"])
    out = capsys.readouterr().out
    assert code == 0 and "padding='pre'" in out and "truncating='pre'" in out
    code = cli.main(["train", "preset:train_forgotten_mask", "--steps", "1", "--padding", "pre", "--maxlen", "5",
                     "--save", str(tmp_path / "t.stack.json")])
    assert code == 0, capsys.readouterr().err
    saved = json.loads((tmp_path / "t.stack.json").read_text())["batching"]
    assert (saved["padding"], saved["maxlen"]) == ("pre", 5)


@pytest.mark.parametrize("args, fragment", [
    (["--maxlen", "0"], "--maxlen: \"0\" is not a number of steps"),
    (["--pad-value", "5000"], "--pad-value: "),
    (["--padding", "middle"], "invalid choice"),
    (["--pad-value", "x"], "\"x\" is not a number"),
])
def test_bad_batching_options_are_one_error_line(capsys, args, fragment):
    code, err = run_cli(capsys, "run", "preset:average_pooling", "--json", "-", *args)
    assert code == 2 and err.startswith("error: ") and len(err.splitlines()) == 1 and fragment in err, err


def test_inspect_of_a_keras_path_takes_the_pipelines_padding(saved_model):
    rows = [[4, 8, 15], [16, 23, 42 % 40, 1]]
    report = explorer.inspect(saved_model, rows, padding="pre", maxlen=200)
    model = keras.saving.load_model(saved_model)
    expected = model.predict(keras.utils.pad_sequences(rows, maxlen=200), verbose=0)
    np.testing.assert_allclose(report.output, expected, atol=1e-5)
    assert report.input.shape == (2, 200) and "padded pre to maxlen 200" in report.notes[-1]
