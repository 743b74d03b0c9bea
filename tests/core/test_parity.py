"""Parity with plain Keras: random valid stack documents (every layer type and option, padding and truncating
side, maxlen, batching mode) against the same model written here in plain Keras, with the explorer's weights
loaded into it and the batch padded by keras.utils.pad_sequences.

The plain model is this file's own code: Keras's layers where Keras has them (TimeDistributed(Dense) included),
small keras.ops layers written here for the explorer's own heads.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from keras import ops
from keras.utils import pad_sequences

from explorer.core import spec as specs
from explorer.core.run import Engine

TOL = dict(atol=1e-5, rtol=1e-5)
VOCAB, FEATURES, WIDTH = 12, 2, 3
ENGINE = Engine()
RNN = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}
HEADS = ("global_average_pooling", "global_max_pooling", "masked_mean_pooling", "time_average", "last_timestep",
         "attention_pooling", "flatten", "custom", "time_distributed_dense", None)


# --- the explorer's own heads, written again with keras.ops ---

class MeanOverValid(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, x, mask=None):
        if mask is None:
            return ops.mean(x, axis=1)
        weights = ops.cast(mask, x.dtype)[:, :, None]
        return ops.sum(x * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1e-30)

    def compute_mask(self, x, mask=None):
        return None


class PlainMean(keras.layers.Layer):
    def call(self, x):
        return ops.mean(x, axis=1)


class LastValid(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, x, mask=None):
        if mask is None:
            return x[:, -1]
        from_end = ops.argmax(ops.cast(ops.flip(mask, axis=1), "int32"), axis=1)   # first valid step from the end
        return ops.take_along_axis(ops.flip(x, axis=1), from_end[:, None, None], axis=1)[:, 0]

    def compute_mask(self, x, mask=None):
        return None


class ScoredSum(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        self.score = keras.layers.Dense(1)

    def build(self, shape):
        self.score.build(shape)

    def call(self, x, mask=None):
        scores = self.score(x)[:, :, 0]
        if mask is not None:
            scores = scores - 1e9 * (1.0 - ops.cast(mask, scores.dtype))
        weights = ops.softmax(scores, axis=1)
        if mask is not None:
            weights = weights * ops.cast(mask, weights.dtype)
        return ops.einsum("bt,btf->bf", weights, x), weights

    def compute_mask(self, x, mask=None):
        return None if mask is None else [None, None]


class Doubled(keras.layers.Layer):   # the custom expression "x * 2"
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, x, mask=None):
        return x * 2

    def compute_mask(self, x, mask=None):
        return None


def plain_layer(layer: dict, vocab: int):
    """The Keras layer for one layer of the document, written from its keys."""
    kind = layer["type"]
    if kind == "embedding":
        return keras.layers.Embedding(vocab, layer["output_dim"], mask_zero=layer["mask_zero"])
    if kind == "masking":
        return keras.layers.Masking(mask_value=layer["mask_value"])
    if kind in RNN:
        options = {key: layer[key] for key in ("return_sequences", "return_state", "go_backwards", "activation",
                                               "recurrent_activation", "use_bias", "reset_after") if key in layer}
        cell = RNN[kind](layer["units"], **options)
        return keras.layers.Bidirectional(cell, merge_mode=layer["merge_mode"]) if layer["bidirectional"] else cell
    if kind == "global_average_pooling":
        return keras.layers.GlobalAveragePooling1D(keepdims=layer["keepdims"])
    if kind == "global_max_pooling":
        return keras.layers.GlobalMaxPooling1D(keepdims=layer["keepdims"])
    if kind == "flatten":
        return keras.layers.Flatten()
    if kind == "dense":
        return keras.layers.Dense(layer["units"], activation=layer["activation"], use_bias=layer["use_bias"])
    if kind == "time_distributed_dense":
        return keras.layers.TimeDistributed(keras.layers.Dense(layer["units"], activation=layer["activation"],
                                                               use_bias=layer["use_bias"]))
    return {"masked_mean_pooling": MeanOverValid, "time_average": PlainMean, "last_timestep": LastValid,
            "attention_pooling": ScoredSum, "custom": Doubled}[kind]()


def plain_model(document: dict, fixed: int | None):
    """(model of every layer's output and mask, those symbolic outputs, the Keras layers in order), as a user
    writes it."""
    tokens = document["input"]["kind"] == "tokens"
    x = inputs = keras.Input((fixed,) if tokens else (fixed, FEATURES), dtype="int32" if tokens else "float32")
    outputs, objects = [], []
    for layer in document["layers"]:
        keras_layer = plain_layer(layer, VOCAB)
        objects.append(keras_layer)
        result = keras_layer(x)
        first = result[0] if isinstance(result, (list, tuple)) else result   # out/<layer>: Keras's first output
        if isinstance(result, (list, tuple)):   # return_state, or attention's weights
            x, *rest = result
            feeds = layer.get("feeds", "output")
            if feeds != "output":
                own = ["h", "c"] if layer["type"] == "lstm" else ["h"]
                names = [f"{side}_{s}" for side in ("forward", "backward") for s in own] if layer["bidirectional"] \
                    else own
                x = rest[names.index(feeds)]
        else:
            x = result
        mask = getattr(first, "_keras_mask", None)
        outputs.append({"out": first, **({"mask": mask} if mask is not None else {})})
    return keras.Model(inputs, outputs), outputs, objects


# --- random valid documents ---

@st.composite
def documents(draw):
    tokens = draw(st.booleans())
    layers = []
    if tokens:
        layers.append({"type": "embedding", "output_dim": draw(st.integers(1, 4)), "mask_zero": draw(st.booleans())})
    elif draw(st.booleans()):
        layers.append({"type": "masking", "mask_value": 0.0})
    mode = draw(st.sampled_from(("pad", "bucket", "one_by_one", "chunked")))
    has_time = True
    for position in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from(tuple(RNN)))
        bidirectional = mode != "chunked" and draw(st.booleans())
        layer = {"type": kind, "units": draw(st.integers(1, 4)), "return_sequences": draw(st.booleans()),
                 "return_state": draw(st.booleans()), "bidirectional": bidirectional,
                 "merge_mode": draw(st.sampled_from(specs.MERGE_MODES)),
                 "go_backwards": not bidirectional and mode != "chunked" and draw(st.booleans()),
                 "activation": draw(st.sampled_from(("tanh", "relu", "sigmoid", "softsign"))),
                 "use_bias": draw(st.booleans())}
        if kind != "simple_rnn":
            layer["recurrent_activation"] = draw(st.sampled_from(("sigmoid", "hard_sigmoid", "tanh")))
        if kind == "gru":
            layer["reset_after"] = draw(st.booleans())
        if layer["return_state"]:
            own = ["h", "c"] if kind == "lstm" else ["h"]
            states = [f"{side}_{s}" for side in ("forward", "backward") for s in own] if bidirectional else own
            layer["feeds"] = draw(st.sampled_from(["output", *states]))
        layers.append(layer)
        if not layer["return_sequences"] or layer.get("feeds", "output") != "output":
            has_time = False
            break
    maxlen = draw(st.one_of(st.none(), st.integers(1, 7)))
    length = maxlen if maxlen is not None and mode in ("pad", "chunked") and draw(st.booleans()) else None
    if has_time:
        head = draw(st.sampled_from(HEADS))
        if head == "flatten" and (maxlen is None or mode in ("bucket", "one_by_one")):
            head = None
        if head in ("global_average_pooling", "global_max_pooling"):
            layers.append({"type": head, "keepdims": draw(st.booleans())})
        elif head in ("time_distributed_dense",):
            layers.append({"type": head, "units": draw(st.integers(1, 3)), "activation": "tanh",
                           "use_bias": draw(st.booleans())})
        elif head == "custom":
            layers.append({"type": "custom", "expression": "x * 2"})
        elif head is not None:
            layers.append({"type": head})
    if draw(st.booleans()) or len(layers) == 0:
        layers.append({"type": "dense", "units": draw(st.integers(1, 3)),
                       "activation": draw(st.sampled_from((None, "softmax", "relu"))), "use_bias": draw(st.booleans())})
    if not tokens:
        rows = draw(st.lists(st.lists(st.lists(st.sampled_from((-1.0, -0.5, 0.5, 1.5)), min_size=FEATURES,
                                               max_size=FEATURES), min_size=1, max_size=7), min_size=1, max_size=4))
        text = "\n".join("; ".join(" ".join(map(str, step)) for step in row) for row in rows)
    else:
        rows = draw(st.lists(st.lists(st.integers(1, VOCAB - 1), min_size=1, max_size=7), min_size=1, max_size=4))
        text = "\n".join(" ".join(map(str, row)) for row in rows)
    batching = {"mode": mode, "padding": draw(st.sampled_from(("pre", "post"))),
                "truncating": draw(st.sampled_from(("pre", "post"))), "maxlen": maxlen,
                "bucket_width": draw(st.integers(1, 3)), "chunk": draw(st.integers(1, 4))}
    document = {"input": {"kind": "tokens", "vocab_size": VOCAB, "length": length} if tokens
                else {"kind": "features", "features": FEATURES, "length": length},
                "batching": batching, "layers": layers, "seed": draw(st.integers(0, 100)), "sequences": text}
    return document, rows


def pieces(rows: list, batching: dict) -> list[list[int]]:
    """The rows each run of the mode takes together (the modes of explorer/CONTRACT.md §1, written from their
    definitions)."""
    if batching["mode"] in ("pad", "chunked"):
        return [list(range(len(rows)))]
    if batching["mode"] == "one_by_one":
        return [[row] for row in range(len(rows))]
    kept = [min(len(row), batching["maxlen"] or len(row)) for row in rows]
    groups: dict[int, list[int]] = {}
    for row, length in enumerate(kept):
        groups.setdefault((length - 1) // batching["bucket_width"], []).append(row)
    return [groups[key] for key in sorted(groups)]


def predict(model, batch) -> list[dict]:
    """An eager call: Keras 3.15's TimeDistributed takes the batch size for T inside predict's traced function."""
    found = model(batch, training=False)
    found = [found] if isinstance(found, dict) else found   # one layer: Keras unwraps the list
    return [{key: ops.convert_to_numpy(value) for key, value in item.items()} for item in found]


# Found: bucket mode merged the bins of `1` and `1 1` (pre-padding, no mask), which changed `1`'s numbers.
UNMASKED_PRE_BUCKETS = ({
    "input": {"kind": "tokens", "vocab_size": VOCAB, "length": None},
    "batching": {"mode": "bucket", "padding": "pre", "truncating": "pre", "maxlen": None, "bucket_width": 1,
                 "chunk": 1},
    "layers": [{"type": "embedding", "output_dim": 1, "mask_zero": False},
               {"type": "simple_rnn", "units": 1, "return_sequences": False, "return_state": False,
                "bidirectional": True, "merge_mode": "concat", "go_backwards": False, "activation": "tanh",
                "use_bias": True}],
    "seed": 0, "sequences": "1\n1 1"}, [[1], [1, 1]])


# fewer on the other backends (CI's backend matrix), which run the same documents more slowly
EXAMPLES = 40 if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow" else 8


@pytest.mark.backends
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
@example(UNMASKED_PRE_BUCKETS)
def test_every_layer_equals_plain_keras(case):
    document, rows = case
    spec = specs.from_dict(document)
    result = ENGINE.run(spec, trust=True)
    b = document["batching"]
    dtype = "int32" if document["input"]["kind"] == "tokens" else "float32"
    pad = dict(padding=b["padding"], truncating=b["truncating"], dtype=dtype, value=0)
    full = pad_sequences(rows, maxlen=b["maxlen"], **pad)
    np.testing.assert_array_equal(result.input, full)
    kept = np.array([min(len(row), b["maxlen"] or len(row)) for row in rows])
    steps = full.shape[1]
    at = np.arange(steps)[None, :]
    np.testing.assert_array_equal(result.mask, at < kept[:, None] if b["padding"] == "post"
                                  else at >= steps - kept[:, None])

    fixed = document["input"]["length"] or (
        b["maxlen"] if any(layer["type"] == "flatten" for layer in document["layers"]) else None)
    model, symbolic_outputs, objects = plain_model(document, fixed)
    weights = ENGINE.weights()
    for name, keras_layer in zip(spec.layer_names(), objects):
        count = len(keras_layer.get_weights())
        keras_layer.set_weights([weights[f"weights/{name}/{i}"] for i in range(count)])
    reference = predict(model, full)
    for layer, symbolic, plain in zip(result.layers, symbolic_outputs, reference, strict=True):
        assert layer.symbolic_shape == tuple(symbolic["out"].shape), layer.name
        assert layer.shape == plain["out"].shape, layer.name
        assert (layer.mask is not None) == ("mask" in plain), layer.name
    for layer, keras_layer in zip(result.layers, objects):
        assert layer.params == keras_layer.count_params(), layer.name

    for group in pieces(rows, b):
        piece_rows = [rows[r] for r in group]
        longest = max(min(len(row), b["maxlen"] or len(row)) for row in piece_rows)
        batch = full[group] if b["mode"] in ("pad", "chunked") else \
            pad_sequences(piece_rows, maxlen=longest if b["maxlen"] is None else min(longest, b["maxlen"]), **pad)
        offset = 0 if b["padding"] == "post" else steps - batch.shape[1]
        plain_outputs = predict(model, batch)
        for layer, plain in zip(result.layers, plain_outputs):
            mine = layer.output[group]
            time_major = mine.ndim >= 3 and mine.shape[1] == steps and plain["out"].shape[1] == batch.shape[1]
            if time_major:
                mine = mine[:, offset:offset + batch.shape[1]]
            np.testing.assert_allclose(mine, plain["out"], **TOL, err_msg=layer.name)
            if "mask" in plain and layer.mask is not None:
                np.testing.assert_array_equal(layer.mask[group][:, offset:offset + batch.shape[1]], plain["mask"],
                                              err_msg=layer.name)


def test_the_documents_cover_every_registered_layer_type():
    from explorer.core.registry import TYPES
    generated = {"embedding", "masking", "dense", *RNN, *(head for head in HEADS if head)}
    assert generated | {"keras"} == set(TYPES)   # Keras layer cards: test_keras_cards.py's random chains
