"""What the window remembers between sessions: geometry (never larger than the screen) and state (the docks),
the presentation scale, recent files, the last device and the Live toggle — in an injected QSettings (here a temporary INI file), restored on the next start."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from explorer.core.backend import Device
from explorer.qt import settings as prefs
from explorer.qt.settings import APPLICATION, ORGANISATION, STATE_DIR_ENV, open_settings, state_dir

RUN_TIMEOUT_MS = 60_000


def settle(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.runs.settled, timeout=RUN_TIMEOUT_MS)


@pytest.fixture
def ini(tmp_path) -> str:
    return str(tmp_path / "explorer.ini")


def reopen(path: str) -> QSettings:
    return QSettings(path, QSettings.Format.IniFormat)


def test_the_users_settings_have_the_explorers_names(tmp_path):
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path))
    try:
        settings = open_settings()
        assert (settings.organizationName(), settings.applicationName()) == (ORGANISATION, APPLICATION)
        assert Path(settings.fileName()) == tmp_path / "RNN Shape Explorer" / "explorer.ini"
    finally:
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "unused"))


def test_the_state_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "state"))
    assert state_dir() == tmp_path / "state"
    monkeypatch.delenv(STATE_DIR_ENV)
    assert state_dir().name == "rnn-shape-explorer"


def test_geometry_live_toggle_and_recent_files_are_restored_on_the_next_start(make_window, qtbot, ini, tmp_path,
                                                                              monkeypatch):
    from explorer.core.presets import load_preset
    from explorer.core.spec import save
    from explorer.qt.main_window import MainWindow
    stack = tmp_path / "kept.stack.json"
    save(load_preset("stacked_lstm"), stack)
    first = make_window(settings=reopen(ini))
    first.resize(1500, 930)
    qtbot.waitUntil(lambda: first.width() == 1500, timeout=5000)
    first.live_check.setChecked(False)
    first.files.load(str(stack))
    settle(qtbot, first)
    geometry = bytes(first.saveGeometry())      # as the window is when it quits (a lesson's banner can grow it)
    assert first.close()

    stored = reopen(ini)
    assert stored.value(prefs.KEY_LIVE, type=bool) is False
    assert prefs.recent_files(stored) == [str(stack.resolve())]
    assert bytes(stored.value(prefs.KEY_GEOMETRY)) == geometry

    restored = []               # the offscreen screen is 800 × 800, so Qt clamps what it restores: watch the call
    real = MainWindow.restoreGeometry
    monkeypatch.setattr(MainWindow, "restoreGeometry",
                        lambda self, data: (restored.append(bytes(data)), real(self, data))[1])
    second = make_window(settings=reopen(ini), show=False)
    assert second.preferences.restored_geometry and restored == [geometry]
    assert not second.live_check.isChecked()
    assert prefs.recent_files(second.settings) == [str(stack.resolve())]


def test_the_docks_and_the_presentation_scale_are_restored(make_window, qtbot, ini):
    from explorer.qt.layout import KEY_SCALE
    first = make_window(settings=reopen(ini))
    settle(qtbot, first)
    first.window_layout.set_scale(1.5)
    first.window_layout.shapes_dock.close()
    assert first.close()
    assert float(reopen(ini).value(KEY_SCALE)) == 1.5
    second = make_window(settings=reopen(ini))
    settle(qtbot, second)
    assert second.window_layout.scale == 1.5 and second.plots.text_scale == 1.5
    assert not second.window_layout.shapes_dock.isVisible() and second.window_layout.stack_dock.isVisible()
    second.window_layout.set_scale(1.0)
    fresh = make_window()
    assert fresh.window_layout.scale == 1.0 and fresh.window_layout.shapes_dock.isVisible()


def test_quitting_in_focus_brings_the_panels_back_at_the_next_start(make_window, qtbot, ini):
    first = make_window(settings=reopen(ini))
    settle(qtbot, first)
    layout = first.window_layout
    open_before = [dock.windowTitle() for dock in layout.docks if dock.isVisible()]
    assert open_before
    layout.set_focus(True)
    assert not any(dock.isVisible() for dock in layout.docks)
    assert first.close()
    second = make_window(settings=reopen(ini))
    settle(qtbot, second)
    assert not second.window_layout.focused
    assert [dock.windowTitle() for dock in second.window_layout.docks if dock.isVisible()] == open_before


def test_a_window_saved_on_a_bigger_screen_opens_inside_this_one(make_window):
    from PySide6.QtCore import QRect
    from explorer.qt.layout import fit_to_screen
    win = make_window(show=False)
    win.resize(1900, 1150)
    win.move(700, 400)
    screen = QRect(0, 0, 1024, 768)
    assert fit_to_screen(win, screen)
    assert win.width() <= 1024 and win.height() <= 768
    assert screen.contains(win.frameGeometry())
    assert not fit_to_screen(win, screen)          # already inside: left alone


def test_without_settings_nothing_is_remembered(make_window, qtbot):
    first = make_window()
    first.live_check.setChecked(False)
    first.close()
    assert make_window().live_check.isChecked()


def test_the_last_device_is_picked_again_when_the_devices_arrive(make_window, qtbot, ini):
    stored = reopen(ini)
    stored.setValue(prefs.KEY_DEVICE, "/CPU:0")
    stored.sync()
    win = make_window(settings=reopen(ini))
    settle(qtbot, win)
    qtbot.waitUntil(lambda: bool(win.session.devices), timeout=RUN_TIMEOUT_MS)
    win.live_check.setChecked(False)
    devices = [Device("/CPU:0", "CPU", "CPU"), Device("/GPU:0", "GPU", "a GPU")]
    win.session.set_devices(devices)                                # with a GPU, the window would pick it …
    assert win.session.device == "/CPU:0"                                   # … but the CPU was the user's last choice
    other = make_window(settings=reopen(str(Path(ini).with_name("other.ini"))))
    other.live_check.setChecked(False)
    other.session.set_devices(devices)
    assert other.session.device == "/GPU:0"


def test_closing_saves_the_device_in_use(make_window, qtbot, ini):
    win = make_window(settings=reopen(ini))
    qtbot.waitUntil(lambda: bool(win.session.devices), timeout=RUN_TIMEOUT_MS)
    settle(qtbot, win)
    win.close()
    assert reopen(ini).value(prefs.KEY_DEVICE) == win.session.device


def test_a_list_of_one_recent_file_reads_back_as_a_list(ini):
    stored = reopen(ini)
    prefs.add_recent(stored, "/tmp/one.stack.json")
    assert prefs.recent_files(reopen(ini)) == [str(Path("/tmp/one.stack.json").resolve())]
    prefs.clear_recent(stored)
    assert prefs.recent_files(reopen(ini)) == []


def test_docks_laid_out_for_a_big_screen_open_compact_on_a_small_one(make_window, qtbot, ini):
    from explorer.qt.layout import KEY_ARRANGEMENT
    first = make_window(settings=reopen(ini))
    first.resize(1920, 1080)
    settle(qtbot, first)
    qtbot.waitUntil(lambda: first.window_layout.arrangement == "wide-tall", timeout=5000)
    assert first.close()
    assert reopen(ini).value(KEY_ARRANGEMENT) == "wide-tall"
    second = make_window(settings=reopen(ini), show=False)     # restored onto the 800 × 800 offscreen screen
    size = (second.width(), second.height())
    assert size[0] <= 800 and size[1] <= 800
    layout = second.window_layout
    assert layout.shapes_dock in second.tabifiedDockWidgets(layout.stack_dock)
    second.show()
    settle(qtbot, second)
    assert (second.width(), second.height()) == size                  # not grown past the screen by the docks
