"""Classroom-ready: the window fits projector sizes with every plot readable and nothing cut, presentation
mode, the lessons as a course, readable grid colours in both palettes, Fix buttons, words on the time axis."""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QLabel, QToolBar

from explorer import cli
from explorer.core import course, presets
from explorer.qt.layout import MIN_VIEW
from explorer.qt.theme import dark_palette, light_palette

RUN_TIMEOUT_MS = 60_000
SIZES = ((1024, 768), (1280, 800), (1920, 1080))
SCALES = (1.0, 1.5)
ALT = Qt.KeyboardModifier.AltModifier


def settle(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.runs.settled, timeout=RUN_TIMEOUT_MS)


def laid_out(qtbot, window) -> None:
    """Waits until the docks are arranged and every plot has its minimum (no fitting pending)."""
    layout = window.window_layout
    for _ in range(3):
        qtbot.waitUntil(lambda: not layout._arrange_timer.isActive() and not layout.plot_fit._pending.isActive(),
                        timeout=5000)
        QApplication.processEvents()


@pytest.fixture(scope="module")
def room(qapp):
    """One window for the whole module (a window costs a run): forgotten_mask_post, the first lesson."""
    from explorer.qt.main_window import MainWindow
    window = MainWindow(presets.load_preset("forgotten_mask_post"), trusted=True, source="preset:forgotten_mask_post",
                        confirm_trust=lambda expressions: False)
    window.unsaved_asked = []
    window.files.ask_unsaved = lambda name: window.unsaved_asked.append(name) or "discard"
    window.show()
    yield window
    window.window_layout.set_scale(1.0)
    window.setPalette(QPalette())
    window.close()


@pytest.fixture
def win(room, qtbot):
    if room.session.source != "preset:forgotten_mask_post" or room.files.modified:
        room.load_preset("forgotten_mask_post")
    room.unsaved_asked.clear()
    settle(qtbot, room)
    return room


def label_cut(label: QLabel) -> bool:
    """Does the label show less than its text? (Narrower than its text on one line; a wrapping label takes more
    lines instead.)"""
    if label.wordWrap() or not label.text().strip():
        return False
    return label.width() + 1 < label.minimumSizeHint().width()


# --- the layout at projector sizes ---

@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_every_plot_is_readable_and_nothing_is_cut_at_classroom_sizes(win, qtbot, size):
    for preset in ("forgotten_mask_post", "time_distributed"):
        if win.session.source != f"preset:{preset}":
            win.load_preset(preset)
            settle(qtbot, win)
        for scale in SCALES:
            win.window_layout.set_scale(scale)
            win.resize(*size)
            laid_out(qtbot, win)
            where = f"{preset} at {size[0]}x{size[1]}, scale {scale}"
            assert (win.width(), win.height()) == size, where           # the window can be that small
            for name, plot in win.plots.plots().items():
                if plot.isVisible():
                    box = plot.vb.size()
                    assert box.width() >= MIN_VIEW[0] - 0.5 and box.height() >= MIN_VIEW[1] - 0.5, (where, name)
                    title = plot.titleLabel                      # every line of the title above the plot
                    assert title.item.boundingRect().height() <= title.size().height() + 1, (where, name)
                    assert title.mapRectToScene(title.rect()).bottom() <= plot.vb.sceneBoundingRect().top() + 1
            cut = [label.text() for label in win.findChildren(QLabel) if label.isVisible() and label_cut(label)]
            assert not cut, (where, cut)
            scroll = win.window_layout.plots_scroll     # the controls above the plots never widen the panel: it
            views = max(view.minimumWidth() for view in (win.plots.time_view, win.plots.vector_view))   # scrolls
            assert scroll.widget().width() <= max(scroll.viewport().width(), views), where  # only for the plots
            for picker in (win.plots.layer_combo, win.plots.row_combo):              # each picker shows its text
                text_width = picker.fontMetrics().horizontalAdvance(picker.currentText())
                assert picker.width() >= text_width + 20, (where, picker.currentText(), picker.width())
            table = win.shapes.table
            for row in range(table.rowCount()):
                text = table.item(row, 0).text()
                assert table.columnWidth(0) >= table.fontMetrics().horizontalAdvance(text), (where, text)
            for bar in win.findChildren(QToolBar):
                for action in bar.actions():
                    if action.isSeparator() or not action.isVisible():
                        continue
                    widget = bar.widgetForAction(action)
                    assert widget is not None and widget.isVisible(), (where, action.text())
                    assert bar.rect().contains(widget.geometry()), (where, action.text())
    win.window_layout.set_scale(1.0)


def test_presentation_keys_scale_the_text_and_focus_puts_the_plots_first(win, qtbot):
    layout = win.window_layout
    win.resize(1280, 800)
    laid_out(qtbot, win)
    before = win.shapes.fc_shape_label.font().pointSizeF(), win.sequence_editor.grid.font().pointSizeF()
    title = win.plots.heatmap.plot.titleLabel.item.font()
    win.activateWindow()
    qtbot.keyClick(win.plots, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier)
    assert layout.scale > 1.0 and win.plots.text_scale == layout.scale
    after = win.shapes.fc_shape_label.font().pointSizeF(), win.sequence_editor.grid.font().pointSizeF()
    assert all(a == pytest.approx(b * layout.scale, rel=0.02) for a, b in zip(after, before))
    assert win.plots.heatmap.plot.getAxis("left").style["tickFont"].pointSizeF() == pytest.approx(
        9 * layout.scale, rel=0.02)
    qtbot.keyClick(win.plots, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert layout.scale == 1.0
    assert win.shapes.fc_shape_label.font().pointSizeF() == pytest.approx(before[0], rel=0.02)
    assert title is not None
    # Focus: the editors go, the plots take the room, and come back as they were
    plots_width = layout.plots_scroll.width()
    layout.focus_action.trigger()
    laid_out(qtbot, win)
    assert not any(dock.isVisible() for dock in layout.docks) and layout.plots_scroll.width() > plots_width
    layout.focus_action.trigger()
    laid_out(qtbot, win)
    assert layout.stack_dock.isVisible() and not layout.focused
    # F11: full screen and back
    layout.full_screen_action.trigger()
    qtbot.waitUntil(win.isFullScreen, timeout=5000)
    layout.full_screen_action.trigger()
    qtbot.waitUntil(lambda: not win.isFullScreen(), timeout=5000)


# --- the course ---

def test_a_lesson_opens_where_it_shows_its_point_and_next_goes_on_without_asking(win, qtbot):
    lesson = course.lesson("forgotten_mask_post")
    banner = win.lesson_banner
    assert "Lesson 1 of" in banner.place_label.text() and lesson.section in banner.place_label.text()
    assert "Where to look" in banner.text() and not banner.previous_button.isEnabled()
    assert win.plots.selected_layer == lesson.layer
    row = win.plots.selected_row
    assert win.session.result.lines[row] == lesson.line and not win.session.result.mask[row].all()    # a padded line
    # an edit elsewhere: the plots stay on the layer, the banner says the stack is no longer the lesson's
    card = win.stack_editor.card("embedding_1")
    card.param_widget("mask_zero").setChecked(True)
    settle(qtbot, win)
    assert win.plots.selected_layer == lesson.layer and win.stack_editor.selected_layer == lesson.layer
    assert banner.edited == ["mask_zero on embedding_1"] and banner.edited_label.isVisible()
    assert "mask_zero on embedding_1" in banner.edited_label.text()
    win.history.undo()
    qtbot.waitUntil(lambda: not banner.edited, timeout=5000)        # back to the lesson: the note goes
    card = win.stack_editor.card("embedding_1")
    card.param_widget("mask_zero").setChecked(True)
    banner.next_button.click()                                       # edited built-in lesson: no question
    assert not win.unsaved_asked and win.session.source == "preset:" + course.COURSE[1].preset
    settle(qtbot, win)
    assert "Lesson 2 of" in win.lesson_banner.place_label.text() and not banner.edited
    assert win.plots.selected_layer == course.COURSE[1].layer
    banner.previous_button.click()
    assert win.session.source == "preset:forgotten_mask_post"
    settle(qtbot, win)


def test_a_lesson_about_the_cell_opens_its_tab(win, qtbot):
    win.load_preset("mask_stops_gradient")
    settle(qtbot, win)
    assert win.window_layout.plot_tabs.tabText(win.window_layout.plot_tabs.currentIndex()) == course.CELL_TAB
    assert win.window_layout.plot_tabs.currentWidget().widget() is win.cell_panel
    qtbot.waitUntil(lambda: win.cell_panel.data is not None, timeout=RUN_TIMEOUT_MS)
    win.load_preset("forgotten_mask_post")
    settle(qtbot, win)
    assert win.window_layout.plot_tabs.currentIndex() == 0
    win.window_layout.plot_tabs.setCurrentWidget(win.cell_panel)
    assert win.window_layout.plot_tabs.currentWidget().widget() is win.cell_panel
    win.window_layout.plot_tabs.setCurrentWidget(win.plots)
    assert win.window_layout.plot_tabs.currentIndex() == 0


def test_back_to_the_lesson_restores_it(win, qtbot):
    win.sequence_editor.text_edit.setPlainText("1 2 3\n")
    qtbot.waitUntil(lambda: bool(win.lesson_banner.edited), timeout=5000)
    assert win.lesson_banner.edited == ["the sequences"]
    win.lesson_banner.restore_button.click()
    settle(qtbot, win)
    assert not win.unsaved_asked and not win.lesson_banner.edited
    assert win.sequence_editor.text() == presets.load_preset("forgotten_mask_post").sequences


def test_the_preset_box_lists_the_course_in_order(win):
    combo = win.preset_combo
    listed = [combo.itemData(i) for i in range(combo.count()) if combo.itemData(i)]
    assert listed == course.names() and sorted(listed) == presets.names()


def test_alt_down_moves_to_the_next_sequence_even_in_the_preset_box(win, qtbot):
    win.plots.pick_row(0)
    win.activateWindow()
    for combo in (win.preset_combo, win.plots.row_combo):
        combo.setFocus()
        qtbot.waitUntil(combo.hasFocus, timeout=2000)
        row = win.plots.selected_row
        qtbot.keyClick(combo, Qt.Key.Key_Down, ALT)
        assert win.plots.selected_row == row + 1 and QApplication.activePopupWidget() is None
        qtbot.keyClick(combo, Qt.Key.Key_Up, ALT)
        assert win.plots.selected_row == row
    assert win.session.source == "preset:forgotten_mask_post"


# --- Fix buttons ---

def test_the_fix_button_ticks_mask_zero_and_undo_takes_it_back(win, qtbot):
    fix = win.fix_button
    assert fix.button.isVisible() and "mask_zero on embedding_1" in fix.button.text()
    fix.button.click()
    settle(qtbot, win)
    assert win.session.document.layers[0].params["mask_zero"] is True
    assert win.stack_editor.card("embedding_1").param_widget("mask_zero").isChecked()
    assert not fix.button.isVisible()
    win.history.undo()
    settle(qtbot, win)
    assert win.session.document.layers[0].params["mask_zero"] is False and fix.button.isVisible()


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lengths=st.lists(st.integers(1, 9), min_size=1, max_size=4))
def test_the_fix_button_sets_maxlen_to_the_longest_sequence(win, qtbot, lengths):
    if win.session.source != "preset:flatten_fixed_maxlen":
        win.load_preset("flatten_fixed_maxlen")
        settle(qtbot, win)
    text = "\n".join(" ".join(str(1 + (i + j) % 50) for j in range(n)) for i, n in enumerate(lengths)) + "\n"
    win.sequence_editor.text_edit.setPlainText(text)
    batching = copy.deepcopy(win.session.document.batching)
    batching.maxlen = None
    win.session.set_batching(batching)
    settle(qtbot, win)
    assert not win.runs.last_reply.ok and "set maxlen" in win.runs.last_reply.error
    assert "batching.maxlen" not in win.runs.last_reply.error and "last_timestep" not in win.runs.last_reply.error
    win.fix_button.button.click()
    settle(qtbot, win)
    assert win.session.document.batching.maxlen == max(len(line.split()) for line in text.splitlines())
    assert win.runs.last_reply.ok


# --- readable grid colours ---

def wcag_luminance(colour: QColor) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    return 0.2126 * channel(colour.red()) + 0.7152 * channel(colour.green()) + 0.0722 * channel(colour.blue())


def wcag_ratio(a: QColor, b: QColor) -> float:
    high, low = sorted((wcag_luminance(a), wcag_luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("palette", [light_palette, dark_palette], ids=["light", "dark"])
def test_every_grid_cell_is_readable_in_both_palettes(win, qtbot, palette):
    from PySide6.QtWidgets import QStyle, QStyleOptionViewItem
    app = QApplication.instance()
    before = app.palette()
    app.setPalette(palette())
    try:
        grid = win.sequence_editor.grid
        model = grid.model()
        assert model.rowCount() and any(model.data(model.index(r, c), Qt.ItemDataRole.BackgroundRole) is not None
                                        for r in range(model.rowCount()) for c in range(model.columnCount()))
        delegate = grid.itemDelegate()
        for row in range(model.rowCount()):
            for column in range(model.columnCount()):
                index = model.index(row, column)
                for selected in (False, True):
                    option = QStyleOptionViewItem()
                    option.initFrom(grid)
                    option.palette = grid.palette()
                    if selected:
                        option.state |= QStyle.StateFlag.State_Selected
                    delegate.initStyleOption(option, index)
                    brush = option.backgroundBrush
                    background = brush.color() if brush.style() != Qt.BrushStyle.NoBrush \
                        else grid.palette().color(QPalette.ColorRole.Base)
                    text = option.palette.color(QPalette.ColorRole.Text)
                    ratio = wcag_ratio(text, background)
                    assert ratio >= 4.5, (palette.__name__, row, column, selected, text.name(), background.name(),
                                          round(ratio, 2))
    finally:
        app.setPalette(before)


@pytest.mark.parametrize("palette", [light_palette, dark_palette], ids=["light", "dark"])
def test_secondary_grey_text_is_readable_in_both_palettes(win, qtbot, palette):
    """Hints, the shapes on the cards (current and greyed) and the shapes table's rows, selected or not: AA."""
    import re
    app = QApplication.instance()
    before = app.palette()
    app.setPalette(palette())
    try:
        colours = app.palette()
        backgrounds = [colours.color(role) for role in (QPalette.ColorRole.Base, QPalette.ColorRole.Window,
                                                        QPalette.ColorRole.AlternateBase)]
        win.runs.run_now()
        settle(qtbot, win)
        seen = []

        def check(text: QColor, background: QColor, what: str) -> None:
            seen.append(what)
            assert wcag_ratio(text, background) >= 4.5, (palette.__name__, what, text.name(), background.name(),
                                                         round(wcag_ratio(text, background), 2))

        def check_badges(state: str) -> None:
            for name in win.session.document.layer_names():
                html = win.stack_editor.card(name).badge_label.text()
                for colour in re.findall(r"color:\s*(#[0-9a-fA-F]{6})", html):
                    check(QColor(colour), colours.color(QPalette.ColorRole.Base), f"{state} card {name}")

        def check_table(state: str) -> None:
            table = win.shapes.table
            table.selectRow(1)
            for row in range(table.rowCount()):
                selected = table.item(row, 0).isSelected()
                for column in range(table.columnCount()):
                    item = table.item(row, column)
                    if selected:
                        check(colours.color(QPalette.ColorRole.HighlightedText),
                              colours.color(QPalette.ColorRole.Highlight), f"{state} selected row {row}")
                    else:
                        text = item.foreground().color() if item.foreground().style() != Qt.BrushStyle.NoBrush \
                            else colours.color(QPalette.ColorRole.Text)
                        for background in backgrounds:
                            check(text, background, f"{state} row {row}")

        check_badges("current")
        check_table("current")
        win.session.set_live(False)
        win.sequence_editor.text_edit.appendPlainText("4 5")               # greyed until the next run
        qtbot.waitUntil(lambda: win.session.state.kind == "stale")
        check_badges("greyed")
        check_table("greyed")
        assert any("greyed card" in what for what in seen) and any("greyed row" in what for what in seen)
        for background in backgrounds:
            check(colours.color(QPalette.ColorRole.PlaceholderText), background, "hint")
        title = win.shapes.fc_title_label                                    # a style sheet's grey follows the palette
        qtbot.waitUntil(lambda: title.palette().color(QPalette.ColorRole.WindowText)
                        == colours.color(QPalette.ColorRole.PlaceholderText))
        check(title.palette().color(QPalette.ColorRole.WindowText), colours.color(QPalette.ColorRole.Base), "FC title")
    finally:
        win.session.set_live(True)
        app.setPalette(before)


@pytest.mark.parametrize("palette", [light_palette, dark_palette], ids=["light", "dark"])
def test_the_mask_roles_read_on_the_tables_background_in_both_palettes(palette):
    from explorer.qt.style import MASK_ROLES, mask_role_colour
    app = QApplication.instance()
    before = app.palette()
    app.setPalette(palette())
    try:
        base = app.palette().color(QPalette.ColorRole.Base)
        for role in MASK_ROLES:
            assert wcag_ratio(QColor(mask_role_colour(role)), base) >= 4.5, (palette.__name__, role)
    finally:
        app.setPalette(before)


# --- words ---

def test_words_are_on_the_time_axis_and_their_token_id_on_hover(win, qtbot):
    spec = presets.load_preset("average_pooling")
    spec.input.kind = "words"
    spec.sequences = "the cat sat on the mat\nthe dog barked\n"
    win.session.load(spec, trusted=True, source=None)
    settle(qtbot, win)
    win.plots.pick_row(1)
    words = "the dog barked".split()
    ticks = win.plots.mask.plot.getAxis("bottom")._tickLevels
    assert [text for _step, text in ticks[0]] == words
    vocabulary = win.session.result.vocabulary
    text = win.plots.hover("units", 1, 0)
    assert f'"dog" (token id {vocabulary.index("dog")})' in text
    long = [f"w{i % 23}" for i in range(40)]
    win.sequence_editor.text_edit.setPlainText(" ".join(long) + "\n")
    settle(qtbot, win)
    win.plots.pick_row(0)
    major, every = win.plots.mask.plot.getAxis("bottom")._tickLevels
    assert [text for _step, text in every] == long and len(major) <= 16      # thinned where they would collide
    assert set(major) <= set(every)


# --- the command line ---

@pytest.mark.parametrize("arguments", [["--size", "1024"], ["--size", "10x10"], ["--size", "axb"], ["--scale", "9"],
                                       ["--scale", "big"]])
def test_bad_sizes_and_scales_are_one_error_line(arguments, capsys):
    assert cli.main(["--screenshot", "never.png", *arguments]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and len(error.strip().splitlines()) == 1


def test_the_screenshot_takes_the_size_and_scale_asked_for(win, tmp_path):
    from PySide6.QtGui import QImage
    path = tmp_path / "shot.png"
    assert cli.main(["--screenshot", str(path), "--size", "1024x768", "--scale", "1.5", "preset:last_state"]) == 0
    image = QImage(str(path))
    assert (image.width(), image.height()) == (1024, 768)
    win.window_layout.set_scale(1.0)          # the presentation scale is the application's font: put it back


def test_another_panel_and_plot_view_join_the_layout(win, qtbot):
    import pyqtgraph as pg
    view = pg.GraphicsLayoutWidget()
    plot = view.addPlot(title="a gate plot with a title long enough to take two lines when the panel is narrow")
    panel = win.window_layout.add_panel("Training", view)
    win.window_layout.add_plot_view(view)
    assert panel in win.window_layout.docks
    assert any(action.text() == "Training panel" for action in win.window_layout.view_menu.actions())
    panel.show()
    panel.raise_()
    laid_out(qtbot, win)
    assert view.minimumHeight() >= MIN_VIEW[1] and plot.minimumHeight() >= MIN_VIEW[1]
    panel.close()


def test_the_training_plots_follow_the_presentation_scale(win):
    layout, panel = win.window_layout, win.training
    try:
        for scale in (1.5, 1.0):
            layout.set_scale(scale)
            for widget in (panel.loss_plot, panel.accuracy_plot, panel.delta_plot):
                for side in ("left", "bottom"):
                    font = widget.getPlotItem().getAxis(side).style["tickFont"]
                    assert font.pointSizeF() == pytest.approx(9 * scale, rel=0.02), (scale, side)
            title = panel.accuracy_plot.getPlotItem().titleLabel
            assert title.opts["size"] == f"{9 * scale:.1f}pt" and title.text
    finally:
        layout.set_scale(1.0)
