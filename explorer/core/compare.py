"""Pin a run, compare a later one: each layer's difference on the valid steps of the same sequences.

Valid steps are matched in sequence order, so a change of padding side (pre ↔ post) compares each
sequence's own steps; steps that are padding in either run are left out (NaN in the Δ arrays).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .run import RunResult


@dataclass
class LayerDelta:
    name: str
    max_abs: float | None      # max |Δ| over valid steps; None when the layer cannot be compared
    delta: np.ndarray | None   # current − pinned, laid out like the current output; NaN off the valid steps
    reason: str = ""           # why not comparable


def same_sequences(pinned: RunResult, current: RunResult) -> bool:
    return (len(pinned.lengths) == len(current.lengths) and np.array_equal(pinned.lengths, current.lengths)
            and np.array_equal(_valid_input(pinned), _valid_input(current)))


def _valid_input(result: RunResult) -> np.ndarray:
    return result.input[result.mask]


def compare(pinned: RunResult, current: RunResult) -> list[LayerDelta]:
    """One LayerDelta per layer of `current`, in order."""
    comparable = same_sequences(pinned, current)
    found = []
    for layer in current.layers:
        if not comparable:
            found.append(LayerDelta(layer.name, None, None, "the sequences changed: pin again"))
            continue
        try:
            old = pinned.layer(layer.name)
        except KeyError:
            found.append(LayerDelta(layer.name, None, None, "not in the pinned run"))
            continue
        if old.time_major != layer.time_major or old.shape[0] != layer.shape[0] or \
                old.shape[2 if layer.time_major else 1:] != layer.shape[2 if layer.time_major else 1:]:
            found.append(LayerDelta(layer.name, None, None,
                                    f"its shape changed from {_shape(old.shape)} to {_shape(layer.shape)}"))
            continue
        if layer.output.dtype.kind != "f" or old.output.dtype.kind != "f":
            found.append(LayerDelta(layer.name, None, None, "not numbers"))
            continue
        delta = _time_delta(old.output, pinned.mask, layer.output, current.mask) if layer.time_major \
            else layer.output.astype(np.float64) - old.output
        valid = delta[~np.isnan(delta)]
        found.append(LayerDelta(layer.name, float(np.abs(valid).max()) if valid.size else 0.0, delta))
    return found


def _time_delta(old: np.ndarray, old_mask: np.ndarray, new: np.ndarray, new_mask: np.ndarray) -> np.ndarray:
    delta = np.full(new.shape, np.nan)
    if old.shape == new.shape and np.array_equal(old_mask, new_mask):
        delta[new_mask] = new[new_mask].astype(np.float64) - old[old_mask]
        return delta
    for row in range(new.shape[0]):     # the valid steps moved (padding side, maxlen): match them in order
        delta[row, new_mask[row]] = new[row, new_mask[row]].astype(np.float64) - old[row, old_mask[row]]
    return delta


def _shape(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"
