"""Exports of what the window shows: plots (PNG, SVG), the run (NPZ, CSV) and the shapes table (Markdown).

Formats:

- **NPZ**: the arrays of `run --npz` (explorer/CONTRACT.md §3): `input`, `mask`, `lengths`, `out/<layer>`,
  `mask/<layer>`, extras (`out/<layer>/state/h`, `out/<layer>/attention`), and `weights/<layer>/<i>`
  (`layer.get_weights()[i]`, asked of the engine that holds the model).
- **CSV**: one long table, one row per number, with the header
  `layer,line,timestep,unit,value,valid`:
  `layer` the layer's name; `line` the sequence's line in the editor; `timestep` the step (0-based,
  in the padded layout of `input`) for outputs with a time axis, **empty** for outputs without one
  (a pooled vector, the final Dense); `unit` the index into the rest of the output, flattened in C
  order (the unit of an RNN, the class of a Dense); `value` the number; `valid` 1 for a valid step,
  0 for a padded one (always 1 without a time axis; a layer with steps of its own, such as a Conv1D
  "valid", counts by its own mask: 0 where it hides a step, 1 everywhere without one). Layers come in
  stack order.
- **Markdown**: the shapes table (layer, type, symbolic shape, this batch, mask, params) and the FC
  input with its explanation.

Every export takes a path; without one it asks with a file dialog (`Exporter.ask_path`, replaceable
in tests).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np
import pyqtgraph as pg
import pyqtgraph.exporters
from PySide6.QtCore import QObject, QRectF, Signal
from PySide6.QtGui import QColor, QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QFileDialog, QWidget

from ..core import output_file
from ..core.diagnose import format_shape
from ..requests import EXPORT_WEIGHTS
from ..session import Session
from .plots.state import PLOT_NAMES

if TYPE_CHECKING:
    from ..core.run import RunResult
    from .plots import PlotsPanel
    from .runs import RunScheduler

CSV_HEADER = ("layer", "line", "timestep", "unit", "value", "valid")
PLOT_TITLES = {"heatmap": "Heatmap (selected layer)", "units": "Units over time", "mask": "Batch mask",
               "fc_input": "FC input", "output": "Output", "attention": "Attention weights"}


# --- pure writers (no widgets) ---

def csv_rows(result: RunResult) -> Iterator[tuple]:
    """The rows of the long table described in this module's docstring (without the header)."""
    lines = list(result.lines)
    for layer in result.layers:
        output = np.asarray(layer.output)
        if layer.time_major and output.ndim >= 2:
            flat = output.reshape(output.shape[0], output.shape[1], -1)
            steps = np.asarray(result.seen_by(layer).mask, dtype=bool)   # the steps of the input it follows
            if layer.own_steps:     # not the input's steps: its own mask, or every step without one
                steps = np.ones(flat.shape[:2], dtype=bool) if layer.mask is None else layer.mask.astype(bool)
            for row, line in enumerate(lines[:flat.shape[0]]):
                for step in range(flat.shape[1]):
                    valid = int(steps[row, step]) if row < steps.shape[0] and step < steps.shape[1] else 1
                    for unit, value in enumerate(flat[row, step]):
                        yield layer.name, line, step, unit, _number(value), valid
        else:
            flat = output.reshape(output.shape[0], -1) if output.ndim else output.reshape(1, 1)
            for row, line in enumerate(lines[:flat.shape[0]]):
                for unit, value in enumerate(flat[row]):
                    yield layer.name, line, "", unit, _number(value), 1


def _number(value) -> str:
    value = float(value)
    return repr(value) if np.isfinite(value) else ("nan" if np.isnan(value) else ("inf" if value > 0 else "-inf"))


def write_csv(result: RunResult, path: str | Path) -> Path:
    path = Path(path)
    table = io.StringIO(newline="")
    writer = csv.writer(table)
    writer.writerow(CSV_HEADER)
    writer.writerows(csv_rows(result))
    output_file.write_bytes(path, table.getvalue().encode("utf-8"))
    return path


def npz_arrays(result: RunResult, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {**result.arrays(), **weights}


def write_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> Path:
    path = Path(path)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    output_file.write_bytes(path, buffer.getvalue())
    return path


def shapes_markdown(result: RunResult) -> str:
    """The shapes table as a GitHub-flavoured Markdown table, then the FC input."""
    rows = ["| layer | type | symbolic | this batch | mask | params |",
            "| --- | --- | --- | --- | --- | ---: |"]
    for layer in result.layers:
        cells = (f"`{layer.name}`", layer.type, f"`{format_shape(layer.symbolic_shape)}`", f"`{format_shape(layer.shape)}`",
                 layer.mask_role, f"{layer.params:,}")
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    rows.append("")
    for fc in result.fc_inputs:    # one per head
        batch = f", this batch `{format_shape(fc.shape)}`" if fc.shape is not None else ""
        rows.append(f"**FC input** of `{fc.layer}`: `{format_shape(fc.symbolic_shape)}`{batch} — {fc.explanation}")
    if not result.fc_inputs:
        rows.append(f"**Output**: `{format_shape(result.output_shape)}` (no Dense layer after the recurrent layers)")
    rows.append("")
    rows.append(f"Batch `{format_shape(result.input.shape)}` in {result.mode} mode, "
                f"{100 * result.padded_fraction:.0f}% padding, device {result.device}.")
    return "\n".join(rows) + "\n"


# --- plots (PNG, SVG) ---

def write_plot(panel: PlotsPanel, name: str, path: str | Path) -> Path:
    """Writes one plot of `panel` ("heatmap", "units", "mask", "fc_input", "output", "attention") as PNG or SVG."""
    plots = panel.plots()
    if name not in plots:
        raise ValueError(f'unknown plot "{name}"; plots: {", ".join(PLOT_NAMES)}')
    plot = plots[name]
    if name == "attention" and not panel.attention.shown:
        raise ValueError("this stack has no attention pooling layer, so there is no attention plot")
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".svg", ".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"):
        raise ValueError(f"export {path.name}: use a .png or .svg file name")
    _ensure_laid_out(panel, plot)
    shown = [line for line in panel.crosshairs.values() if line.isVisible()]
    for line in shown:            # the hover crosshair is not part of the figure
        line.hide()
    try:
        colorbar = panel.heatmap.colorbar
        if name == "heatmap" and colorbar.isVisible():
            # the colour bar belongs to the heatmap: export both
            region = plot.sceneBoundingRect().united(colorbar.sceneBoundingRect())
            _render_region(panel.state.bg, name, plot.scene(), region, path)
        elif suffix == ".svg":
            _export_svg(panel.state.bg, name, plot, path)
        else:
            exporter = pg.exporters.ImageExporter(plot)
            exporter.parameters()["width"] = max(int(plot.boundingRect().width()), 600)
            exporter.parameters()["background"] = panel.state.bg
            exporter.export(str(path))
    finally:
        for line in shown:
            line.show()
    return path


def _export_svg(background: QColor, name: str, plot: pg.PlotItem, path: Path) -> None:
    exporter = pg.exporters.SVGExporter(plot)
    exporter.parameters()["background"] = background
    try:
        exporter.export(str(path))
    except ValueError:
        # pyqtgraph 0.14 cannot parse the closed paths ("… Z") that Qt 6.10+ writes
        # (pyqtgraph issue 3495): draw the plot's part of the scene with Qt's own generator.
        _render_region(background, name, plot.scene(), plot.sceneBoundingRect(), path)


def _render_region(background: QColor, name: str, scene, region: QRectF, path: Path) -> None:
    """Draws a region of a scene to SVG (QSvgGenerator) or to an image at twice the screen size."""
    target = QRectF(0, 0, region.width(), region.height())
    if path.suffix.lower() == ".svg":
        device = QSvgGenerator()
        device.setFileName(str(path))
        device.setSize(target.size().toSize())
        device.setViewBox(target)
        device.setTitle(f"RNN Shape Explorer: {name}")
    else:
        device = QImage((target.size() * 2).toSize(), QImage.Format.Format_ARGB32)
        device.fill(background)
        target = QRectF(0, 0, device.width(), device.height())
    painter = QPainter(device)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.fillRect(target, background)
    scene.render(painter, target, region)
    painter.end()
    if isinstance(device, QImage) and not device.save(str(path)):
        raise OSError(f"could not write {path}")


def _ensure_laid_out(panel: PlotsPanel, plot: pg.PlotItem) -> None:
    """An offscreen panel that was never shown has zero-sized plots: give it a size first."""
    if plot.boundingRect().width() >= 10 and plot.boundingRect().height() >= 10:
        return
    if panel.width() < 200 or panel.height() < 200:
        panel.resize(max(panel.width(), 1000), max(panel.height(), 800))
    for view in (panel.time_view, panel.vector_view):
        view.resize(max(view.width(), 900), max(view.height(), 300))
        view.ci.layout.activate()
        view.ci.setGeometry(QRectF(0, 0, view.width(), view.height()))
        view.ci.layout.activate()


# --- the window's exporter ---

class Exporter(QObject):
    """The Export menu's actions for a session. Each method takes a path (tests) or asks for one.
    Only a current result is exported: a stale one is refused with the reason.

    `exported(path)` after a file is written (for the NPZ: after the engine sent the weights);
    `failed(message)` when an export could not be done."""

    exported = Signal(str)
    failed = Signal(str)

    def __init__(self, session: Session, runs: RunScheduler, plots: PlotsPanel, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.runs = runs
        self.plots = plots
        self.parent_widget = parent
        self.ask_path: Callable[[str, str, str], str | None] = self._ask_path
        self._npz_request: tuple[int, str, RunResult] | None = None

    # --- asking ---

    def _ask_path(self, title: str, filter_: str, suggested: str) -> str | None:
        path, _ = QFileDialog.getSaveFileName(self.parent_widget, title, suggested, filter_)
        return path or None

    def _path(self, path, title: str, filter_: str, suffix: str, tag: str = "") -> Path | None:
        if path is None:
            path = self.ask_path(title, filter_, self._suggested(suffix, tag))
            if not path:
                return None
        path = Path(path)
        if not path.suffix:
            path = path.with_suffix(suffix)
        return path

    def _suggested(self, suffix: str, tag: str = "") -> str:
        source = self.session.source or "stack"
        stem = source.split(":", 1)[1] if source.startswith("preset:") else Path(source).name
        for ending in (".stack.json", ".json", ".keras"):
            stem = stem.removesuffix(ending)
        return f"{stem or 'stack'}{'-' + tag if tag else ''}{suffix}"

    def _result(self):
        result, state = self.session.result, self.session.state
        if result is None:
            self._fail("nothing to export yet: run the stack first")
            return None
        if not state.current:
            self._fail(f"nothing to export: the results on screen are not current ({state.reason})")
            return None
        return result

    def _fail(self, message: str) -> None:
        self.session.say(message, error=True)
        self.failed.emit(message)

    def _done(self, what: str, path: Path) -> None:
        self.session.say(f"exported {what} to {path}")
        self.exported.emit(str(path))

    # --- plots ---

    def export_plot(self, name: str, fmt: str = "png", path: str | Path | None = None) -> Path | None:
        """One plot (see write_plot) as "png" or "svg"."""
        if self._result() is None:
            return None
        suffix = "." + fmt.lower()
        filter_ = "SVG images (*.svg)" if suffix == ".svg" else "PNG images (*.png)"
        target = self._path(path, f"Export the {PLOT_TITLES.get(name, name).lower()} plot", filter_, suffix, name)
        if target is None:
            return None
        try:
            output_file.write_file(target, lambda temporary: write_plot(self.plots, name, temporary))
        except (ValueError, OSError) as error:
            self._fail(f"cannot export the {name} plot: {error}")
            return None
        self._done(f"the {name} plot", target)
        return target

    # --- the run ---

    def export_npz(self, path: str | Path | None = None) -> None:
        """Every array of the run plus the weights; written when the engine has sent the weights."""
        result = self._result()
        if result is None:
            return
        target = self._path(path, "Export the run's arrays", "NumPy archives (*.npz)", ".npz")
        if target is None:
            return
        spec = self.session.result_spec.copy() if self.session.result_spec is not None else None
        request = self.runs.submit(EXPORT_WEIGHTS, self._on_reply, spec=spec).id      # the model of the run on screen
        self._npz_request = (request, str(target), result)
        self.session.say("export: collecting the weights…")

    def _on_reply(self, reply) -> None:
        if reply.kind != "export-weights" or self._npz_request is None or reply.id != self._npz_request[0]:
            return
        _, path, result = self._npz_request
        self._npz_request = None
        if not reply.ok:
            self._fail(f"cannot export the arrays: {reply.error or 'cancelled'}")
            return
        try:
            written = write_npz(path, npz_arrays(result, reply.value))
        except OSError as error:
            self._fail(f"cannot write {path}: {error.strerror or error}")
            return
        self._done("the arrays and weights", written)

    def export_csv(self, path: str | Path | None = None) -> Path | None:
        result = self._result()
        if result is None:
            return None
        target = self._path(path, "Export the run as a table", "CSV tables (*.csv)", ".csv")
        if target is None:
            return None
        try:
            write_csv(result, target)
        except OSError as error:
            self._fail(f"cannot write {target}: {error.strerror or error}")
            return None
        self._done("every layer's output as a table", target)
        return target

    # --- the shapes table ---

    def export_markdown(self, path: str | Path | None = None) -> Path | None:
        result = self._result()
        if result is None:
            return None
        target = self._path(path, "Export the shapes table", "Markdown (*.md)", ".md")
        if target is None:
            return None
        try:
            output_file.write_bytes(target, shapes_markdown(result).encode("utf-8"))
        except OSError as error:
            self._fail(f"cannot write {target}: {error.strerror or error}")
            return None
        self._done("the shapes table", target)
        return target

    def copy_markdown(self) -> str | None:
        result = self._result()
        if result is None:
            return None
        text = shapes_markdown(result)
        QGuiApplication.clipboard().setText(text)
        self.session.say("copied the shapes table (Markdown) to the clipboard")
        return text
