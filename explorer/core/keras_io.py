"""Trained `.keras` models ↔ editable stacks that keep their weights."""

from __future__ import annotations

import json
import uuid
import zipfile
from pathlib import Path

import numpy as np

from . import backend
from .errors import SpecError, StackError, TrustError, strip_ansi
from .spec import _NAME, Batching, InputSpec, LayerSpec, StackSpec

# Layers that do nothing at inference: dropped with a note.
INFERENCE_NO_OPS = ("Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "ActivityRegularization")
_RNN_TYPES = {"SimpleRNN": "simple_rnn", "LSTM": "lstm", "GRU": "gru"}
_OWN = {"MaskedMeanPooling": "masked_mean_pooling", "TimeAverage": "time_average", "LastTimestep": "last_timestep",
        "AttentionPooling": "attention_pooling", "CustomExpression": "custom"}
_SIMPLE = {"GlobalAveragePooling1D": "global_average_pooling", "GlobalMaxPooling1D": "global_max_pooling",
           "Flatten": "flatten", **_OWN}


def _class_names(config) -> set[str]:
    found = set()
    if isinstance(config, dict):
        if isinstance(config.get("class_name"), str):
            found.add(config["class_name"])
        for value in config.values():
            found |= _class_names(value)
    elif isinstance(config, list):
        for value in config:
            found |= _class_names(value)
    return found


def _read_config(path: Path) -> dict:
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("config.json"))
    except FileNotFoundError:
        raise SpecError("", f"cannot read {path}: no such file") from None
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, OSError) as error:
        raise SpecError("", f"{path} is not a .keras model file ({error})") from None


def import_model(path: str | Path, *, trust: bool = False) -> tuple[StackSpec, dict[str, list[np.ndarray]], list[str]]:
    """Loads a `.keras` model with safe_mode=True and turns it into a stack, its weights and notes.

    Refused: layers the explorer cannot show (named), and custom expressions unless `trust`.
    """
    path = Path(path)
    classes = _class_names(_read_config(path))
    if "CustomExpression" in classes and not trust:
        raise TrustError(f"{path.name} holds a custom expression, which runs as code: open it only if you trust "
                         "its source")
    backend.load()
    import keras

    from . import layers  # noqa: F401  (registers the explorer's own layers for loading)
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:
        message = strip_ansi(str(error)).strip().splitlines()
        raise SpecError("", f"cannot load {path.name}: {message[0] if message else type(error).__name__}") from None
    return _to_stack(model)


def _to_stack(model) -> tuple[StackSpec, dict[str, list[np.ndarray]], list[str]]:
    import keras
    notes: list[str] = []
    unsupported: list[str] = []
    layers: list[LayerSpec] = []
    weights: dict[str, list[np.ndarray]] = {}
    shape = tuple(model.inputs[0].shape)
    dtype = str(model.inputs[0].dtype)
    input_spec = None
    for layer in model.layers:
        kind = type(layer).__name__
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if kind in INFERENCE_NO_OPS:
            notes.append(f"{layer.name} ({kind}) does nothing at inference and was left out")
            continue
        spec = _layer_spec(layer, kind)
        if spec is None:
            unsupported.append(f"{layer.name} ({kind})")
            continue
        if spec.type == "embedding":
            input_spec = InputSpec("tokens", layer.input_dim, None)
        layers.append(spec)
        weights[spec.name] = layer.get_weights()
    if unsupported:
        raise StackError("the explorer cannot show these layers: " + ", ".join(unsupported)
                         + "; it knows embedding, masking, SimpleRNN/LSTM/GRU (also bidirectional), pooling, "
                           "Flatten, Dense and TimeDistributed(Dense)")
    if not layers:
        raise StackError("the model has no layers the explorer can show")
    if input_spec is None:
        if "int" in dtype or len(shape) != 3 or shape[-1] is None:
            raise StackError(f"the model's input {shape} ({dtype}) is neither token ids with an Embedding first "
                             "nor (batch, T, features) vectors")
        input_spec = InputSpec("features", None, int(shape[-1]))
    maxlen = shape[1] if len(shape) > 1 and shape[1] is not None else None
    if maxlen:
        notes.append(f"the model takes exactly {maxlen} timesteps: maxlen is set to {maxlen}")
    stack = StackSpec(input_spec, Batching(maxlen=maxlen), layers)
    stack.weights = weights
    stack.weights_id = uuid.uuid4().hex
    return stack, weights, notes


def _layer_spec(layer, kind: str) -> LayerSpec | None:
    name = layer.name if _NAME.match(layer.name) else None
    if kind == "Embedding":
        return LayerSpec("embedding", {"output_dim": layer.output_dim, "mask_zero": bool(layer.mask_zero)}, name)
    if kind == "Masking":
        return LayerSpec("masking", {"mask_value": float(layer.mask_value)}, name)
    if kind == "Bidirectional":
        inner = _layer_spec(layer.forward_layer, type(layer.forward_layer).__name__)
        if inner is None or not inner.is_recurrent:
            return None
        inner.params.update(bidirectional=True, merge_mode=layer.merge_mode or "concat",
                            return_sequences=bool(layer.return_sequences), return_state=bool(layer.return_state))
        inner.name = name
        return inner
    if kind in _RNN_TYPES:
        if kind == "GRU" and not layer.reset_after:
            return None
        activation = keras_activation_name(layer.activation)
        return LayerSpec(_RNN_TYPES[kind], {"units": layer.units, "return_sequences": bool(layer.return_sequences),
                                            "return_state": bool(layer.return_state),
                                            "go_backwards": bool(layer.go_backwards), "activation": activation},
                         name)
    if kind == "Dense":
        return LayerSpec("dense", {"units": layer.units, "activation": _dense_activation(layer.activation)}, name)
    if kind == "TimeDistributed" and type(layer.layer).__name__ == "Dense":
        return LayerSpec("time_distributed_dense", {"units": layer.layer.units,
                                                    "activation": _dense_activation(layer.layer.activation)}, name)
    if kind in _SIMPLE:
        params = {"expression": layer.expression} if kind == "CustomExpression" else {}
        return LayerSpec(_SIMPLE[kind], params, name)
    return None


def keras_activation_name(function) -> str:
    return getattr(function, "__name__", str(function))


def _dense_activation(function) -> str | None:
    name = keras_activation_name(function)
    return None if name == "linear" else name


def apply_weights(keras_layers: dict, weights: dict[str, list[np.ndarray]]) -> list[str]:
    """Copies trained weights into freshly built layers; layers whose shapes changed keep fresh ones."""
    notes = []
    for name, values in weights.items():
        layer = keras_layers.get(name)
        if layer is None:
            continue
        current = layer.get_weights()
        if len(current) != len(values) or any(a.shape != b.shape for a, b in zip(current, values)):
            notes.append(f"{name}: the trained weights no longer fit its settings, so it starts from fresh ones")
            continue
        layer.set_weights(values)
    return notes


def export_model(built, path: str | Path) -> None:
    """Saves the stack, with its current weights, as a `.keras` file (written beside, then renamed)."""
    import os
    import tempfile
    path = Path(path)
    if path.suffix != ".keras":
        raise SpecError("", f"a Keras model file must end in .keras, got {path.name}")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".keras", dir=path.parent if str(path.parent) else ".")
    os.close(fd)
    try:
        built.model.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
