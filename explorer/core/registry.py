"""Every layer type, declared once: its parameters (Keras's names, defaults, limits, tooltips), how it is
built, its mask role, its display name and palette group, its code export, the Keras classes it comes from and
how it reads them back (the inverse of building), its memory estimate, its gates and its width rule.

Adding a layer type means one `LayerType` in `TYPES` (and its tests). Keras is imported only inside the
build functions, so this module stays importable without it.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from .spec import LayerSpec, StackSpec

MAX_UNITS = 4096
FLOAT32_MAX = 3.4028234663852886e38
# Keras's activations that take only the tensor (keras.activations.get(name) works with its defaults)
ACTIVATIONS = ("linear", "relu", "tanh", "sigmoid", "softmax", "gelu", "elu", "selu", "softplus", "swish",
               "hard_sigmoid", "exponential", "leaky_relu", "silu", "softsign", "relu6", "mish", "celu",
               "hard_silu", "hard_swish", "hard_tanh", "log_sigmoid", "log_softmax", "tanh_shrink",
               "soft_shrink", "hard_shrink", "sparse_plus", "sparse_sigmoid", "squareplus", "sparsemax", "glu")
# Keras's class ("Conv1D"), a registered name ("package>Class") or a keras.ops operation ("ops.numpy.Mean")
KERAS_CLASS = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}(>[A-Za-z_][A-Za-z0-9_]{0,99})?|ops\.[a-z_]{1,20}\.[A-Za-z_][A-Za-z0-9_]{0,99}")
MAX_CONFIG = 200_000
# The Keras layer card's class chooser, with a config each starts from (any other class of keras.layers may be
# typed in; Keras checks its config when it builds it)
KERAS_STARTERS: dict[str, dict] = {
    "Conv1D": {"filters": 16, "kernel_size": 3, "padding": "same"},
    "SeparableConv1D": {"filters": 16, "kernel_size": 3, "padding": "same"},
    "MaxPooling1D": {"pool_size": 2},
    "AveragePooling1D": {"pool_size": 2},
    "BatchNormalization": {},
    "LayerNormalization": {},
    "Dropout": {"rate": 0.5},
    "SpatialDropout1D": {"rate": 0.2},
    "GaussianNoise": {"stddev": 0.1},
    "Activation": {"activation": "relu"},
    "LeakyReLU": {},
    "RepeatVector": {"n": 3},
    "UpSampling1D": {"size": 2},
    "ZeroPadding1D": {"padding": 1},
    "Cropping1D": {"cropping": [1, 1]},
    "Permute": {"dims": [2, 1]},
    "TimeDistributed": {"layer": {"module": "keras.layers", "class_name": "Dense", "config": {"units": 8}}},
}
MERGE_MODES = ("concat", "sum", "mul", "ave")
# What a recurrent layer passes to the next one: its output, or one of its return_state states
FEEDS = ("output", "h", "c", "forward_h", "forward_c", "backward_h", "backward_c")


# --- value checkers: each returns the clean value or raises ValueError(problem) ---

def show(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (str, bool, type(None), list, dict)) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def positive_int(limit: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"must be a positive integer, got {show(value)}")
        if value > limit:
            raise ValueError(f"must be at most {limit}, got {value}")
        return value
    return check


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, got {show(value)}")
    return value


def number(value: Any) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be a finite number, got {show(value)}")
    try:
        finite = math.isfinite(value) and abs(value) <= FLOAT32_MAX  # values reach the model as float32
    except OverflowError:  # an integer beyond any float
        finite = False
    if not finite:
        raise ValueError(f"must be a finite number (at most ±3.4e38), got {show(value)}")
    return value


def choice(options: tuple[str, ...], *, nullable: bool = False) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value is None and nullable:
            return None
        if value not in options:
            listed = ", ".join(f'"{o}"' for o in options) + (", null" if nullable else "")
            raise ValueError(f"must be one of {listed}, got {show(value)}")
        return value
    return check


def class_name(value: Any) -> str:
    if not isinstance(value, str) or not KERAS_CLASS.fullmatch(value):
        raise ValueError(f"must be the name of a Keras layer class, such as \"Conv1D\", or of a keras.ops "
                         f"operation, such as \"ops.numpy.Mean\", got {show(value)}")
    return value


# An array in a stack file (trained weights, a NumPy constant a model's graph holds): its shape, its dtype and its
# values as base64 of their little-endian bytes
ARRAY_DTYPES = ("float32", "float64", "float16", "int64", "int32", "int16", "int8", "uint8", "bool")
MAX_ARRAY_VALUES = 10_000_000


def array_json(array) -> dict:
    import numpy as np
    array = np.asarray(array)
    return {"shape": list(array.shape), "dtype": str(array.dtype),
            "data": base64.b64encode(np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes())
            .decode("ascii")}


def array_value(data: Any, dtypes: tuple[str, ...] = ARRAY_DTYPES, most: int | None = MAX_ARRAY_VALUES):
    """The NumPy array array_json wrote, of at most `most` values (None: trained weights, any count); ValueError
    naming what is wrong."""
    import numpy as np
    if not isinstance(data, dict) or set(data) - {"shape", "dtype", "data"}:
        raise ValueError(f'must be {{"shape": [...], "dtype": "...", "data": "base64"}}, got {show(data)}')
    dtype, shape = data.get("dtype", dtypes[0]), data.get("shape")
    if dtype not in dtypes:
        raise ValueError(f"dtype must be one of {', '.join(dtypes)}, got {show(dtype)}")
    if (not isinstance(shape, list) or len(shape) > 8 or any(isinstance(n, bool) or not isinstance(n, int)
                                                             or not 0 <= n <= MAX_ARRAY_VALUES for n in shape)
            or most is not None and math.prod(shape) > most):
        raise ValueError(f"shape must be a list of at most 8 sizes{f', {most:,} values in all' if most else ''}, "
                         f"got {show(shape)}")
    try:
        raw = base64.b64decode(data.get("data") if isinstance(data.get("data"), str) else "?", validate=True)
    except (ValueError, binascii.Error):
        raise ValueError(f"data must be base64 text of little-endian {dtype} numbers") from None
    kind = np.dtype(dtype).newbyteorder("<")
    if len(raw) != kind.itemsize * math.prod(shape):
        raise ValueError(f"data holds {len(raw) // kind.itemsize} numbers; shape {shape} needs {math.prod(shape)}")
    return np.frombuffer(raw, dtype=kind).reshape(shape).astype(dtype)


# A call option's value in a stack file: JSON, with {"slice": [start, stop, step]}, {"tuple": [...]} and
# {"ellipsis": true} for what Python's indexing takes (`x[:, -1]` is GetItem with key (slice, -1)), and {"array":
# array_json} for a NumPy constant of more than MAX_OPTION_ITEMS values a dimension (a positional encoding)
MAX_OPTION_ITEMS = 32


# Keras objects a call may be given, as Keras serializes them: one of its own functions (an activation), or an
# initializer, regularizer, constraint, loss, metric or optimizer; never a layer or model (which Keras saves
# without its weights) nor anything else Keras can build
OBJECT_MODULES = ("keras.initializers", "keras.regularizers", "keras.constraints", "keras.losses", "keras.metrics",
                  "keras.optimizers")


class SavedObject:
    """A Keras object a call is given (`activation_fn=keras.activations.hard_sigmoid`, an initializer, a loss, a
    function the user registered with Keras), held as Keras serializes it and made again by Keras in safe mode, in the
    engine only: a registered function is found only where the user's own code registered it."""

    def __init__(self, saved: Any):
        if not (isinstance(saved, dict) and isinstance(saved.get("class_name"), str)
                and (saved["class_name"] == "function" and isinstance(saved.get("config"), str)
                     and saved.get("module") in ("builtins", None)
                     or saved.get("module") in OBJECT_MODULES and isinstance(saved.get("config"), dict))):
            raise ValueError(f'must be {{"keras": …}} holding a Keras function ({{"class_name": "function", '
                             f'"config": "relu"}}) or one of {", ".join(OBJECT_MODULES)} as Keras serializes it, '
                             f"got {show(saved)}")
        self.saved = saved

    def text(self) -> str:
        """As a card shows it: hard_sigmoid, Constant(value=0.25)."""
        if self.saved["class_name"] == "function":
            return self.saved["config"]
        return f"{self.saved['class_name']}({', '.join(f'{k}={v!r}' for k, v in self.saved['config'].items())})"

    def code(self) -> str:
        return f"keras.saving.deserialize_keras_object({self.saved!r})"

    def value(self):
        from . import backend
        keras = backend.load()
        try:
            made = keras.saving.deserialize_keras_object(self.saved, safe_mode=True)
        except Exception as error:  # noqa: BLE001  (Keras reports an unknown object as several exception types)
            raise ValueError(f"is {self.text()}, which Keras cannot make: "
                             f"{str(error).splitlines()[0].split('. ')[0]}") from None
        if isinstance(made, (keras.layers.Layer, keras.Operation)):
            raise ValueError(f"is {self.text()}, a layer, which a call takes as a tensor")
        return made

    @staticmethod
    def of(value: Any) -> dict | None:
        """A Keras function or object, or a function the user registered with Keras (their --custom-objects), as a
        stack file holds it; None for anything else."""
        import inspect
        keras = sys.modules.get("keras")   # a Keras object exists only where Keras is loaded (never the window)
        if keras is None:
            return None
        module = getattr(type(value), "__module__", "")
        registered = keras.saving.get_registered_name(value) if inspect.isfunction(value) else ""
        if not (inspect.isfunction(value) and (value.__module__ or "").startswith("keras.")
                or ">" in registered and keras.saving.get_registered_object(registered) is value
                or module.startswith(tuple(name.replace("keras.", "keras.src.", 1) for name in OBJECT_MODULES))):
            return None
        try:
            saved = json.loads(json.dumps(keras.saving.serialize_keras_object(value)))
            SavedObject(saved).value()
        except (TypeError, ValueError):
            return None
        return saved


class AsWritten(str):
    """A tensor among a call's values, written as it is (its layer's name on a card, its code in a script)."""


def option_json(value: Any, *, arrays: bool = False) -> Any:
    """A call's keyword value as a stack file holds it; ValueError for what it cannot hold (a tensor, an object).
    `arrays`: every NumPy array kept as one (among tensors, where an operation reads its dtype), not only a large
    one."""
    if value is None or isinstance(value, (AsWritten, bool, int, float)) or isinstance(value, str) and len(value) <= 100:
        return value
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):   # a NumPy number or array
        if getattr(value, "ndim", 0) and (arrays or max(value.shape) > MAX_OPTION_ITEMS):   # kept as an array
            if str(value.dtype) not in ARRAY_DTYPES or value.size > MAX_ARRAY_VALUES:
                raise ValueError(f"must be a NumPy array of {', '.join(ARRAY_DTYPES)} of at most "
                                 f"{MAX_ARRAY_VALUES:,} values, got {value.dtype} {value.shape}")
            return {"array": array_json(value)}
        return option_json(value.tolist())
    if isinstance(value, slice):
        return {"slice": [option_json(part) for part in (value.start, value.stop, value.step)]}
    if value is Ellipsis:
        return {"ellipsis": True}
    if isinstance(value, (list, tuple)) and len(value) <= MAX_OPTION_ITEMS:
        items = [option_json(item, arrays=arrays) for item in value]
        return {"tuple": items} if isinstance(value, tuple) else items
    if isinstance(value, dict) and len(value) <= MAX_OPTION_ITEMS and all(isinstance(key, str) and len(key) <= 100
                                                                          for key in value):
        return {"dict": {key: option_json(item, arrays=arrays) for key, item in value.items()}}
    if isinstance(value, SavedObject):
        return {"keras": value.saved}
    saved = SavedObject.of(value)
    if saved is not None:
        return {"keras": saved}
    keras = sys.modules.get("keras")
    if keras is not None and isinstance(value, keras.layers.Layer):
        raise ValueError(f"is the layer {getattr(value, 'name', '')} given as an object, not a tensor: Keras saves its "
                         "config but not its weights, so even the model Keras loads is not the trained one")
    raise ValueError(f"must be true, false, null, a number, a short string, a list, tuple, dict or slice of them, "
                     f"or a function, initializer, regularizer, constraint, loss, metric or optimizer of Keras, got "
                     f"{show(value)}")


def option_value(data: Any, *, objects: bool = True) -> Any:
    """The Python value of a call option as a stack file holds it (option_json's inverse); `objects`: a Keras
    function or object made by Keras, else a SavedObject (the window, which never imports Keras)."""
    if isinstance(data, AsWritten):
        return data
    if isinstance(data, dict) and list(data) == ["keras"]:
        held = SavedObject(data["keras"])
        return held.value() if objects else held
    if isinstance(data, dict):
        if list(data) == ["slice"] and isinstance(data["slice"], list) and len(data["slice"]) == 3 and all(
                part is None or isinstance(part, int) and not isinstance(part, bool) for part in data["slice"]):
            return slice(*data["slice"])
        if data == {"ellipsis": True}:
            return Ellipsis
        if list(data) == ["tuple"] and isinstance(data["tuple"], list) and len(data["tuple"]) <= MAX_OPTION_ITEMS:
            return tuple(option_value(item, objects=objects) for item in data["tuple"])
        if list(data) == ["dict"] and isinstance(data["dict"], dict) and len(data["dict"]) <= MAX_OPTION_ITEMS:
            return {key: option_value(item, objects=objects) for key, item in data["dict"].items()}
        if list(data) == ["array"]:
            return array_value(data["array"])
        raise ValueError(f'must be {{"slice": [start, stop, step]}}, {{"tuple": [...]}}, {{"dict": {{...}}}}, '
                         f'{{"ellipsis": true}} or '
                         f'{{"array": {{"shape": …, "dtype": …, "data": …}}}}, or {{"keras": …}} (a Keras function '
                         f"or initializer) when it is an object, got {show(data)}")
    if isinstance(data, list) and len(data) <= MAX_OPTION_ITEMS:
        return [option_value(item, objects=objects) for item in data]
    return option_json(data)


def call_options(options: dict | None) -> dict[str, Any]:
    """A card's call options as Python values, each made by Keras where it is a Keras object; a ValueError names
    the option."""
    values = {}
    for key, data in (options or {}).items():
        try:
            values[key] = option_value(data)
        except ValueError as error:
            raise ValueError(f"{key} {error}") from None
    return values


def option_code(data: Any) -> str:
    """A call option as Python source for an exported script (a NumPy constant as np.array(…), whole)."""
    value = option_value(data, objects=False)
    if isinstance(value, AsWritten):
        return value
    if isinstance(value, SavedObject):
        return value.code()
    if type(value).__module__ == "numpy" and getattr(value, "ndim", 0):
        return f"np.array({value.tolist()!r}, dtype={str(value.dtype)!r})"
    if isinstance(value, (list, tuple, dict)):
        return _items(value, option_code)
    return repr(value)


def _items(value: list | tuple | dict, written: Callable[[Any], str]) -> str:
    """A list, tuple or dict of option values as Python writes it, each item `written` (option_code, option_text)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key!r}: {written(option_json(item, arrays=True))}" for key, item in value.items()) + "}"
    inner = ", ".join(written(option_json(item, arrays=True)) for item in value)
    return f"({inner}{',' if len(value) == 1 else ''})" if isinstance(value, tuple) else f"[{inner}]"


def option_text(data: Any) -> str:
    """A call option as Python writes it: (:, -1), 2.0, True."""
    value = option_value(data, objects=False)
    if isinstance(value, AsWritten):
        return value
    if isinstance(value, SavedObject):
        return value.text()
    if isinstance(value, slice):
        start, stop = ("" if part is None else str(part) for part in (value.start, value.stop))
        return f"{start}:{stop}" + ("" if value.step is None else f":{value.step}")
    if value is Ellipsis:
        return "..."
    if type(value).__module__ == "numpy" and getattr(value, "ndim", 0):   # a NumPy constant held as an array
        return f"array({' × '.join(map(str, value.shape))}, {value.dtype})"
    if isinstance(value, (list, tuple, dict)):
        return _items(value, option_text)
    return repr(value)


def keras_config(value: Any) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"must be an object: the layer's config as Keras saves it, got {show(value)}")
    try:
        size = len(json.dumps(value))
    except (TypeError, ValueError):
        raise ValueError("must hold only JSON values (numbers, strings, lists, objects)") from None
    if size > MAX_CONFIG:
        raise ValueError(f"must be at most {MAX_CONFIG} characters of JSON, got {size}")
    return value


def expression(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a non-empty Python expression, got {show(value)}")
    if len(value) > 2000:
        raise ValueError("must be at most 2000 characters long")
    return value


# --- declarations ---

@dataclass(frozen=True)
class Param:
    default: Any
    check: Callable[[Any], Any]
    help: str
    options: tuple | None = None       # a closed list of values (a combo box); None first when nullable
    limit: int | None = None           # the largest value of a positive integer
    # added after the first files: written only when set, so files that do not use it stay readable by
    # explorers that predate it
    omit_default: bool = False


def _units(default: int, help_text: str) -> Param:
    return Param(default, positive_int(MAX_UNITS), help_text, limit=MAX_UNITS)


def _flag(default: bool, help_text: str, *, newer: bool = False) -> Param:
    return Param(default, boolean, help_text, omit_default=newer)


def _pick(default: Any, options: tuple, help_text: str, *, nullable: bool = False, newer: bool = False) -> Param:
    return Param(default, choice(options, nullable=nullable), help_text, (None, *options) if nullable else options,
                 omit_default=newer)


UNITS_HELP = "Number of units: the size of the output vector at each timestep."
_USE_BIAS = _flag(True, "Add a learned bias vector (Keras's use_bias); off: no bias weights.", newer=True)


def _recurrent_params(kind: str) -> dict[str, Param]:
    params = {
        "units": _units(64, UNITS_HELP),
        "return_sequences": _flag(False, "On: output every timestep (batch, T, units). Off: only the last state "
                                         "(batch, units)."),
        "return_state": _flag(False, "Also return the final states (h, and c for an LSTM) as extra outputs."),
        "bidirectional": _flag(False, "Run a second copy backwards in time and merge both directions."),
        "merge_mode": _pick("concat", MERGE_MODES, "How the two directions of a bidirectional layer are merged: "
                                                   "concat doubles the units; none keeps both: the output is the "
                                                   "forward one, the backward one is <name>/backward.",
                            nullable=True),
        "go_backwards": _flag(False, "Process the sequence from the last timestep to the first."),
        "activation": _pick("tanh", ACTIVATIONS, "Activation function applied to the output."),
    }
    if kind != "simple_rnn":
        params["recurrent_activation"] = _pick("sigmoid", ACTIVATIONS, "Activation of the gates.", newer=True)
    params["use_bias"] = _USE_BIAS
    if kind == "gru":
        params["reset_after"] = _flag(True, "Apply the reset gate after the recurrent matrix product (Keras's "
                                            "default, and cuDNN's); off: before it, the original GRU.", newer=True)
    params["feeds"] = _pick("output", FEEDS, "What the next layer receives: the output, or one of the states "
                                             "that return_state adds (h, c for an LSTM; forward_/backward_ when "
                                             "bidirectional), as in `x, h, c = LSTM(…, return_state=True)(x)`.",
                             newer=True)
    return params


def _dense_params() -> dict[str, Param]:
    return {"units": _units(10, UNITS_HELP),
            "activation": _pick(None, ACTIVATIONS, "Activation function applied to the output.", nullable=True),
            "use_bias": _USE_BIAS}


_KEEPDIMS = {"keepdims": _flag(False, "Keep the time axis with length 1: (batch, 1, features) instead of "
                                      "(batch, features).", newer=True)}


class ByKeras(Exception):
    """A Keras layer whose settings no registry type holds: Keras computes it as it is (a Keras layer card)."""


@dataclass(frozen=True)
class Arriving:
    """What reaches a layer, for its memory estimate: one sequence's shape (no batch axis) and its features per
    step (1 for raw token ids), the padded length, the vocabulary, and the custom layers' dry run."""

    shape: tuple
    width: int
    steps: int
    vocab_size: int
    custom_shape: Callable[[LayerSpec, tuple], tuple | None] | None = None


@dataclass(frozen=True)
class Footprint:
    """What a layer adds to a run's memory (see memory.estimate_mb): floats per sequence, and weights."""

    shape: tuple                   # its output for one sequence, no batch axis
    outputs: int = 0               # floats per sequence it returns besides its output (states, attention weights)
    workspace: int = 0             # floats per sequence its call holds while it runs
    weights: int = 0
    kernels: int = 0               # recurrent kernels' weights: their orthogonal initializer takes more copies


def _keeps(layer, arriving: Arriving) -> Footprint:
    return Footprint(arriving.shape)


def _no_width(params: dict) -> None:
    return None


@dataclass(frozen=True)
class LayerType:
    key: str
    display: str                   # the name the window shows
    group: str                     # the add-layer menu's group
    params: dict[str, Param]
    mask_role: str                 # what it does to a mask that arrives: carries, consumes or drops
    keras_classes: tuple[str, ...]  # the Keras classes (type(layer).__name__) a .keras model brings it as
    make: Callable[[LayerSpec, str, StackSpec], Any]   # → the Keras layer
    code: Callable[[LayerSpec, str, StackSpec], str]   # → the Python source that makes the same layer
    # a Keras layer (as make builds it, or as a .keras file brings it) → its params; None: not this type after
    # all; raises ByKeras (a Keras layer card holds it)
    read: Callable[[Any], dict | None]
    memory: Callable[[LayerSpec, Arriving], Footprint]   # → what it adds to a run's memory
    # the features per step it passes on, from its own settings alone; None: they come from its input
    width: Callable[[dict], int | None]
    cuts_time: Callable[[dict], bool] = lambda params: False   # removes the time axis
    needs_sequence: bool = True    # needs (batch, T, features): Keras (or the lesson) refuses a 2-D tensor
    own_class: str | None = None   # the explorer's own Keras layer class (explorer.core.layers)
    mask_advice: str = ""          # when it drops a mask: what to do instead
    gates: int = 0                 # a recurrent cell's weight blocks per unit (its kernel is gates × units wide)
    gate_names: tuple[str, ...] = ()   # the gates the cell view shows, in gates.py's order (the cell state last)
    sigmoid_gates: tuple[str, ...] = ()   # those its recurrent_activation makes: 0 to 1 with Keras's default

    @property
    def recurrent(self) -> bool:
        return self.group == "Recurrent"


# --- building and code, per kind ---

def _keras():
    from . import backend
    return backend.load()


def _embedding(layer, name, spec):
    p = layer.params
    return _keras().layers.Embedding(spec.input_for(layer).vocab_size, p["output_dim"], mask_zero=p["mask_zero"],
                                     name=name)


def _embedding_code(layer, name, spec):
    p = layer.params
    return (f"keras.layers.Embedding({spec.input_for(layer).vocab_size}, {p['output_dim']}, "
            f"mask_zero={p['mask_zero']}, name={name!r})")


def _masking(layer, name, spec):
    return _keras().layers.Masking(mask_value=layer.params["mask_value"], name=name)


def _masking_code(layer, name, spec):
    return f"keras.layers.Masking(mask_value={layer.params['mask_value']!r}, name={name!r})"


_RNN_CLASSES = {"simple_rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}
_RNN_OPTIONS = ("return_sequences", "return_state", "go_backwards", "activation", "recurrent_activation",
                "use_bias", "reset_after")


def _rnn_options(layer) -> dict[str, Any]:
    return {key: layer.params[key] for key in _RNN_OPTIONS if key in layer.params}


def _recurrent(layer, name, spec):
    from . import backend
    keras = _keras()
    p = layer.params
    cls = getattr(keras.layers, _RNN_CLASSES[layer.type])
    options = {**_rnn_options(layer), **backend.recurrent_options(layer.type, p["go_backwards"])}
    if p["bidirectional"]:
        return keras.layers.Bidirectional(cls(p["units"], **options, name=f"{name}_cell"),
                                          merge_mode=p["merge_mode"], name=name)
    return cls(p["units"], **options, name=name)


def _written(layer, options: dict[str, Any]) -> str:
    """Keyword arguments for exported code; the newer parameters only where they differ from Keras's default."""
    params = TYPES[layer.type].params
    return "".join(f"{key}={value!r}, " for key, value in options.items()
                   if not (params[key].omit_default and value == params[key].default))


def _recurrent_code(layer, name, spec):
    p = layer.params
    options = _written(layer, _rnn_options(layer)).rstrip(", ")
    cell = f"keras.layers.{_RNN_CLASSES[layer.type]}({p['units']}, {options}"
    if p["bidirectional"]:
        return f"keras.layers.Bidirectional({cell}), merge_mode={p['merge_mode']!r}, name={name!r})"
    return f"{cell}, name={name!r})"


def _dense(layer, name, spec):
    # time_distributed_dense too: Dense on (batch, T, features) is TimeDistributed(Dense), the same weights and
    # numbers; Keras 3.15's TimeDistributed loops over the batch size instead of T when T is unknown when traced.
    p = layer.params
    return _keras().layers.Dense(p["units"], activation=p["activation"], use_bias=p["use_bias"], name=name)


def _dense_code(layer, name, spec):
    p = layer.params
    options = _written(layer, {"activation": p["activation"], "use_bias": p["use_bias"]})
    return f"keras.layers.Dense({p['units']}, {options}name={name!r})"


def _keras_head(class_name: str):
    def make(layer, name, spec):
        return getattr(_keras().layers, class_name)(**layer.params, name=name)

    def code(layer, name, spec):
        return f"keras.layers.{class_name}({_written(layer, layer.params)}name={name!r})"
    return make, code


def _own(class_name: str):
    def make(layer, name, spec):
        from . import layers as own
        return getattr(own, class_name)(name=name)

    def code(layer, name, spec):
        return f"{class_name}(name={name!r})"
    return make, code


def _custom(layer, name, spec):
    from . import layers as own
    return own.CustomExpression(layer.params["expression"], name=name)


def _custom_code(layer, name, spec):
    return f"{custom_class_name(name)}(name={name!r})"


def custom_class_name(name: str) -> str:
    """The class a custom layer gets in exported code."""
    return "".join(part.title() for part in python_name(name).split("_")) + "Expression"


def python_name(name: str) -> str:
    """A layer name made into a Python identifier (Keras allows any name without "/")."""
    cleaned = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    return cleaned if cleaned[:1].isalpha() or cleaned[:1] == "_" else f"layer_{cleaned}"


def _keras_layer(layer, name, spec):
    """A layer of keras.layers from its saved config, built by Keras in safe mode."""
    from .keras_cards import keras_layer
    from .places import argument_places
    return keras_layer(layer.params["class_name"], layer.params["config"], name, call_options(layer.options),
                       argument_places(layer.arguments))


def _keras_layer_code(layer, name, spec):
    from .keras_cards import is_custom, is_operation
    class_name = layer.params["class_name"]
    config = {**layer.params["config"], "name": name}
    if is_custom(class_name):   # the script's reader imports the class from their own file first
        return f"keras.saving.deserialize_keras_object({{'class_name': {class_name!r}, 'config': {config!r}}})"
    if is_operation(class_name):   # a keras.ops operation, as Keras saves it in a model
        module, _, operation = class_name.rpartition(".")
        saved = {"module": f"keras.src.{module}", "class_name": operation, "config": config}
        return f"keras.saving.deserialize_keras_object({saved!r})"
    return f"keras.layers.deserialize({ {'module': 'keras.layers', 'class_name': class_name, 'config': config}!r})"


# --- reading Keras layers back (the inverse of building), per kind ---

def _activation(layer, function, what: str = "activation") -> str:
    name = getattr(function, "__name__", str(function))
    if name not in ACTIVATIONS:
        raise ByKeras(f"{layer.name} uses the {what} {name}, which is not one of Keras's named activations")
    return name


def _read_embedding(layer) -> dict:
    return {"output_dim": layer.output_dim, "mask_zero": bool(layer.mask_zero)}


def _read_masking(layer) -> dict:
    return {"mask_value": float(layer.mask_value)}


def _read_recurrent(layer) -> dict:
    if type(layer).__name__ == "Bidirectional":
        return _read_bidirectional(layer)
    cell = layer.cell
    params = {"units": layer.units, "return_sequences": bool(layer.return_sequences),
              "return_state": bool(layer.return_state), "go_backwards": bool(layer.go_backwards),
              "activation": _activation(layer, cell.activation), "use_bias": bool(cell.use_bias)}
    if hasattr(cell, "recurrent_activation"):
        params["recurrent_activation"] = _activation(layer, cell.recurrent_activation, "recurrent_activation")
    if hasattr(cell, "reset_after"):
        params["reset_after"] = bool(cell.reset_after)
    return params


def _read_bidirectional(layer) -> dict:
    name = layer.name
    forward, backward = layer.forward_layer, layer.backward_layer
    params = _read_recurrent(forward)
    mirror = _read_recurrent(backward) if type(backward) is type(forward) else None
    if mirror is None or {**mirror, "go_backwards": not mirror["go_backwards"]} != params:
        raise ByKeras(f"{name} (Bidirectional) has a backward layer with its own settings")
    return {**params, "bidirectional": True, "merge_mode": layer.merge_mode,
            "return_sequences": bool(layer.return_sequences), "return_state": bool(layer.return_state)}


def _read_dense(layer) -> dict | None:
    if type(layer).__name__ == "TimeDistributed":   # a .keras file's TimeDistributed(Dense)
        layer = layer.layer
        if type(layer).__name__ != "Dense":
            return None
    if getattr(layer, "lora_enabled", False):
        raise ByKeras(f"{layer.name} (Dense) has LoRA weights, which a stack's Dense does not hold")
    activation = _activation(layer, layer.activation)
    return {"units": layer.units, "activation": None if activation == "linear" else activation,
            "use_bias": bool(layer.use_bias)}


def _channels_last(layer) -> None:
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        raise ByKeras(f"{layer.name} ({type(layer).__name__}) has data_format channels_first")


def _read_pooling(layer) -> dict:
    _channels_last(layer)
    return {"keepdims": bool(layer.keepdims)}


def _read_flatten(layer) -> dict:
    _channels_last(layer)
    return {}


def _read_nothing(layer) -> dict:
    return {}


def _read_custom(layer) -> dict:
    return {"expression": layer.expression}


def _read_keras_layer(layer) -> dict:
    from . import keras_cards
    return {"class_name": keras_cards.card_class(layer), "config": keras_cards.saved_config(layer)}


# --- memory, per kind (memory.estimate_mb adds them up) ---

def _size(shape: tuple) -> int:
    return math.prod(shape)


def _embedding_memory(layer, arriving: Arriving) -> Footprint:
    dim = layer.params["output_dim"]
    return Footprint((arriving.steps, dim), weights=arriving.vocab_size * dim)


def _recurrent_memory(layer, arriving: Arriving) -> Footprint:
    """Its input turned time-major, its per-step outputs, then turned back (the loop's workspace); its kernels
    (the recurrent ones initialised orthogonally); its return_state states."""
    p = layer.params
    directions = 2 if p["bidirectional"] else 1
    per_step = p["units"] * directions
    blocks = directions * TYPES[layer.type].gates * p["units"]
    width = _recurrent_width(p)
    return Footprint((arriving.steps, width) if p["return_sequences"] else (width,),
                     outputs=p["units"] * len(state_names(layer)) if p["return_state"] else 0,
                     workspace=arriving.steps * (arriving.width + 2 * per_step),
                     weights=blocks * (arriving.width + 2), kernels=blocks * p["units"])


def _dense_memory(layer, arriving: Arriving) -> Footprint:
    units = layer.params["units"]
    shape = (*arriving.shape[:-1], units) if len(arriving.shape) > 1 else (units,)
    return Footprint(shape, weights=(arriving.width + 1) * units)


def _time_cut(shape: tuple) -> tuple:
    return shape[1:] if len(shape) > 1 else shape


def _pooling_memory(layer, arriving: Arriving) -> Footprint:
    return Footprint(_time_cut(arriving.shape))


def _attention_memory(layer, arriving: Arriving) -> Footprint:
    """Its weights per step are a second output; the input weighted step by step, then summed."""
    return Footprint(_time_cut(arriving.shape), outputs=arriving.steps, weights=arriving.width + 1,
                     workspace=2 * arriving.steps * arriving.width)


def _flatten_memory(layer, arriving: Arriving) -> Footprint:
    return Footprint((_size(arriving.shape),))


def _custom_memory(layer, arriving: Arriving) -> Footprint:
    """The shape of a dry run of its expression when memory.estimate_mb is given one; else its input's."""
    if arriving.custom_shape is None:
        return Footprint(arriving.shape)
    shape = arriving.custom_shape(layer, arriving.shape) or arriving.shape
    return Footprint(tuple(arriving.steps if dim is None else dim for dim in shape))


def _keras_layer_memory(layer, arriving: Arriving) -> Footprint:
    """Keras's own compute_output_shape and weights; its steps' intermediate results, as large as its output."""
    from . import keras_cards
    shape, count = keras_cards.estimate(layer.params["class_name"], layer.params["config"], arriving.shape)
    return Footprint(shape, workspace=_size(shape), weights=count)


# --- width: the features per step a layer passes on ---

def _recurrent_width(params: dict) -> int:
    double = params["bidirectional"] and params["merge_mode"] == "concat"
    return params["units"] * (2 if double else 1)


def _units_width(params: dict) -> int:
    return params["units"]


def _embedding_width(params: dict) -> int:
    return params["output_dim"]


def layer_width(layer: LayerSpec) -> int | None:
    """The features per step `layer` passes on, when its own settings decide them."""
    return TYPES[layer.type].width(layer.params)


def _recurrent_cut(params: dict) -> bool:
    return not params["return_sequences"] or params["feeds"] != "output"


def _pool_cut(params: dict) -> bool:
    return not params["keepdims"]


_GAP_MAKE, _GAP_CODE = _keras_head("GlobalAveragePooling1D")
_GMP_MAKE, _GMP_CODE = _keras_head("GlobalMaxPooling1D")
_FLATTEN_MAKE, _FLATTEN_CODE = _keras_head("Flatten")


def _recurrent_type(key: str, display: str, gates: int, gate_names: tuple[str, ...] = (),
                    sigmoid_gates: tuple[str, ...] = ()) -> LayerType:
    return LayerType(key, display, "Recurrent", _recurrent_params(key), "consumes",
                     (_RNN_CLASSES[key],), _recurrent, _recurrent_code, _read_recurrent, _recurrent_memory,
                     _recurrent_width, _recurrent_cut, gates=gates, gate_names=gate_names,
                     sigmoid_gates=sigmoid_gates)


def _own_type(key: str, display: str, class_name: str, role: str, advice: str = "",
              memory: Callable[[LayerSpec, Arriving], Footprint] = _pooling_memory) -> LayerType:
    make, code = _own(class_name)
    return LayerType(key, display, "Over time", {}, role, (class_name,), make, code, _read_nothing, memory,
                     _no_width, lambda params: True, own_class=class_name, mask_advice=advice)


TYPES: dict[str, LayerType] = {t.key: t for t in (
    LayerType("embedding", "Embedding", "Input",
              {"output_dim": _units(32, "Size of each token's embedding vector."),
               "mask_zero": _flag(False, "Treat token id 0 as padding: a mask leaves this layer and mask-aware "
                                         "layers skip those steps.")},
              "carries", ("Embedding",), _embedding, _embedding_code, _read_embedding, _embedding_memory,
              _embedding_width),
    LayerType("masking", "Masking", "Input",
              {"mask_value": Param(0.0, number, "Timesteps whose features all equal this value are masked as "
                                                "padding.")},
              "carries", ("Masking",), _masking, _masking_code, _read_masking, _keeps, _no_width,
              needs_sequence=False),
    _recurrent_type("simple_rnn", "SimpleRNN", 1),
    _recurrent_type("lstm", "LSTM", 4, ("input", "forget", "candidate", "output", "cell"),
                    ("input", "forget", "output")),
    _recurrent_type("gru", "GRU", 3, ("update", "reset", "candidate"), ("update", "reset")),
    LayerType("global_average_pooling", "Global average pooling", "Over time", _KEEPDIMS, "consumes",
              ("GlobalAveragePooling1D",), _GAP_MAKE, _GAP_CODE, _read_pooling, _pooling_memory, _no_width,
              _pool_cut),
    _own_type("masked_mean_pooling", "Masked mean pooling", "MaskedMeanPooling", "consumes"),
    LayerType("global_max_pooling", "Global max pooling", "Over time", _KEEPDIMS, "drops",
              ("GlobalMaxPooling1D",), _GMP_MAKE, _GMP_CODE, _read_pooling, _pooling_memory, _no_width, _pool_cut,
              mask_advice="use Masked mean pooling or Global average pooling to honour it"),
    _own_type("time_average", "Time average (plain mean)", "TimeAverage", "drops",
              "use Masked mean pooling to average over valid steps only"),
    _own_type("last_timestep", "Last valid timestep", "LastTimestep", "consumes"),
    _own_type("attention_pooling", "Attention pooling", "AttentionPooling", "consumes", memory=_attention_memory),
    LayerType("flatten", "Flatten", "Over time", {}, "drops", ("Flatten",), _FLATTEN_MAKE, _FLATTEN_CODE,
              _read_flatten, _flatten_memory, _no_width, lambda params: True, needs_sequence=False,
              mask_advice="the padded steps become part of the vector"),
    LayerType("dense", "Dense", "Head", _dense_params(), "carries", ("Dense",), _dense, _dense_code, _read_dense,
              _dense_memory, _units_width, needs_sequence=False),
    LayerType("time_distributed_dense", "TimeDistributed(Dense)", "Head", _dense_params(), "carries",
              ("TimeDistributed",), _dense, _dense_code, _read_dense, _dense_memory, _units_width),
    LayerType("keras", "Keras layer", "Keras",
              {"class_name": Param("Conv1D", class_name, "The Keras layer class (keras.layers), as Keras saves it.",
                                   options=tuple(KERAS_STARTERS)),
               "config": Param(KERAS_STARTERS["Conv1D"], keras_config,
                               "The layer's config as Keras saves it (get_config); Keras checks it when it builds "
                               "the layer.")},
              "drops", (), _keras_layer, _keras_layer_code, _read_keras_layer, _keras_layer_memory, _no_width,
              needs_sequence=False),
    LayerType("custom", "Custom expression", "Code",
              {"expression": Param("ops.mean(x, axis=1)", expression,
                                   "A Python expression over x (the input), mask (or None) and ops (keras.ops).")},
              "drops", ("CustomExpression",), _custom, _custom_code, _read_custom, _custom_memory, _no_width,
              needs_sequence=False, own_class="CustomExpression",
              mask_advice="use mask in the expression to honour it"),
)}
GROUPS = ("Input", "Recurrent", "Over time", "Head", "Keras", "Code")


# the gates the cell view shows, per recurrent type that has them; and those between 0 and 1 (sigmoid)
GATES = {key: kind.gate_names for key, kind in TYPES.items() if kind.gate_names}
SIGMOID_GATES = frozenset(gate for kind in TYPES.values() for gate in kind.sigmoid_gates)


def layer_type(key: str) -> LayerType:
    return TYPES[key]


def state_names(layer: LayerSpec) -> list[str]:
    """The states return_state adds, in Keras's order: [output, *states]."""
    own = ["h", "c"] if layer.type == "lstm" else ["h"]
    if layer.params.get("bidirectional"):
        return [f"forward_{s}" for s in own] + [f"backward_{s}" for s in own]
    return own


def more_outputs(layer: LayerSpec) -> list[str]:
    """What a layer returns after its first output, in Keras's order, as probe keys under its name: the backward
    output of a Bidirectional with merge_mode None, then return_state's states ("backward", "state/h" …); a Keras
    layer card's further tensors ("output/1" …)."""
    if layer.type == "keras":   # what a Keras layer card's call returns after its first tensor
        return [f"output/{index}" for index in range(1, layer.returns or 1)]
    if not layer.is_recurrent:
        return []
    backward = ["backward"] if layer.params["bidirectional"] and layer.params["merge_mode"] is None else []
    return backward + ([f"state/{name}" for name in state_names(layer)] if layer.params["return_state"] else [])
