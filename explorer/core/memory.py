"""How much memory a run will need, from the stack document and the batch size alone: no Keras, no model.

The window refuses an oversized run with it before anything is sent to the engine, and the engine checks it
again before it builds the model (the command line, the tests). The estimate errs high; the engine process
also runs under an operating-system memory limit, so a wrong estimate costs the engine, never the window.
"""

from __future__ import annotations

from . import keras_cards
from .registry import TYPES
from .errors import StackError
from .spec import StackSpec

MEMORY_LIMIT_MB = 2048
FLOAT_BYTES = 4


def _width(shape: tuple) -> int:
    cells = 1
    for dim in shape:
        cells *= dim
    return cells


def estimate_mb(spec: StackSpec, rows: int, steps: int) -> float:
    """MB for `rows` sequences of `steps` timesteps: every layer's output (held by the engine, then copied
    once into shared memory for the window), each recurrent layer's loop workspace (its input turned
    time-major, its per-step outputs, then turned back) and the weights. Measured on TensorFlow's CPU loop:
    within a few percent for LSTM 256 over 256 and 400 sequences of 1000 steps."""
    features = spec.input.features or 1
    shape: tuple = (steps,) if spec.input.uses_ids else (steps, features)   # per sequence, no batch axis
    outputs = workspace = weights = 0
    for layer in spec.layers:
        p = layer.params
        width = shape[-1] if len(shape) > 1 else 1
        if layer.type == "embedding":
            shape = (steps, p["output_dim"])
            weights += (spec.input.vocab_size or 1) * p["output_dim"]
        elif layer.is_recurrent:
            directions = 2 if p["bidirectional"] else 1
            units = p["units"] * (2 if directions == 2 and p["merge_mode"] == "concat" else 1)
            per_step = p["units"] * directions
            workspace += steps * (width + 2 * per_step)
            weights += directions * TYPES[layer.type].gates * (width + p["units"] + 2) * p["units"]
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
            shape = shape[1:] if len(shape) > 1 else shape
        elif layer.type == "keras":   # Keras's own compute_output_shape and weights
            shape, count = keras_cards.estimate(p["class_name"], p["config"], shape)
            weights += count
        # masking and custom layers: assumed to keep the shape (a custom expression that grows it is rare)
        outputs += _width(shape)
    cells = 2 * outputs + workspace
    return (rows * cells + weights) * FLOAT_BYTES / 1e6


def check(spec: StackSpec, rows: int, steps: int, limit_mb: float = MEMORY_LIMIT_MB) -> None:
    """Raises StackError when the run would need more than `limit_mb`."""
    estimate = estimate_mb(spec, rows, steps)
    if estimate > limit_mb:
        raise StackError(f"this batch needs about {estimate:,.0f} MB ({rows} sequences × {steps} steps), over "
                         f"the limit of {limit_mb:,.0f} MB: shorten the sequences, set maxlen or lower the units")


def batch_size(spec: StackSpec, lengths) -> tuple[int, int]:
    """(rows, steps) of the padded batch for sequences of these lengths: exactly maxlen steps when the stack
    sets it (as keras.utils.pad_sequences and sequences.layout pad), else the longest sequence's."""
    longest = max((int(n) for n in lengths), default=0)
    return len(lengths), spec.batching.maxlen or longest
