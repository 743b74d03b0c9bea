"""The only module that calls TensorFlow directly: import, devices, traced functions.

Everything else uses Keras's backend-neutral API.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache

from .errors import DeviceError


@lru_cache(maxsize=1)
def tensorflow():
    """Imports TensorFlow and Keras once, quietly: their C++ start-up lines go straight to file
    descriptor 2 whatever the log level, and mean nothing to users."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras  # noqa: F401  (imports TensorFlow, its backend)
        import tensorflow as tf
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    tf.get_logger().setLevel("ERROR")
    return tf


@dataclass(frozen=True)
class Device:
    name: str          # "/CPU:0", "/GPU:1"
    kind: str          # "CPU" or "GPU"
    description: str


@lru_cache(maxsize=1)
def list_devices() -> tuple[Device, ...]:
    tf = tensorflow()
    found = []
    for device in tf.config.list_logical_devices():
        index = device.name.rsplit(":", 1)[-1]
        name = f"/{device.device_type}:{index}"
        details = {}
        if device.device_type == "GPU":
            physical = tf.config.list_physical_devices("GPU")
            if int(index) < len(physical):
                details = tf.config.experimental.get_device_details(physical[int(index)])
        found.append(Device(name, device.device_type, details.get("device_name", device.device_type)))
    return tuple(found)


_DEVICE = re.compile(r"^/?(cpu|gpu)(?::(\d+))?$", re.IGNORECASE)


def resolve_device(text: str | None) -> Device:
    """`cpu`, `gpu`, `/GPU:1` (any case) → a device TensorFlow sees, or DeviceError."""
    devices = list_devices()
    if not text:
        gpus = [d for d in devices if d.kind == "GPU"]
        return gpus[0] if gpus else devices[0]
    match = _DEVICE.match(text.strip().replace("device:", ""))
    if not match:
        raise DeviceError(f'unknown device "{text}": use cpu, gpu or a name such as /GPU:1 '
                          f"(seen: {', '.join(d.name for d in devices)})")
    name = f"/{match.group(1).upper()}:{match.group(2) or 0}"
    for device in devices:
        if device.name == name:
            return device
    raise DeviceError(f"device {name} is not available; TensorFlow sees {', '.join(d.name for d in devices)}")


def device_scope(device: Device):
    return tensorflow().device(device.name)


def traced(model, input_shape: tuple, dtype: str):
    """A function with `None` batch (and time) dimensions, so new lengths never retrace."""
    tf = tensorflow()
    spec = tf.TensorSpec((None, *input_shape), dtype)

    @tf.function(input_signature=[spec], reduce_retracing=True)
    def forward(batch):
        return model(batch, training=False)

    return forward


def to_numpy(value):
    return value.numpy() if hasattr(value, "numpy") else value
