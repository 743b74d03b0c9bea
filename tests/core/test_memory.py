"""The memory estimate, made from the stack and the batch size before anything is built, against what a run
really holds: every output the engine returns, and the padded batch's size."""

from __future__ import annotations

import pytest

from explorer.core import memory, presets, sequences


@pytest.mark.parametrize("name", presets.names())
def test_the_estimate_counts_every_output_of_a_run_twice(engine, name):
    spec = presets.load_preset(name)
    result = engine.run(spec, trust=True)
    rows, steps = memory.batch_size(spec, sequences.parse(spec.sequences, spec.input).lengths)
    assert (rows, steps) == result.input.shape[:2]
    held = sum(layer.output.nbytes + sum(extra.nbytes for extra in layer.extras.values())
               for layer in result.layers)
    assert memory.estimate_mb(spec, rows, steps) >= 2 * held / 1e6


def test_an_oversized_batch_is_refused_with_the_estimate_and_the_limit():
    spec = presets.load_preset("average_pooling")
    spec.layers[1].params["units"] = 4096
    with pytest.raises(memory.StackError, match=r"500 sequences × 300 steps\), over the limit of 2,048 MB"):
        memory.check(spec, 500, 300)
    memory.check(spec, 3, 7)


def test_a_large_vocabulary_and_a_growing_custom_layer_are_refused_before_anything_is_built(engine):
    from explorer.core.spec import from_dict
    vocabulary = from_dict({"input": {"kind": "tokens", "vocab_size": 10_000_000},
                            "layers": [{"type": "embedding", "output_dim": 48}, {"type": "global_average_pooling"}]})
    with pytest.raises(memory.StackError, match="over the limit"):
        engine.run(vocabulary, "1 2 3\n")
    tile = from_dict({"input": {"kind": "features", "features": 4},
                      "layers": [{"type": "custom", "expression": "ops.tile(x, (1, 1, 3000))"}]})
    line = "0.1 0.2 0.3 0.4; " * 499 + "0 0 0 0"
    with pytest.raises(memory.StackError, match="over the limit"):   # 2.4 GB of output: the dry run sees it
        engine.run(tile, "\n".join([line] * 100), trust=True)


def test_the_estimate_of_a_two_input_model_counts_every_inputs_batch_and_layers(engine):
    """Short encoder lines, long decoder lines: the decoder's padded batch (keras.utils.pad_sequences) and the
    outputs on its steps count, not the encoder's length for every layer."""
    import keras

    from explorer.core.spec import from_dict
    spec = from_dict({
        "input": {"kind": "tokens", "vocab_size": 9, "name": "question"},
        "more_inputs": [{"kind": "tokens", "vocab_size": 7, "name": "answer"}],
        "layers": [{"type": "embedding", "name": "question_ids", "output_dim": 3, "mask_zero": True},
                   {"type": "gru", "name": "reader", "units": 16, "return_state": True},
                   {"type": "embedding", "name": "answer_ids", "inputs": ["answer"], "output_dim": 8},
                   {"type": "gru", "name": "writer", "units": 16, "return_sequences": True,
                    "inputs": ["answer_ids"], "initial_state": ["reader/state/h"]}]})
    rows = {"question": [[1, 2]] * 3, "answer": [[3] * 300, [4] * 120, [5] * 7]}
    result = engine.run(spec, {name: "\n".join(" ".join(map(str, row)) for row in data) for name, data in rows.items()})
    lengths = {name: [len(row) for row in data] for name, data in rows.items()}
    batches = sum(keras.utils.pad_sequences(data).nbytes for data in rows.values())
    held = sum(layer.output.nbytes + sum(extra.nbytes for extra in layer.extras.values()) for layer in result.layers)
    estimate = memory.estimate_mb(spec, *memory.batch_size(spec, lengths["question"]),
                                  more_steps=memory.more_steps(spec, lengths))
    assert estimate >= (2 * held + batches) / 1e6
