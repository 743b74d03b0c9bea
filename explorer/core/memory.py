"""How much memory a run will need, from the stack document and the batch size alone: no Keras, no model.

The window refuses an oversized run with it before anything is sent to the engine, and the engine checks it
again before it builds the model (the command line, the tests). The estimate errs high; the engine process
also runs under an operating-system memory limit, so a wrong estimate costs the engine, never the window.
"""

from __future__ import annotations

from typing import Callable

from . import keras_cards
from .registry import TYPES
from .errors import StackError
from .spec import LayerSpec, StackSpec

MEMORY_LIMIT_MB = 2048
FLOAT_BYTES = 4
# Peak copies of a weight while a model is built and run: the initializer's tensor, the variable, the copy handed
# out with the result (get_weights) and the one written out. A recurrent kernel's orthogonal initializer works
# on several more (a QR decomposition): 7 copies measured for SimpleRNN, GRU and LSTM of 1024 to 4096 units.
WEIGHT_COPIES = 4
ORTHOGONAL_COPIES = 7
TRAINING_COPIES = 3     # a gradient and Adam's two slots per weight


def _width(shape: tuple) -> int:
    cells = 1
    for dim in shape:
        cells *= dim
    return cells


def estimate_mb(spec: StackSpec, rows: int, steps: int, *, training: bool = False,
                custom_shape: Callable[[LayerSpec, tuple], tuple | None] | None = None) -> float:
    """MB for `rows` sequences of `steps` timesteps: every layer's output (held by the engine, then copied
    once into shared memory for the window or into the npz file), each recurrent layer's loop workspace (its
    input turned time-major, its per-step outputs, then turned back) and the weights with their copies
    (embeddings and recurrent kernels dominate them; Adam's slots when `training`). A custom layer's shape
    comes from `custom_shape(layer, input shape per sequence)` (a dry run of its expression), when given;
    else it is assumed to keep its input's. Measured against the peak memory of `run --npz` (tests)."""
    features = spec.input.features or 1
    shape: tuple = (steps,) if spec.input.uses_ids else (steps, features)   # per sequence, no batch axis
    outputs = workspace = weights = kernels = 0
    raw_ids = spec.input.uses_ids      # (steps,) holds one id per step; after a layer, (n,) holds n features
    for layer in spec.layers:
        p = layer.params
        width = 1 if raw_ids else shape[-1]
        raw_ids = raw_ids and layer.type == "masking"
        if layer.type == "embedding":
            shape = (steps, p["output_dim"])
            weights += (spec.input.vocab_size or 1) * p["output_dim"]
        elif layer.is_recurrent:
            directions = 2 if p["bidirectional"] else 1
            units = p["units"] * (2 if directions == 2 and p["merge_mode"] == "concat" else 1)
            per_step = p["units"] * directions
            workspace += steps * (width + 2 * per_step)
            weights += directions * TYPES[layer.type].gates * (width + 2) * p["units"]
            kernels += directions * TYPES[layer.type].gates * p["units"] * p["units"]
            shape = (steps, units) if p["return_sequences"] else (units,)
            if p["return_state"]:
                outputs += per_step * (2 if layer.type == "lstm" else 1)
        elif layer.type in ("dense", "time_distributed_dense"):
            weights += (width + 1) * p["units"]
            shape = (*shape[:-1], p["units"]) if len(shape) > 1 else (p["units"],)
        elif layer.type == "flatten":
            shape = (_width(shape),)
        elif layer.type in ("global_average_pooling", "global_max_pooling", "masked_mean_pooling",
                            "time_average", "last_timestep", "attention_pooling"):
            if layer.type == "attention_pooling":
                outputs += steps
                weights += width + 1
                workspace += 2 * steps * width     # the input weighted step by step, then summed
            shape = shape[1:] if len(shape) > 1 else shape
        elif layer.type == "custom" and custom_shape is not None:
            shape = tuple(steps if dim is None else dim for dim in (custom_shape(layer, shape) or shape))
        elif layer.type == "keras":   # Keras's own compute_output_shape and weights
            shape, count = keras_cards.estimate(p["class_name"], p["config"], shape)
            weights += count
        # masking keeps the shape
        outputs += _width(shape)
    cells = 2 * outputs + workspace
    copies = WEIGHT_COPIES + (TRAINING_COPIES if training else 0)
    weight_cells = weights * copies + kernels * (ORTHOGONAL_COPIES + (TRAINING_COPIES if training else 0))
    return (rows * cells * (2 if training else 1) + weight_cells) * FLOAT_BYTES / 1e6


def check(spec: StackSpec, rows: int, steps: int, limit_mb: float = MEMORY_LIMIT_MB, *,
          custom_shape: Callable[[LayerSpec, tuple], tuple | None] | None = None) -> None:
    """Raises StackError when the run would need more than `limit_mb`."""
    estimate = estimate_mb(spec, rows, steps, custom_shape=custom_shape)
    if estimate > limit_mb:
        raise StackError(f"this batch needs about {estimate:,.0f} MB ({rows} sequences × {steps} steps), over "
                         f"the limit of {limit_mb:,.0f} MB: shorten the sequences, set maxlen or lower the units")


def batch_size(spec: StackSpec, lengths) -> tuple[int, int]:
    """(rows, steps) of the padded batch for sequences of these lengths: exactly maxlen steps when the stack
    sets it (as keras.utils.pad_sequences and sequences.layout pad), else the longest sequence's."""
    longest = max((int(n) for n in lengths), default=0)
    return len(lengths), spec.batching.maxlen or longest
