"""Inside the cell: the gates of LSTM and GRU layers at every timestep, recomputed from the layer's own weights.

Backend-neutral (keras.ops only). Gates are laid out by input timestep, also for go_backwards and the backward
half of a bidirectional layer, so that column t belongs to the input at step t. Steps that the layer's mask
skips hold 0 (the state carries over them, as in Keras). Each layer's input, mask and initial states are the ones
Keras gives its call in the model (calls.received): a branch's own input, a decoder's encoder states.
"""

from __future__ import annotations

import warnings
import weakref

import numpy as np

from . import backend
from .batches import covers_all, model_batch, pieces_for
from .calls import call_node, receiving
from .errors import ExplorerError
from .memory import MEMORY_LIMIT_MB
from .registry import GATES
DIRECTIONS = ("forward", "backward")


def gate_kind(layer) -> str | None:
    """"lstm", "gru" or None, for a Keras layer (a Bidirectional answers for the layer it wraps)."""
    keras = backend.load()
    if isinstance(layer, keras.layers.Bidirectional):
        layer = layer.forward_layer
    cell = getattr(layer, "cell", None)
    if isinstance(cell, keras.layers.LSTMCell):
        return "lstm"
    if isinstance(cell, keras.layers.GRUCell):
        return "gru"
    return None


def cell_gates(layer, inputs, mask=None, initial_state=()) -> dict[str, np.ndarray]:
    """Gate name → (B, T, units) for a Keras LSTM or GRU layer, or a Bidirectional one ("forward/input", …).

    `inputs` (B, T, features), `mask` (B, T, True = valid, or None) and `initial_state` (the states it starts
    from, [h, c] or [h]; a Bidirectional's forward ones then its backward ones; empty: zeros) are what the layer
    receives."""
    keras = backend.load()
    if isinstance(layer, keras.layers.Bidirectional):
        half = len(initial_state) // 2    # as Keras splits them
        starts = (initial_state[:half], initial_state[half:])
        return {f"{direction}/{gate}": values
                for direction, part, start in zip(DIRECTIONS, (layer.forward_layer, layer.backward_layer), starts)
                for gate, values in cell_gates(part, inputs, mask, start).items()}
    kind = gate_kind(layer)
    if kind is None:
        raise ExplorerError(f"{layer.name} is not an LSTM or GRU layer: only those have gates")
    x = np.asarray(backend.to_numpy(inputs), np.float32)
    valid = np.ones(x.shape[:2], bool) if mask is None else backend.to_numpy(mask).astype(bool)
    if layer.go_backwards:
        x, valid = x[:, ::-1], valid[:, ::-1]
    if x.shape[1] == 0:
        return {gate: np.zeros((x.shape[0], 0, layer.cell.units), np.float32) for gate in GATES[kind]}
    states = [np.asarray(backend.to_numpy(state), np.float32) for state in initial_state]
    if not states:
        states = [np.zeros((x.shape[0], layer.cell.units), np.float32)] * (2 if kind == "lstm" else 1)
    stacked = _compiled_scan(layer, kind)(np.ascontiguousarray(x), np.ascontiguousarray(valid[:, :, None]), *states)
    gates = {}
    for gate, values in zip(GATES[kind], stacked):
        values = np.transpose(backend.to_numpy(values), (1, 0, 2))
        gates[gate] = np.ascontiguousarray(values[:, ::-1] if layer.go_backwards else values)
    return gates


_SCANS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # a Keras layer → its compiled gate scan


def _compiled_scan(layer, kind: str):
    found = _SCANS.get(layer)
    if found is None:
        owner = weakref.ref(layer)     # a strong reference would keep the layer, the dictionary's key, alive
        found = _SCANS[layer] = backend.compiled(lambda x, valid, *states: _scan(owner(), kind, x, valid, states))
    return found


def _scan(layer, kind: str, x, valid, states):
    """(B, T, features) in processing order, (B, T, 1) valid, the initial states → each gate, time first
    (T, B, units)."""
    from keras import ops
    cell = layer.cell
    projected = ops.matmul(x, cell.kernel)            # the input's share of every gate, all steps at once
    bias = cell.bias if cell.use_bias else None
    if bias is not None:
        projected = projected + (bias[0] if kind == "gru" and cell.reset_after else bias)
    # one tensor scanned over (Keras's TensorFlow scan fails on several when the length is unknown): each step's
    # input share of the gates, then 1 for a valid step
    xs = ops.transpose(ops.concatenate([projected, ops.cast(valid, projected.dtype)], axis=-1), (1, 0, 2))
    step = _lstm_step(cell) if kind == "lstm" else _gru_step(cell, bias)
    # the carry holds the states and the step's gates: Keras's TensorFlow scan stacks only what has the
    # carry's structure
    zeros = ops.zeros_like(projected[:, 0, :cell.units])
    states = tuple(ops.cast(state, zeros.dtype) for state in states)
    _, stacked = ops.scan(step, (*states, *(zeros for _ in GATES[kind])), xs)
    return stacked[len(states):]


def _lstm_step(cell):
    from keras import ops
    units = cell.units

    def step(carry, inputs):
        h, c = carry[:2]
        projected, valid = inputs[:, :-1], inputs[:, -1:] > 0.5
        z = projected + ops.matmul(h, cell.recurrent_kernel)
        i = cell.recurrent_activation(z[:, :units])
        f = cell.recurrent_activation(z[:, units:2 * units])
        g = cell.activation(z[:, 2 * units:3 * units])
        o = cell.recurrent_activation(z[:, 3 * units:])
        new_c = f * c + i * g
        new_h = o * cell.activation(new_c)
        shown = tuple(ops.where(valid, value, 0.0) for value in (i, f, g, o, new_c))
        carry = (ops.where(valid, new_h, h), ops.where(valid, new_c, c), *shown)
        return carry, carry

    return step


def _gru_step(cell, bias):
    from keras import ops
    units = cell.units
    recurrent_bias = bias[1] if bias is not None and cell.reset_after else None

    def step(carry, inputs):
        h = carry[0]
        projected, valid = inputs[:, :-1], inputs[:, -1:] > 0.5
        if cell.reset_after:
            inner = ops.matmul(h, cell.recurrent_kernel)
            if recurrent_bias is not None:
                inner = inner + recurrent_bias
        else:
            inner = ops.matmul(h, cell.recurrent_kernel[:, :2 * units])
        z = cell.recurrent_activation(projected[:, :units] + inner[:, :units])
        r = cell.recurrent_activation(projected[:, units:2 * units] + inner[:, units:2 * units])
        if cell.reset_after:
            recurrent_h = r * inner[:, 2 * units:]
        else:
            recurrent_h = ops.matmul(r * h, cell.recurrent_kernel[:, 2 * units:])
        candidate = cell.activation(projected[:, 2 * units:] + recurrent_h)
        new_h = z * h + (1.0 - z) * candidate
        carry = (ops.where(valid, new_h, h), *(ops.where(valid, value, 0.0) for value in (z, r, candidate)))
        return carry, carry

    return step


def gated_layers(built, further_calls: bool = True) -> list[str]:
    """Names of the stack's LSTM and GRU layers (bidirectional ones too), each followed by its further calls when
    it is shared ("reader/call/1": the same weights on another input, spec.call_outputs)."""
    from .spec import call_outputs
    names = []
    for info in built.layers:
        if gate_kind(built.keras_layers[info.name]) is not None:
            names.append(info.name)
            if further_calls:
                names += [call_outputs(info.spec, info.name, k)[0] for k in range(1, len(info.spec.calls or []) + 1)]
    return names


def _gate_floats(layer) -> int:
    """Floats per step that a layer's gates take (both directions of a bidirectional layer)."""
    keras = backend.load()
    halves = [layer.forward_layer, layer.backward_layer] if isinstance(layer, keras.layers.Bidirectional) else [layer]
    return sum(half.cell.units * len(GATES[gate_kind(half)]) for half in halves)


def gates(built, layout, rows=None, layers=None, masks: dict | None = None) -> dict[str, np.ndarray]:
    """The gates of every LSTM/GRU layer and further call of a shared one (or of `layers`) for the batch `layout`
    as its mode runs it.

    `rows`: the sequences wanted (default all), in that order. Returns "<layer>/<gate>" (bidirectional:
    "<layer>/forward/<gate>", …; a further call "<layer>/call/<k>/<gate>") → (len(rows), T, units), laid out like
    the full padded batch; steps a piece
    never ran and steps the mask skips hold 0. `masks`, when given, receives "<layer>" → (len(rows), T) bool, the
    mask its call receives (layers without one are left out). A request kind: a plain function of (built, batch,
    selection).
    """
    names = gated_layers(built) if layers is None else list(layers)
    unknown = [name for name in names if call_node(built, name) is None
               or gate_kind(call_node(built, name).operation) is None]
    if unknown:
        raise ExplorerError(f"{', '.join(unknown)}: not an LSTM or GRU layer of this stack, so it has no gates")
    if not names:
        return {}
    rows = np.arange(layout.batch.shape[0]) if rows is None else np.asarray(rows, dtype=np.int64)
    steps = max(each.batch.shape[1] for each in [layout, *getattr(layout, "inputs", {}).values()])  # an estimate
    megabytes = len(rows) * steps * sum(_gate_floats(call_node(built, name).operation) for name in names) * 4 / 1e6
    if megabytes > MEMORY_LIMIT_MB:
        count = f"{len(rows)} sequence{'s' if len(rows) != 1 else ''}"
        raise ExplorerError(f"the gates of {count} × {steps} steps need about {megabytes:,.0f} MB, over the limit "
                            f"of {MEMORY_LIMIT_MB:,.0f} MB: run fewer or shorter sequences")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # Keras's mask warnings: the run has reported them already
        return _gates(built, layout, rows, names, {} if masks is None else masks)


def _gates(built, layout, rows: np.ndarray, names: list[str], masks: dict) -> dict[str, np.ndarray]:
    receive = receiving(built, names)
    whole = covers_all(layout)
    found: dict[str, np.ndarray] = {}
    for piece, chosen, places in pieces_for(layout, rows):
        got = {key: backend.to_numpy(value) for key, value in receive(model_batch(layout, piece, chosen)).items()}
        for name in names:
            states = [got[key] for key in sorted((key for key in got if key.startswith(f"{name}/initial_state/")),
                                                 key=lambda key: int(key.rsplit("/", 1)[1]))]
            gates_of = cell_gates(call_node(built, name).operation, got[name], got.get(f"{name}/mask"), states)
            for gate, values in gates_of.items():
                if not whole and values.shape[1] != piece.batch.shape[1]:
                    raise ExplorerError(f"{name} runs on steps of its own, so pieces of different lengths cannot share "
                                        "one time axis: use pad mode")
                key = f"{name}/{gate}"
                if key not in found:   # the whole batch: the layer's own time axis; pieces: the full layout's
                    steps = values.shape[1] if whole else layout.batch.shape[1]
                    found[key] = np.zeros((len(rows), steps, values.shape[2]), np.float32)
                found[key][places, piece.offset:piece.offset + values.shape[1]] = values
            mask = got.get(f"{name}/mask")
            if mask is not None:
                if name not in masks:   # steps a piece never ran: no mask says they are valid
                    masks[name] = np.zeros(found[key].shape[:2], bool)
                masks[name][places, piece.offset:piece.offset + mask.shape[1]] = mask.astype(bool)
    return found
