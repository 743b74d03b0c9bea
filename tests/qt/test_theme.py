"""Light and dark palettes that follow the system's colour scheme; the plots and the lesson banner follow
the palette; the application icon and the desktop entry."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from explorer.core.presets import load_preset
from explorer.qt.plots import PlotsPanel
from explorer.session import Session
from explorer.qt.style import is_dark
from explorer.qt.theme import ThemeController, app_icon, dark_palette, icon_path, light_palette

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def restore_palette(qapp):
    palette = QPalette(qapp.palette())
    yield
    qapp.setPalette(palette)


def _axis_colour(panel: PlotsPanel) -> QColor:
    return panel.heatmap.plot.getAxis("bottom").pen().color()


def test_the_plots_follow_a_palette_change(qtbot, restore_palette):
    panel = PlotsPanel(Session(load_preset("average_pooling"), trusted=True))
    qtbot.addWidget(panel)
    assert panel.state.bg == QColor(255, 255, 255)
    QApplication.instance().setPalette(dark_palette())
    qtbot.waitUntil(lambda: panel.state.bg == QColor(25, 25, 25))
    assert panel.time_view.backgroundBrush().color() == QColor(25, 25, 25)
    assert panel.vector_view.backgroundBrush().color() == QColor(25, 25, 25)
    assert _axis_colour(panel) == QColor(220, 220, 220)
    assert panel.crosshairs["heatmap"].pen.color() == QColor(220, 220, 220)
    assert panel.heatmap.plot.titleLabel.opts["color"] == "#dcdcdc"
    QApplication.instance().setPalette(light_palette())
    qtbot.waitUntil(lambda: panel.state.bg == QColor(255, 255, 255))
    assert _axis_colour(panel) == QColor(30, 30, 30)


def test_the_controller_follows_the_systems_colour_scheme(qapp, qtbot, restore_palette):
    controller = ThemeController(qapp, set_palette=True)
    try:
        panel = PlotsPanel(Session(load_preset("average_pooling"), trusted=True))
        qtbot.addWidget(panel)
        hints = QGuiApplication.styleHints()
        with qtbot.waitSignal(controller.changed) as signal:
            hints.colorSchemeChanged.emit(Qt.ColorScheme.Dark)
        assert signal.args == ["dark"] and controller.name == "dark"
        assert is_dark(qapp.palette())
        qtbot.waitUntil(lambda: panel.state.bg == QColor(25, 25, 25))
        with qtbot.waitSignal(controller.changed) as signal:
            hints.colorSchemeChanged.emit(Qt.ColorScheme.Light)
        assert signal.args == ["light"] and not is_dark(qapp.palette())
        qtbot.waitUntil(lambda: panel.state.bg == QColor(255, 255, 255))
        hints.colorSchemeChanged.emit(Qt.ColorScheme.Unknown)                  # the system says nothing
        assert controller.name == "light" and not is_dark(qapp.palette())
    finally:
        QGuiApplication.styleHints().colorSchemeChanged.disconnect(controller.follow)
        controller.deleteLater()


def test_the_windows_lesson_banner_and_icon(make_window, qtbot, restore_palette):
    win = make_window(show=True)
    light_style = win.lesson_banner.styleSheet()
    assert "#fff8e1" in light_style
    QApplication.instance().setPalette(dark_palette())
    qtbot.waitUntil(lambda: "#3a3420" in win.lesson_banner.styleSheet())
    assert win.plots.state.bg == QColor(25, 25, 25)
    assert not win.windowIcon().isNull()
    assert not QGuiApplication.windowIcon().isNull()


def test_the_icon_is_packaged_and_renders():
    path = icon_path()
    assert path is not None and path.name == "icon.svg"
    assert path.read_bytes() == (ROOT / "assets" / "icon.svg").read_bytes()     # one icon, two places
    icon = app_icon()
    assert not icon.isNull()
    image = icon.pixmap(64, 64).toImage()
    assert image.width() == 64
    assert image.pixelColor(32, 32).alpha() == 255 and image.pixelColor(0, 0).alpha() == 0   # rounded corners


def test_the_desktop_entry():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(ROOT / "assets" / "rnn-explorer.desktop", encoding="utf-8")
    section = entry["Desktop Entry"]
    assert section["Type"] == "Application"
    assert section["Exec"] == "rnn-explorer %f"
    assert section["Icon"] == "rnn-explorer"
    assert set(section["Categories"].rstrip(";").split(";")) == {"Education", "Science", "Development"}
    assert "application/x-rnn-explorer-stack+json" in section["MimeType"]
    mime = (ROOT / "assets" / "rnn-explorer-mime.xml").read_text(encoding="utf-8")
    assert 'type="application/x-rnn-explorer-stack+json"' in mime and '*.stack.json' in mime


def test_mask_roles_use_lighter_colours_on_the_dark_palette(qtbot, restore_palette):
    from explorer.core.spec import LayerSpec
    from explorer.qt.stack_editor import LayerCard
    from explorer.qt.style import MASK_ROLES, mask_role_colour
    card = LayerCard(LayerSpec("lstm", {}), "lstm_1")
    qtbot.addWidget(card)
    QApplication.instance().setPalette(light_palette())
    card.show_shapes((None, None, 64), (3, 7, 64), "carries")
    assert mask_role_colour("carries") == MASK_ROLES["carries"][0] and MASK_ROLES["carries"][0] in card.badge_label.text()
    QApplication.instance().setPalette(dark_palette())
    card.show_shapes((None, None, 64), (3, 7, 64), "carries")
    dark = mask_role_colour("carries")
    assert dark != MASK_ROLES["carries"][0] and dark in card.badge_label.text()
    assert QColor(dark).lightness() > QColor(MASK_ROLES["carries"][0]).lightness()


@pytest.mark.slow   # trains before it changes the palette
def test_the_training_panels_plots_follow_a_palette_change(make_window, qtbot, restore_palette):
    win = make_window(load_preset("train_attention_on_7"), show=True)
    panel = win.training
    plots = (panel.loss_plot, panel.accuracy_plot, panel.delta_plot)

    def shown(palette: QPalette) -> bool:
        base, text = palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Text)
        return all(plot.backgroundBrush().color() == base
                   and plot.getPlotItem().getAxis("left").pen().color() == text
                   and plot.getPlotItem().getAxis("bottom").textPen().color() == text for plot in plots) \
            and QColor(panel.loss_legend.opts["labelTextColor"]) == text

    assert shown(light_palette()) and not shown(dark_palette())
    QApplication.instance().setPalette(dark_palette())
    qtbot.waitUntil(lambda: shown(dark_palette()))
    QApplication.instance().setPalette(light_palette())
    qtbot.waitUntil(lambda: shown(light_palette()))
