"""Stack document → Keras functional model and a probe of every layer's outputs and masks."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from . import backend, diagnose
from .errors import ExplorerError, StackError, strip_ansi
from .spec import LayerSpec, StackSpec

# How each layer type treats an incoming mask (the mask trace).
MASK_ROLE = {
    "global_average_pooling": "consumes", "masked_mean_pooling": "consumes", "last_timestep": "consumes",
    "attention_pooling": "consumes", "global_max_pooling": "drops", "time_average": "drops",
    "flatten": "drops", "dense": "carries", "time_distributed_dense": "carries", "masking": "carries",
    "embedding": "carries",
}


@dataclass
class LayerInfo:
    name: str
    spec: LayerSpec
    symbolic_shape: tuple
    params: int
    mask_in: bool
    mask_out: bool
    extra: dict[str, tuple] = field(default_factory=dict)  # probe key → symbolic shape (states, weights)

    @property
    def mask_role(self) -> str:
        """creates, carries, consumes, drops, or none (no mask arrives or leaves)."""
        if self.mask_out and not self.mask_in:
            return "creates"
        if self.mask_in and self.mask_out:
            return "carries"
        if not self.mask_in:
            return "none"
        if self.spec.is_recurrent:
            return "consumes"
        if self.spec.type == "custom":
            return "consumes" if "mask" in self.spec.params["expression"] else "drops"
        return MASK_ROLE.get(self.spec.type, "drops")


@dataclass
class BuiltStack:
    key: str
    model: Any            # input → final output
    probe: Any            # input → {name: output, name/mask: mask, name/state/h: …}
    forward: Any          # traced probe
    layers: list[LayerInfo]
    input_shape: tuple    # without the batch axis; None = any length
    input_dtype: str
    build_ms: float
    keras_layers: dict[str, Any]
    notes: list[str] = field(default_factory=list)   # e.g. trained weights that no longer fit

    @property
    def time_fixed(self) -> int | None:
        return self.input_shape[0]


def _make_layer(layer: LayerSpec, name: str, spec: StackSpec):
    import keras

    from . import layers as own
    p = layer.params
    kind = layer.type
    if kind == "embedding":
        return keras.layers.Embedding(spec.input.vocab_size, p["output_dim"], mask_zero=p["mask_zero"], name=name)
    if kind == "masking":
        return keras.layers.Masking(mask_value=p["mask_value"], name=name)
    if layer.is_recurrent:
        cls = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[kind]
        options = dict(units=p["units"], return_sequences=p["return_sequences"], return_state=p["return_state"],
                       go_backwards=p["go_backwards"], activation=p["activation"],
                       **backend.recurrent_options(kind, p["go_backwards"]))
        if p["bidirectional"]:
            return keras.layers.Bidirectional(cls(**options, name=f"{name}_cell"), merge_mode=p["merge_mode"],
                                              name=name)
        return cls(**options, name=name)
    if kind == "dense":
        return keras.layers.Dense(p["units"], activation=p["activation"], name=name)
    if kind == "time_distributed_dense":
        # Dense on (batch, T, features) is TimeDistributed(Dense): the same weights and numbers. Keras 3.15's
        # TimeDistributed loops over the batch size instead of T when T is unknown in a traced function.
        return keras.layers.Dense(p["units"], activation=p["activation"], name=name)
    simple = {"global_average_pooling": keras.layers.GlobalAveragePooling1D,
              "global_max_pooling": keras.layers.GlobalMaxPooling1D, "flatten": keras.layers.Flatten,
              "masked_mean_pooling": own.MaskedMeanPooling, "time_average": own.TimeAverage,
              "last_timestep": own.LastTimestep, "attention_pooling": own.AttentionPooling}
    if kind in simple:
        return simple[kind](name=name)
    if kind == "custom":
        return own.CustomExpression(p["expression"], name=name)
    raise StackError(f"unknown layer type {kind}")


def state_names(layer: LayerSpec) -> list[str]:
    own = ["h", "c"] if layer.type == "lstm" else ["h"]
    if layer.params.get("bidirectional"):
        return [f"forward_{s}" for s in own] + [f"backward_{s}" for s in own]
    return own


def build(spec: StackSpec) -> BuiltStack:
    """Builds the model for `spec`; problems raise StackError with a plain explanation."""
    diagnose.check_structure(spec)
    backend.load()
    import keras
    started = time.perf_counter()
    backend.set_random_seed(spec.seed, framework=spec.has_custom())
    names = spec.layer_names()
    fixed = spec.batching.maxlen if spec.needs_fixed_length() else None
    if spec.input.uses_ids:
        input_shape, dtype = (fixed,), "int32"
    else:
        input_shape, dtype = (fixed, spec.input.features), "float32"
    inputs = keras.Input(input_shape, dtype=dtype, name="sequences")
    x = inputs
    outputs: dict[str, Any] = {}
    infos: list[LayerInfo] = []
    objects: dict[str, Any] = {}
    for layer, name in zip(spec.layers, names):
        mask_in = getattr(x, "_keras_mask", None)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                keras_layer = _make_layer(layer, name, spec)
                result = keras_layer(x)
        except ExplorerError as error:
            raise StackError(f"{name}: {error.message}", layer=name) from None
        except Exception as error:  # Keras reports shape problems as several exception types
            raise StackError(diagnose.translate_build_error(name, layer, strip_ansi(str(error))),
                             layer=name) from None
        if layer.type == "custom" and not hasattr(result, "shape"):  # None, or a tuple of anything
            raise StackError(f'{name}: the expression "{layer.params["expression"]}" must give one tensor, '
                             f"got {type(result).__name__}", layer=name)
        extra = {}
        if isinstance(result, (list, tuple)):
            x, rest = result[0], list(result[1:])
            if layer.type == "attention_pooling":
                outputs[f"{name}/attention"] = rest[0]
                extra[f"{name}/attention"] = tuple(rest[0].shape)
            else:
                for state_name, state in zip(state_names(layer), rest):
                    outputs[f"{name}/state/{state_name}"] = state
                    extra[f"{name}/state/{state_name}"] = tuple(state.shape)
        else:
            x = result
        mask_out = getattr(x, "_keras_mask", None)
        outputs[name] = x
        if mask_out is not None:
            outputs[f"{name}/mask"] = mask_out
        objects[name] = keras_layer
        infos.append(LayerInfo(name, layer, tuple(x.shape), keras_layer.count_params(),
                               mask_in is not None, mask_out is not None, extra))
    try:
        model = keras.Model(inputs, x, name="stack")
        probe = keras.Model(inputs, outputs, name="probe")
    except Exception as error:  # e.g. a layer named like the input
        first = strip_ansi(str(error)).strip().splitlines()[0]
        raise StackError(f"the stack cannot be assembled: {first}") from None
    forward = backend.traced(probe, input_shape, dtype)
    notes = []
    if spec.weights:
        from .keras_io import apply_weights
        notes = apply_weights(objects, spec.weights)
    build_ms = (time.perf_counter() - started) * 1000
    return BuiltStack(spec.architecture_key(), model, probe, forward, infos, input_shape, dtype, build_ms, objects,
                      notes)
