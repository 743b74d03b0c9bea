"""Colours, fonts and small helpers shared by the window's widgets."""

from __future__ import annotations

from PySide6.QtGui import QColor, QFont, QFontDatabase, QGuiApplication, QPalette

# How a layer treats the mask, in words and in one colour each (used by the badges and the table).
MASK_ROLES = {
    "creates": ("#1b7f3b", "creates a mask: padded steps are marked here"),
    "carries": ("#1f5fa8", "carries the mask on to the next layer"),
    "consumes": ("#6a3d9a", "uses the mask and removes it (no time axis after this layer)"),
    "drops": ("#c0392b", "ignores the mask: padded steps count like real ones from here on"),
    "none": ("#6b6b6b", "no mask arrives or leaves"),
}
# Lighter twins of the role colours, readable on the dark palette.
_DARK_ROLE_COLOURS = {"creates": "#5ccf7e", "carries": "#6aa9f0", "consumes": "#b89ae6", "drops": "#f48a7f",
                      "none": "#a8a8a8"}


def is_dark(palette: QPalette) -> bool:
    """The one test for a dark palette, for every widget and plot."""
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def palette_is_dark() -> bool:
    """Is the application's palette dark?"""
    app = QGuiApplication.instance()
    return app is not None and is_dark(app.palette())


def padded_colours(dark: bool | None = None) -> tuple[str, str]:
    """(background, text) of a padded grid cell on the palette in use (or the one named by `dark`)."""
    return PADDED_COLOURS["dark" if (palette_is_dark() if dark is None else dark) else "light"]


def selected_tint(background: QColor) -> QColor:
    """A selected grid row: a quarter of the selection colour over the cell's own background."""
    tint = QColor(SELECTED_BORDER)
    return QColor(*(int(0.75 * b + 0.25 * t) for b, t in zip(background.getRgb()[:3], tint.getRgb()[:3])))


def contrast_ratio(first: QColor, second: QColor) -> float:
    """The WCAG 2 contrast ratio of two colours (1 to 21)."""
    def luminance(colour: QColor) -> float:
        channels = [c / 255 for c in colour.getRgb()[:3]]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def muted_colour(dark: bool | None = None) -> str:
    """Secondary text's grey on the palette in use (or the one named by `dark`)."""
    return MUTED_COLOURS["dark" if (palette_is_dark() if dark is None else dark) else "light"]


def mask_role_colour(role: str) -> str:
    """The role's colour for the palette in use (a lighter one on dark backgrounds)."""
    role = role if role in MASK_ROLES else "none"
    return _DARK_ROLE_COLOURS[role] if palette_is_dark() else MASK_ROLES[role][0]


ERROR_COLOUR = "#c0392b"
WARNING_COLOUR = "#b35900"
# Secondary text (hints, batch shapes, greyed rows) on the light and the dark palette: WCAG AA (4.5:1) on the
# window, the fields and the alternate rows; the palettes give it as PlaceholderText, so `palette(placeholder-text)`
# in a style sheet is the same grey.
MUTED_COLOURS = {"light": "#666666", "dark": "#b0b0b0"}
# The selection behind white text (HighlightedText), AA on both palettes.
HIGHLIGHT_COLOUR = "#1f66b8"
# Padded cells of the batch grid, (background, text) on the light and the dark palette: greyed, yet their text
# keeps WCAG AA contrast (4.5:1), also under the selected row's tint.
PADDED_COLOURS = {"light": ("#e4e4e4", "#474747"), "dark": ("#4b4c52", "#d8d8dc")}
AA_CONTRAST = 4.5
SELECTED_BORDER = "#2d7dd2"


_font_scale = 1.0      # presentation mode (explorer/qt/layout.py): fonts made from now on are this much larger


def set_font_scale(scale: float) -> None:
    global _font_scale
    _font_scale = scale


def mono_font(point_size: float | None = None) -> QFont:
    """The system's fixed-width font (at `point_size`), times the presentation scale."""
    font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    font.setPointSizeF((point_size or font.pointSizeF()) * _font_scale)
    return font


def mask_role_html(role: str) -> str:
    return f'<span style="color:{mask_role_colour(role)}; font-weight:600">mask {role}</span>'


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
