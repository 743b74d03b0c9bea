"""The command line (explorer/CONTRACT.md §3): `run … --json/--npz`, presets, and exit status 2 with one
`error:` line.

Most cases call `explorer.cli.main([...])` in-process (TensorFlow loads once); a few run `main.py` for real.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from explorer import cli
from explorer.core import presets
from explorer.core import spec as specs

ROOT = Path(__file__).resolve().parents[2]
PRESETS = presets.names()


def hand_parse(spec: specs.StackSpec, text: str) -> list[list]:
    """The sequences of a text by the contract's rules, without the explorer's parser."""
    rows = []
    for line in text.splitlines():
        line = line.split("#")[0].split("|")[0]       # labels after | are not part of the run
        if not line.strip():
            continue
        if spec.input.kind == "features":
            steps = [step for step in line.split(";") if step.strip()]
            rows.append([[float(v) for v in step.replace(",", " ").split()] for step in steps])
        else:
            rows.append([int(v) for v in line.replace(",", " ").split()])
    return rows


def hand_layout(spec: specs.StackSpec, rows: list[list]):
    b = spec.batching
    rows = [row if b.maxlen is None or len(row) <= b.maxlen else
            (row[-b.maxlen:] if b.truncating == "pre" else row[:b.maxlen]) for row in rows]
    lengths = [len(row) for row in rows]
    steps = b.maxlen if (b.maxlen and spec.needs_fixed_length()) else max(lengths)
    width = () if spec.input.kind == "tokens" else (spec.input.features,)
    batch = np.full((len(rows), steps, *width), b.pad_value, dtype=np.float64)
    mask = np.zeros((len(rows), steps), dtype=int)
    for r, row in enumerate(rows):
        start = 0 if b.padding == "post" else steps - len(row)
        batch[r, start:start + len(row)] = row
        mask[r, start:start + len(row)] = 1
    return batch, mask, lengths


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_user_error(code: int, out: str, err: str, *fragments: str) -> str:
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err and "\x1b[" not in err
    for fragment in fragments:
        assert fragment in lines[0]
    assert out == ""
    return lines[0]


ACTIVATIONS = {None: lambda v: v, "linear": lambda v: v, "tanh": np.tanh, "relu": lambda v: np.maximum(v, 0),
               "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
               "softmax": lambda v: np.exp(v - v.max(-1, keepdims=True)) / np.exp(v - v.max(-1, keepdims=True)).sum(-1, keepdims=True)}


@pytest.mark.parametrize("name", PRESETS)
def test_run_preset_json_and_npz(capsys, tmp_path, engine, name):
    npz_path = tmp_path / "out.npz"
    code, out, err = run_cli(capsys, "run", f"preset:{name}", "--json", "-", "--npz", str(npz_path))
    assert code == 0, err
    assert err == ""
    report = json.loads(out)
    spec = presets.load_stack(f"preset:{name}")
    batch, mask, lengths = hand_layout(spec, hand_parse(spec, spec.sequences))

    # --- JSON: every key of explorer/CONTRACT.md §3 ---
    assert {"device", "batch", "layers", "fc_input", "output_shape", "warnings", "timing_ms"} <= set(report)
    from explorer.core import backend
    assert report["device"] in [d.name for d in backend.list_devices()]
    assert report["batch"]["lengths"] == lengths
    assert report["batch"]["padded_shape"] == list(batch.shape)
    assert report["batch"]["mask"] == mask.tolist()
    names = spec.layer_names()
    assert [layer["name"] for layer in report["layers"]] == names
    assert [layer["type"] for layer in report["layers"]] == [layer.type for layer in spec.layers]
    B, T = mask.shape
    arrays = np.load(npz_path)
    for layer in report["layers"]:
        assert {"name", "type", "symbolic_shape", "shape", "mask", "params"} <= set(layer)
        symbolic, shape = layer["symbolic_shape"], layer["shape"]
        assert symbolic[0] is None and shape[0] == B
        assert len(symbolic) == len(shape)
        for s, c in zip(symbolic[1:], shape[1:]):
            assert s is None or s == c
        if len(shape) >= 3 or (len(shape) == 2 and symbolic[1] is None):
            assert shape[1] == T
        assert isinstance(layer["mask"], bool)
        assert layer["mask"] == (f"mask/{layer['name']}" in arrays.files)
        assert isinstance(layer["params"], int)
        weights = [arrays[key] for key in arrays.files if key.startswith(f"weights/{layer['name']}/")]
        assert layer["params"] == sum(w.size for w in weights)
        assert list(arrays[f"out/{layer['name']}"].shape) == shape
    assert report["output_shape"] == report["layers"][-1]["shape"]
    fc = report["fc_input"]
    if fc is not None:
        assert set(fc) == {"layer", "symbolic_shape", "shape", "explanation"}
        index = names.index(fc["layer"])
        assert spec.layers[index].type in ("dense", "time_distributed_dense")
        assert fc["symbolic_shape"] == report["layers"][index - 1]["symbolic_shape"]
        assert fc["shape"] == report["layers"][index - 1]["shape"]
        assert str(fc["symbolic_shape"][-1]) in fc["explanation"]
    assert isinstance(report["warnings"], list) and all(isinstance(w, str) and w for w in report["warnings"])
    if name.startswith("forgotten_mask"):
        assert any("padding without a mask" in w for w in report["warnings"])
    assert {"build", "run", "total"} <= set(report["timing_ms"])
    assert all(isinstance(v, (int, float)) and v >= 0 for v in report["timing_ms"].values())

    # --- NPZ: layout by hand, weights from an independent build, last layer recomputed ---
    np.testing.assert_allclose(arrays["input"], batch)
    np.testing.assert_array_equal(arrays["mask"], mask)
    np.testing.assert_array_equal(arrays["lengths"], lengths)
    result = engine.run(spec, trust=True)
    built = engine.built_for(spec)
    for layer_name in names:
        for i, weight in enumerate(built.keras_layers[layer_name].get_weights()):
            np.testing.assert_array_equal(arrays[f"weights/{layer_name}/{i}"], weight)
        np.testing.assert_allclose(arrays[f"out/{layer_name}"], result.layer(layer_name).output, atol=1e-6)
    last = spec.layers[-1]
    if last.type in ("dense", "time_distributed_dense"):
        before = arrays[f"out/{names[-2]}"].astype(np.float64)
        kernel, bias = arrays[f"weights/{names[-1]}/0"], arrays[f"weights/{names[-1]}/1"]
        expected = ACTIVATIONS[last.params["activation"]](before @ kernel + bias)
        np.testing.assert_allclose(arrays[f"out/{names[-1]}"], expected, atol=1e-5)


def test_input_overrides_the_files_sequences(capsys, tmp_path):
    text = tmp_path / "seq.txt"
    text.write_text("# mine\n4 5\n\n6\n", encoding="utf-8")
    code, out, err = run_cli(capsys, "run", "preset:average_pooling", "--input", str(text), "--json", "-")
    assert code == 0, err
    report = json.loads(out)
    assert report["batch"]["lengths"] == [2, 1]
    assert report["batch"]["padded_shape"] == [2, 2]
    assert report["batch"]["mask"] == [[1, 1], [1, 0]]
    assert report["layers"][1]["shape"] == [2, 2, 32]


def test_json_to_a_file_and_summary_to_stdout(capsys, tmp_path):
    path = tmp_path / "report.json"
    code, out, err = run_cli(capsys, "run", "preset:last_state", "--json", str(path))
    assert code == 0 and out == "" and err == ""
    report = json.loads(path.read_text(encoding="utf-8"))
    assert report["layers"][-1]["name"] == "dense_1"
    code, out, err = run_cli(capsys, "run", "preset:last_state")
    assert code == 0
    assert "lstm_1" in out and "FC input of dense_1" in out


def test_leak_check_report(capsys):
    code, out, _ = run_cli(capsys, "run", "preset:forgotten_mask_pre", "--json", "-", "--leak-check")
    assert code == 0
    leak = json.loads(out)["leak_check"]
    assert leak["leaking_layer"] == "lstm_1"
    assert leak["max_abs_difference"]["lstm_1"] > 1e-5


def test_presets_devices_and_export_code(capsys):
    code, out, _ = run_cli(capsys, "presets")
    assert code == 0
    listed = [line.split()[0] for line in out.splitlines()]
    assert listed == PRESETS
    code, out, _ = run_cli(capsys, "devices")
    assert code == 0 and out.splitlines()[0].startswith("/CPU:0\tCPU")
    code, out, _ = run_cli(capsys, "export-code", "preset:bidirectional_gru")
    assert code == 0
    ast.parse(out)
    assert "keras.layers.Bidirectional(keras.layers.GRU(" in out


# --- user errors: exit 2, exactly one `error:` line, no traceback ---

def write(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return str(path)


GOOD = {"input": {"kind": "tokens", "vocab_size": 1000},
        "layers": [{"type": "embedding", "output_dim": 4, "mask_zero": True}, {"type": "gru", "units": 3}],
        "sequences": "1 2 3\n4\n"}


def test_missing_file(capsys, tmp_path):
    assert_user_error(*run_cli(capsys, "run", str(tmp_path / "none.stack.json")), "cannot read",
                      "No such file or directory")


def test_not_json(capsys, tmp_path):
    path = write(tmp_path, "a.stack.json", "{layers: oops")
    assert_user_error(*run_cli(capsys, "run", path), "is not valid JSON", "line 1, column 2")


def test_not_utf8(capsys, tmp_path):
    path = write(tmp_path, "a.stack.json", b"\xff\x00\x81")
    assert_user_error(*run_cli(capsys, "run", path), "is not a UTF-8 text file")


def test_invalid_stack(capsys, tmp_path):
    path = write(tmp_path, "a.stack.json", {**GOOD, "layers": [{"type": "embedding"}, {"type": "lstm"},
                                                              {"type": "dense", "units": -3}]})
    line = assert_user_error(*run_cli(capsys, "run", path))
    assert line == "error: layers[2].units: must be a positive integer, got -3"


def test_stack_that_cannot_be_built(capsys, tmp_path):
    path = write(tmp_path, "a.stack.json", {**GOOD, "layers": [{"type": "embedding"}, {"type": "lstm"},
                                                              {"type": "lstm"}]})
    assert_user_error(*run_cli(capsys, "run", path), "lstm_2 needs a sequence", "return_sequences")


def test_newer_version(capsys, tmp_path):
    path = write(tmp_path, "a.stack.json", {**GOOD, "version": 9})
    assert_user_error(*run_cli(capsys, "run", path), "version: this file was written by a newer explorer")


def test_bad_sequence_text(capsys, tmp_path):
    path = write(tmp_path, "a.stack.json", GOOD)
    text = write(tmp_path, "seq.txt", "1 2\n3 x 4\n")
    line = assert_user_error(*run_cli(capsys, "run", path, "--input", text))
    assert line.startswith("error: line 2, column 3: ")


def test_token_id_out_of_range(capsys, tmp_path):
    path = write(tmp_path, "a.stack.json", {**GOOD, "sequences": "1 2\n7 1000\n"})
    line = assert_user_error(*run_cli(capsys, "run", path))
    assert line == "error: line 2, column 3: token id 1000 is outside the vocabulary (vocab_size 1000: ids 0 to 999)"


def test_missing_input_file(capsys, tmp_path):
    path = write(tmp_path, "a.stack.json", GOOD)
    assert_user_error(*run_cli(capsys, "run", path, "--input", str(tmp_path / "no.txt")), "cannot read")


def test_no_sequences_anywhere(capsys, tmp_path):
    path = write(tmp_path, "a.stack.json", {key: value for key, value in GOOD.items() if key != "sequences"})
    assert_user_error(*run_cli(capsys, "run", path), "holds no sequences", "--input")


@pytest.mark.parametrize("device, fragment", [("tpu", 'unknown device "tpu"'), ("/GPU:7", "/GPU:7 is not available"),
                                              ("cpu:9", "/CPU:9 is not available")])
def test_unknown_device(capsys, device, fragment):
    assert_user_error(*run_cli(capsys, "run", "preset:last_state", "--device", device), fragment)


def test_custom_needs_trust(capsys, tmp_path):
    stack = {**GOOD, "layers": [{"type": "embedding"}, {"type": "gru", "units": 3, "return_sequences": True},
                                {"type": "custom", "expression": "ops.mean(x, axis=1)"}]}
    path = write(tmp_path, "a.stack.json", stack)
    assert_user_error(*run_cli(capsys, "run", path), "custom expression", "--trust")
    code, out, err = run_cli(capsys, "run", path, "--trust", "--json", "-")
    assert code == 0 and json.loads(out)["layers"][-1]["shape"] == [2, 3]


def test_unsafe_custom_expression_is_a_user_error(capsys, tmp_path):
    stack = {**GOOD, "layers": [{"type": "embedding"}, {"type": "custom", "expression": "__import__('os')"}]}
    path = write(tmp_path, "a.stack.json", stack)
    assert_user_error(*run_cli(capsys, "run", path, "--trust"), "may use only ops, x and mask")


def test_unknown_preset(capsys):
    assert_user_error(*run_cli(capsys, "run", "preset:nope"), 'unknown preset "nope"')
    assert_user_error(*run_cli(capsys, "export-code", "preset:nope"), 'unknown preset "nope"')


@pytest.mark.parametrize("args, fragment", [
    (["run"], "the following arguments are required: stack"),
    (["run", "preset:last_state", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    (["run", "preset:last_state", "--json"], "argument --json: expected one argument"),
    (["export-code"], "the following arguments are required: stack"),
    (["presets", "extra"], "unrecognized arguments: extra"),
])
def test_bad_arguments(capsys, args, fragment):
    assert_user_error(*run_cli(capsys, *args), fragment)


def test_unwritable_outputs(capsys, tmp_path):
    assert_user_error(*run_cli(capsys, "run", "preset:last_state", "--json", str(tmp_path)), "cannot write")
    assert_user_error(*run_cli(capsys, "run", "preset:last_state", "--npz", str(tmp_path / "no" / "x.npz")),
                      "cannot write")


# --- real processes: exit status and a clean stderr ---

def run_main(*args):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, env={key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}, timeout=300)


def test_main_py_runs_a_preset():
    done = run_main("run", "preset:average_pooling", "--json", "-", "--device", "cpu")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""       # TensorFlow's start-up lines are kept away from users
    report = json.loads(done.stdout)
    assert report["device"] == "/CPU:0"
    assert report["fc_input"]["shape"] == [report["batch"]["padded_shape"][0], 32]


@pytest.mark.parametrize("args", [
    ["run", "preset:average_pooling", "--device", "tpu"],
    ["run", "missing.stack.json"],
    ["run", "preset:average_pooling", "--bogus"],
    ["run", "preset:average_pooling", "--input", "tests/cli/test_cli.py"],
])
def test_main_py_user_errors_exit_2(args):
    done = run_main(*args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert re.fullmatch(r"error: [^\n]+\n", done.stderr), done.stderr
