"""Outputs and states keep their Keras names: out/<layer> is the layer's first output as Keras returns it, the
states are out/<layer>/state/<name>, whatever the next layer takes (`feeds`). Checked against a plain Keras
model written here, with the explorer's weights loaded, in `run --npz`, in the core's result and in the
session's (the result the engine's run request hands to the window)."""

from __future__ import annotations

import json
import threading

import keras
import numpy as np
import pytest
from keras.utils import pad_sequences

from explorer import cli
from explorer.core import spec as specs
from explorer.engine.local import LocalChannel
from explorer.session import Session

TOL = dict(atol=1e-5, rtol=1e-5)
VOCAB = 20
ROWS = [[3, 14, 15, 9], [2, 6], [5, 3, 5]]
TEXT = "\n".join(" ".join(map(str, row)) for row in ROWS) + "\n"


def document(bidirectional: bool, feeds: str, return_sequences: bool) -> dict:
    head = {"type": "dense", "units": 2, "name": "head"}
    return {"input": {"kind": "tokens", "vocab_size": VOCAB}, "batching": {"padding": "post"},
            "layers": [{"type": "embedding", "output_dim": 4, "name": "emb"},
                       {"type": "lstm", "units": 3, "return_state": True, "bidirectional": bidirectional,
                        "return_sequences": return_sequences, "feeds": feeds, "name": "enc"}, head],
            "seed": 3, "sequences": TEXT}


def plain_keras(bidirectional: bool, feeds: str, arrays) -> tuple[list[str], list[np.ndarray]]:
    """`x, h, c = LSTM(3, return_state=True)(x); Dense(2)(c)` as a user writes it, with the explorer's weights:
    (the names of the outputs in Keras's order, the values for the padded batch)."""
    inputs = keras.Input((None,), dtype="int32")
    embedding = keras.layers.Embedding(VOCAB, 4)
    lstm = keras.layers.LSTM(3, return_state=True, return_sequences=arrays["out/enc"].ndim == 3)
    encoder = keras.layers.Bidirectional(lstm) if bidirectional else lstm
    found = encoder(embedding(inputs))
    names = ["output", *([f"{side}_{s}" for side in ("forward", "backward") for s in "hc"] if bidirectional
                         else ["h", "c"])]
    dense = keras.layers.Dense(2)
    head = dense(found[names.index(feeds)])
    model = keras.Model(inputs, [*found, head])
    for layer, name in ((embedding, "emb"), (encoder, "enc"), (dense, "head")):
        layer.set_weights([arrays[f"weights/{name}/{i}"] for i in range(len(layer.get_weights()))])
    values = model(pad_sequences(ROWS, padding="post"), training=False)
    return names + ["head"], [keras.ops.convert_to_numpy(v) for v in values]


def check(arrays, bidirectional: bool, feeds: str) -> None:
    names, values = plain_keras(bidirectional, feeds, arrays)
    expected = {"out/enc" if name == "output" else "out/head" if name == "head" else f"out/enc/state/{name}": value
                for name, value in zip(names, values)}
    for key, value in expected.items():
        np.testing.assert_allclose(arrays[key], value, **TOL, err_msg=key)


CASES = [(False, "h", False), (False, "c", False), (False, "c", True), (True, "forward_c", False),
         (True, "backward_h", True)]


@pytest.mark.parametrize("bidirectional, feeds, return_sequences", CASES)
def test_run_npz_keeps_keras_names(tmp_path, capsys, bidirectional, feeds, return_sequences):
    stack = tmp_path / "enc.stack.json"
    stack.write_text(json.dumps(document(bidirectional, feeds, return_sequences)))
    assert cli.main(["run", str(stack), "--npz", str(tmp_path / "out.npz")]) == 0
    check(dict(np.load(tmp_path / "out.npz")), bidirectional, feeds)
    capsys.readouterr()
    assert cli.main(["run", str(stack)]) == 0     # the table says which state feeds the next layer
    marked = [line.split()[1] for line in capsys.readouterr().out.splitlines() if line.endswith("→ next layer")]
    assert marked == [feeds]


@pytest.mark.parametrize("bidirectional, feeds, return_sequences", CASES)
def test_the_core_and_the_session_keep_keras_names(engine, bidirectional, feeds, return_sequences):
    spec = specs.from_dict(document(bidirectional, feeds, return_sequences))
    replies, arrived = [], threading.Event()
    channel = LocalChannel(lambda reply: (replies.append(reply), arrived.set()), engine=engine)
    channel.submit("run", spec=spec, text=TEXT)
    assert arrived.wait(120) and replies[0].error is None
    session = Session(spec, trusted=True, source=None)
    session.run_finished(replies[0].value, spec)
    channel.close()
    for result in (engine.run(spec), session.result):
        arrays = {**result.arrays(), **engine.weights()}
        check(arrays, bidirectional, feeds)
        enc = result.layer("enc")
        assert enc.feeds == feeds and result.to_json()["layers"][1]["feeds"] == feeds
        np.testing.assert_array_equal(enc.passed, arrays[f"out/enc/state/{feeds}"])
        assert result.fc_input.shape == enc.passed.shape and f"final state {feeds}" in result.fc_input.explanation
