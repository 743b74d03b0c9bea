"""Every file the explorer writes where the user said (run --json/--npz, Save, autosave, the exports).

A regular file, or a new one, is replaced atomically: the content goes to a temporary file beside it, reaches
the disk, takes the old file's permissions and is renamed over it, so a full disk or a crash never leaves a
partial file and never destroys the old one. A symlink is written through to its target. A special file (a
device, a FIFO, /dev/stdout) is opened and written as it is: renaming over it would replace it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import uuid
from pathlib import Path
from typing import Callable


def write_file(path: str | os.PathLike, write: Callable[[Path], None]) -> None:
    """Writes `path` through `write(temporary path)`, which writes a complete file at the path it is given
    (a name ending in the target's suffix, for writers that pick the format from it)."""
    path = Path(path)
    try:
        existing = os.stat(path)
    except FileNotFoundError:
        existing = None
    if existing is not None and stat.S_ISDIR(existing.st_mode):
        raise IsADirectoryError(21, "it is a folder", str(path))
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        with tempfile.TemporaryDirectory() as folder:
            made = Path(folder) / f"content{path.suffix}"
            write(made)
            with made.open("rb") as source, open(path, "wb") as target:
                shutil.copyfileobj(source, target)
        return
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    # a short name of its own: the target's name may already be as long as the file system allows
    temporary = target.parent / f".tmp-{uuid.uuid4().hex[:12]}{target.suffix[:16]}"
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))   # a new file's mode: umask's
    try:
        write(temporary)
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        if existing is not None:
            os.chmod(temporary, stat.S_IMODE(existing.st_mode))
            with contextlib.suppress(PermissionError):
                os.chown(temporary, existing.st_uid, existing.st_gid)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    write_file(path, lambda temporary: temporary.write_bytes(data))
