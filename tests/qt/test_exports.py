"""Exports: every plot as PNG and SVG, the run as .npz (with the weights from the engine) and as a long
CSV table, the shapes table as Markdown (a file and the clipboard). Paths are given, never asked."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QGuiApplication

from explorer.qt.exports import CSV_HEADER, csv_rows, shapes_markdown
from explorer.qt.plots import PLOT_NAMES

RUN_TIMEOUT_MS = 60_000


def settle(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.runs.settled, timeout=RUN_TIMEOUT_MS)


@pytest.fixture
def win(make_window, qtbot):
    window = make_window()
    settle(qtbot, window)
    assert window.runs.last_reply.ok, window.session.status_text
    return window


def test_every_plot_exports_as_png_and_svg_from_the_menu(win, qtbot, tmp_path):
    asked = []

    def ask(title, filter_, suggested):
        asked.append(suggested)
        return str(tmp_path / suggested)

    win.menus.exporter.ask_path = ask
    win.menus._update_plot_actions()
    for name in PLOT_NAMES:
        for fmt in ("png", "svg"):
            action = win.menus.plot_actions[(name, fmt)]
            if name == "attention":                      # this stack has no attention pooling
                assert not action.isEnabled()
                continue
            action.trigger()
            path = tmp_path / f"average_pooling-{name}.{fmt}"
            assert path.exists(), (name, fmt, win.session.status_text)
            data = path.read_bytes()
            assert data.startswith(b"\x89PNG") if fmt == "png" else b"<svg" in data
    assert "average_pooling-heatmap.png" in asked
    assert "exported the output plot" in win.session.status_text


def test_a_right_click_on_a_plot_offers_to_save_that_plot(win, qtbot, tmp_path, monkeypatch):
    win.menus.exporter.ask_path = lambda title, filter_, suggested: str(tmp_path / suggested)
    plots = win.plots
    qtbot.waitUntil(lambda: plots.output.plot.sceneBoundingRect().width() > 0, timeout=5000)
    centre = plots.output.plot.sceneBoundingRect().center()
    assert plots.plot_at(plots.output.plot.scene(), centre) == "output"
    assert plots.plot_at(plots.heatmap.plot.scene(), plots.heatmap.plot.sceneBoundingRect().center()) == "heatmap"
    shown = []

    class RightClick:                       # what pyqtgraph's scene hands to sigMouseClicked
        def button(self):
            return Qt.MouseButton.RightButton

        def scenePos(self):
            return centre

        def screenPos(self):
            return QPointF(10, 10)

        def accept(self):
            pass

    monkeypatch.setattr(plots, "show_menu", lambda menu, position: shown.append([a.text() for a in menu.actions()]))
    plots.output.plot.scene().sigMouseClicked.emit(RightClick())
    assert shown == [["Save this plot as PNG…", "Save this plot as SVG…"]]
    menu = plots.export_menu("output")
    [png, svg] = menu.actions()
    svg.trigger()
    data = (tmp_path / "average_pooling-output.svg").read_bytes()
    assert b"<svg" in data
    png.trigger()
    assert (tmp_path / "average_pooling-output.png").read_bytes().startswith(b"\x89PNG")


def test_a_plot_that_is_not_there_is_refused_in_words(win, tmp_path):
    failures = []
    win.menus.exporter.failed.connect(failures.append)
    assert win.menus.exporter.export_plot("attention", "png", tmp_path / "a.png") is None
    assert failures and "no attention pooling" in failures[0]
    assert "no attention pooling" in win.session.status_text


def test_the_run_as_npz_holds_every_array_and_the_weights(win, qtbot, tmp_path):
    path = tmp_path / "run"
    with qtbot.waitSignal(win.menus.exporter.exported, timeout=RUN_TIMEOUT_MS) as signal:
        win.menus.exporter.export_npz(path)
    assert signal.args == [str(tmp_path / "run.npz")]
    result = win.session.result
    with np.load(tmp_path / "run.npz") as archive:
        keys = set(archive.files)
        assert {"input", "mask", "lengths", "out/lstm_1", "out/dense_1", "mask/embedding_1"} <= keys
        np.testing.assert_array_equal(archive["out/lstm_1"], result.layer("lstm_1").output)
        np.testing.assert_array_equal(archive["mask"], result.mask.astype(np.int8))
        assert archive["weights/embedding_1/0"].shape == (1000, 16)
        assert archive["weights/lstm_1/0"].shape == (16, 4 * 32)
        classes = result.layer("dense_1").shape[-1]
        assert archive["weights/dense_1/0"].shape == (32, classes) and archive["weights/dense_1/1"].shape == (classes,)
    assert "exported the arrays and weights" in win.session.status_text


def test_the_run_as_csv_is_one_row_per_number(win, tmp_path):
    path = win.menus.exporter.export_csv(tmp_path / "run.csv")
    result = win.session.result
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == CSV_HEADER
    body = rows[1:]
    assert len(body) == sum(layer.output.size for layer in result.layers)
    lstm = [row for row in body if row[0] == "lstm_1"]
    layer = result.layer("lstm_1")
    assert len(lstm) == layer.output.size
    # line 3 of the editor is the second sequence: its step 5 is padding
    row_index = result.lines.index(3)
    cell = next(row for row in lstm if row[1] == "3" and row[2] == "5" and row[3] == "7")
    assert float(cell[4]) == pytest.approx(float(layer.output[row_index, 5, 7]))
    assert cell[5] == str(int(result.mask[row_index, 5]))
    assert {row[5] for row in lstm} == {"0", "1"}
    dense = [row for row in body if row[0] == "dense_1"]
    assert len(dense) == 3 * result.layer("dense_1").shape[-1] and all(row[2] == "" and row[5] == "1" for row in dense)
    assert float(dense[0][4]) == pytest.approx(float(result.layer("dense_1").output[0, 0]))
    assert sum(1 for _ in csv_rows(result)) == len(body)


def test_the_shapes_table_as_markdown_file_and_clipboard(win, tmp_path):
    QGuiApplication.clipboard().setText("")
    path = win.menus.exporter.export_markdown(tmp_path / "shapes")
    text = path.read_text(encoding="utf-8")
    assert path.name == "shapes.md"
    lines = text.splitlines()
    assert lines[0] == "| layer | type | symbolic | this batch | mask | params |"
    assert "| `lstm_1` | lstm | `(None, None, 32)` | `(3, 7, 32)` | carries | 6,272 |" in lines
    assert "**FC input** of `dense_1`: `(None, 32)`" in text
    win.menus.copy_markdown_action.trigger()
    assert QGuiApplication.clipboard().text() == text == shapes_markdown(win.session.result)
    assert "clipboard" in win.session.status_text
    assert win.menus.copy_markdown_action in win.shapes.table.actions()      # right-click on the table


def test_nothing_is_exported_before_a_run(make_window, tmp_path):
    window = make_window(show=False)
    failures = []
    window.menus.exporter.failed.connect(failures.append)
    assert window.session.result is None
    assert window.menus.exporter.export_csv(tmp_path / "x.csv") is None
    assert not (tmp_path / "x.csv").exists()
    assert failures == ["nothing to export yet: run the stack first"]
    window.menus._update_export_actions()
    assert not window.menus.export_npz_action.isEnabled()


def test_a_cancelled_file_dialog_writes_nothing(win, tmp_path):
    win.menus.exporter.ask_path = lambda *args: None
    assert win.menus.exporter.export_csv() is None
    assert win.menus.exporter.export_plot("mask", "svg") is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("writer", ["npz", "csv"])
def test_an_export_on_a_full_disk_keeps_the_old_file(tmp_path, monkeypatch, writer):
    from explorer.qt import exports
    old = tmp_path / f"run.{writer}"
    old.write_bytes(b"the old export")
    real_write = Path.write_bytes

    def full_disk(self, data):
        real_write(self, data[:10])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    with pytest.raises(OSError):
        if writer == "npz":
            exports.write_npz(old, {"a": np.zeros(1000)})
        else:
            class Empty:
                mask, lines, layers = np.zeros((0, 0)), [], []
            exports.write_csv(Empty(), old)
    monkeypatch.undo()
    assert old.read_bytes() == b"the old export" and [p.name for p in tmp_path.iterdir()] == [old.name]
