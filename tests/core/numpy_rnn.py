"""An independent NumPy forward pass for the explorer's recurrent stacks (the reference of the tests).

Written from Keras 3's documented semantics, not from the explorer's code:
- SimpleRNN: h = act(x W + h U + b).
- LSTM: kernel columns [i, f, c, o]; c = f c + i act(x W_c + h U_c + b_c); h = o act(c); gates sigmoid.
- GRU (reset_after=True): bias has two rows (input, recurrent); columns [z, r, h];
  r gates the recurrent projection *after* the matrix product; h = z h_prev + (1 - z) candidate.
- Masked step: the state is carried; the output repeats the previous output (zeros before the first
  valid step), or is zero when `zero_output_for_mask` (Bidirectional forces it when returning sequences).
- go_backwards: the time axis (and the mask) is reversed before the loop; the outputs stay reversed.
- Bidirectional: a forward copy and a go_backwards copy; the backward outputs are flipped back in time.
"""

from __future__ import annotations

import numpy as np

ACTIVATIONS = {
    "tanh": np.tanh,
    "relu": lambda v: np.maximum(v, 0.0),
    "sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)),
    "linear": lambda v: v,
    None: lambda v: v,
}


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def softmax(v, axis=-1):
    e = np.exp(v - v.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _cell(kind: str, weights: list[np.ndarray], units: int, act):
    """(x_t, states) → (output, new states) for one time step of a batch."""
    if kind == "simple_rnn":
        kernel, recurrent, bias = weights

        def step(x, states):
            h = act(x @ kernel + states[0] @ recurrent + bias)
            return h, [h]
        return step, 1
    if kind == "lstm":
        kernel, recurrent, bias = weights

        def step(x, states):
            h, c = states
            z = x @ kernel + h @ recurrent + bias
            i = sigmoid(z[:, :units])
            f = sigmoid(z[:, units:2 * units])
            g = act(z[:, 2 * units:3 * units])
            o = sigmoid(z[:, 3 * units:])
            c = f * c + i * g
            h = o * act(c)
            return h, [h, c]
        return step, 2
    if kind == "gru":
        kernel, recurrent, bias = weights
        assert bias.shape == (2, 3 * units), "expected reset_after=True (two bias rows)"
        input_bias, recurrent_bias = bias

        def step(x, states):
            h = states[0]
            mx = x @ kernel + input_bias
            mh = h @ recurrent + recurrent_bias
            z = sigmoid(mx[:, :units] + mh[:, :units])
            r = sigmoid(mx[:, units:2 * units] + mh[:, units:2 * units])
            candidate = act(mx[:, 2 * units:] + r * mh[:, 2 * units:])
            h = z * h + (1.0 - z) * candidate
            return h, [h]
        return step, 1
    raise ValueError(kind)


def recurrent(kind: str, weights, x: np.ndarray, mask: np.ndarray | None, units: int, *,
              activation: str = "tanh", go_backwards: bool = False, zero_output_for_mask: bool = False):
    """Runs one recurrent layer. Returns (outputs (B, T, units) in processing order, final states)."""
    x = np.asarray(x, dtype=np.float64)
    weights = [np.asarray(w, dtype=np.float64) for w in weights]
    batch, steps = x.shape[:2]
    mask = np.ones((batch, steps), bool) if mask is None else np.asarray(mask, bool)
    if go_backwards:
        x, mask = x[:, ::-1], mask[:, ::-1]
    step, n_states = _cell(kind, weights, units, ACTIVATIONS[activation])
    states = [np.zeros((batch, units)) for _ in range(n_states)]
    previous = np.zeros((batch, units))
    outputs = []
    for t in range(steps):
        output, new_states = step(x[:, t], states)
        valid = mask[:, t][:, None]
        output = np.where(valid, output, 0.0 if zero_output_for_mask else previous)
        states = [np.where(valid, new, old) for new, old in zip(new_states, states)]
        previous = output
        outputs.append(output)
    return np.stack(outputs, axis=1), states


def merge(forward: np.ndarray, backward: np.ndarray, mode: str) -> np.ndarray:
    if mode == "concat":
        return np.concatenate([forward, backward], axis=-1)
    if mode == "sum":
        return forward + backward
    if mode == "mul":
        return forward * backward
    if mode == "ave":
        return (forward + backward) / 2
    raise ValueError(mode)


def recurrent_layer(kind: str, params: dict, weights, x, mask):
    """A whole explorer recurrent layer (maybe bidirectional). Returns (output, {state name: value})."""
    units, sequences = params["units"], params["return_sequences"]
    activation, backwards = params.get("activation", "tanh"), params.get("go_backwards", False)
    names = ["h", "c"] if kind == "lstm" else ["h"]
    if not params.get("bidirectional"):
        outputs, states = recurrent(kind, weights, x, mask, units, activation=activation, go_backwards=backwards)
        output = outputs if sequences else outputs[:, -1]
        return output, dict(zip(names, states))
    half = len(weights) // 2
    # Bidirectional (go_backwards must be off): a forward copy and a copy with go_backwards=True
    assert not backwards
    forward, f_states = recurrent(kind, weights[:half], x, mask, units, activation=activation,
                                  zero_output_for_mask=sequences)
    backward, b_states = recurrent(kind, weights[half:], x, mask, units, activation=activation,
                                   go_backwards=True, zero_output_for_mask=sequences)
    if sequences:
        output = merge(forward, backward[:, ::-1], params["merge_mode"])
    else:
        output = merge(forward[:, -1], backward[:, -1], params["merge_mode"])
    extras = {f"forward_{n}": s for n, s in zip(names, f_states)}
    extras.update({f"backward_{n}": s for n, s in zip(names, b_states)})
    return output, extras


def pad_by_hand(sequences: list[list], length: int, padding: str, value=0, dtype=np.int32) -> np.ndarray:
    """Pads (no truncation) without keras.utils: post puts the values first, pre puts them last."""
    first = np.asarray(sequences[0])
    out = np.full((len(sequences), length, *first.shape[1:]), value, dtype=dtype)
    for row, item in enumerate(sequences):
        item = np.asarray(item, dtype=dtype)
        if padding == "post":
            out[row, :len(item)] = item
        else:
            out[row, length - len(item):] = item
    return out


def mask_by_hand(lengths, length: int, padding: str) -> np.ndarray:
    mask = np.zeros((len(lengths), length), bool)
    for row, n in enumerate(lengths):
        if padding == "post":
            mask[row, :n] = True
        else:
            mask[row, length - n:] = True
    return mask
