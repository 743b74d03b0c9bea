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
from .batches import pieces_for
from .errors import ExplorerError
from .registry import state_names
from .run import _takes_mask

INPUT = "input"


@dataclass
class GradientResult:
    norms: dict[str, np.ndarray]   # "input" and each time-axis layer → (rows, T), laid out like the padded batch
    target: np.ndarray             # (rows,) the output unit used for each sequence
    step: np.ndarray | None        # (rows,) the step read from a per-timestep head, else None

    def arrays(self) -> dict[str, np.ndarray]:
        """The npz arrays `grad/input`, `grad/<layer>` and `gradient_target` (explorer/CONTRACT.md §4)."""
        return {**{f"grad/{name}": values for name, values in self.norms.items()}, "gradient_target": self.target}


def time_layers(built) -> list[str]:
    return [info.name for info in built.layers if len(info.symbolic_shape) >= 3]


def output_units(built) -> int:
    """How many units the final output has at one step (all trailing axes flattened)."""
    shape = built.layers[-1].symbolic_shape
    trailing = shape[2:] if len(shape) >= 3 else shape[1:]
    return int(np.prod([d for d in trailing if d is not None], dtype=np.int64))


def gradients(built, layout, rows=None, target: int | None = None) -> GradientResult:
    """Gradient norms per step for `rows` (default all) of the batch `layout`, run piece by piece as its mode
    runs it. `target`: the output unit for every sequence (default: each one's largest). A request kind: a
    plain function of (built, batch, selection)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # Keras's mask warnings: the run has reported them already
        return _gradients(built, layout, rows, target)


def _gradients(built, layout, rows, target) -> GradientResult:
    layers = time_layers(built)
    tokens = built.input_dtype.startswith("int")
    if tokens and (not built.layers or built.layers[0].spec.type != "embedding"):
        raise ExplorerError("gradients over token ids need an embedding as the first layer: the gradient is "
                            "taken at the embedding's output")
    if INPUT in layers and not (tokens and built.layers[0].name == INPUT):
        raise ExplorerError(f'a layer named "{INPUT}" would clash with the input\'s gradient: rename it')
    units = output_units(built)
    if target is not None and not 0 <= target < units:
        raise ExplorerError(f"target unit {target} is out of range: the final output has {units} unit"
                            f"{'s' if units != 1 else ''} (0 to {units - 1})")
    rows = np.arange(layout.batch.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
    steps = layout.batch.shape[1]
    per_step = len(built.layers[-1].symbolic_shape) >= 3
    norms = {name: np.zeros((len(rows), steps), np.float32) for name in [INPUT, *layers]}
    chosen_units = np.zeros(len(rows), np.int64)
    chosen_steps = np.zeros(len(rows), np.int64) if per_step else None
    for piece, chosen, places in pieces_for(layout, rows):
        batch = piece.batch[chosen]
        length = batch.shape[1]
        valid = layout.mask[piece.rows[chosen], piece.offset:piece.offset + length]
        outputs = {key: backend.to_numpy(value) for key, value in built.forward(batch).items()}
        final = outputs[built.layers[-1].passed_key]
        weights, units_used, steps_used = _selector(final, valid, per_step, target)
        shapes = {INPUT: batch.shape, **{name: outputs[name].shape for name in layers}}
        perturbed = _perturbed(built)
        zeros = [np.zeros(shapes[name], np.float32) for name in perturbed]     # added to each, d/d(zero) taken
        found = dict(zip(perturbed, _gradient_of(built)(batch, weights, zeros)))
        if tokens:
            found[INPUT] = found[built.layers[0].name]
        for name, values in found.items():
            norm = np.sqrt(np.sum(np.square(values.reshape(*values.shape[:2], -1), dtype=np.float64), axis=2))
            norms[name][places, piece.offset:piece.offset + length] = norm
        chosen_units[places] = units_used
        if per_step:
            chosen_steps[places] = steps_used + piece.offset
    return GradientResult(norms, chosen_units, chosen_steps)


def _perturbed(built) -> list[str]:
    """Where zeros are added (and gradients taken): the features input, and every layer with a time axis."""
    return ([] if built.input_dtype.startswith("int") else [INPUT]) + time_layers(built)


_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # a stack's model → its gradient function


def _gradient_of(built):
    """(batch, selector, zeros) → the gradients of Σ selector × output at each zero, compiled once per stack."""
    found = _COMPILED.get(built.model)
    if found is None:
        perturbed = _perturbed(built)
        stack = weakref.ref(built)     # a strong reference would keep the model, the dictionary's key, alive

        def selected_output(batch, selector, offsets):
            from keras import ops
            return ops.sum(_forward(stack(), batch, dict(zip(perturbed, offsets))) * selector)

        found = _COMPILED[built.model] = backend.compiled_gradient(selected_output)
    return found


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


def _forward(built, batch: np.ndarray, added: dict):
    """The stack layer by layer (as its functional model runs), adding `added[name]` to that layer's output
    (`added["input"]` to the input): zeros whose gradients are the gradients at those tensors."""
    from keras import ops
    x = ops.convert_to_tensor(batch)
    if INPUT in added:
        x = x + added[INPUT]
    mask = None
    for info in built.layers:
        layer = built.keras_layers[info.name]
        if mask is not None and _takes_mask(layer):
            y = layer(x, mask=mask, training=False)
        else:
            y = layer(x, training=False)
        passed = None
        if isinstance(y, (list, tuple)):      # return_state, attention weights: the output comes first
            if info.feeds != "output":        # the next layer takes a state
                passed = y[1 + state_names(info.spec).index(info.feeds)]
            y = y[0]
        new_mask = layer.compute_mask(x, mask) if info.mask_out else None
        if isinstance(new_mask, (list, tuple)):
            new_mask = new_mask[0]
        if info.name in added:
            y = y + added[info.name]
        x, mask = (y if passed is None else passed), new_mask
    return x
