"""Colours, fonts and small helpers shared by the window's widgets."""

from __future__ import annotations

from PySide6.QtGui import QFont, QFontDatabase

# How a layer treats the mask, in words and in one colour each (used by the badges and the table).
MASK_ROLES = {
    "creates": ("#1b7f3b", "creates a mask: padded steps are marked here"),
    "carries": ("#1f5fa8", "carries the mask on to the next layer"),
    "consumes": ("#6a3d9a", "uses the mask and removes it (no time axis after this layer)"),
    "drops": ("#c0392b", "ignores the mask: padded steps count like real ones from here on"),
    "none": ("#7a7a7a", "no mask arrives or leaves"),
}
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
    colour, _ = MASK_ROLES.get(role, MASK_ROLES["none"])
    return f'<span style="color:{colour}; font-weight:600">mask {role}</span>'


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
