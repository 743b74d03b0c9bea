"""What the window remembers between sessions (QSettings) and where it keeps its state files.

Settings (organisation "RNN Shape Explorer", application "explorer", INI format in the user's scope):
window geometry (never larger than the screen) and state (the docks), the presentation scale, the recent files (at most `RECENT_LIMIT`), the last device
and the Live toggle. The window gets a QSettings injected (`MainWindow(settings=...)`); without one it
remembers in memory only, so tests and `--screenshot` never touch the user's settings.

State files (the autosaved session, `explorer.log`) live under
`platformdirs.user_state_dir("rnn-shape-explorer")`, or under `$RNN_EXPLORER_STATE_DIR` when set.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QByteArray, QObject, QSettings
from PySide6.QtWidgets import QMainWindow, QToolBar

from ..session import Session

if TYPE_CHECKING:
    from .layout import WindowLayout

ORGANISATION = "RNN Shape Explorer"
APPLICATION = "explorer"
STATE_DIR_ENV = "RNN_EXPLORER_STATE_DIR"
STATE_DIR_NAME = "rnn-shape-explorer"
RECENT_LIMIT = 8

KEY_GEOMETRY = "window/geometry"
KEY_STATE = "window/state"
KEY_RECENT = "files/recent"
KEY_DEVICE = "run/device"
KEY_LIVE = "run/live"


def open_settings() -> QSettings:
    """The user's settings (INI, user scope); `QSettings.setPath` moves them, e.g. in tests."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANISATION, APPLICATION)


def state_dir() -> Path:
    """Where the autosaved session and the log live (not created here)."""
    override = os.environ.get(STATE_DIR_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    import platformdirs
    return Path(platformdirs.user_state_dir(STATE_DIR_NAME, appauthor=False))


class MemorySettings:
    """The few QSettings calls the window makes, kept in a dict: a window without settings forgets on exit."""

    def __init__(self):
        self._values: dict[str, Any] = {}

    def value(self, key: str, default: Any = None, type: Any = None) -> Any:  # noqa: A002 (QSettings's name)
        return self._values.get(key, default)

    def setValue(self, key: str, value: Any) -> None:  # noqa: N802
        self._values[key] = value

    def remove(self, key: str) -> None:
        self._values.pop(key, None)

    def contains(self, key: str) -> bool:
        return key in self._values

    def sync(self) -> None:
        pass


# --- recent files ---

def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):          # an INI list of one comes back as a plain string
        return [value] if value else []
    return [str(item) for item in value if item]


def recent_files(settings) -> list[str]:
    return _as_list(settings.value(KEY_RECENT, [], type=list))[:RECENT_LIMIT]


def add_recent(settings, path: str | os.PathLike) -> list[str]:
    """Puts `path` (made absolute) first; at most RECENT_LIMIT entries, no duplicates."""
    entry = str(Path(path).expanduser().resolve())
    files = [entry] + [item for item in recent_files(settings) if item != entry]
    settings.setValue(KEY_RECENT, files[:RECENT_LIMIT])
    settings.sync()
    return files[:RECENT_LIMIT]


def remove_recent(settings, path: str | os.PathLike) -> None:
    entry = str(Path(path).expanduser().resolve())
    settings.setValue(KEY_RECENT, [item for item in recent_files(settings) if item != entry])
    settings.sync()


def clear_recent(settings) -> None:
    settings.setValue(KEY_RECENT, [])
    settings.sync()


# --- the window's layout, device and Live toggle ---

def _bytes(value: Any) -> QByteArray | None:
    if isinstance(value, QByteArray) and not value.isEmpty():
        return value
    if isinstance(value, (bytes, bytearray)) and value:
        return QByteArray(bytes(value))
    return None


class Preferences(QObject):
    """Restores `window`'s geometry and state, its `window_layout` (docks, splitters) and the session's device and
    Live toggle from `settings`, and saves them on close."""

    def __init__(self, session: Session, settings, window: QMainWindow, window_layout: WindowLayout):
        super().__init__(window)
        self.session = session
        self.window = window
        self.window_layout = window_layout
        self.settings = settings
        self.restored_geometry = False
        self.preferred_device: str | None = None
        for bar in window.findChildren(QToolBar):     # QMainWindow.saveState needs them named
            if not bar.objectName():
                bar.setObjectName(f"toolbar-{bar.windowTitle() or 'main'}")
        session.events.devices.connect(self._devices_loaded)

    def restore(self) -> None:
        s, window = self.settings, self.window
        geometry = _bytes(s.value(KEY_GEOMETRY))
        self.restored_geometry = bool(geometry is not None and window.restoreGeometry(geometry))
        state = _bytes(s.value(KEY_STATE))
        if state is not None:
            window.restoreState(state)
        self.window_layout.restore(s)       # the docks made compact first when the screen is smaller …
        if self.restored_geometry:
            self.window_layout.fit_to_screen()   # … then never larger than this screen
        if s.contains(KEY_LIVE):
            self.session.set_live(_truthy(s.value(KEY_LIVE, True, type=bool)))
        device = s.value(KEY_DEVICE, "", type=str)
        self.preferred_device = device or None
        if self.preferred_device and self.session.devices:
            self._devices_loaded()

    def _devices_loaded(self) -> None:
        names = [device.name for device in self.session.devices]
        if self.preferred_device in names:
            self.session.set_device(self.preferred_device)   # re-runs on the device picked last time

    def save(self) -> None:
        s, window = self.settings, self.window
        self.window_layout.set_focus(False)      # the panels Focus hid are saved as open: back at the next start
        s.setValue(KEY_GEOMETRY, window.saveGeometry())
        s.setValue(KEY_STATE, window.saveState())
        self.window_layout.save(s)
        s.setValue(KEY_LIVE, self.session.live)
        if self.session.devices and self.session.device:
            s.setValue(KEY_DEVICE, self.session.device)
        s.sync()


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)
