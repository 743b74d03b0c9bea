"""The Help menu (Lessons, Keyboard shortcuts, About), the menu bar's order and the keyboard shortcuts of
the main actions, pressed as keys."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QKeySequence
from PySide6.QtWidgets import QApplication

from explorer import __version__
from explorer.core import course, presets
from explorer.qt.help import LessonsDialog, lessons

RUN_TIMEOUT_MS = 60_000
CTRL = Qt.KeyboardModifier.ControlModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier
ALT = Qt.KeyboardModifier.AltModifier


def settle(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.runs.settled, timeout=RUN_TIMEOUT_MS)


@pytest.fixture
def win(make_window, qtbot):
    window = make_window()
    settle(qtbot, window)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    window.plots.setFocus()
    return window


def test_the_menu_bar_reads_file_edit_run_export_help(win):
    titles = [action.text().replace("&", "") for action in win.menuBar().actions()]
    assert titles == ["File", "Edit", "Run", "Export", "View", "Help"]
    help_items = [a.text() for a in win.menus.menu("Help").actions() if not a.isSeparator()]
    assert help_items == ["Lessons…", "Keyboard shortcuts", "About RNN Shape Explorer"]


def test_lessons_list_every_preset_and_open_the_one_chosen(win, qtbot):
    dialog = win.menus.show_lessons()
    assert isinstance(dialog, LessonsDialog) and dialog.isVisible()
    rows = [dialog.list.item(i) for i in range(dialog.list.count())]
    opened = [row.data(Qt.ItemDataRole.UserRole) for row in rows if row.data(Qt.ItemDataRole.UserRole)]
    headings = [row.text() for row in rows if not row.data(Qt.ItemDataRole.UserRole)]
    assert sorted(opened) == sorted(presets.names()) and len(opened) >= 10          # every preset, once
    assert headings == list(course.SECTIONS)
    assert opened[0].startswith("forgotten_mask") and opened.index("chunked_stateful") < opened.index(
        "mask_stops_gradient")
    titles = [row.text() for row in rows if row.data(Qt.ItemDataRole.UserRole)]
    assert titles == [f"{n}. {presets.load_preset(name).title}" for n, name in enumerate(opened, start=1)]
    assert dialog.selected == "average_pooling"                          # the stack on screen
    dialog.select("forgotten_mask_post")
    lesson = presets.load_preset("forgotten_mask_post").lesson
    assert lesson and lesson in dialog.text.toPlainText()
    assert "preset:forgotten_mask_post" in dialog.text.toPlainText()
    dialog.open_button.click()
    assert win.session.source == "preset:forgotten_mask_post" and not dialog.isVisible()
    settle(qtbot, win)
    assert win.lesson_banner.text().startswith("<b>" + presets.load_preset("forgotten_mask_post").title)
    assert "Where to look" in win.lesson_banner.text()
    assert [layer.type for layer in win.session.result.layers] == [layer.type for layer in win.session.document.layers]


def test_a_lesson_asks_before_replacing_the_users_own_file_only(win, qtbot, monkeypatch, tmp_path):
    from explorer.qt.files import CANCEL
    asked = []
    monkeypatch.setattr(win.files, "ask_unsaved", lambda name: asked.append(name) or CANCEL)
    win.sequence_editor.text_edit.setPlainText("1 2 3\n4 5\n")           # an edited preset: nothing of theirs
    qtbot.waitUntil(lambda: win.files.modified, timeout=5000)
    dialog = win.menus.show_lessons()
    dialog.select("stacked_lstm")
    dialog.open_button.click()
    assert not asked and win.session.source == "preset:stacked_lstm"
    settle(qtbot, win)
    path = tmp_path / "mine.stack.json"
    assert win.files.save_to(str(path))
    win.sequence_editor.text_edit.setPlainText("1 2 3\n4 5\n")           # their own file, edited
    qtbot.waitUntil(lambda: win.files.modified, timeout=5000)
    dialog = win.menus.show_lessons()
    dialog.select("last_state")
    dialog.open_button.click()
    assert asked == ["mine.stack.json"] and dialog.isVisible() and win.session.source == str(path)
    assert win.sequence_editor.text_edit.toPlainText() == "1 2 3\n4 5\n"
    dialog.reject()


def test_every_preset_has_a_title_and_a_lesson():
    for name, title, lesson in lessons():
        assert title and title != name and len(lesson) > 20, name


def test_the_shortcuts_window_lists_the_main_actions(win):
    dialog = win.menus.show_shortcuts()
    rows = dict(dialog.rows)
    native = lambda text: QKeySequence(text).toString(QKeySequence.SequenceFormat.NativeText)
    assert native("F5") in rows["▶ Run"] and native("Ctrl+R") in rows["▶ Run"]
    assert rows["Live"] == native("Ctrl+L")
    assert rows["Copy as code"] == native("Ctrl+Shift+C")
    assert rows["Leak check"] == native("Ctrl+K")
    assert rows["Add layer"] == native("Ctrl+Shift+A")
    assert rows["Next sequence"] == native("Alt+Down") and rows["Previous sequence"] == native("Alt+Up")
    assert rows["Undo"] == native("Ctrl+Z") and native("Ctrl+Y") in rows["Redo"]
    assert dialog.table.rowCount() == len(dialog.rows)


def test_about_names_the_version(win):
    box = win.menus.show_about()
    assert __version__ in box.text() and "RNN Shape Explorer" in box.text()
    assert box.isVisible()
    box.close()


def test_the_keys_run_the_main_actions(win, qtbot):
    # Ctrl+L: live off and on
    assert win.live_check.isChecked()
    qtbot.keyClick(win.plots, Qt.Key.Key_L, CTRL)
    assert not win.live_check.isChecked() and not win.menus.live_action.isChecked()
    qtbot.keyClick(win.plots, Qt.Key.Key_L, CTRL)
    assert win.live_check.isChecked()
    # Ctrl+R and F5: run
    for key, modifiers in ((Qt.Key.Key_R, CTRL), (Qt.Key.Key_F5, Qt.KeyboardModifier.NoModifier)):
        before = win.runs.last_run_id
        qtbot.keyClick(win.plots, key, modifiers)
        assert win.runs.last_run_id > before
        settle(qtbot, win)
    # Alt+Down / Alt+Up: the next and the previous sequence, in the plots and the editor
    win.plots.pick_row(0)
    assert win.plots.selected_row == 0
    qtbot.keyClick(win.plots, Qt.Key.Key_Down, ALT)
    assert win.plots.selected_row == 1
    assert win.sequence_editor.current_line == win.session.result.lines[1]
    qtbot.keyClick(win.plots, Qt.Key.Key_Down, ALT)
    qtbot.keyClick(win.plots, Qt.Key.Key_Down, ALT)                      # stays on the last one
    assert win.plots.selected_row == len(win.session.result.lines) - 1
    qtbot.keyClick(win.plots, Qt.Key.Key_Up, ALT)
    assert win.plots.selected_row == len(win.session.result.lines) - 2
    # Ctrl+K: the leak check
    qtbot.keyClick(win.plots, Qt.Key.Key_K, CTRL)
    qtbot.waitUntil(lambda: not win.shapes.leak_label.isHidden(), timeout=RUN_TIMEOUT_MS)
    assert "no leak" in win.shapes.leak_label.text()
    # Ctrl+Shift+C: the Keras script on the clipboard
    QGuiApplication.clipboard().setText("")
    qtbot.keyClick(win.plots, Qt.Key.Key_C, CTRL | SHIFT)
    qtbot.waitUntil(lambda: "keras" in QGuiApplication.clipboard().text(), timeout=RUN_TIMEOUT_MS)
    # Ctrl+Shift+A: the add-layer menu opens under its button
    qtbot.keyClick(win.plots, Qt.Key.Key_A, CTRL | SHIFT)
    menu = win.stack_editor.add_menu
    qtbot.waitUntil(menu.isVisible, timeout=2000)
    assert menu.geometry().left() == win.stack_editor.add_button.mapToGlobal(
        win.stack_editor.add_button.rect().bottomLeft()).x()
    menu.close()
    assert QApplication.activePopupWidget() is None
