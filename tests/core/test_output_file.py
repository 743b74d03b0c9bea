"""Output files: atomic for regular and new files, written through for links and special files, modes kept."""

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from explorer.core.output_file import write_bytes, write_file

ROOT = Path(__file__).resolve().parents[2]


def test_a_new_file_gets_the_umask_mode_and_an_existing_file_keeps_its_mode(tmp_path):
    fresh = tmp_path / "fresh.json"
    write_bytes(fresh, b"1")
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask
    shared = tmp_path / "shared.json"
    shared.write_bytes(b"old")
    shared.chmod(0o644)
    write_bytes(shared, b"new")
    assert shared.read_bytes() == b"new" and stat.S_IMODE(shared.stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh.json", "shared.json"]   # no temporary left


def test_a_symlink_is_written_through_to_its_target(tmp_path):
    real = tmp_path / "real.json"
    real.write_bytes(b"old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    write_bytes(link, b"new")
    assert link.is_symlink() and real.read_bytes() == b"new"


def test_a_fifo_is_written_into_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    write_bytes(fifo, b"through the pipe")
    reader.join(timeout=60)
    assert received == [b"through the pipe"] and stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_name_of_255_characters_works(tmp_path):
    path = tmp_path / ("n" * 250 + ".json")
    write_bytes(path, b"{}")
    assert path.read_bytes() == b"{}"


def test_a_link_to_stdout_is_written_to_the_output(tmp_path):
    """/dev/stdout's own shape (a link to /proc/self/fd/1, here a pipe), made by the test: a writer that
    renamed over it would replace the test's link, never the system's."""
    stdout = tmp_path / "stdout"
    stdout.symlink_to("/proc/self/fd/1")
    code = f"from explorer.core.output_file import write_bytes; write_bytes({str(stdout)!r}, b'printed')"
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=ROOT, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == b"printed" and stdout.is_symlink()


def test_a_failed_write_leaves_the_old_file_whole(tmp_path):
    """A full disk, as the operating system reports it: a file-size limit makes the write fail (EFBIG)."""
    old = tmp_path / "result.npz"
    old.write_bytes(b"the old result")
    code = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096)); "
            "from explorer.core.output_file import write_bytes\n"
            "try:\n    write_bytes(sys.argv[1], b'x' * 100000)\nexcept OSError as error:\n    print(error.errno)")
    ran = subprocess.run([sys.executable, "-c", code, str(old)], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert ran.stdout.strip() == "27", ran.stderr     # EFBIG
    assert old.read_bytes() == b"the old result"
    assert [p.name for p in tmp_path.iterdir()] == ["result.npz"]


def test_a_writer_that_fails_leaves_nothing_behind(tmp_path):
    old = tmp_path / "model.keras"
    old.write_bytes(b"old model")

    def failing(temporary: Path) -> None:
        assert temporary.suffix == ".keras"
        temporary.write_bytes(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        write_file(old, failing)
    assert old.read_bytes() == b"old model" and [p.name for p in tmp_path.iterdir()] == ["model.keras"]


def test_a_folder_is_refused(tmp_path):
    with pytest.raises(IsADirectoryError):
        write_bytes(tmp_path, b"x")
