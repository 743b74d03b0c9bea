"""Every backend the explorer offers gives TensorFlow's numbers: given the same weights (a stack file that carries
them, written by `train --save` on TensorFlow), `run --npz` with `--gates` and `--gradients`, and `train`, equal
the TensorFlow results to 1e-5 (training losses to 1e-4). Each backend runs in its own process, as the command
line does; TensorFlow's results are computed in the same test run, never stored. PyTorch is not offered."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from explorer import cli
from explorer.core.backend import BACKENDS, NOT_OFFERED, installed_backends

ROOT = Path(__file__).resolve().parents[2]
OTHERS = [name for name in installed_backends() if name != "tensorflow"]
TASK = ["--task", "contains_7", "--count", "12"]
STACK = {"input": {"kind": "tokens", "vocab_size": 20},
         "batching": {"mode": "bucket", "padding": "pre", "bucket_width": 3},
         "layers": [{"type": "embedding", "output_dim": 4, "mask_zero": True},
                    {"type": "lstm", "units": 5, "return_sequences": True, "bidirectional": True},
                    {"type": "gru", "units": 3, "return_sequences": True, "return_state": True},
                    {"type": "attention_pooling"},
                    {"type": "dense", "units": 2, "activation": "softmax"}],
         "seed": 4}

pytestmark = pytest.mark.backends


def main_py(*argv: str, backend: str) -> None:
    """The command line on `backend`: in this process when it runs that backend (one backend per process),
    else in a process of its own."""
    if backend == os.environ.get("KERAS_BACKEND", "tensorflow"):
        assert cli.main([*argv, "--backend", backend]) == 0
        return
    done = subprocess.run([sys.executable, "main.py", *argv, "--backend", backend], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "KERAS_BACKEND": backend})
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A stack file with trained weights, written on TensorFlow (seeded initial weights differ between
    backends, so every backend starts from these)."""
    folder = tmp_path_factory.mktemp("backends")
    (folder / "stack.json").write_text(json.dumps(STACK))
    main_py("train", str(folder / "stack.json"), *TASK, "--steps", "3", "--save", str(folder / "trained.stack.json"),
            backend="tensorflow")
    return folder / "trained.stack.json"


def results(stack: Path, backend: str, folder: Path) -> tuple[dict, dict]:
    """(run --npz --gates --gradients arrays, train --json report) of `stack` on `backend`."""
    npz, report = folder / f"{backend}.npz", folder / f"{backend}.json"
    main_py("run", str(stack), "--npz", str(npz), "--gates", "--gradients", backend=backend)
    # SGD: Adam and RMSprop divide each gradient by its own size, so where a gradient is 0 up to rounding
    # (1e-10 on one backend, 0 on the other) its sign decides a whole learning-rate step, and the losses part
    # by ~3e-4 after two steps; SGD's steps follow the gradients, which agree
    main_py("train", str(stack), *TASK, "--steps", "6", "--optimizer", "sgd", "--json", str(report),
            backend=backend)
    return dict(np.load(npz)), json.loads(report.read_text())


@pytest.mark.skipif(not OTHERS, reason="no backend but TensorFlow is installed here")
@pytest.mark.parametrize("backend", OTHERS)
def test_run_gates_gradients_and_training_equal_tensorflow(trained, tmp_path, backend):
    expected, expected_training = results(trained, "tensorflow", tmp_path)
    found, training = results(trained, backend, tmp_path)
    assert set(found) == set(expected)
    assert any(key.startswith("gates/") for key in found) and any(key.startswith("grad/") for key in found)
    for key, values in expected.items():
        np.testing.assert_allclose(found[key], values, rtol=1e-5, atol=1e-5, err_msg=key)
    assert len(training["loss"]) == len(expected_training["loss"]) == 6
    np.testing.assert_allclose(training["loss"], expected_training["loss"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(training["accuracy"], expected_training["accuracy"], atol=1e-6)


def test_pytorch_is_not_offered_and_says_why():
    assert "torch" not in BACKENDS and "torch" not in installed_backends()
    for argv, env in ((["--backend", "torch"], {}), ([], {"KERAS_BACKEND": "torch"})):
        done = subprocess.run([sys.executable, "main.py", "run", "preset:average_pooling", *argv], cwd=ROOT,
                              capture_output=True, text=True, timeout=300, env={**os.environ, **env})
        assert done.returncode == 2 and done.stderr.strip() == f"error: {NOT_OFFERED['torch']}"
