"""Replies cross from the engine to the window as a pickle whose big NumPy arrays travel in one block of
shared memory (multiprocessing.shared_memory): the engine copies each array into the block once, the window
maps the block and gets read-only arrays over it, with no copy and no pickled bytes. The window unlinks the
block as soon as it has mapped it; the mapping lives until its last array is gone."""

from __future__ import annotations

import ctypes
import io
import pickle
from multiprocessing import shared_memory

import numpy as np

MIN_SHARED_BYTES = 1 << 15   # smaller arrays are cheaper pickled
ALIGN = 64


def dumps(value) -> tuple[bytes, str | None]:
    """(pickle, name of the shared block or None)."""
    arrays: list[tuple[int, np.ndarray]] = []
    size = [0]

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if type(obj) is np.ndarray and obj.nbytes >= MIN_SHARED_BYTES and not obj.dtype.hasobject:
                offset = size[0]
                size[0] += -(-obj.nbytes // ALIGN) * ALIGN
                arrays.append((offset, obj))
                return ("shared", offset, obj.shape, obj.dtype.str)
            return None

    buffer = io.BytesIO()
    Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    if not arrays:
        return buffer.getvalue(), None
    block = shared_memory.SharedMemory(create=True, size=size[0])
    try:
        for offset, array in arrays:
            target = np.ndarray(array.shape, array.dtype, buffer=block.buf, offset=offset)
            np.copyto(target, array)
            del target
        return buffer.getvalue(), block.name
    finally:
        block.close()


def loads(data: bytes, name: str | None):
    """The value of dumps(); unlinks the block (it exists once: this is its only reader)."""
    block = _Block(name) if name else None

    class Unpickler(pickle.Unpickler):
        def persistent_load(self, pid):
            tag, offset, shape, dtype = pid
            if tag != "shared" or block is None:
                raise pickle.UnpicklingError(f"unknown persistent id {tag!r}")
            return np.asarray(_Slice(block, offset, shape, dtype))

    return Unpickler(io.BytesIO(data)).load()


def discard(name: str | None) -> None:
    """Frees the block of a reply that is not read."""
    if name:
        _Block(name)


class _Block:
    """A shared block mapped here, its name already removed; closed when its last array is freed."""

    def __init__(self, name: str):
        self._memory = shared_memory.SharedMemory(name=name)
        self._memory.unlink()
        anchor = ctypes.c_char.from_buffer(self._memory.buf)   # the address, without holding an export
        self.address = ctypes.addressof(anchor)
        del anchor

    def __del__(self):
        self._memory.close()


class _Slice:
    """One array's bytes in a block, seen by NumPy through __array_interface__ (its base keeps the block)."""

    def __init__(self, block: _Block, offset: int, shape: tuple, dtype: str):
        self.block = block
        self.__array_interface__ = {"data": (block.address + offset, True), "shape": tuple(shape),
                                    "typestr": dtype, "version": 3}
