"""Autosave and crash recovery.

While the document differs from its file, every edit or training step (debounced by `AUTOSAVE_DELAY_MS`) writes the
session — the stack document with the editor's text in `sequences` and its trained weights in `weights` —
atomically to `<state dir>/recovery/session-<pid>.stack.json` (a plain stack file: `python main.py` opens it
too), and
beside it `session-<pid>.json` (where it came from, when). A clean exit removes both; so does undoing
back to the saved document. A session whose process is gone left its files behind: at the next start
`offer_recovery(session, autosaver, files)` offers each back, newest first (Restore / Discard; `decide`
answers in tests).
Sessions of explorers still running are left alone.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from ..core import presets
from ..core.errors import SpecError
from ..core.spec import dumps, write_text_atomic
from ..session import Session
from .settings import state_dir

if TYPE_CHECKING:
    from .files import FileController

log = logging.getLogger(__name__)

AUTOSAVE_DELAY_MS = 2000
FOLDER = "recovery"
PREFIX = "session-"
SUFFIX = ".stack.json"
META_FORMAT = "rnn-shape-explorer/recovery"


def recovery_dir(base: Path | None = None) -> Path:
    return (base or state_dir()) / FOLDER


def session_files(directory: Path, pid: int) -> tuple[Path, Path]:
    """The stack document and its notes for the session of process `pid`."""
    return directory / f"{PREFIX}{pid}{SUFFIX}", directory / f"{PREFIX}{pid}.json"


def process_started(pid: int) -> str | None:
    """When process `pid` started (Linux: clock ticks since boot, /proc/PID/stat field 22), None where unknown:
    a live pid whose start differs from the one an autosave recorded belongs to another process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()     # after the command name, which may hold spaces
    return fields[19] if len(fields) > 19 else None


def process_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if sys.platform.startswith("win"):
        import ctypes
        kernel = ctypes.windll.kernel32                      # type: ignore[attr-defined]
        handle = kernel.OpenProcess(0x1000, False, pid)      # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        try:
            kernel.GetExitCodeProcess(handle, ctypes.byref(code))
        finally:
            kernel.CloseHandle(handle)
        return code.value == 259                             # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


@dataclass
class Recovered:
    """The autosave of a session that did not exit cleanly."""
    path: Path
    meta_path: Path
    pid: int
    source: str | None
    saved_at: float

    @property
    def name(self) -> str:
        if self.source and presets.is_preset(self.source):
            return f"the preset {self.source[len(presets.PREFIX):]}"
        if self.source:
            return Path(self.source).name
        return "an untitled stack"

    def when(self) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.saved_at))

    def discard(self) -> None:
        _remove(self.path, self.meta_path)


def _remove(*paths: Path) -> None:
    """Deletes an autosave and its metadata; a file already gone is fine, another failure is logged."""
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as error:
            log.warning("cannot remove %s: %s", path, error)


def crashed_sessions(directory: Path | None = None) -> list[Recovered]:
    """Autosaves left by sessions whose process is gone, newest first."""
    directory = directory or recovery_dir()
    found = []
    try:
        candidates = list(directory.glob(f"{PREFIX}*{SUFFIX}"))
    except OSError:
        return []
    for path in candidates:
        number = path.name[len(PREFIX):-len(SUFFIX)]
        if not number.isdigit():
            continue
        pid = int(number)
        if pid == os.getpid():
            continue
        meta_path = session_files(directory, pid)[1]
        meta: dict = {}
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if not isinstance(meta, dict):
                meta = {}
        except (OSError, ValueError):
            pass
        started = process_started(pid)
        if process_alive(pid) and (started is None or meta.get("started") in (None, started)):
            continue
        try:
            saved_at = float(meta.get("saved_at") or path.stat().st_mtime)
        except (OSError, TypeError, ValueError):
            saved_at = 0.0
        source = meta.get("source") if isinstance(meta.get("source"), str) else None
        found.append(Recovered(path, meta_path, pid, source, saved_at))
    return sorted(found, key=lambda item: item.saved_at, reverse=True)


class Autosaver(QObject):
    """Writes the session to its recovery file after each burst of edits; `remove()` on a clean exit.
    `delay_ms`: how long after the last edit (tests inject 0 and step the timer themselves)."""

    saved = Signal(str)     # the path written

    def __init__(self, session: Session, parent: QObject | None = None, directory: Path | None = None,
                 delay_ms: int = AUTOSAVE_DELAY_MS):
        super().__init__(parent)
        self.session = session
        self.directory = directory or recovery_dir()
        self.path, self.meta_path = session_files(self.directory, os.getpid())
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(self.write_now)
        self._closed = False
        self._failed = False
        session.events.modified.connect(lambda _modified: self.schedule())    # edits and trained weights

    @property
    def pending(self) -> bool:
        return self._timer.isActive()

    def schedule(self) -> None:
        if not self._closed:
            self._timer.start()

    def write_now(self) -> bool:
        """Writes the session now (or removes its file when there is nothing unsaved). True when written."""
        self._timer.stop()
        if self._closed:
            return False
        if not self.session.modified:
            self._remove_files()
            return False
        source = self.session.source
        meta = {"format": META_FORMAT, "version": 1, "pid": os.getpid(), "started": process_started(os.getpid()),
                "saved_at": time.time(), "source": source}
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            # The notes first: a crash between the two writes then never leaves a document without its source.
            write_text_atomic(self.meta_path, json.dumps(meta, indent=2) + "\n")
            write_text_atomic(self.path, dumps(self.session.document))
        except OSError as error:
            if not self._failed:      # say it once, not after every keystroke
                log.warning("autosave to %s failed: %s", self.path, error)
                self.session.say(f"autosave failed: {error.strerror or error} ({self.directory})",
                                        error=True)
            self._failed = True
            return False
        self._failed = False
        self.saved.emit(str(self.path))
        return True

    def remove(self) -> None:
        """A clean exit: nothing to recover, and no more autosaves from this window."""
        self._timer.stop()
        self._closed = True
        self._remove_files()

    def _remove_files(self) -> None:
        _remove(self.path, self.meta_path)


def ask_restore(parent: QWidget | None, session: Recovered) -> bool:
    box = QMessageBox(QMessageBox.Icon.Question, "Restore unsaved work?",
                      f"The explorer did not close properly last time. Restore the unsaved work on "
                      f"{session.name}, autosaved at {session.when()}?", parent=parent)
    box.setInformativeText("Discard deletes the autosave.")
    restore = box.addButton("Restore", QMessageBox.ButtonRole.AcceptRole)
    box.addButton("Discard", QMessageBox.ButtonRole.DestructiveRole)
    box.setDefaultButton(restore)
    try:
        box.setDetailedText(session.path.read_text(encoding="utf-8")[:4000])
    except OSError:
        pass
    box.exec()
    return box.clickedButton() is restore


def offer_recovery(session: Session, autosaver: Autosaver, files: FileController,
                   decide: Callable[[Recovered], bool] | None = None, directory: Path | None = None,
                   parent: QWidget | None = None) -> bool:
    """Offers the autosaves of crashed sessions back, newest first; True when one was restored.

    `decide(crashed) -> bool` answers Restore (True) or Discard (False); by default the user is asked.
    Discarded autosaves are deleted; once one is restored, older ones stay for the next start.
    """
    decide = decide or (lambda crashed: ask_restore(parent, crashed))
    for crashed in crashed_sessions(directory or autosaver.directory):
        if decide(crashed):
            if restore(session, autosaver, files, crashed):
                return True
        else:
            crashed.discard()
    return False


def restore(session: Session, autosaver: Autosaver, files: FileController, crashed: Recovered) -> bool:
    from ..core.spec import load
    try:
        spec = load(crashed.path)
    except SpecError as error:
        broken = crashed.path.with_name(crashed.path.name + ".broken")
        try:
            crashed.path.replace(broken)
        except OSError:
            broken = crashed.path
        files.fail("Cannot restore", f"cannot restore the autosave of {crashed.when()}: {error.message} "
                                     f"(kept as {broken})")
        return False
    source = crashed.source
    if source and not presets.is_preset(source) and not Path(source).exists():
        source = None
    session.load(spec, trusted=False, source=source)
    session.mark_modified()
    autosaver.write_now()          # this session's own autosave first, then the old one goes
    crashed.discard()
    session.say(f"restored the unsaved work autosaved at {crashed.when()}: save it to keep it")
    return True
