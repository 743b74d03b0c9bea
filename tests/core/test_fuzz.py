"""Fuzzing (hypothesis): whatever the text or the document, the core gives a result or an ExplorerError.

Any other exception would reach the user as a traceback (command line) or an "internal error" (window).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from explorer.core import sequences as seqs
from explorer.core import spec as specs
from explorer.core.errors import ExplorerError, SequenceError, SpecError
from explorer.core.spec import InputSpec

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- sequence text ---

PIECES = st.sampled_from(["0", "1", "7", "42", "999", "1000", "-1", "+3", "1.5", "1e3", "1e999", "nan", "inf",
                          "-0", "٣", "１", "x", " ", "  ", "\t", ",", ";", ";;", "#", "# c", "\n", "\r\n", "\r",
                          "9" * 30, "9" * 5000, "0.5", "-2.25", "\u2028", "\x0c", "\x00", "é"])
TEXTS = st.one_of(st.text(max_size=80), st.lists(PIECES, max_size=40).map("".join))
INPUTS = st.sampled_from([InputSpec("tokens", 1), InputSpec("tokens", 1000), InputSpec("features", None, 1),
                          InputSpec("features", None, 3)])


@FUZZ
@given(TEXTS, INPUTS)
@example("9" * 5000, InputSpec("tokens", 1000))
@example("1 2;", InputSpec("tokens", 1000))
@example("1 2;", InputSpec("features", None, 2))
@example("340300000000000000000000000000000000000", InputSpec("features", None, 1))
def test_sequence_text_gives_sequences_or_a_sequence_error(text, input_spec):
    try:
        parsed = seqs.parse(text, input_spec)
    except SequenceError as error:
        assert error.line >= 1 and error.column >= 1 and error.problem
        assert str(error).startswith(f"line {error.line}, column {error.column}: ")
        return
    assert len(parsed) >= 1 and len(parsed.items) == len(parsed.lines)
    for item in parsed.items:
        assert len(item) >= 1
        if input_spec.kind == "tokens":
            assert item.dtype == np.int32 and item.min() >= 0 and item.max() < input_spec.vocab_size
        else:
            assert item.shape[1:] == (input_spec.features,) and np.isfinite(item).all()


@FUZZ
@given(st.lists(st.lists(st.integers(0, 99), min_size=1, max_size=9), min_size=1, max_size=6),
       st.sampled_from(["pad", "bucket", "one_by_one", "chunked"]), st.sampled_from(["pre", "post"]),
       st.sampled_from(["pre", "post"]), st.one_of(st.none(), st.integers(1, 10)), st.integers(1, 5))
def test_layout_of_any_token_batch(rows, mode, padding, truncating, maxlen, width):
    text = "\n".join(" ".join(map(str, row)) for row in rows)
    batching = specs.Batching(mode, padding, truncating, maxlen, 0, width, 3)
    result = seqs.layout(seqs.parse(text, InputSpec("tokens", 100)), batching)
    kept = [row if maxlen is None or len(row) <= maxlen else (row[-maxlen:] if truncating == "pre" else row[:maxlen])
            for row in rows]
    assert result.lengths.tolist() == [len(row) for row in kept]
    assert result.mask.sum(axis=1).tolist() == [len(row) for row in kept]
    for r, row in enumerate(kept):
        assert result.batch[r][result.mask[r]].tolist() == row
        assert (result.batch[r][~result.mask[r]] == 0).all()
    covered = sorted(int(row) for piece in result.pieces for row in piece.rows)
    assert covered == list(range(len(rows)))
    for piece in result.pieces:
        for i, row in enumerate(piece.rows):
            steps = piece.batch.shape[1]
            window = result.batch[row, piece.offset:piece.offset + steps]
            np.testing.assert_array_equal(piece.batch[i][result.mask[row, piece.offset:piece.offset + steps]],
                                          window[result.mask[row, piece.offset:piece.offset + steps]])


# --- stack documents ---

HUGE = st.sampled_from([10 ** 400, -10 ** 400, 2 ** 63, 2 ** 31, -1, 0, 1, 4097, 10 ** 7 + 1, 1e308, -0.0,
                        float("nan"), float("inf"), -float("inf"), 1.5, 3.0])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 40, 2 ** 40), HUGE,
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
                    st.sampled_from(["tanh", "softmax", "concat", "pre", "post", "pad", "chunked", "tokens",
                                     "features", "words", "ops.mean(x, axis=1)", "x", "", "__import__('os')"]))
JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                     st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                    max_leaves=12)
PARAM_NAMES = sorted({key for params in specs.LAYER_PARAMS.values() for key in params} | {"name", "type", "bogus"})


def layer_documents():
    def build(kind, params, drop):
        layer = {"type": kind} if not drop else {}
        layer.update(params)
        return layer
    kinds = st.one_of(st.sampled_from(specs.LAYER_TYPES), JSON)
    params = st.dictionaries(st.sampled_from(PARAM_NAMES), JSON, max_size=4)
    return st.one_of(st.builds(build, kinds, params, st.booleans()), JSON)


def stack_documents():
    sections = {
        "format": st.one_of(st.just(specs.FORMAT), JSON),
        "version": st.one_of(st.just(1), st.integers(-3, 5), JSON),
        "input": st.one_of(st.fixed_dictionaries({}, optional={"kind": st.one_of(st.sampled_from(
            ["tokens", "features", "words"]), JSON), "vocab_size": st.one_of(st.integers(-5, 2000), HUGE, JSON),
            "features": st.one_of(st.integers(-2, 8), JSON), "other": JSON}), JSON),
        "batching": st.one_of(st.fixed_dictionaries({}, optional={key: JSON for key in (
            "mode", "padding", "truncating", "maxlen", "pad_value", "bucket_width", "chunk", "extra")}), JSON),
        "layers": st.one_of(st.lists(layer_documents(), max_size=5), JSON),
        "seed": st.one_of(st.integers(-5, 2 ** 32), JSON),
        "sequences": st.one_of(TEXTS, JSON),
        "title": JSON,
        "unknown": JSON,
    }
    return st.one_of(st.fixed_dictionaries({}, optional=sections), JSON)


@FUZZ
@given(stack_documents())
@example({"layers": [{"type": ["lstm"]}]})
@example({"layers": [{"type": "masking", "mask_value": 10 ** 400}]})
@example({"batching": {"pad_value": 10 ** 400}, "layers": []})
@example({"input": {"kind": "features", "features": 1}, "batching": {"pad_value": 1e300}, "layers": []})
def test_documents_give_a_spec_or_a_spec_error(data):
    try:
        spec = specs.from_dict(data)
    except SpecError as error:
        assert error.message
        return
    # a valid document survives the round trip unchanged
    assert specs.from_dict(specs.to_dict(spec)) == spec
    assert specs.loads(specs.dumps(spec)) == spec
    spec.layer_names()
    spec.architecture_key()


@FUZZ
@given(st.one_of(st.text(max_size=60), JSON.map(lambda v: json.dumps(v, allow_nan=True)),
                 stack_documents().map(lambda v: json.dumps(v, allow_nan=True))))
@example('{"seed": ' + "7" * 5000 + "}")
@example("[" * 50_000)
def test_json_text_gives_a_spec_or_a_spec_error(text):
    try:
        specs.loads(text)
    except SpecError as error:
        assert error.message


# --- a few fuzzed stacks all the way through TensorFlow ---

SMALL_LAYER = st.one_of(
    st.fixed_dictionaries({"type": st.sampled_from(specs.RECURRENT_TYPES), "units": st.integers(1, 3),
                           "return_sequences": st.booleans(), "return_state": st.booleans(),
                           "bidirectional": st.booleans(), "go_backwards": st.booleans(),
                           "merge_mode": st.sampled_from(specs.MERGE_MODES)}),
    st.fixed_dictionaries({"type": st.sampled_from(["dense", "time_distributed_dense"]), "units": st.integers(1, 3)}),
    st.builds(lambda kind: {"type": kind}, st.sampled_from(
        ["global_average_pooling", "global_max_pooling", "masked_mean_pooling", "time_average", "last_timestep",
         "attention_pooling", "flatten", "masking"])),
    st.builds(lambda e: {"type": "custom", "expression": e}, st.sampled_from(
        ["ops.mean(x, axis=1)", "x", "mask", "x[0]", "ops.sum(x)", "1/0", "ops.reshape(x, (-1,))", "(x, x)",
         "x + mask", "ops.ones((2, 2))", "x[:, ::2]"])),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.booleans(), st.lists(SMALL_LAYER, min_size=0, max_size=3),
       st.sampled_from(["pad", "bucket", "one_by_one", "chunked"]), st.sampled_from(["pre", "post"]),
       st.one_of(st.none(), st.integers(1, 6)), st.sampled_from(["1 2 3\n4\n", "5\n", "1 0 0 2\n3 4 5 6 7 8 9\n"]))
@pytest.mark.slow
def test_fuzzed_stacks_run_or_raise_explorer_errors(engine, mask_zero, layers, mode, padding, maxlen, text):
    data = {"input": {"kind": "tokens", "vocab_size": 10},
            "batching": {"mode": mode, "padding": padding, "maxlen": maxlen, "bucket_width": 2, "chunk": 2},
            "layers": [{"type": "embedding", "output_dim": 2, "mask_zero": mask_zero}, *layers]}
    spec = specs.from_dict(data)
    try:
        result = engine.run(spec, text, trust=True)
    except ExplorerError as error:
        assert error.message.strip()
        return
    assert len(result.layers) == len(spec.layers)
    result.to_json()
    json.dumps(result.to_json())
