"""Bucket mode runs the bins of `bucket_width` that the user chose: whatever the cost model merges, every
sequence's valid outputs equal plain Keras on exactly its own bin, padded by keras.utils.pad_sequences."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from keras.utils import pad_sequences

from explorer.core import spec as specs
from explorer.core.run import Engine
from tests.core.test_parity import RNN, VOCAB, plain_model, predict

TOL = dict(atol=1e-5, rtol=1e-5)
ENGINE = Engine()
HEADS = (None, "global_average_pooling", "global_max_pooling", "masked_mean_pooling", "last_timestep",
         "time_distributed_dense")


@st.composite
def cases(draw):
    layers = [{"type": "embedding", "output_dim": draw(st.integers(1, 3)), "mask_zero": draw(st.booleans())}]
    count = draw(st.integers(1, 2))
    for position in range(count):
        bidirectional = draw(st.booleans())
        layers.append({"type": draw(st.sampled_from(tuple(RNN))), "units": draw(st.integers(1, 3)),
                       "return_sequences": position < count - 1 or draw(st.booleans()), "return_state": False,
                       "bidirectional": bidirectional, "merge_mode": "concat",
                       "go_backwards": not bidirectional and draw(st.booleans()), "activation": "tanh",
                       "use_bias": True})
    if layers[-1]["return_sequences"]:
        head = draw(st.sampled_from(HEADS))
        if head == "time_distributed_dense":
            layers.append({"type": head, "units": 2, "activation": "tanh", "use_bias": True})
        elif head in ("global_average_pooling", "global_max_pooling"):
            layers.append({"type": head, "keepdims": False})
        elif head is not None:
            layers.append({"type": head})
    rows = draw(st.lists(st.lists(st.integers(1, VOCAB - 1), min_size=1, max_size=7), min_size=2, max_size=6))
    batching = {"mode": "bucket", "padding": draw(st.sampled_from(("pre", "post"))), "truncating": "post",
                "maxlen": None, "pad_value": draw(st.sampled_from((0, 0, 1))), "bucket_width": draw(st.integers(1, 3)),
                "chunk": 1}
    document = {"input": {"kind": "tokens", "vocab_size": VOCAB, "length": None}, "batching": batching,
                "layers": layers, "seed": draw(st.integers(0, 50)),
                "sequences": "\n".join(" ".join(map(str, row)) for row in rows)}
    return document, rows


def bins(rows: list, width: int) -> list[list[int]]:
    """The rows of each bin of `width` steps: lengths 1…width, width+1…2·width, …"""
    found: dict[int, list[int]] = {}
    for row, items in enumerate(rows):
        found.setdefault((len(items) - 1) // width, []).append(row)
    return list(found.values())


# The case: `1` and `1 1` in bins of 1, pre-padding without a mask, a bidirectional SimpleRNN of 1 unit
@example(({"input": {"kind": "tokens", "vocab_size": VOCAB, "length": None},
           "batching": {"mode": "bucket", "padding": "pre", "truncating": "post", "maxlen": None, "pad_value": 0,
                        "bucket_width": 1, "chunk": 1},
           "layers": [{"type": "embedding", "output_dim": 1, "mask_zero": False},
                      {"type": "simple_rnn", "units": 1, "return_sequences": False, "return_state": False,
                       "bidirectional": True, "merge_mode": "concat", "go_backwards": False, "activation": "tanh",
                       "use_bias": True}],
           "seed": 0, "sequences": "1\n1 1"}, [[1], [1, 1]]))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_each_sequence_equals_plain_keras_on_its_own_bin(case):
    document, rows = case
    spec = specs.from_dict(document)
    result = ENGINE.run(spec)
    model, _, objects = plain_model(document, None)
    weights = ENGINE.weights()
    for name, keras_layer in zip(spec.layer_names(), objects):
        keras_layer.set_weights([weights[f"weights/{name}/{i}"] for i in range(len(keras_layer.get_weights()))])
    b = document["batching"]
    steps = result.mask.shape[1]
    for group in bins(rows, b["bucket_width"]):
        batch = pad_sequences([rows[r] for r in group], padding=b["padding"], value=b["pad_value"])
        for layer, plain in zip(result.layers, predict(model, batch), strict=True):
            for place, row in enumerate(group):
                length = len(rows[row])
                mine, theirs = layer.output[row], plain["out"][place]
                if layer.time_major:    # the valid steps: where the sequence sits in each padded batch
                    mine = mine[:length] if b["padding"] == "post" else mine[steps - length:]
                    theirs = theirs[:length] if b["padding"] == "post" else theirs[len(theirs) - length:]
                np.testing.assert_allclose(mine, theirs, **TOL, err_msg=f"{layer.name}, line {row + 1}")


def test_bins_merge_where_the_mask_makes_it_exact_and_stay_apart_where_padding_leaks():
    """The same stack with and without mask_zero: the masked one runs one bucket (the per-step cost makes
    merging cheaper), the unmasked one runs the user's bins, and the JSON report lists them."""
    document = {"input": {"kind": "tokens", "vocab_size": VOCAB},
                "batching": {"mode": "bucket", "padding": "pre", "bucket_width": 1},
                "layers": [{"type": "embedding", "output_dim": 2, "mask_zero": True},
                           {"type": "lstm", "units": 2, "bidirectional": True}],
                "sequences": "1\n1 2\n3 4 5"}
    masked = ENGINE.run(specs.from_dict(document))
    assert masked.to_json()["batch"]["buckets"] == [[1, 2, 3]]
    document["layers"][0]["mask_zero"] = False
    unmasked = ENGINE.run(specs.from_dict(document))
    assert unmasked.to_json()["batch"]["buckets"] == [[1], [2], [3]]
