"""How much memory a run will need, from the stack document and the batch size alone: no Keras, no model.

The window refuses an oversized run with it before anything is sent to the engine, and the engine checks it
again before it builds the model (the command line, the tests). The estimate errs high; the engine process
also runs under an operating-system memory limit, so a wrong estimate costs the engine, never the window.
"""

from __future__ import annotations

import math
from typing import Callable

from .registry import TYPES, Arriving
from .errors import StackError
from .spec import INPUT_REF, LayerSpec, StackSpec

MEMORY_LIMIT_MB = 2048
FLOAT_BYTES = 4
# Peak copies of a weight while a model is built and run: the initializer's tensor, the variable, the copy handed
# out with the result (get_weights) and the one written out. A recurrent kernel's orthogonal initializer works
# on several more (a QR decomposition): 7 copies measured for SimpleRNN, GRU and LSTM of 1024 to 4096 units.
WEIGHT_COPIES = 4
ORTHOGONAL_COPIES = 7
# The padded batch: built by the engine, turned into the model's tensor and handed back with the result
BATCH_COPIES = 3
TRAINING_COPIES = 3     # a gradient and Adam's two slots per weight


def estimate_mb(spec: StackSpec, rows: int, steps: int, *, training: bool = False,
                custom_shape: Callable[[LayerSpec, tuple], tuple | None] | None = None,
                more_steps: dict[str, int] | None = None) -> float:
    """MB for `rows` sequences of `steps` timesteps: the padded batch and every layer's output (held by the
    engine, then copied once into shared memory for the window or into the npz file), what each layer's call
    holds while it runs (a recurrent layer's loop workspace …) and the weights with their copies (embeddings
    and recurrent kernels dominate them; Adam's slots when `training`); each layer type declares its share
    (registry). A custom layer's shape comes from `custom_shape(layer, input shape per sequence)` (a dry run of
    its expression), when given; else it is assumed to keep its input's. Several inputs: `more_steps` holds the
    padded steps of each input after the first, by name; every input's batch counts, and a layer that names its
    source (`inputs`) takes that one's shape and steps. Measured against the peak memory of `run --npz` and of
    plain Keras running each layer (tests)."""
    # what each input and layer passes on, by name: (shape per sequence, raw ids?, the padded steps below it);
    # raw ids: (steps,) holds one id per step; after a layer, (n,) holds n features
    inputs = {item.name: (item.shape(n)[0], item.uses_ids, n if item.has_steps else 1)
              for item, n in ((item, (more_steps or {}).get(item.name, steps)) for item in spec.all_inputs())}
    passed = {**inputs, INPUT_REF: inputs[spec.input.name]}
    batch = sum(math.prod(shape) for shape, _, _ in inputs.values())
    outputs = workspace = weights = kernels = 0
    previous = INPUT_REF
    for layer, name in zip(spec.layers, spec.layer_names()):
        shape, raw_ids, below = passed.get((layer.inputs or [previous])[0], passed[previous])   # a state: as before
        arriving = Arriving(shape, 1 if raw_ids else shape[-1], below, spec.input_for(layer).vocab_size or 1,
                            custom_shape)
        footprint = TYPES[layer.type].memory(layer, arriving)
        passed[name] = footprint.shape, raw_ids and footprint.shape == shape, below   # masking keeps the ids
        previous = name
        outputs += math.prod(footprint.shape) + footprint.outputs
        workspace += footprint.workspace
        weights += footprint.weights
        kernels += footprint.kernels
    cells = BATCH_COPIES * batch + 2 * outputs + workspace
    copies = WEIGHT_COPIES + (TRAINING_COPIES if training else 0)
    weight_cells = weights * copies + kernels * (ORTHOGONAL_COPIES + (TRAINING_COPIES if training else 0))
    return (rows * cells * (2 if training else 1) + weight_cells) * FLOAT_BYTES / 1e6


def check(spec: StackSpec, rows: int, steps: int, limit_mb: float = MEMORY_LIMIT_MB, *,
          custom_shape: Callable[[LayerSpec, tuple], tuple | None] | None = None,
          more_steps: dict[str, int] | None = None) -> None:
    """Raises StackError when the run would need more than `limit_mb`."""
    estimate = estimate_mb(spec, rows, steps, custom_shape=custom_shape, more_steps=more_steps)
    if estimate > limit_mb:
        raise StackError(f"this batch needs about {estimate:,.0f} MB ({rows} sequences × {steps} steps), over "
                         f"the limit of {limit_mb:,.0f} MB: shorten the sequences, set maxlen or lower the units")


def batch_size(spec: StackSpec, lengths) -> tuple[int, int]:
    """(rows, steps) of the padded batch for sequences of these lengths: exactly maxlen steps when the stack
    sets it (as keras.utils.pad_sequences and sequences.layout pad), else the longest sequence's."""
    longest = max((int(n) for n in lengths), default=0)
    return len(lengths), spec.batching.maxlen or longest


def more_steps(spec: StackSpec, lengths: dict[str, object]) -> dict[str, int]:
    """Several inputs: the padded steps of each input after the first, by name (batch_size's rule)."""
    return {name: batch_size(spec, found)[1] for name, found in lengths.items() if name != spec.input.name}
