"""Colours, fonts and small helpers shared by the window's widgets."""

from __future__ import annotations

from PySide6.QtGui import QFont, QFontDatabase, QGuiApplication, QPalette

# How a layer treats the mask, in words and in one colour each (used by the badges and the table).
MASK_ROLES = {
    "creates": ("#1b7f3b", "creates a mask: padded steps are marked here"),
    "carries": ("#1f5fa8", "carries the mask on to the next layer"),
    "consumes": ("#6a3d9a", "uses the mask and removes it (no time axis after this layer)"),
    "drops": ("#c0392b", "ignores the mask: padded steps count like real ones from here on"),
    "none": ("#7a7a7a", "no mask arrives or leaves"),
}
# Lighter twins of the role colours, readable on the dark palette.
_DARK_ROLE_COLOURS = {"creates": "#5ccf7e", "carries": "#6aa9f0", "consumes": "#b89ae6", "drops": "#f0776a",
                      "none": "#a8a8a8"}


def is_dark(palette: QPalette) -> bool:
    """The one test for a dark palette, for every widget and plot."""
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def mask_role_colour(role: str) -> str:
    """The role's colour for the palette in use (a lighter one on dark backgrounds)."""
    role = role if role in MASK_ROLES else "none"
    app = QGuiApplication.instance()
    dark = app is not None and is_dark(app.palette())
    return _DARK_ROLE_COLOURS[role] if dark else MASK_ROLES[role][0]


ERROR_COLOUR = "#c0392b"
WARNING_COLOUR = "#b35900"
MUTED_COLOUR = "#7a7a7a"
PADDED_BACKGROUND = "#e4e4e4"
PADDED_TEXT = "#9a9a9a"
SELECTED_BORDER = "#2d7dd2"


def mono_font(point_size: float | None = None) -> QFont:
    font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    if point_size:
        font.setPointSizeF(point_size)
    return font


def mask_role_html(role: str) -> str:
    return f'<span style="color:{mask_role_colour(role)}; font-weight:600">mask {role}</span>'


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
