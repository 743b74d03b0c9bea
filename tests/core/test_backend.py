"""explorer.core.backend: the one module that talks to TensorFlow (or JAX) directly."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from explorer.core import backend
from explorer.core.errors import DeviceError, ExplorerError

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed here")
def test_the_jax_backend_never_imports_tensorflow():
    code = """if True:
        import sys
        from explorer.core import backend
        from explorer.core.errors import ExplorerError
        keras = backend.load()
        assert keras.backend.backend() == "jax" and backend.name() == "jax"
        devices = backend.list_devices()
        assert devices and devices[0].name == "/CPU:0", devices
        assert backend.resolve_device("cpu").name == "/CPU:0"
        try:
            backend.require_tensorflow("words input")
        except ExplorerError as error:
            assert "KERAS_BACKEND" in str(error)
        else:
            raise AssertionError("words input accepted on jax")
        assert "tensorflow" not in sys.modules, "tensorflow was imported"
        print("ok")
    """
    done = _python(code, KERAS_BACKEND="jax")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("ok")


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="tensorflow is not installed here")
def test_tensorflow_is_the_default_backend():
    done = _python("import sys; from explorer.core import backend; backend.load(); "
                   "print(backend.name(), 'tensorflow' in sys.modules)",
                   **{"KERAS_BACKEND": "tensorflow"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["tensorflow", "True"]


@pytest.mark.parametrize("text", ["cpu", "CPU", "cpu:0", "/cpu:0", "/CPU:0", "/device:CPU:0", "  Cpu:0 "])
def test_device_names_normalise(text):
    assert backend.resolve_device(text).name == "/CPU:0"


def test_no_device_means_a_gpu_if_there_is_one():
    devices = backend.list_devices()
    chosen = backend.resolve_device(None)
    assert chosen.kind == ("GPU" if any(d.kind == "GPU" for d in devices) else devices[0].kind)
    assert all(d.name.startswith(("/CPU:", "/GPU:", "/TPU:")) and d.kind in d.name for d in devices)


@pytest.mark.parametrize("text, phrase", [("tpu", 'unknown device "tpu"'), ("gpu:x", "unknown device"),
                                          ("/CPU:9", "device /CPU:9 is not available"),
                                          ("/GPU:99", "device /GPU:99 is not available")])
def test_unknown_or_absent_devices_are_refused(text, phrase):
    with pytest.raises(DeviceError) as caught:
        backend.resolve_device(text)
    assert phrase in caught.value.message
    assert "/CPU:0" in caught.value.message   # says what is there


def test_words_input_needs_tensorflow(monkeypatch):
    if backend.name() == "tensorflow":
        backend.require_tensorflow("words input")   # fine on the default backend
    monkeypatch.setattr(backend, "name", lambda: "jax")
    with pytest.raises(ExplorerError, match="needs the TensorFlow backend"):
        backend.require_tensorflow("words input")


def test_traced_reads_the_current_weights():
    """Set after tracing (imported weights, tests that widen an embedding) must show in the next call."""
    keras = backend.load()
    inputs = keras.Input((None, 2))
    layer = keras.layers.Dense(1, use_bias=False)
    model = keras.Model(inputs, {"out": layer(inputs)})
    forward = backend.traced(model, (None, 2), "float32")
    batch = np.ones((1, 3, 2), np.float32)
    with backend.device_scope(backend.resolve_device("cpu")):
        layer.set_weights([np.full((2, 1), 1.0, np.float32)])
        first = backend.to_numpy(forward(batch)["out"])
        layer.set_weights([np.full((2, 1), 2.0, np.float32)])
        second = backend.to_numpy(forward(batch)["out"])
        longer = backend.to_numpy(forward(np.ones((2, 5, 2), np.float32))["out"])
    assert isinstance(first, np.ndarray)
    np.testing.assert_allclose(first, np.full((1, 3, 1), 2.0))
    np.testing.assert_allclose(second, np.full((1, 3, 1), 4.0))
    assert longer.shape == (2, 5, 1)


def test_cudnn_is_kept_off_only_for_backwards_lstms_on_jax(monkeypatch):
    """Keras 3.15's JAX cuDNN LSTM returns a go_backwards sequence in input order (seen on an H100)."""
    if backend.name() == "tensorflow":
        assert backend.recurrent_options("lstm", True) == {}
    monkeypatch.setattr(backend, "name", lambda: "jax")
    assert backend.recurrent_options("lstm", True) == {"use_cudnn": False}
    assert backend.recurrent_options("lstm", False) == {}
    assert backend.recurrent_options("gru", True) == {}
