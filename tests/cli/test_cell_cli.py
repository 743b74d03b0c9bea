"""`run … --gates` and `run … --gradients [--target UNIT]` (explorer/CONTRACT.md §4): npz names and shapes,
usage errors."""

from __future__ import annotations

import numpy as np
import pytest

from explorer import cli

LSTM_GATES = ("input", "forget", "candidate", "output", "cell")
GRU_GATES = ("update", "reset", "candidate")


def run(capsys, *args):
    code = cli.main(list(args))
    return code, capsys.readouterr().err


def test_gates_and_gradients_of_a_stacked_lstm(capsys, tmp_path):
    out = tmp_path / "run.npz"
    code, err = run(capsys, "run", "preset:stacked_lstm", "--npz", str(out), "--gates", "--gradients")
    assert code == 0, err
    arrays = np.load(out)
    batch, steps = arrays["mask"].shape
    recurrent = [name[len("out/"):] for name in arrays if name.startswith("out/lstm")]
    assert len(recurrent) == 2
    for layer in recurrent:
        units = arrays[f"weights/{layer}/1"].shape[0]
        for gate in LSTM_GATES:
            assert arrays[f"gates/{layer}/{gate}"].shape == (batch, steps, units)
        assert np.all(arrays[f"gates/{layer}/forget"][arrays["mask"] == 0] == 0)
    time_layers = [name[len("out/"):] for name in arrays if name.startswith("out/") and arrays[name].ndim == 3
                   and "/" not in name[len("out/"):]]
    expected = ["grad/input", *(f"grad/{name}" for name in time_layers)]
    assert sorted(name for name in arrays if name.startswith("grad/")) == sorted(expected)
    for name in arrays:
        if name.startswith("grad/"):
            assert arrays[name].shape == (batch, steps)
    target = arrays["gradient_target"]
    assert target.shape == (batch,)
    final = [name for name in arrays if name.startswith("out/") and "/" not in name[4:]][-1]
    np.testing.assert_array_equal(target, arrays[final].argmax(axis=-1))


def test_bidirectional_gates_and_a_chosen_target(capsys, tmp_path):
    out = tmp_path / "run.npz"
    code, err = run(capsys, "run", "preset:bidirectional_gru", "--npz", str(out), "--gates", "--gradients",
                    "--target", "2")
    assert code == 0, err
    arrays = np.load(out)
    batch, steps = arrays["mask"].shape
    names = {name for name in arrays if name.startswith("gates/")}
    assert names == {f"gates/gru_1/{direction}/{gate}" for direction in ("forward", "backward") for gate in GRU_GATES}
    for name in names:
        assert arrays[name].shape[:2] == (batch, steps)
    np.testing.assert_array_equal(arrays["gradient_target"], [2] * batch)


@pytest.mark.parametrize(("args", "message"), [
    (["--gates"], "pass --npz OUT as well"),
    (["--npz", "{out}", "--target", "1"], "--target picks the output unit of --gradients"),
    (["--npz", "{out}", "--gradients", "--target", "5"], "target unit 5 is out of range: the final output has 5 units"),
    (["--npz", "{out}", "--gradients", "--target", "x"], "invalid int value"),
])
def test_usage_errors(capsys, tmp_path, args, message):
    args = [arg.format(out=tmp_path / "run.npz") for arg in args]
    code, err = run(capsys, "run", "preset:forgotten_mask_post", *args)
    assert code == 2
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "run.npz").exists()
