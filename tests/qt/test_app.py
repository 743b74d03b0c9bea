"""Starting the window: the display check, and `--screenshot`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from explorer import cli
from explorer.qt.app import INSTALL, SCREENSHOT_TIMEOUT_S, WINDOW_SIZE, display_problem
from explorer.qt.main_window import take_screenshot

ROOT = Path(__file__).resolve().parents[2]
ALL_THERE = {"xcb-cursor": "libxcb-cursor.so.0", "xcb-icccm": "libxcb-icccm.so.4", "xcb-keysyms": "libxcb-keysyms.so.1"}


def finder(present: dict[str, str]):
    return lambda name: present.get(name)


def test_a_real_display_with_every_library_is_fine():
    assert display_problem({"DISPLAY": ":0"}, "linux", finder(ALL_THERE)) is None
    assert display_problem({"DISPLAY": ":0", "QT_QPA_PLATFORM": "xcb"}, "linux", finder(ALL_THERE)) is None


def test_missing_xcb_libraries_are_named_with_the_command_that_installs_them():
    present = {"xcb-cursor": "libxcb-cursor.so.0"}
    problem = display_problem({"DISPLAY": ":0"}, "linux", finder(present))
    assert problem.startswith("Qt needs system libraries")
    assert "libxcb-icccm4" in problem and "libxcb-keysyms1" in problem and "libxcb-cursor0, " not in problem
    assert problem.endswith("sudo apt-get install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1")
    assert INSTALL in display_problem({"DISPLAY": ":1", "QT_QPA_PLATFORM": "xcb"}, "linux", finder({}))


def test_no_display_at_all_is_an_error_but_offscreen_and_other_systems_are_not():
    assert "no display" in display_problem({}, "linux", finder(ALL_THERE))
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux", finder({})) is None
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}, "linux",
                           finder({})) is None
    assert display_problem({}, "darwin", finder({})) is None
    assert display_problem({}, "win32", finder({})) is None


def test_without_a_display_the_command_says_so_and_exits_2():
    env = {key: value for key, value in os.environ.items()
           if key not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    done = subprocess.run([sys.executable, "main.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("error: there is no display")
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_the_screenshot_command_writes_the_window_after_its_first_run(qapp, tmp_path, capsys):
    path = tmp_path / "shot.png"
    assert cli.main(["--screenshot", str(path), "preset:bidirectional_gru"]) == 0
    image = QImage(str(path))
    assert (image.width(), image.height()) == (1600, 1000)
    colours = {image.pixel(x, y) for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert len(colours) > 100, "the screenshot is nearly blank"
    assert capsys.readouterr().err == ""


def test_a_screenshot_that_waits_too_long_exits_2(qapp, capsys):
    from explorer.core.presets import load_preset
    from explorer.qt.main_window import MainWindow
    window = MainWindow(load_preset("stacked_lstm"), trusted=True, source="preset:stacked_lstm")
    assert take_screenshot(qapp, window, "/nonexistent/never.png", timeout_s=0, size=WINDOW_SIZE) == 2
    assert capsys.readouterr().err.startswith("error: the first run did not finish within 0 s")


@pytest.mark.parametrize("argument", ["preset:no_such_preset", "missing.stack.json"])
def test_a_bad_stack_is_one_error_line(argument, capsys):
    assert cli.main(["--screenshot", "/tmp/never.png", argument]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1


def test_a_screenshot_of_a_lesson_inside_the_cell_waits_for_its_gates(qapp, tmp_path):
    from explorer.core.presets import load_preset
    from explorer.qt.main_window import MainWindow
    window = MainWindow(load_preset("forget_gate_saturation"), trusted=True, source="preset:forget_gate_saturation")
    assert take_screenshot(qapp, window, str(tmp_path / "shot.png"), timeout_s=SCREENSHOT_TIMEOUT_S,
                           size=(1024, 768)) == 0
    assert window.cell_panel.data is not None, "the screenshot was taken before the gates arrived"
    assert "forget" in {key.split("/")[-1] for key in window.cell_panel.data["gates"]}


def test_the_window_starts_at_the_scale_asked_and_shown_at_its_size(make_window, qapp):
    from explorer.qt.main_window import show_at_start
    window = make_window(show=False, scale=1.25)
    assert window.window_layout.zoom.scale == 1.25
    other = make_window(show=False)
    wanted = (other.minimumSizeHint().width() + 20, other.minimumSizeHint().height() + 20)
    show_at_start(other, size=None, default_size=wanted, model=None)     # no geometry remembered: the default
    assert other.isVisible() and (other.width(), other.height()) == wanted


def test_a_window_made_after_a_scaled_one_scales_its_own_text_from_the_same_base(make_window):
    """The application's font is shared: a second window (a second explore() in a notebook) made while the first
    is at 125 % and set back to 100 % shows the text size of a window made at 100 %."""
    make_window(show=False, scale=1.25)
    second = make_window(show=False)
    second.window_layout.set_scale(1.0, announce=False)
    third = make_window(show=False)
    sizes = [[widget.font().pointSizeF() for widget in (w.stack_editor, w.lesson_banner, w.shapes)]
             for w in (second, third)]
    assert sizes[0] == sizes[1]
