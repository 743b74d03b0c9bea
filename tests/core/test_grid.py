"""A grid of stacks through Engine.run: every layer type × recurrent options × input kind × batching mode ×
padding. Each one either runs, with consistent shapes, or raises an ExplorerError with a message; nothing
else may escape (it would be a traceback on the command line, an "internal error" in the window).
"""

from __future__ import annotations

import itertools
import json

import pytest

from explorer.core import spec as specs
from explorer.core.errors import ExplorerError

INPUTS = {
    "tokens-masked": ({"kind": "tokens", "vocab_size": 20}, [{"type": "embedding", "output_dim": 3, "mask_zero": True}],
                      "1 2 3 4 5\n6 7\n8 9 1 2\n"),
    "tokens-unmasked": ({"kind": "tokens", "vocab_size": 20}, [{"type": "embedding", "output_dim": 3}],
                        "1 2 3 4 5\n6 7\n8 9 1 2\n"),
    "features-masking": ({"kind": "features", "features": 2}, [{"type": "masking", "mask_value": 0.0}],
                         "0.5 1; 1 2; -1 0\n2 2\n1 1; 3 3; 0.5 0.5; 1 0\n"),
    "features-plain": ({"kind": "features", "features": 2}, [], "0.5 1; 1 2; -1 0\n2 2\n1 1; 3 3; 0.5 0.5; 1 0\n"),
    "words-masked": ({"kind": "words", "vocab_size": 10}, [{"type": "embedding", "output_dim": 3, "mask_zero": True}],
                     "the cat sat on the mat\nthe dog\na cat and a dog\n"),
}
RECURRENT_OPTIONS = [
    {"return_sequences": False},
    {"return_sequences": True},
    {"return_sequences": True, "return_state": True},
    {"return_sequences": False, "return_state": True, "bidirectional": True, "merge_mode": "sum"},
    {"return_sequences": True, "bidirectional": True, "merge_mode": "concat"},
    {"return_sequences": True, "go_backwards": True},
]
HEADS = [
    {"type": "embedding", "output_dim": 2},
    {"type": "masking"},
    {"type": "simple_rnn", "units": 2},
    {"type": "lstm", "units": 2, "return_sequences": True},
    {"type": "gru", "units": 2, "bidirectional": True, "merge_mode": "mul"},
    {"type": "global_average_pooling"},
    {"type": "global_max_pooling"},
    {"type": "masked_mean_pooling"},
    {"type": "time_average"},
    {"type": "last_timestep"},
    {"type": "attention_pooling"},
    {"type": "flatten"},
    {"type": "dense", "units": 2, "activation": "relu"},
    {"type": "time_distributed_dense", "units": 2},
    {"type": "custom", "expression": "ops.mean(x, axis=1)"},
    {"type": "custom", "expression": "x * ops.expand_dims(ops.cast(mask, x.dtype), -1)"},
]
MODES = ("pad", "bucket", "one_by_one", "chunked")


def architectures():
    """Every head × every recurrent option; recurrent type, input kind and maxlen rotate along."""
    kinds = list(INPUTS)
    for index, (head, options) in enumerate(itertools.product(HEADS, RECURRENT_OPTIONS)):
        rnn = specs.RECURRENT_TYPES[(index // len(RECURRENT_OPTIONS) + index) % 3]
        kind = kinds[index % len(kinds)]
        input_doc, first, text = INPUTS[kind]
        maxlen = 4 if head["type"] == "flatten" or index % 7 == 0 else None
        layers = [*first, {"type": rnn, "units": 3, **options}, dict(head), {"type": "dense", "units": 2}]
        document = {"input": input_doc, "layers": layers, "seed": index,
                    "batching": {"maxlen": maxlen, "truncating": "pre" if index % 2 else "post",
                                 "bucket_width": 1 + index % 3, "chunk": 1 + index % 4}}
        yield f"{index}-{kind}-{rnn}-{head['type']}", document, text


ARCHITECTURES = list(architectures())


def check_result(result, spec):
    batch, steps = result.input.shape[:2]
    assert len(result.layers) == len(spec.layers)
    assert result.mask.shape == (batch, steps)
    for layer in result.layers:
        assert layer.output.shape == layer.shape
        assert layer.shape[0] == batch
        assert len(layer.shape) == len(layer.symbolic_shape)
        if layer.time_major:
            assert layer.shape[1] == steps
        if layer.mask is not None:
            assert layer.mask.shape == (batch, steps)
    assert result.output_shape == result.layers[-1].shape
    json.dumps(result.to_json())
    for warning in result.warnings:
        assert warning.strip()


@pytest.mark.slow
def test_grid_of_stacks_runs_or_explains(engine):
    ran = refused = 0
    for label, document, text in ARCHITECTURES:
        spec = specs.from_dict(document)
        for mode, padding in itertools.product(MODES, ("post", "pre")):
            spec.batching.mode, spec.batching.padding = mode, padding
            try:
                result = engine.run(spec, text, trust=True)
            except ExplorerError as error:
                assert error.message.strip(), label
                assert "\x1b[" not in error.message
                refused += 1
                assert "Exception encountered" not in error.message, error.message   # Keras's wrapper, not a reason
                continue
            except Exception as error:   # pragma: no cover - the failure message is the point
                raise AssertionError(f"{label} {mode}/{padding}: {type(error).__name__}: {error}") from error
            check_result(result, spec)
            ran += 1
    assert ran + refused >= 500
    # the grid must exercise both outcomes substantially, or it tests little
    assert ran >= 200 and refused >= 50, (ran, refused)
