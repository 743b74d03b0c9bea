"""Replies' arrays cross processes through shared memory: same values, read-only, the block gone afterwards."""

from __future__ import annotations

import pickle
from multiprocessing import shared_memory

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from explorer.engine import shared

DTYPES = st.sampled_from([np.float32, np.float64, np.int8, np.int32, np.int64, np.bool_])


@settings(max_examples=20, deadline=None)
@given(arrays=st.lists(hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, max_side=24)), max_size=4),
       big=hnp.arrays(np.float32, st.tuples(st.integers(100, 130), st.integers(100, 130)),
                       elements=st.floats(-1e3, 1e3, width=32)),
       step=st.integers(1, 3))
def test_arrays_come_back_equal_whatever_their_size_dtype_and_layout(arrays, big, step):
    value = {"small": arrays, "big": big, "strided": big[::step, ::-1], "text": "kept", "nested": (big.T, 3)}
    data, name = shared.dumps(value)
    assert name is not None                     # the big ones went to shared memory …
    every = [*arrays, big, value["strided"], big.T]
    inline = sum(a.nbytes for a in every if a.nbytes < shared.MIN_SHARED_BYTES)
    assert len(data) < inline + 4096            # … not into the pickle
    back = shared.loads(data, name, owned=True)
    for original, copy in zip(arrays, back["small"]):
        np.testing.assert_array_equal(copy, original)
        assert copy.dtype == original.dtype and copy.shape == original.shape
    for key in ("big", "strided"):
        np.testing.assert_array_equal(back[key], value[key])
    np.testing.assert_array_equal(back["nested"][0], big.T)
    assert back["text"] == "kept" and back["nested"][1] == 3
    assert not back["big"].flags.writeable
    with pytest.raises(FileNotFoundError):      # the name is gone once mapped: nothing left behind
        shared_memory.SharedMemory(name=name)


def test_arrays_outlive_the_reply_that_brought_them():
    original = np.random.default_rng(0).standard_normal((300, 200)).astype(np.float32)
    back = shared.loads(*shared.dumps({"x": original}), owned=True)
    kept = back["x"][10:20]
    del back
    np.testing.assert_array_equal(kept, original[10:20])


def test_a_value_without_big_arrays_needs_no_block():
    data, name = shared.dumps({"x": np.arange(5), "y": "text"})
    assert name is None and pickle.loads(data)["y"] == "text"


def test_a_reply_never_read_is_freed():
    _, name = shared.dumps(np.zeros((200, 200)))
    shared.unlink(name)
    with pytest.raises(FileNotFoundError):
        shared_memory.SharedMemory(name=name)


def test_a_pooled_block_is_reused_only_after_the_window_lets_go_of_it():
    pool = shared.BlockPool()
    try:
        first = np.arange(20_000, dtype=np.float64)
        data, name = shared.dumps({"x": first}, pool)
        held = shared.loads(data, name)["x"]
        data, other = shared.dumps({"x": first * 2}, pool)
        assert other != name                              # in use by the reader: a new block
        np.testing.assert_array_equal(held, first)        # … and the first one untouched
        shared.RELEASED.clear()
        del held
        assert list(shared.RELEASED) == [name]            # freed here: its name goes back to the engine
        pool.release(shared.RELEASED)
        data, again = shared.dumps({"x": first * 3}, pool)
        assert again == name
        np.testing.assert_array_equal(shared.loads(data, again)["x"], first * 3)
    finally:
        pool.close()
        shared.RELEASED.clear()
    with pytest.raises(FileNotFoundError):             # the pool's blocks go with it
        shared_memory.SharedMemory(name=name)
