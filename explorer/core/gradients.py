"""Back through time: how much one output unit depends on the input, and on every layer's output, at each step.

For each sequence the output is one unit of the final output (default: the sequence's largest); a per-timestep
head is read at the sequence's last valid step. The norm of ∂output/∂x over the features of each step gives one
number per step: for the input (the embedding's output for token ids, else the features) and for every layer
with a time axis. Rows of a batch are independent, so one backward pass serves all of them. Steps a mask skips
get exactly 0; padding that no mask hides shows a gradient: the leak.
"""

from __future__ import annotations

import warnings
import weakref
from dataclasses import dataclass

import numpy as np

from . import backend
from .batches import covers_all, model_batch, pieces_for
from .calls import call_node, probe_key, received, replay
from .errors import ExplorerError

INPUT = "input"


@dataclass
class GradientResult:
    norms: dict[str, np.ndarray]   # "input" and each time-axis layer → (rows, T), laid out like the padded batch
    target: np.ndarray             # (rows,) the output unit used for each sequence
    step: np.ndarray | None        # (rows,) the step read from a per-timestep head, else None
    source: str = ""               # several inputs: the input whose steps "input" is over

    def arrays(self) -> dict[str, np.ndarray]:
        """The npz arrays `grad/input`, `grad/<layer>` and `gradient_target` (explorer/CONTRACT.md §4)."""
        return {**{f"grad/{name}": values for name, values in self.norms.items()}, "gradient_target": self.target}


def time_layers(built) -> list[str]:
    """The layers whose output has a time axis, each followed by its further calls' that have one (a shared layer's
    "reader/call/1")."""
    from .spec import call_outputs
    names = []
    for info in built.layers:
        further = [call_outputs(info.spec, info.name, k)[0] for k in range(1, len(info.spec.calls or []) + 1)]
        names += [info.name] if len(info.symbolic_shape) >= 3 else []
        names += [key for key in further if len(info.extra.get(key, ())) >= 3]
    return names


def _final_output(built):
    """The model's first output, whose unit the gradients follow back."""
    return built.model.outputs[0]


def output_units(built) -> int:
    """How many units the final output has at one step (all trailing axes flattened)."""
    shape = tuple(_final_output(built).shape)
    trailing = shape[2:] if len(shape) >= 3 else shape[1:]
    return int(np.prod([d for d in trailing if d is not None], dtype=np.int64))


def sequence_input(built, name: str | None = None) -> int:
    """The index of the model input whose steps the input's gradient is taken over: the one called `name`, else the
    first with a time axis (ids (B, T) or features (B, T, F); a vector (B, F) has none)."""
    inputs = built.model.inputs
    names = built.input_names or [None]
    with_steps = [i for i, tensor in enumerate(inputs)
                  if len(tensor.shape) >= (2 if "int" in str(tensor.dtype) else 3)]
    if name is not None:
        if name not in names:
            raise ExplorerError(f'no input is called "{name}": the inputs are {", ".join(map(str, names))}')
        if names.index(name) not in with_steps:
            raise ExplorerError(f"the input {name} is one vector per example: gradients per step need a sequence input")
        return names.index(name)
    if not with_steps:
        raise ExplorerError("gradients per step need a sequence input, but this model's input is one vector per "
                            "example")
    return with_steps[0]


def _embedding_of(built, index: int) -> str | None:
    """The embedding call on model input `index` (token ids): the input's gradient is taken at its output. A shared
    embedding's further call is named as its result is ("emb/call/1")."""
    keras = backend.load()
    from .spec import call_outputs
    tensor = built.model.inputs[index]
    for info in built.layers:
        layer = built.keras_layers[info.name]
        if isinstance(layer, keras.layers.Embedding):
            for k in range(len(info.spec.calls or []) + 1):
                key = call_outputs(info.spec, info.name, k)[0]
                if received(layer, call_node(built, key)).inputs is tensor:
                    return key
    return None


def gradients(built, layout, rows=None, target: int | None = None, source: str | None = None) -> GradientResult:
    """Gradient norms per step for `rows` (default all) of the batch `layout`, run piece by piece as its mode
    runs it. `target`: the output unit for every sequence (default: each one's largest) of the model's first output.
    `source`: the input whose steps "input" is over (default: the first sequence input). A request kind: a plain
    function of (built, batch, selection)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # Keras's mask warnings: the run has reported them already
        return _gradients(built, layout, rows, target, source)


def _gradients(built, layout, rows, target, source) -> GradientResult:
    layers = time_layers(built)
    index = sequence_input(built, source)
    tokens = "int" in str(built.model.inputs[index].dtype)
    embedding = _embedding_of(built, index) if tokens else None
    if tokens and embedding is None:
        raise ExplorerError("gradients over token ids need an embedding on the input: the gradient is taken at the "
                            "embedding's output")
    if INPUT in layers and embedding != INPUT:
        raise ExplorerError(f'a layer named "{INPUT}" would clash with the input\'s gradient: rename it')
    units = output_units(built)
    if target is not None and not 0 <= target < units:
        raise ExplorerError(f"target unit {target} is out of range: the final output has {units} unit"
                            f"{'s' if units != 1 else ''} (0 to {units - 1})")
    rows = np.arange(layout.batch.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
    whole = covers_all(layout)
    final_key = probe_key(built, _final_output(built))
    if final_key is None or final_key.startswith("input/"):
        raise ExplorerError("the model's first output is not a layer's output, so it has no gradient to follow back")
    per_step = len(_final_output(built).shape) >= 3
    norms: dict[str, np.ndarray] = {}
    chosen_units = np.zeros(len(rows), np.int64)
    chosen_steps = np.zeros(len(rows), np.int64) if per_step else None
    perturbed = ([] if tokens else [INPUT]) + layers
    for piece, chosen, places in pieces_for(layout, rows):
        batch = model_batch(layout, piece, chosen)
        outputs = {key: backend.to_numpy(value) for key, value in built.forward(batch).items()}
        final = outputs[final_key]
        valid = _head_valid(layout, outputs, final_key, piece, chosen)
        weights, units_used, steps_used = _selector(final, valid, per_step, target)
        given = batch if isinstance(batch, list) else [batch]
        shapes = {INPUT: given[index].shape, **{name: outputs[name].shape for name in layers}}
        zeros = [np.zeros(shapes[name], np.float32) for name in perturbed]     # added to each, d/d(zero) taken
        found = dict(zip(perturbed, _gradient_of(built, index)(given, weights, zeros)))
        if tokens:
            found[INPUT] = found[embedding]
        for name, values in found.items():
            norm = np.sqrt(np.sum(np.square(values.reshape(*values.shape[:2], -1), dtype=np.float64), axis=2))
            if name not in norms:   # the whole batch: each tensor's own time axis; pieces: the full layout's
                norms[name] = np.zeros((len(rows), norm.shape[1] if whole else layout.batch.shape[1]), np.float32)
            norms[name][places, piece.offset:piece.offset + norm.shape[1]] = norm
        chosen_units[places] = units_used
        if per_step:
            chosen_steps[places] = steps_used + piece.offset
    return GradientResult({name: norms[name] for name in [INPUT, *layers] if name in norms}, chosen_units,
                          chosen_steps, built.input_names[index] if built.input_names else "")


def _head_valid(layout, outputs, final_key, piece, chosen) -> np.ndarray:
    """The valid steps of a per-timestep head for the piece's rows: the padding mask of its steps (one input's piece,
    or the mask Keras leaves on it, or the mask of the first input as long as it); all steps when none fits."""
    rows, final = piece.rows[chosen], outputs[final_key]
    steps = final.shape[1] if final.ndim >= 2 else 0
    inputs = list(getattr(layout, "inputs", {}).values())
    candidates = [layout.mask[rows, piece.offset:piece.offset + piece.batch.shape[1]]] if not inputs else []
    if f"{final_key}/mask" in outputs:
        candidates.append(outputs[f"{final_key}/mask"].astype(bool))
    candidates += [each.mask[rows] for each in inputs]
    return next((mask for mask in candidates if mask.shape == (len(rows), steps)), np.ones((len(rows), steps), bool))


_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # a stack's model → {input: gradient function}


def _gradient_of(built, index: int):
    """(inputs, selector, zeros) → the gradients of Σ selector × output at each zero, compiled once per stack and
    input."""
    by_input = _COMPILED.setdefault(built.model, {})
    if index not in by_input:
        tokens = "int" in str(built.model.inputs[index].dtype)
        layers = time_layers(built)
        stack = weakref.ref(built)     # a strong reference would keep the model, the dictionary's key, alive

        def selected_output(inputs, selector, offsets):
            from keras import ops
            return ops.sum(_forward(stack(), index, inputs, dict(zip(([] if tokens else [INPUT]) + layers, offsets)))
                           * selector)

        by_input[index] = backend.compiled_gradient(selected_output)
    return by_input[index]


def _selector(final: np.ndarray, valid: np.ndarray, per_step: bool, target: int | None):
    """A 0/1 array shaped like `final` that picks each row's output unit (at its last valid step for a
    per-timestep head), the units and the steps."""
    rows = np.arange(final.shape[0])
    if per_step:
        length = final.shape[1]
        last = np.where(valid.any(axis=1), length - 1 - np.argmax(valid[:, ::-1], axis=1), length - 1)
        flat = final.reshape(len(rows), length, -1)
        units = np.full(len(rows), target) if target is not None else np.argmax(flat[rows, last], axis=1)
        index = (rows, last, units)
    else:
        last = None
        flat = final.reshape(len(rows), -1)
        units = np.full(len(rows), target) if target is not None else np.argmax(flat, axis=1)
        index = (rows, units)
    weights = np.zeros(flat.shape, np.float32)
    weights[index] = 1.0
    return weights.reshape(final.shape), units, last


def _forward(built, index: int, inputs: list, added: dict):
    """The model's first output as its graph runs, with `added[name]` added to the output of that call ("lstm" a
    layer's first, "lstm/call/1" a shared layer's next) and `added["input"]` to input `index`: zeros whose
    gradients are the gradients at those tensors."""
    from keras import ops
    given = [ops.convert_to_tensor(value, dtype=tensor.dtype) for value, tensor in zip(inputs, built.model.inputs)]
    if INPUT in added:
        given[index] = given[index] + added[INPUT]
    at = {id(call_node(built, name)): value for name, value in added.items() if name != INPUT}
    return replay(built.model, given, at)[0]
