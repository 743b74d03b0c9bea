"""Stack document → Keras functional model and a probe of every layer's outputs and masks."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from . import backend, diagnose, keras_cards
from .errors import ExplorerError, StackError, strip_ansi
from .registry import TYPES, call_options, more_outputs
from .spec import INPUT_NAME, INPUT_REF, LayerSpec, Mask, StackSpec, argument_places, call_arguments, call_outputs


@dataclass
class LayerInfo:
    name: str
    spec: LayerSpec
    symbolic_shape: tuple      # what the next layer takes: the output, or the state that `feeds` names
    params: int
    mask_in: bool
    mask_out: bool
    extra: dict[str, tuple] = field(default_factory=dict)  # probe key → symbolic shape (states, weights)
    output_shape: tuple = ()   # Keras's first output (out/<name>); symbolic_shape is what the next layer takes
    role: str | None = None   # a Keras layer card's own mask role (keras_cards.mask_role)

    @property
    def feeds(self) -> str:
        """What the next layer takes: "output", or a return_state state ("c", "forward_h" …)."""
        return self.spec.params.get("feeds", "output") if self.spec.is_recurrent else "output"

    @property
    def passed_key(self) -> str:
        """The probe key of what the next layer takes: the output (`name`), or a state (`name/state/c`)."""
        return self.name if self.feeds == "output" else f"{self.name}/state/{self.feeds}"

    @property
    def mask_role(self) -> str:
        """creates, carries, consumes, drops, or none (no mask arrives or leaves)."""
        if self.role is not None:
            return self.role
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
        return TYPES[self.spec.type].mask_role

    @property
    def states(self) -> list[tuple[str, str, tuple]]:
        """return_state's states: (state name, probe key, symbolic shape)."""
        return [(key.rsplit("/", 1)[1], key, shape) for key, shape in self.extra.items()
                if key.startswith(f"{self.name}/state/")]   # not a further call's states


@dataclass
class BuiltStack:
    key: str
    model: Any            # input → final output
    probe: Any            # input → {name: output, name/mask: mask, name/state/h: …}
    forward: Any          # traced probe
    layers: list[LayerInfo]
    input_shape: tuple    # without the batch axis; None = any length (the first input's, with several)
    input_dtype: str
    build_ms: float
    keras_layers: dict[str, Any]
    notes: list[str] = field(default_factory=list)   # e.g. trained weights that no longer fit
    input_names: list[str] = field(default_factory=list)   # several inputs: their names, in the model's order

    @property
    def has_steps(self) -> bool:
        """The (first) input has a time axis: all but one vector per example."""
        return self.input_dtype == "int32" or len(self.input_shape) > 1

    @property
    def time_fixed(self) -> int | None:
        return self.input_shape[0] if self.has_steps else None


def _make_layer(layer: LayerSpec, name: str, spec: StackSpec):
    if layer.type not in TYPES:
        raise StackError(f"unknown layer type {layer.type}")
    return TYPES[layer.type].make(layer, name, spec)


def input_name(names: list[str]) -> str:
    """The model input's name: INPUT_NAME, unless a layer (from a .keras file) already has it."""
    candidate, index = INPUT_NAME, 0
    while candidate in names:
        index += 1
        candidate = f"{INPUT_NAME}_{index}"
    return candidate


def build(spec: StackSpec) -> BuiltStack:
    """Builds the model for `spec`; problems raise StackError with a plain explanation."""
    diagnose.check_structure(spec)
    backend.load()
    import keras
    started = time.perf_counter()
    backend.set_random_seed(spec.seed, framework=spec.has_custom())
    names = spec.layer_names()
    several = bool(spec.more_inputs)
    shapes = [item.shape(item.length if several else spec.fixed_length()) for item in spec.all_inputs()]
    inputs = [keras.Input(shape, dtype=dtype, name=item.name if several else input_name(names))
              for (shape, dtype), item in zip(shapes, spec.all_inputs())]
    input_shape, dtype = shapes[0]
    x = inputs[0]
    outputs: dict[str, Any] = {}
    infos: list[LayerInfo] = []
    objects: dict[str, Any] = {}
    tensors = {INPUT_REF: inputs[0]}
    if several:   # layers name the input they take
        tensors.update((item.name, tensor) for item, tensor in zip(spec.all_inputs(), inputs))
    calls_after = spec.calls_after()
    for layer, name in zip(spec.layers, names):
        if layer.inputs:   # a branch or a merge: the tensors of the layers it names
            sources = _taken(tensors, layer.inputs, name)
            x = sources[0] if len(sources) == 1 else sources
        masks = [getattr(t, "_keras_mask", None) for t in (x if isinstance(x, list) else [x])]
        mask_in = True if layer.mask else next((mask for mask in masks if mask is not None), None)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                keras_layer = _make_layer(layer, name, spec)
                places = argument_places(layer.arguments)   # options that are lists its tensors fill
                operation = layer.type != "keras" or keras_cards.is_operation(layer.params["class_name"])
                options = call_options(layer.options)
                keywords = {} if operation else {key: value for key, value in options.items() if key not in places}
                if layer.initial_state:   # an encoder's states start this layer (encoder-decoder)
                    keywords["initial_state"] = _taken(tensors, layer.initial_state, name)
                if layer.mask:            # a mask the model computes and passes itself
                    keywords["mask"] = _mask_given(tensors, layer.mask, name)
                if layer.arguments:       # each tensor to its parameter: mha(query=…, value=…); "*": in turn
                    # an operation places the tensors in its lists itself (a layer's call takes only tensors)
                    spread, named = call_arguments(layer.arguments, sources, None if operation else options)
                    result = keras_layer(*spread, **named, **keywords)
                else:
                    result = keras_layer(x, **keywords)
        except ExplorerError as error:
            raise StackError(f"{name}: {error.message}", layer=name) from None
        except Exception as error:  # Keras reports shape problems as several exception types
            raise StackError(diagnose.translate_build_error(name, layer, strip_ansi(str(error))),
                             layer=name) from None
        if layer.type == "custom" and not hasattr(result, "shape"):  # None, or a tuple of anything
            raise StackError(f'{name}: the expression "{layer.params["expression"]}" must give one tensor, '
                             f"got {type(result).__name__}", layer=name)
        extra = {}
        first = result[0] if isinstance(result, (list, tuple)) else result   # out/<name>: Keras's first output
        if layer.type == "keras":
            result = keras.tree.flatten(result) if not hasattr(result, "shape") else result
            given = len(result) if isinstance(result, list) else 1
            if given != (layer.returns or 1):
                raise StackError(f"{name}: {layer.params['class_name']} returns {given} tensor{'s' * (given > 1)}, "
                                 + (f'but the card says "returns": {layer.returns}' if layer.returns else
                                    f'but the card passes on one: set "returns": {given} to name the others '
                                    f"{name}/output/1 …"), layer=name)
            if given == 1:
                result = result[0] if isinstance(result, list) else result
            first = result[0] if isinstance(result, list) else result
        if isinstance(result, (list, tuple)):
            x, rest = result[0], list(result[1:])
            if layer.type == "attention_pooling":
                outputs[f"{name}/attention"] = rest[0]
                extra[f"{name}/attention"] = tuple(rest[0].shape)
            else:   # a Bidirectional's backward output (merge_mode None), return_state's states
                for key, tensor in zip(more_outputs(layer), rest):
                    outputs[f"{name}/{key}"] = tensors[f"{name}/{key}"] = tensor
                    extra[f"{name}/{key}"] = tuple(tensor.shape)
                feeds = layer.params.get("feeds", "output")
                if feeds != "output":   # x, h, c = LSTM(…, return_state=True)(x); the next layer takes c
                    x = tensors[f"{name}/state/{feeds}"]
        else:
            x = result
        mask_out = getattr(x, "_keras_mask", None)
        tensors[name] = x                  # what the next layer takes (the output, or a fed state)
        first_mask = getattr(first, "_keras_mask", None)
        outputs[name] = first
        if first_mask is not None and len(first.shape) >= 3:   # a mask on a 2-D tensor (masking after a last
            outputs[f"{name}/mask"] = first_mask               # state) has no timesteps to show

        objects[name] = keras_layer
        role = (keras_cards.mask_role(keras_layer, mask_in is not None, mask_out is not None)
                if layer.type == "keras" else None)
        infos.append(LayerInfo(name, layer, tuple(x.shape), keras_layer.count_params(),
                               mask_in is not None, mask_out is not None, extra, tuple(first.shape), role))
        for j, k in calls_after.get(name, []):   # shared layers' further calls whose tensors now all exist
            _call_again(spec.layers[j], names[j], k, objects[names[j]], tensors, outputs, infos[j].extra)
    missing = [name for name in spec.model_outputs or [] if name not in tensors]
    if missing:   # the stack's `outputs` name a layer or setting that is gone
        raise StackError(f"the model's outputs name {', '.join(missing)}, which no layer gives: restore the layer or "
                         "setting that gave it, or remove it from the outputs")
    try:
        ends = [tensors[name] for name in spec.outputs()] if spec.is_graph() else [x]
        model_inputs = inputs if several else inputs[0]
        model = keras.Model(model_inputs, ends if len(ends) > 1 else ends[0], name="stack")
        probe = keras.Model(model_inputs, outputs, name="probe")
    except Exception as error:  # e.g. a layer named like the input
        first = strip_ansi(str(error)).strip().splitlines()[0]
        raise StackError(f"the stack cannot be assembled: {first}") from None
    forward = (backend.traced_inputs(probe, shapes) if several else backend.traced(probe, input_shape, dtype))
    notes = []
    if spec.weights:
        notes = apply_weights(objects, spec.weights)
    build_ms = (time.perf_counter() - started) * 1000
    return BuiltStack(spec.architecture_key(), model, probe, forward, infos, input_shape, dtype, build_ms, objects,
                      notes, [item.name for item in spec.all_inputs()] if several else [])


def _call_again(layer: LayerSpec, name: str, k: int, keras_layer, tensors: dict[str, Any], outputs: dict[str, Any],
                extra: dict[str, tuple]) -> None:
    """Call k of a shared layer: the same weights on the tensors the call names; what it returns is named as
    spec.call_outputs says ("lstm/call/1", "lstm/call/1/state/h" …)."""
    taken = _taken(tensors, layer.calls[k - 1], name)
    started, mask = layer.call_state(k), layer.call_mask(k)   # a decoding loop's states; a mask of the model's
    keywords = {"initial_state": _taken(tensors, started, name)} if started else {}
    if mask:
        keywords["mask"] = _mask_given(tensors, mask, name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = keras_layer(taken[0] if len(taken) == 1 else taken, **keywords)
    except Exception as error:  # noqa: BLE001  (Keras reports shape problems as several exception types)
        raise StackError(f"{name}, call {k}: {strip_ansi(str(error)).strip().splitlines()[0]}", layer=name) from None
    for key, tensor in zip(call_outputs(layer, name, k), result if isinstance(result, (list, tuple)) else [result]):
        outputs[key] = tensors[key] = tensor
        extra[key] = tuple(tensor.shape)
    first = result[0] if isinstance(result, (list, tuple)) else result
    if getattr(first, "_keras_mask", None) is not None:   # the mask leaving the call, as "<layer>/mask" a layer's
        outputs[f"{call_outputs(layer, name, k)[0]}/mask"] = first._keras_mask


def _taken(tensors: dict[str, Any], sources: list[str], name: str) -> list:
    """The tensors a layer names (inputs, initial_state, a call's); a name no layer above gives any more (removed,
    moved below, its return_state or merge_mode changed) is refused, naming it."""
    missing = [source for source in sources if source not in tensors]
    if missing:
        raise StackError(f"{name} takes {', '.join(missing)}, which no layer above it gives: name another tensor, "
                         "or restore the layer or setting that gave it", layer=name)
    return [tensors[source] for source in sources]


def _mask_given(tensors: dict[str, Any], mask: Mask, name: str):
    """The mask tensor a layer's `mask` names, or the list of them (None where no mask) as the call takes it."""
    if isinstance(mask, str):
        return _taken(tensors, [mask], name)[0]
    return [None if source is None else _taken(tensors, [source], name)[0] for source in mask]


def apply_weights(keras_layers: dict, weights: dict[str, list]) -> list[str]:
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
        if hasattr(layer, "finalize_state"):   # a preprocessing layer's state from its weights (Normalization's
            layer.finalize_state()             # mean and variance), as Keras does when it loads a model
    return notes
