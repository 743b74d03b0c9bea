"""Batching modes (pad, bucket, one_by_one, chunked) and the padded layout.

With a mask, every mode must give the same numbers on the valid timesteps (and the same per-sequence
vectors after the time axis is gone). The layout tests check padding, truncation, maxlen, pad_value and
the mask against expectations written out by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.core import sequences as seqs
from explorer.core import spec as specs
from explorer.core.errors import StackError

TOL = dict(atol=1e-5, rtol=1e-5)
MODES = ("pad", "bucket", "one_by_one", "chunked")
# lengths 7, 2, 4, 1, 5, 3, 2: several buckets at every width, windows that end inside and at sequence ends
TEXT = "5 9 13 2 44 8 21\n7 3\n11 12 13 14\n49\n1 2 3 4 5\n6 6 6\n30 31\n"
LENGTHS = [7, 2, 4, 1, 5, 3, 2]


def stack(kind: str, *, masked: bool = True, bidirectional: bool = False, features: bool = False,
          **batching) -> specs.StackSpec:
    first = ({"type": "masking", "mask_value": 0.0} if features
             else {"type": "embedding", "output_dim": 4, "mask_zero": masked})
    return specs.from_dict({
        "input": {"kind": "features", "features": 2} if features else {"kind": "tokens", "vocab_size": 50},
        "batching": batching,
        "layers": [first,
                   {"type": kind, "units": 3, "return_sequences": True, "bidirectional": bidirectional},
                   {"type": "time_distributed_dense", "units": 2, "activation": "tanh"},
                   {"type": kind, "units": 4, "return_sequences": True},
                   {"type": kind, "units": 5, "return_state": True},
                   {"type": "dense", "units": 3}],
        "seed": 11,
    })


def run_mode(engine, spec, mode, text=TEXT, **batching):
    spec = spec.copy()
    spec.batching.mode = mode
    for key, value in batching.items():
        setattr(spec.batching, key, value)
    return engine.run(spec, text)


def assert_agree_on_valid_steps(reference, other):
    """Time-major outputs agree where the reference mask is valid; other outputs agree everywhere."""
    np.testing.assert_array_equal(other.input, reference.input)
    np.testing.assert_array_equal(other.mask, reference.mask)
    np.testing.assert_array_equal(other.lengths, reference.lengths)
    valid = reference.mask
    for ref, got in zip(reference.layers, other.layers):
        assert got.name == ref.name and got.output.shape == ref.output.shape, got.name
        if ref.time_major:
            np.testing.assert_allclose(got.output[valid], ref.output[valid], **TOL, err_msg=f"{got.name} ({other.mode})")
        else:
            np.testing.assert_allclose(got.output, ref.output, **TOL, err_msg=f"{got.name} ({other.mode})")
        assert set(got.extras) == set(ref.extras)
        for key in ref.extras:
            np.testing.assert_allclose(got.extras[key], ref.extras[key], **TOL, err_msg=key)
        if ref.mask is not None:
            np.testing.assert_array_equal(got.mask, ref.mask)


@pytest.mark.parametrize("padding", ["post", "pre"])
@pytest.mark.parametrize("kind", specs.RECURRENT_TYPES)
def test_modes_agree_on_valid_steps(engine, kind, padding):
    spec = stack(kind, padding=padding)
    reference = run_mode(engine, spec, "pad")
    assert reference.mask.sum() == sum(LENGTHS)
    alone = run_mode(engine, spec, "one_by_one")
    assert_agree_on_valid_steps(reference, alone)
    for width in (1, 2, 3, 100):
        assert_agree_on_valid_steps(reference, run_mode(engine, spec, "bucket", bucket_width=width))
    for chunk in (1, 2, 3, 4, 100):
        assert_agree_on_valid_steps(reference, run_mode(engine, spec, "chunked", chunk=chunk))


@pytest.mark.parametrize("padding", ["post", "pre"])
@pytest.mark.parametrize("kind", specs.RECURRENT_TYPES)
def test_modes_agree_for_features_with_masking_layer(engine, kind, padding):
    text = "0.5 1; 2 -1; 0.25 0.5\n1 1\n-1 2; 3 0.5; 1 1; 2 2\n"
    spec = stack(kind, features=True, padding=padding)
    reference = run_mode(engine, spec, "pad", text)
    for mode, options in [("one_by_one", {}), ("bucket", {"bucket_width": 2}), ("chunked", {"chunk": 3})]:
        assert_agree_on_valid_steps(reference, run_mode(engine, spec, mode, text, **options))


@pytest.mark.parametrize("padding", ["post", "pre"])
@pytest.mark.parametrize("kind", specs.RECURRENT_TYPES)
def test_bidirectional_modes_agree(engine, kind, padding):
    spec = stack(kind, bidirectional=True, padding=padding)
    reference = run_mode(engine, spec, "pad")
    assert_agree_on_valid_steps(reference, run_mode(engine, spec, "one_by_one"))
    assert_agree_on_valid_steps(reference, run_mode(engine, spec, "bucket", bucket_width=2))
    with pytest.raises(StackError, match=f"{kind}_1 reads the sequence backwards"):
        run_mode(engine, spec, "chunked")


@pytest.mark.parametrize("kind", specs.RECURRENT_TYPES)
def test_chunked_equals_pad_without_a_mask(engine, kind):
    """Unmasked, chunked runs the very same padded batch: every step (padded ones too) agrees."""
    spec = stack(kind, masked=False)
    reference = run_mode(engine, spec, "pad")
    for chunk in (1, 3, 5):
        other = run_mode(engine, spec, "chunked", chunk=chunk)
        for ref, got in zip(reference.layers, other.layers):
            np.testing.assert_allclose(got.output, ref.output, **TOL, err_msg=got.name)


@pytest.mark.parametrize("kind", specs.RECURRENT_TYPES)
def test_unmasked_one_by_one_differs_from_pad(engine, kind):
    """The reason the modes exist: without a mask the padded run is not the unpadded one."""
    spec = stack(kind, masked=False)
    padded = run_mode(engine, spec, "pad").layer(f"{kind}_3").output
    alone = run_mode(engine, spec, "one_by_one").layer(f"{kind}_3").output
    np.testing.assert_allclose(padded[0], alone[0], **TOL)    # the longest line has no padding
    assert np.abs(padded[1:] - alone[1:]).max() > 1e-6


@pytest.mark.parametrize("padding", ["post", "pre"])
def test_modes_never_computed_steps_hold_zero(engine, padding):
    """Steps outside every piece a mode ran hold 0 (bucket mode: the pieces of the engine's plan)."""
    from explorer.core.run import bucket_cost
    spec = stack("gru", padding=padding)
    for mode in ("one_by_one", "bucket"):
        result = run_mode(engine, spec, mode, bucket_width=1)
        spec.batching.mode, spec.batching.bucket_width = mode, 1
        layout = seqs.layout(seqs.parse(TEXT, spec.input), spec.batching,
                             bucket_cost=bucket_cost(engine.built_for(spec), spec.batching))
        computed = np.zeros_like(result.mask)
        for piece in layout.pieces:
            computed[piece.rows, piece.offset:piece.offset + piece.batch.shape[1]] = True
        assert computed[result.mask].all() and (mode == "bucket" or not computed[~result.mask].any())
        for layer in result.layers:
            if layer.time_major:
                assert np.all(layer.output[~computed] == 0.0), (mode, layer.name)


@pytest.mark.parametrize("padding", ["post", "pre"])
def test_heads_agree_across_modes(engine, padding):
    spec = specs.from_dict({
        "input": {"kind": "tokens", "vocab_size": 50}, "batching": {"padding": padding},
        "layers": [{"type": "embedding", "output_dim": 4, "mask_zero": True},
                   {"type": "lstm", "units": 3, "return_sequences": True},
                   {"type": "attention_pooling"}, {"type": "dense", "units": 2, "activation": "softmax"}],
    })
    reference = run_mode(engine, spec, "pad")
    for mode in ("one_by_one", "bucket", "chunked"):
        assert_agree_on_valid_steps(reference, run_mode(engine, spec, mode, chunk=2, bucket_width=2))
    for head in ("global_average_pooling", "masked_mean_pooling", "last_timestep"):
        spec.layers[2] = specs.LayerSpec(head)
        reference = run_mode(engine, spec, "pad")
        for mode in ("one_by_one", "bucket", "chunked"):
            assert_agree_on_valid_steps(reference, run_mode(engine, spec, mode, chunk=3, bucket_width=3))


def test_modes_keep_original_sequence_order(engine):
    """Buckets regroup the sequences; the result must come back in the editor's order."""
    spec = stack("lstm")
    result = run_mode(engine, spec, "bucket", bucket_width=1)
    assert result.lines == [1, 2, 3, 4, 5, 6, 7]
    np.testing.assert_array_equal(result.lengths, LENGTHS)
    lone = run_mode(engine, spec, "pad", text="49\n")
    np.testing.assert_allclose(result.layer("dense_1").output[3], lone.layer("dense_1").output[0], **TOL)


# --- layout against hand-written expectations ---

TOKENS = specs.InputSpec("tokens", 100)


def layout(text, input_spec=TOKENS, fixed_length=False, **batching):
    return seqs.layout(seqs.parse(text, input_spec), specs.Batching(**batching), fixed_length=fixed_length)


def test_layout_post_padding():
    result = layout("1 2 3\n4\n5 6\n", padding="post")
    np.testing.assert_array_equal(result.batch, [[1, 2, 3], [4, 0, 0], [5, 6, 0]])
    np.testing.assert_array_equal(result.mask, [[1, 1, 1], [1, 0, 0], [1, 1, 0]])
    np.testing.assert_array_equal(result.lengths, [3, 1, 2])
    assert result.batch.dtype == np.int32 and result.mask.dtype == bool
    assert result.padded_fraction == pytest.approx(3 / 9)


def test_layout_pre_padding():
    result = layout("1 2 3\n4\n5 6\n", padding="pre")
    np.testing.assert_array_equal(result.batch, [[1, 2, 3], [0, 0, 4], [0, 5, 6]])
    np.testing.assert_array_equal(result.mask, [[1, 1, 1], [0, 0, 1], [0, 1, 1]])


@pytest.mark.parametrize("truncating, expected", [("post", [[1, 2], [4, 0], [5, 6]]), ("pre", [[2, 3], [4, 0], [5, 6]])])
def test_layout_truncation(truncating, expected):
    result = layout("1 2 3\n4\n5 6\n", maxlen=2, truncating=truncating, padding="post")
    np.testing.assert_array_equal(result.batch, expected)
    np.testing.assert_array_equal(result.lengths, [2, 1, 2])
    np.testing.assert_array_equal(result.mask, [[1, 1], [1, 0], [1, 1]])


def test_layout_truncation_with_pre_padding():
    result = layout("1 2 3 7\n4\n", maxlen=3, truncating="pre", padding="pre")
    np.testing.assert_array_equal(result.batch, [[2, 3, 7], [0, 0, 4]])
    np.testing.assert_array_equal(result.mask, [[1, 1, 1], [0, 0, 1]])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(1, 49), min_size=1, max_size=9), min_size=1, max_size=6),
       st.one_of(st.none(), st.integers(1, 12)), st.sampled_from(("pre", "post")), st.sampled_from(("pre", "post")),
       st.sampled_from(MODES))
def test_maxlen_pads_and_truncates_like_pad_sequences_in_every_mode(rows, maxlen, padding, truncating, mode):
    """maxlen is exactly that many steps (keras.utils.pad_sequences): the padded grid, the mask and the padding
    share agree with it in every mode; bucket and one_by_one run the sequences truncated to maxlen."""
    from keras.utils import pad_sequences
    text = "\n".join(" ".join(map(str, row)) for row in rows) + "\n"
    result = layout(text, maxlen=maxlen, padding=padding, truncating=truncating, mode=mode)
    expected = pad_sequences(rows, maxlen=maxlen, padding=padding, truncating=truncating, value=0)
    np.testing.assert_array_equal(result.batch, expected)
    kept = np.array([min(len(row), maxlen or len(row)) for row in rows])
    steps = expected.shape[1]
    positions = np.arange(steps)[None, :]
    mask = positions < kept[:, None] if padding == "post" else positions >= steps - kept[:, None]
    np.testing.assert_array_equal(result.mask, mask)
    assert result.padded_fraction == pytest.approx(1 - kept.sum() / expected.size)
    for piece in result.pieces:
        for row, values in zip(piece.rows, piece.batch):
            cut = row_values = rows[row]
            if maxlen is not None and len(cut) > maxlen:
                cut = row_values[-maxlen:] if truncating == "pre" else row_values[:maxlen]
            valid = values[:len(cut)] if padding == "post" else values[len(values) - len(cut):]
            np.testing.assert_array_equal(valid, cut)
            assert piece.offset + len(values) <= steps


def test_flatten_pads_every_batch_to_maxlen():
    fixed = layout("1 2\n3\n", maxlen=5, fixed_length=True, padding="pre")
    np.testing.assert_array_equal(fixed.batch, [[0, 0, 0, 1, 2], [0, 0, 0, 0, 3]])
    np.testing.assert_array_equal(fixed.mask, [[0, 0, 0, 1, 1], [0, 0, 0, 0, 1]])


def test_pad_value_fills_padding_but_not_the_mask():
    result = layout("1 2 3\n4\n", pad_value=99, padding="post")
    np.testing.assert_array_equal(result.batch, [[1, 2, 3], [4, 99, 99]])
    np.testing.assert_array_equal(result.mask, [[1, 1, 1], [1, 0, 0]])


def test_feature_layout():
    features = specs.InputSpec("features", None, 2)
    result = layout("1 2; 3 4\n5 6\n", features, padding="pre", pad_value=-1.5)
    assert result.batch.dtype == np.float32 and result.batch.shape == (2, 2, 2)
    np.testing.assert_array_equal(result.batch, [[[1, 2], [3, 4]], [[-1.5, -1.5], [5, 6]]])
    np.testing.assert_array_equal(result.mask, [[1, 1], [0, 1]])


def test_feature_values_survive_padding_unrounded():
    features = specs.InputSpec("features", None, 1)
    result = layout("0.123456; 2.5\n-7.25\n", features)
    np.testing.assert_array_equal(result.batch[:, :, 0], np.array([[0.123456, 2.5], [-7.25, 0]], np.float32))


def test_pieces_of_each_mode():
    text = "1 2 3 4 5\n6\n7 8\n9 10 11\n"
    pad = layout(text, mode="pad")
    assert len(pad.pieces) == 1 and pad.pieces[0].offset == 0
    np.testing.assert_array_equal(pad.pieces[0].rows, [0, 1, 2, 3])
    alone = layout(text, mode="one_by_one", padding="pre")
    assert [list(p.rows) for p in alone.pieces] == [[0], [1], [2], [3]]
    assert [p.batch.tolist() for p in alone.pieces] == [[[1, 2, 3, 4, 5]], [[6]], [[7, 8]], [[9, 10, 11]]]
    assert [p.offset for p in alone.pieces] == [0, 4, 3, 2]   # pre-padding: pieces end at the last step
    assert alone.computed_fraction == 0.0
    # bucket_width 2: lengths 1-2 | 3-4 | 5-6
    buckets = layout(text, mode="bucket", bucket_width=2, padding="post")
    assert [sorted(p.rows.tolist()) for p in buckets.pieces] == [[1, 2], [3], [0]]
    assert [p.batch.shape for p in buckets.pieces] == [(2, 2), (1, 3), (1, 5)]
    np.testing.assert_array_equal(buckets.pieces[0].batch, [[6, 0], [7, 8]])
    assert all(p.offset == 0 for p in buckets.pieces)
    assert buckets.computed_fraction == pytest.approx(1 / 12)
    pre = layout(text, mode="bucket", bucket_width=2, padding="pre")
    assert [p.offset for p in pre.pieces] == [3, 2, 0]
    np.testing.assert_array_equal(pre.pieces[0].batch, [[0, 6], [7, 8]])


def test_bucket_and_one_by_one_refuse_flatten():
    with pytest.raises(StackError, match="flatten"):
        layout("1 2\n3\n", mode="bucket", maxlen=4, fixed_length=True)
    with pytest.raises(StackError, match="flatten"):
        layout("1 2\n3\n", mode="one_by_one", maxlen=4, fixed_length=True)


def test_chunked_with_flatten_runs_at_fixed_length(engine):
    spec = specs.from_dict({"input": {"kind": "tokens", "vocab_size": 50},
                            "batching": {"mode": "chunked", "chunk": 2, "maxlen": 5},
                            "layers": [{"type": "embedding", "output_dim": 4, "mask_zero": True},
                                       {"type": "lstm", "units": 3, "return_sequences": True},
                                       {"type": "flatten"}, {"type": "dense", "units": 2}]})
    chunked = engine.run(spec, "1 2 3\n4 5 6 7 8 9\n")
    spec.batching.mode = "pad"
    padded = engine.run(spec, "1 2 3\n4 5 6 7 8 9\n")
    assert chunked.layer("flatten_1").shape == (2, 15)
    np.testing.assert_allclose(chunked.layer("lstm_1").output[padded.mask], padded.layer("lstm_1").output[padded.mask],
                               **TOL)
