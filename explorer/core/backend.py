"""The only module that calls TensorFlow or JAX directly: import, devices, traced functions, gradients.

Everything else uses Keras's backend-neutral API. TensorFlow is the default backend and the only one
required; KERAS_BACKEND=jax (`--backend jax`, the toolbar's Backend choice) runs the core on JAX, and
TensorFlow then is never imported. A backend is offered only when its tests run in CI (.ci/run's matrix).
"""

from __future__ import annotations

import gc
import os
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .errors import DeviceError, ExplorerError


BACKENDS = ("tensorflow", "jax")   # Keras's backends the explorer offers, TensorFlow the default; CI tests each
# Keras's backends that are not offered, and why
NOT_OFFERED = {"torch": "the PyTorch backend is not offered: PyPI's Linux PyTorch wheels bring several GB of CUDA "
                        "packages, so the tests cannot run on it, and the explorer offers only backends whose numbers "
                        "are tested; use tensorflow or jax"}


def installed_backends() -> list[str]:
    """The backends whose package is installed here (found, not imported: the window calls this)."""
    from importlib.util import find_spec
    return [backend for backend in BACKENDS if find_spec(backend) is not None]


def check_backend(backend: str) -> None:
    """A backend named on the command line or in the toolbar must be offered and installed (ExplorerError if
    not)."""
    if backend in NOT_OFFERED:
        raise ExplorerError(NOT_OFFERED[backend])
    if backend not in BACKENDS:
        raise ExplorerError(f'unknown backend "{backend}": use one of {", ".join(BACKENDS)}')
    if backend not in installed_backends():
        raise ExplorerError(f"the {backend} backend is not installed: pip install 'rnn-shape-explorer[{backend}]'")


@lru_cache(maxsize=1)
def load():
    """Imports Keras once, quietly, and returns it; TensorFlow too when it is Keras's backend. Their C++
    start-up lines go straight to file descriptor 2 whatever the log level, and mean nothing to users."""
    if os.environ.get("KERAS_BACKEND") in NOT_OFFERED:
        raise ExplorerError(NOT_OFFERED[os.environ["KERAS_BACKEND"]])
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # On JAX, GPUs multiply in TF32 by default: off by up to 1e-3 from the CPU, too much to compare runs.
    os.environ.setdefault("JAX_DEFAULT_MATMUL_PRECISION", "highest")
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    tf = None
    # Keras and TensorFlow leave hundreds of thousands of long-lived objects behind: the collector's full
    # passes over them took 70-300 ms each, holding the GIL (the window froze with them), during the import
    # and at every later full pass. No collection while importing, then they are frozen out of its sight.
    collecting = gc.isenabled()
    gc.disable()
    try:
        os.dup2(devnull, 2)
        import keras
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
        gc.freeze()
        if collecting:
            gc.enable()
    if tf is not None:
        tf.get_logger().setLevel("ERROR")
    return keras


def name() -> str:
    """Keras's backend: "tensorflow" (the default), "jax", …"""
    return load().backend.backend()


def require_tensorflow(feature: str) -> None:
    """For the few features that only TensorFlow provides (StringLookup for words input)."""
    if name() != "tensorflow":
        raise ExplorerError(f"{feature} needs the TensorFlow backend of Keras, but KERAS_BACKEND is "
                            f'"{name()}": unset KERAS_BACKEND (or set it to tensorflow) to use it')


@dataclass(frozen=True)
class Device:
    name: str          # "/CPU:0", "/GPU:1"
    kind: str          # "CPU" or "GPU"
    description: str


@lru_cache(maxsize=1)
def list_devices() -> tuple[Device, ...]:
    if name() == "jax":
        return tuple(Device(device_name, kind, description)
                     for device_name, (kind, description, _) in _jax_devices().items())
    if name() != "tensorflow":
        return (Device("/CPU:0", "CPU", "CPU"),)
    import tensorflow as tf
    found = []
    for device in tf.config.list_logical_devices():
        index = device.name.rsplit(":", 1)[-1]
        device_name = f"/{device.device_type}:{index}"
        details = {}
        if device.device_type == "GPU":
            physical = tf.config.list_physical_devices("GPU")
            if int(index) < len(physical):
                details = tf.config.experimental.get_device_details(physical[int(index)])
        found.append(Device(device_name, device.device_type, details.get("device_name", device.device_type)))
    return tuple(found)


@lru_cache(maxsize=1)
def _jax_devices() -> dict:
    """"/CPU:0", "/GPU:0" … → (kind, description, jax.Device): CPUs first, then accelerators."""
    import jax
    found = {}
    seen = set()
    for platform in ("cpu", "gpu", "tpu"):  # "gpu" covers CUDA and ROCm
        try:
            devices = jax.devices(platform)
        except RuntimeError:  # no such platform here
            continue
        for index, device in enumerate(devices):
            if device in seen:
                continue
            seen.add(device)
            kind = "CPU" if device.platform == "cpu" else "TPU" if device.platform == "tpu" else "GPU"
            count = sum(1 for value in found.values() if value[0] == kind)
            found[f"/{kind}:{count}"] = (kind, device.device_kind if kind != "CPU" else "CPU", device)
    return found


_DEVICE = re.compile(r"^/?(cpu|gpu)(?::(\d+))?$", re.IGNORECASE)


def resolve_device(text: str | None) -> Device:
    """`cpu`, `gpu`, `/GPU:1` (any case) → a device the backend sees, or DeviceError."""
    devices = list_devices()
    if not text:
        gpus = [d for d in devices if d.kind == "GPU"]
        return gpus[0] if gpus else devices[0]
    match = _DEVICE.match(text.strip().replace("device:", ""))
    if not match:
        raise DeviceError(f'unknown device "{text}": use cpu, gpu or a name such as /GPU:1 '
                          f"(seen: {', '.join(d.name for d in devices)})")
    device_name = f"/{match.group(1).upper()}:{match.group(2) or 0}"
    for device in devices:
        if device.name == device_name:
            return device
    seer = {"tensorflow": "TensorFlow", "jax": "JAX"}.get(name(), name())
    raise DeviceError(f"device {device_name} is not available; {seer} sees {', '.join(d.name for d in devices)}")


def device_scope(device: Device):
    if name() == "jax":  # keras.device wants "gpu:0" and matches JAX's device ids, not positions
        return load().device(_jax_devices()[device.name][2])
    return load().device(device.name)


def recurrent_options(kind: str, go_backwards: bool) -> dict:
    """Extra arguments for a Keras recurrent layer on this backend, to dodge backend bugs.

    Keras 3.15's JAX cuDNN LSTM (taken on a GPU when there is no mask) flips a go_backwards sequence back
    into input order, unlike TensorFlow and JAX's own loop (every output wrong, found on an H100): cuDNN
    stays off for those layers.
    """
    if kind == "lstm" and go_backwards and name() == "jax":
        return {"use_cudnn": False}
    return {}


def traced(model, input_shape: tuple, dtype: str):
    """A compiled forward pass of `model` (training=False) that always reads the model's current weights.

    TensorFlow: a tf.function with `None` batch (and time) dimensions, so new lengths never retrace.
    JAX: a jitted stateless call taking the variables as arguments (closing over them would bake in
    their values at the first trace); it compiles once per new input shape.
    """
    if name() == "jax":
        import jax

        @jax.jit
        def pure(trainable, non_trainable, batch):
            outputs, _ = model.stateless_call(trainable, non_trainable, batch, training=False)
            return outputs

        def forward(batch):
            return pure([v.value for v in model.trainable_variables],
                        [v.value for v in model.non_trainable_variables], batch)

        return forward
    if name() != "tensorflow":
        return lambda batch: model(batch, training=False)
    import tensorflow as tf
    _tune_tensorflow()
    spec = tf.TensorSpec((None, *input_shape), dtype)

    # autograph off: the body is one call, and converting each new closure costs milliseconds per build
    @tf.function(input_signature=[spec], reduce_retracing=True, autograph=False)
    def forward(batch):
        return model(batch, training=False)

    return forward


def traced_inputs(model, shapes: list[tuple[tuple, str]]):
    """`traced` for a model of several inputs: the forward pass takes a list of batches, one per input,
    each given as (shape without the batch axis, dtype)."""
    if name() != "tensorflow":
        return traced(model, (), "")   # JAX's jit and the plain call take the list as it is
    import tensorflow as tf
    _tune_tensorflow()
    specs = [tf.TensorSpec((None, *shape), dtype) for shape, dtype in shapes]

    @tf.function(input_signature=[specs], reduce_retracing=True, autograph=False)
    def forward(batches):
        return model(batches, training=False)

    return forward


@lru_cache(maxsize=1)
def _tune_tensorflow() -> None:
    """Without a GPU, Grappler's graph rewrites cost ~25 ms at the first call of every new model (each edit
    of the architecture) and buy nothing measurable on these graphs: the outputs are bit-identical with and
    without them (checked on every preset and a 256-unit LSTM). With a GPU they stay on (layout, cuDNN)."""
    import tensorflow as tf
    if not tf.config.list_physical_devices("GPU"):
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})


class graph_rewrites:
    """`with graph_rewrites():` Grappler back on for TensorFlow functions first run inside the block. Training
    needs it: the gradient of the recurrent loop runs about twice as fast with the rewrites (default stack, 64
    sequences, 2 cores: ~280 against ~120 steps/s), whereas the forward pass gains nothing (_tune_tensorflow)."""

    def __enter__(self):
        self._restore = None
        if name() == "tensorflow":
            import tensorflow as tf
            options = tf.config.optimizer.get_experimental_options()
            if options.get("disable_meta_optimizer"):
                tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": False})
                self._restore = True
        return self

    def __exit__(self, *exc):
        if self._restore:
            import tensorflow as tf
            tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
        return False


def compiled(function):
    """`function` (tensors in, tensors out; it reads Keras variables live) made fast to call again: on TensorFlow
    a tf.function that relaxes to unknown batch and time sizes after a second shape (recurrent loops run as one
    graph instead of op by op); elsewhere the function itself (jax.jit would bake the weights in)."""
    if name() != "tensorflow":
        return function
    import tensorflow as tf
    _tune_tensorflow()
    return tf.function(function, reduce_retracing=True, autograph=False)


def compiled_gradient(function):
    """For `function(inputs, selector, offsets) -> scalar`, a callable (inputs, selector, offsets) → the
    gradients at each of `offsets` as NumPy arrays (zeros where the scalar does not depend on one). The explorer's
    only gradient code: TensorFlow's GradientTape (compiled) or jax.grad."""
    keras = load()
    if name() == "jax":
        import jax
        grad = jax.grad(lambda offsets, inputs, selector: function(inputs, selector, offsets))

        def jax_gradient(inputs, selector, offsets):
            tensors = [keras.ops.convert_to_tensor(t) for t in offsets]
            return [np.asarray(value) for value in grad(tensors, inputs, selector)]

        return jax_gradient
    import tensorflow as tf

    def tape(inputs, selector, offsets):
        with tf.GradientTape() as recorded:
            recorded.watch(offsets)
            value = function(inputs, selector, offsets)
        return recorded.gradient(value, offsets, unconnected_gradients=tf.UnconnectedGradients.ZERO)

    traced = compiled(tape)
    return lambda inputs, selector, offsets: [to_numpy(value) for value in traced(inputs, selector, list(offsets))]


def set_random_seed(seed: int, *, framework: bool = False) -> None:
    """keras.utils.set_random_seed, minus tf.random.set_seed unless `framework`: Keras's initializers draw
    their default seeds from Python's `random` and Keras's own SeedGenerator, never from TensorFlow's global
    seed, so the weights are the same (checked bitwise); but tf.random.set_seed clears TensorFlow's eager
    kernel cache, which made every build ~13 ms slower (and imports TensorFlow under other backends).
    `framework=True` (custom code, which may call TensorFlow's random ops) sets it as well."""
    keras = load()
    if framework:
        keras.utils.set_random_seed(seed)
        return
    try:
        import random

        from keras.src.backend.common import global_state
        from keras.src.random import seed_generator
        from keras.src.utils import rng_utils
        global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, seed)
        global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
        random.seed(seed)
        np.random.seed(seed)
    except (ImportError, AttributeError):  # another Keras layout: the public call
        keras.utils.set_random_seed(seed)


def can_cancel() -> bool:
    """Can a call in flight be stopped (cancel_scope)? TensorFlow: yes; otherwise only between calls."""
    return _cancellation() is not None


@lru_cache(maxsize=1)
def _cancellation():
    """TensorFlow's eager CancellationManager module (not public API: None if it moves)."""
    if name() != "tensorflow":
        return None
    try:
        from tensorflow.python.eager import cancellation
        cancellation.CancellationManager, cancellation.CancellationManagerContext  # noqa: B018
    except (ImportError, AttributeError):
        return None
    return cancellation


class CallCancelled(Exception):
    """A call inside cancel_scope was stopped."""


class cancel_scope:
    """`with cancel_scope(stop):` — while the block runs, `stop()` is asked every `interval_s` from a helper
    thread; once it returns True, every TensorFlow function call made in the block (from any thread) stops
    between two kernels, even inside the while loop of a recurrent layer, and the block raises CallCancelled.
    Other backends: a no-op (their calls run to the end; a cancel waits for the next call)."""

    def __init__(self, stop, interval_s: float = 0.01):
        self._stop = stop
        self._interval_s = interval_s
        self._manager = None

    def __enter__(self):
        cancellation = _cancellation()
        if cancellation is None:
            return self
        import threading
        self._manager = cancellation.CancellationManager()
        self._done = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="cancel-watch", daemon=True)
        self._watcher.start()
        self._context = cancellation.CancellationManagerContext(self._manager)
        self._context.__enter__()
        return self

    def _watch(self) -> None:
        while not self._done.wait(self._interval_s):
            if self._stop():
                self._manager.start_cancel()
                return

    @property
    def cancelled(self) -> bool:
        return self._manager is not None and self._manager.is_cancelled

    def __exit__(self, exc_type, exc, tb):
        if self._manager is None:
            return False
        self._context.__exit__(exc_type, exc, tb)
        self._done.set()
        self._watcher.join()
        if exc is not None and self.cancelled:
            import tensorflow as tf
            if isinstance(exc, tf.errors.CancelledError):
                raise CallCancelled() from None
        return False


def is_out_of_memory(error: BaseException) -> bool:
    """An allocation that failed: MemoryError, TensorFlow's ResourceExhaustedError, JAX's RESOURCE_EXHAUSTED
    (the engine process runs under a memory limit)."""
    if isinstance(error, MemoryError) or type(error).__name__ == "ResourceExhaustedError":
        return True
    text = str(error)
    return "RESOURCE_EXHAUSTED" in text or "bad_alloc" in text or "OOM when allocating" in text


def to_numpy(value):
    if hasattr(value, "numpy"):
        return value.numpy()
    return np.asarray(value)


class _DLPack:
    """Hands a tensor to np.from_dlpack (which wants an object with __dlpack__, TF gives a capsule)."""

    def __init__(self, tensor):
        self.tensor = tensor

    def __dlpack__(self, **_kwargs):
        import tensorflow as tf
        return tf.experimental.dlpack.to_dlpack(self.tensor)

    def __dlpack_device__(self):
        return (1, 0)  # kDLCPU


def to_numpy_view(value):
    """Like to_numpy, but a TensorFlow tensor in CPU memory becomes a read-only NumPy view of the same
    buffer instead of a copy: for a 256 × 1000 × 256 output that saves 25 ms of copying when the memory is
    warm and ~600 ms of page faults when it is not, and the copy's memory."""
    if name() == "tensorflow" and hasattr(value, "numpy"):
        try:
            if "CPU" in value.device.upper() and value.dtype.is_numpy_compatible and value.shape.num_elements():
                return np.from_dlpack(_DLPack(value))
        except Exception:  # a dtype or a placement DLPack does not take: copy instead
            pass
    return to_numpy(value)
