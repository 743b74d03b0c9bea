"""Replies cross from the engine to the window as a pickle whose big NumPy arrays travel in one block of
shared memory (multiprocessing.shared_memory): the engine copies each array into the block once, the window
maps the block and gets read-only arrays over it, with no copy and no pickled bytes.

Fresh shared pages are expensive (allocating and zeroing 300 MB took 0.4–0.7 s here, the copy into pages
already there 0.03 s), so the engine keeps its blocks (BlockPool) and reuses one once the window has let go
of every array in it: the window's side notes the block's name in RELEASED when its mapping is freed, and
the client hands those names to the engine with its next request. The engine unlinks its blocks when it
stops; if it dies, the client unlinks every block and file named after its pid (`remove_leftovers`).

A reply bigger than the room left in /dev/shm (SHM_LIMIT_ENV overrides the room, for tests) travels through a
file in the temporary folder instead, which its reader removes once mapped; when that folder has no room
either, the reply is refused with a sentence (ResultTooBig) before anything is copied, so that a full
/dev/shm never ends the engine with SIGBUS.
"""

from __future__ import annotations

import collections
import ctypes
import glob
import io
import mmap
import os
import pickle
import secrets
import tempfile
from multiprocessing import shared_memory

import numpy as np

MIN_SHARED_BYTES = 1 << 15       # smaller arrays are cheaper pickled
ALIGN = 64
KEEP_FREE_BYTES = 1 << 30        # the engine keeps at most this much of unused blocks for reuse
RELEASED: collections.deque[str] = collections.deque()   # window side: blocks no longer mapped here
SHM_DIR = "/dev/shm"
SHM_LIMIT_ENV = "EXPLORER_SHM_LIMIT_BYTES"      # the room in /dev/shm that the engine assumes (tests)
ROOM_MARGIN_BYTES = 1 << 24                      # left free for everyone else


class ResultTooBig(Exception):
    """A reply's arrays fit neither in /dev/shm nor in the temporary folder."""


def prefix(pid: int | None = None) -> str:
    """The start of the names of the blocks and files made by process `pid` (default: this one)."""
    return f"rse{pid or os.getpid()}_"


def _room(path: str) -> int:
    try:
        stat = os.statvfs(path)
    except (OSError, AttributeError):
        return 1 << 62          # nothing to ask: assume room
    return stat.f_bavail * stat.f_frsize - ROOM_MARGIN_BYTES


def shm_room() -> int:
    limit = os.environ.get(SHM_LIMIT_ENV)
    return int(limit) if limit else _room(SHM_DIR)


def _create(size: int):
    """A block of `size` bytes: shared memory when /dev/shm has room, else a file in the temporary folder."""
    name = prefix() + secrets.token_hex(6)
    if size <= shm_room():
        return shared_memory.SharedMemory(name=name, create=True, size=size)
    folder = tempfile.gettempdir()
    if size > _room(folder):
        raise ResultTooBig(f"the result ({size / 2**20:,.0f} MB) is larger than the free shared memory "
                           f"({max(shm_room(), 0) / 2**20:,.0f} MB in {SHM_DIR}) and the free space in {folder}: "
                           "run fewer or shorter sequences, or fewer units")
    return _FileBlock(os.path.join(folder, name), size)


class _FileBlock:
    """A block in a file, for a reply too big for /dev/shm: written by the engine, removed by its reader."""

    def __init__(self, path: str, size: int):
        self.name, self.size = path, size
        with open(path, "w+b") as file:
            file.truncate(size)
            self._map = mmap.mmap(file.fileno(), size)
        self.buf = memoryview(self._map)

    def close(self) -> None:
        self.buf.release()
        self._map.close()

    def unlink(self) -> None:
        _remove(self.name)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def remove_leftovers(pid: int) -> None:
    """Unlinks every block and file that the (dead) process `pid` made."""
    start = prefix(pid)
    if os.path.isdir(SHM_DIR):
        for name in os.listdir(SHM_DIR):
            if name.startswith(start):
                unlink(name)
    for path in glob.glob(os.path.join(glob.escape(tempfile.gettempdir()), start + "*")):
        _remove(path)


class _Pickler(pickle.Pickler):
    """Puts big arrays aside (their offsets in the block to come) instead of pickling them. A module-level
    class: one defined per call would sit in a reference cycle, holding the arrays until a collection."""

    def __init__(self, file):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.arrays: list[tuple[int, np.ndarray]] = []
        self.size = 0

    def persistent_id(self, obj):
        if type(obj) is np.ndarray and obj.nbytes >= MIN_SHARED_BYTES and not obj.dtype.hasobject:
            offset = self.size
            self.size += -(-obj.nbytes // ALIGN) * ALIGN
            self.arrays.append((offset, obj))
            return ("shared", offset, obj.shape, obj.dtype.str)
        return None


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, block: _Block | None):
        super().__init__(file)
        self.block = block

    def persistent_load(self, pid):
        tag, offset, shape, dtype = pid
        if tag != "shared" or self.block is None:
            raise pickle.UnpicklingError(f"unknown persistent id {tag!r}")
        return np.asarray(_Slice(self.block, offset, shape, dtype))


def dumps(value, pool: BlockPool | None = None) -> tuple[bytes, str | None]:
    """(pickle, name of the shared block or None). Without a pool the block is left to its one reader, who
    unlinks it (loads with `owned=True`)."""
    buffer = io.BytesIO()
    pickler = _Pickler(buffer)
    pickler.dump(value)
    arrays, size = pickler.arrays, pickler.size
    del pickler
    if not arrays:
        return buffer.getvalue(), None
    block = pool.take(size) if pool is not None else _create(size)
    try:
        for offset, array in arrays:
            target = np.ndarray(array.shape, array.dtype, buffer=block.buf, offset=offset)
            np.copyto(target, array)
            del target
        return buffer.getvalue(), block.name
    finally:
        if pool is None or isinstance(block, _FileBlock):
            block.close()


def loads(data: bytes, name: str | None, *, owned: bool = False):
    """The value of dumps(). `owned`: the block is this reader's alone (no pool): its name is removed at once;
    otherwise the name goes to RELEASED once its last array here is freed."""
    unpickler = _Unpickler(io.BytesIO(data), _Block(name, owned) if name else None)
    try:
        return unpickler.load()
    finally:
        unpickler.block = None


def unlink(name: str | None) -> None:
    """Removes a block's name (its memory goes once no process maps it)."""
    if not name:
        return
    if os.path.isabs(name):
        _remove(name)
        return
    try:
        block = shared_memory.SharedMemory(name=name)
    except FileNotFoundError:
        return
    block.unlink()
    block.close()


class BlockPool:
    """The engine's blocks: one in use per reply the window still holds; the others kept for reuse."""

    def __init__(self, keep_free_bytes: int = KEEP_FREE_BYTES):
        self.keep_free_bytes = keep_free_bytes
        self._free: dict[str, shared_memory.SharedMemory] = {}     # oldest first
        self._used: dict[str, shared_memory.SharedMemory] = {}

    def take(self, size: int) -> shared_memory.SharedMemory:
        """A block of at least `size` bytes; a file block (never kept) when /dev/shm has no room."""
        fitting = [block for block in self._free.values() if size <= block.size <= 2 * size + (1 << 20)]
        if fitting:
            block = min(fitting, key=lambda b: b.size)
            del self._free[block.name]
        else:
            block = _create(size)
            if isinstance(block, _FileBlock):
                return block
        self._used[block.name] = block
        return block

    def release(self, names) -> None:
        for name in names:
            block = self._used.pop(name, None)
            if block is not None:
                self._free[name] = block
        while sum(block.size for block in self._free.values()) > self.keep_free_bytes:
            self._drop(self._free.pop(next(iter(self._free))))

    def close(self) -> None:
        for block in [*self._free.values(), *self._used.values()]:
            self._drop(block)
        self._free.clear()
        self._used.clear()

    @staticmethod
    def _drop(block: shared_memory.SharedMemory) -> None:
        block.close()
        try:
            block.unlink()
        except FileNotFoundError:
            pass


class _Block:
    """A shared block mapped here; closed (and its name released or removed) when its last array is freed."""

    def __init__(self, name: str, owned: bool):
        if os.path.isabs(name):         # a file block: this reader's alone
            self._memory, owned = _MappedFile(name), True
        else:
            self._memory = shared_memory.SharedMemory(name=name)
        self._owned = owned
        if owned:
            self._memory.unlink()
        anchor = ctypes.c_char.from_buffer(self._memory.buf)   # the address, without holding an export
        self.address = ctypes.addressof(anchor)
        del anchor

    def __del__(self):
        self._memory.close()
        if not self._owned:
            RELEASED.append(self._memory.name)


class _MappedFile:
    """A file block mapped by its reader (copy-on-write, so NumPy may take its address)."""

    def __init__(self, path: str):
        self.name = path
        with open(path, "rb") as file:
            self._map = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_COPY)
        self.buf = memoryview(self._map)

    def unlink(self) -> None:
        _remove(self.name)

    def close(self) -> None:
        self.buf.release()
        self._map.close()


class _Slice:
    """One array's bytes in a block, seen by NumPy through __array_interface__ (its base keeps the block)."""

    def __init__(self, block: _Block, offset: int, shape: tuple, dtype: str):
        self.block = block
        self.__array_interface__ = {"data": (block.address + offset, True), "shape": tuple(shape),
                                    "typestr": dtype, "version": 3}
