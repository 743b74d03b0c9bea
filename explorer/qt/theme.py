"""Light and dark palettes that follow the system, and the application icon.

`ThemeController(app)` reads `QGuiApplication.styleHints().colorScheme()` (Qt ≥ 6.5) and reacts to
`colorSchemeChanged`: it sets a light or a dark palette on the application (on Linux and other
systems whose Qt style does not switch by itself; on macOS and Windows Qt's native palette already
follows the system). Widgets that draw with their own colours listen for the palette change:
PlotsPanel re-applies its backgrounds and foregrounds (`apply_colours`), the window restyles its
lesson banner (`lesson_style`).
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPalette, QPixmap

from .style import HIGHLIGHT_COLOUR, is_dark, muted_colour

ICON_NAME = "icon.svg"
DESKTOP_NAME = "rnn-explorer"   # assets/rnn-explorer.desktop


# --- the icon ---

def icon_path() -> Path | None:
    """The packaged icon as a file (None when the package is not on a file system)."""
    resource = resources.files("explorer") / "resources" / ICON_NAME
    try:
        path = Path(str(resource))
    except TypeError:
        return None
    return path if path.is_file() else None


def app_icon() -> QIcon:
    path = icon_path()
    if path is not None:
        return QIcon(str(path))
    data = (resources.files("explorer") / "resources" / ICON_NAME).read_bytes()
    icon = QIcon()
    for size in (16, 24, 32, 48, 64, 128, 256):
        pixmap = QPixmap(size, size)
        pixmap.loadFromData(data, "SVG")
        icon.addPixmap(pixmap)
    return icon


# --- palettes ---

def light_palette() -> QPalette:
    from PySide6.QtWidgets import QStyleFactory
    style = QStyleFactory.create("Fusion")
    palette = style.standardPalette() if style is not None else QPalette()
    palette.setColor(QPalette.ColorRole.Link, QColor("#1f5fa8"))
    palette.setColor(QPalette.ColorRole.PlaceholderText, QColor(muted_colour(dark=False)))
    palette.setColor(QPalette.ColorRole.Highlight, QColor(HIGHLIGHT_COLOUR))
    return palette


def dark_palette() -> QPalette:
    palette = QPalette()
    # fields and cards a step lighter than the window, so that Fusion's frames (drawn darker than the
    # window) stay visible around spin boxes and check boxes
    window, base, alternate = QColor(38, 39, 43), QColor(52, 53, 58), QColor(60, 61, 66)
    text, muted, button = QColor(230, 230, 232), QColor(140, 142, 148), QColor(60, 61, 67)
    highlight = QColor(HIGHLIGHT_COLOUR)
    roles = {
        QPalette.ColorRole.Window: window, QPalette.ColorRole.WindowText: text,
        QPalette.ColorRole.Base: base, QPalette.ColorRole.AlternateBase: alternate,
        QPalette.ColorRole.ToolTipBase: QColor(60, 61, 66), QPalette.ColorRole.ToolTipText: text,
        QPalette.ColorRole.PlaceholderText: QColor(muted_colour(dark=True)), QPalette.ColorRole.Text: text,
        QPalette.ColorRole.Button: button, QPalette.ColorRole.ButtonText: text,
        QPalette.ColorRole.BrightText: QColor(255, 90, 90), QPalette.ColorRole.Light: QColor(75, 76, 82),
        QPalette.ColorRole.Midlight: QColor(62, 63, 68), QPalette.ColorRole.Mid: QColor(85, 86, 92),
        QPalette.ColorRole.Dark: QColor(25, 25, 28), QPalette.ColorRole.Shadow: QColor(10, 10, 12),
        QPalette.ColorRole.Highlight: highlight, QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
        QPalette.ColorRole.Link: QColor(110, 170, 240), QPalette.ColorRole.LinkVisited: QColor(170, 140, 230),
    }
    for role, colour in roles.items():
        palette.setColor(role, colour)
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, muted)
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Highlight, QColor(80, 80, 85))
    return palette


def lesson_style(dark: bool) -> str:
    """The lesson banner over the plots: a sticky note, light or dark."""
    background, text, border = ("#3a3420", "#f1e6c0", "#6b5d2e") if dark else ("#fff8e1", "#3b3210", "#f0d890")
    return (f"QFrame#lessonBanner {{ background:{background}; border:1px solid {border}; border-radius:4px; }}"
            f"QFrame#lessonBanner QLabel {{ color:{text}; background:transparent; border:none; }}")


def repolish(root) -> None:
    """Style sheets resolve `palette(...)` once: after a palette change, apply them again under `root`."""
    from PySide6.QtWidgets import QWidget
    for widget in [root, *root.findChildren(QWidget)]:
        sheet = widget.styleSheet()
        if "palette(" in sheet:
            widget.setStyleSheet("")
            widget.setStyleSheet(sheet)


def scheme_name(scheme) -> str | None:
    """"light", "dark", or None when the system does not say."""
    if scheme == Qt.ColorScheme.Dark:
        return "dark"
    if scheme == Qt.ColorScheme.Light:
        return "light"
    return None


class ThemeController(QObject):
    """Follows the system's colour scheme. `changed(name)` after a palette change ("light" or "dark")."""

    changed = Signal(str)

    def __init__(self, app: QGuiApplication, *, set_palette: bool | None = None):
        super().__init__(app)
        self.app = app
        self.set_palette = sys.platform not in ("darwin", "win32") if set_palette is None else set_palette
        self.name = "dark" if is_dark(app.palette()) else "light"
        hints = app.styleHints()
        hints.colorSchemeChanged.connect(self.follow)
        self.follow(hints.colorScheme())

    def follow(self, scheme) -> None:
        name = scheme_name(scheme)
        if name is None:            # the system does not say: keep Qt's palette
            self.name = "dark" if is_dark(self.app.palette()) else "light"
            return
        self.apply(name)

    def apply(self, name: str) -> None:
        if self.set_palette:
            self.app.setPalette(dark_palette() if name == "dark" else light_palette())
        self.name = name
        self.changed.emit(name)


def follow_system(app: QGuiApplication) -> ThemeController:
    """One controller per application (kept as a child of the app)."""
    existing = app.findChild(ThemeController)
    return existing if existing is not None else ThemeController(app)
