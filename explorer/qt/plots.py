"""The plots of one run: what the selected layer does at every timestep of the selected sequence.

Time runs left to right in every time plot and their x axes are linked, so the heatmap, the
attention weights, the unit lines and the batch mask line up step for step; hovering any of
them moves one crosshair through all of them. Padded steps are greyed and hatched by an
overlay (never left to the colour map); steps that the layer's own mask hides although they
hold data (e.g. token 0 with mask_zero) are cross-hatched in orange.

Plot items are created once and updated in place (setImage / setData / setOpts), so a new
run re-plots in a few milliseconds.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
import pyqtgraph.exporters
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QGuiApplication,
    QImage,
    QPainter,
    QPalette,
    QPen,
    QPixmap,
    QTextOption,
)
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:
    from explorer.core.run import LayerResult, RunResult

RECURRENT = ("simple_rnn", "lstm", "gru")
PLOT_NAMES = ("heatmap", "units", "mask", "fc_input", "output", "attention")
MAX_UNIT_CURVES = 8          # curves only for the units the user picked, never thousands
DEFAULT_UNITS = 3            # shown by default: the units that vary most over the valid steps
SYMBOLS_UP_TO = 40           # unit curves get a dot per step up to this many steps
MAX_VALUE_LABELS = 24        # value labels on output bars up to this many classes
LEFT_AXIS_WIDTH = 58         # equal left axes keep the linked time axes aligned pixel for pixel
COLORBAR_AXIS_WIDTH = 45     # pyqtgraph's own, for its tick labels at the normal text size
WORD_TICKS = 16              # words labelled on a time axis before they thin out
TITLE_POINTS = 9.0           # plot titles, axis labels and ticks, times the presentation scale

# Batch-mask cell codes (PlotsPanel.mask_codes).
VALID, PADDED, MASKED, LEAKED = 0, 1, 2, 3
MASK_COLORS = {          # code: (RGBA, legend)
    VALID: ((76, 120, 168, 255), "valid"),
    PADDED: ((200, 200, 200, 255), "padded"),
    MASKED: ((242, 142, 43, 255), "valid but masked by this layer"),
    LEAKED: ((225, 87, 89, 255), "padded, NOT masked"),
}
PAD_FILL = QColor(150, 150, 150, 175)
PAD_LINES = QColor(70, 70, 70, 200)
MASK_LINES = QColor(242, 142, 43, 230)
UNIT_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]
POSITIVE, NEGATIVE, HIGHLIGHT = QColor(76, 120, 168), QColor(225, 87, 89), QColor(242, 142, 43)


# --- pure helpers (no widgets) ---

def runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """Contiguous runs of True as (start, stop) pairs."""
    flags = np.asarray(flags, dtype=bool)
    if not flags.any():
        return []
    edges = np.diff(np.concatenate(([0], flags.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def fit(values: np.ndarray, length: int, fill: bool) -> np.ndarray:
    """A 1-D bool array cut or extended to `length`."""
    values = np.asarray(values, dtype=bool)
    if len(values) >= length:
        return values[:length]
    return np.concatenate([values, np.full(length - len(values), fill)])


def is_time_major(layer: LayerResult) -> bool:
    return layer.time_major and layer.output.ndim >= 3


def row_matrix(layer: LayerResult, row: int) -> np.ndarray:
    """The layer's output for one sequence as (T, features) floats."""
    value = np.asarray(layer.output[row], dtype=np.float32)
    return value.reshape(value.shape[0], -1)


def row_vector(layer: LayerResult, row: int) -> np.ndarray:
    return np.asarray(layer.output[row], dtype=np.float32).ravel()


def layer_abs_max(layer: LayerResult) -> float:
    """The largest |value| of the layer's finite outputs (1.0 when there are none). From the engine's
    value_range when it is finite: no pass over a (256 × 1000 × 256) output on the GUI thread."""
    known = getattr(layer, "value_range", None)
    if known is not None and np.isfinite(known).all():
        return float(max(-known[0], known[1]))
    finite = layer.output[np.isfinite(layer.output)]
    return float(np.abs(finite).max()) if finite.size else 1.0


def default_layer(result: RunResult) -> str | None:
    """The last recurrent layer (preferring one that keeps the time axis), else the last time-major one."""
    layers = result.layers
    for choose in (lambda l: l.type in RECURRENT and is_time_major(l),
                   lambda l: l.type in RECURRENT,
                   is_time_major,
                   lambda l: True):
        found = [layer.name for layer in layers if choose(layer)]
        if found:
            return found[-1]
    return None


def top_variance_units(matrix: np.ndarray, valid: np.ndarray, count: int = DEFAULT_UNITS) -> list[int]:
    """The `count` units whose output varies most over the valid steps (ties: lower index first)."""
    if matrix.size == 0:
        return []
    valid = fit(valid, matrix.shape[0], False)
    rows = matrix[valid] if valid.any() else matrix
    with np.errstate(all="ignore"):
        variance = np.nan_to_num(np.nanvar(rows, axis=0) if len(rows) else np.zeros(matrix.shape[1]), nan=-1.0)
    order = np.argsort(-variance, kind="stable")
    return sorted(order[:count].tolist())


def parse_units(text: str) -> list[int] | None:
    """'3, 7 12' or '0-4' → unit indices; blank → None (automatic); bad text raises ValueError."""
    text = text.strip()
    if not text:
        return None
    units: list[int] = []
    for part in text.replace(",", " ").split():
        if "-" in part.strip("-"):
            start, stop = part.split("-", 1)
            units.extend(range(int(start), int(stop) + 1))
        else:
            units.append(int(part))
    if any(unit < 0 for unit in units):
        raise ValueError("unit indices start at 0")
    return list(dict.fromkeys(units))


def is_probability(vector: np.ndarray) -> bool:
    finite = vector[np.isfinite(vector)]
    return (len(finite) == len(vector) and len(vector) > 1 and bool((finite >= 0).all())
            and abs(float(finite.sum()) - 1.0) < 1e-3)


def fmt_shape(shape) -> str:
    if shape is None:
        return "?"
    return "(" + ", ".join("None" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def swatch(color, text: str) -> str:
    if not isinstance(color, str):
        color = QColor(*color[:3]).name()
    return f'<span style="color:{color}">&#9632;</span>&nbsp;{text}'


def _hatch(color: QColor, cross: bool = False) -> QBrush:
    """A diagonal hatch in device pixels (wide enough to read at any zoom)."""
    size = 10
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(QPen(color, 1.6))
    for shift in (-size, 0, size):
        painter.drawLine(QPointF(shift, size), QPointF(shift + size, 0))
        if cross:
            painter.drawLine(QPointF(shift, 0), QPointF(shift + size, size))
    painter.end()
    return QBrush(pixmap)


# --- graphics items ---


def nice_limit(value: float) -> float:
    """The smallest of 1, 2 or 5 × 10ⁿ that holds `value` (at most 1 for tanh outputs, unless they exceed it)."""
    if not np.isfinite(value) or value <= 0:
        return 1.0
    exponent = np.floor(np.log10(value))
    for step in (1.0, 2.0, 5.0, 10.0):
        limit = step * 10.0 ** exponent
        if limit >= value * (1 - 1e-9):
            return float(limit)
    return float(10.0 ** (exponent + 1))

def scale_axes(plots, colorbar: pg.ColorBarItem | None, scale: float) -> QFont:
    """Presentation mode for some plots: tick labels and axis labels at `scale` × TITLE_POINTS, the left axes
    (and the colour bar's) widened to match. Returns the font used."""
    font = QFont(QGuiApplication.font())
    font.setPointSizeF(TITLE_POINTS * scale)
    plots = list(plots)
    axes = [plot.getAxis(side) for plot in plots for side in ("left", "bottom")]
    if colorbar is not None:
        axes += [axis for name in ("axis", "axis_l", "axis_r")
                 if isinstance(axis := getattr(colorbar, name, None), pg.AxisItem)]
        colorbar.axis.setWidth(int(COLORBAR_AXIS_WIDTH * scale))
    for axis in axes:
        axis.setStyle(tickFont=font)
        axis.label.setFont(font)
        axis.picture = None
        axis.update()
    for plot in plots:
        left = plot.getAxis("left")
        if left.style.get("showValues", True):
            left.setWidth(int(LEFT_AXIS_WIDTH * scale))
    return font


class StepOverlay(pg.GraphicsObject):
    """Marks whole timesteps, over the full height of its view: padded (grey and hatched) and
    valid-but-masked by the layer (orange cross-hatch). Add with ignoreBounds=True."""

    def __init__(self):
        super().__init__()
        self.padded = np.zeros(0, dtype=bool)   # the padded columns (timesteps) now marked
        self.masked = np.zeros(0, dtype=bool)   # the valid columns the layer's mask hides
        self._pad_runs: list[tuple[int, int]] = []
        self._mask_runs: list[tuple[int, int]] = []
        self._fill = QBrush(PAD_FILL)
        self._pad_hatch = _hatch(PAD_LINES)
        self._mask_hatch = _hatch(MASK_LINES, cross=True)
        self.setZValue(10)

    def set_steps(self, padded: np.ndarray, masked: np.ndarray | None = None) -> None:
        padded = np.asarray(padded, dtype=bool)
        masked = np.zeros_like(padded) if masked is None else np.asarray(masked, dtype=bool)
        if np.array_equal(padded, self.padded) and np.array_equal(masked, self.masked):
            return
        self.prepareGeometryChange()
        self.padded, self.masked = padded.copy(), masked.copy()
        self._pad_runs, self._mask_runs = runs(padded), runs(masked)
        self.update()

    def clear(self) -> None:
        self.set_steps(np.zeros(0, dtype=bool))

    def _span(self) -> tuple[float, float]:
        view = self.getViewBox()
        if view is None or not hasattr(view, "viewRect"):
            return 0.0, 1.0
        rect = view.viewRect()
        return rect.top(), rect.height()

    def boundingRect(self) -> QRectF:
        spans = self._pad_runs + self._mask_runs
        if not spans:
            return QRectF()
        top, height = self._span()
        start = min(s for s, _ in spans) - 0.5
        stop = max(e for _, e in spans) - 0.5
        return QRectF(start, top, stop - start, height)

    def viewRangeChanged(self) -> None:
        self.prepareGeometryChange()
        self.update()

    def paint(self, painter: QPainter, *args) -> None:
        if not (self._pad_runs or self._mask_runs):
            return
        top, height = self._span()
        transform = painter.transform()
        painter.save()
        painter.resetTransform()   # hatch in device pixels, whatever the zoom
        for start, stop in self._pad_runs:
            rect = transform.mapRect(QRectF(start - 0.5, top, stop - start, height))
            painter.fillRect(rect, self._fill)
            painter.fillRect(rect, self._pad_hatch)
        for start, stop in self._mask_runs:
            rect = transform.mapRect(QRectF(start - 0.5, top, stop - start, height))
            painter.fillRect(rect, self._mask_hatch)
        painter.restore()


class IntAxis(pg.AxisItem):
    """Ticks only at whole numbers (timesteps, units, classes) while `integer` is on."""

    integer = True

    def tickValues(self, minVal, maxVal, size):
        if not self.integer:
            return super().tickValues(minVal, maxVal, size)
        levels = [(spacing, [v for v in values if float(v).is_integer()])
                  for spacing, values in super().tickValues(minVal, maxVal, size) if spacing >= 1]
        levels = [(spacing, values) for spacing, values in levels if values]
        if not levels:
            lo, hi = np.ceil(minVal), np.floor(maxVal)
            levels = [(1.0, list(np.arange(lo, hi + 1))) if hi >= lo else (1.0, [])]
        return levels


class WrappedPlot(pg.PlotItem):
    """A PlotItem whose long title wraps to the plot's width instead of widening the plot."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        option = QTextOption(Qt.AlignmentFlag.AlignHCenter)
        option.setWrapMode(QTextOption.WrapMode.WordWrap)
        self.titleLabel.item.document().setDefaultTextOption(option)

    def wrap_title(self, width: float) -> None:
        """Wraps the title to `width` pixels (long titles wrap instead of widening the plot), and makes its row as
        tall as the lines it takes (pyqtgraph fixes it at 30 px, so a third line ran into the plot)."""
        label = self.titleLabel
        width = max(float(width), 80.0)
        if abs(label.item.textWidth() - width) > 0.5:
            label.item.setTextWidth(width)
            label.updateMin()
        if label.isVisible():
            height = float(np.ceil(label.item.boundingRect().height()))
            if abs(label.maximumHeight() - height) > 0.5:
                label.setMaximumHeight(height)
                self.layout.setRowFixedHeight(0, height)


class BarPlot:
    """A PlotItem that shows a vector as bars (optionally with value labels) or a (features × T)
    sequence as an image with padded steps marked."""

    def __init__(self, plot: pg.PlotItem, fg: QColor):
        self.plot = plot
        self.fg = fg
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8, pen=pg.mkPen(None))
        plot.addItem(self.bars)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setColorMap(pg.colormap.get("viridis"))
        self.image.hide()
        plot.addItem(self.image)
        self.overlay = StepOverlay()
        plot.addItem(self.overlay, ignoreBounds=True)
        self.labels: list[pg.TextItem] = []
        self.values = np.zeros(0, dtype=np.float32)
        self.mode = "bars"
        self._length: int | tuple = -1
        self._fixed_y: tuple[float, float] | None = None
        self._diverging = False
        self.font: QFont | None = None        # the value labels' font in presentation mode

    def show_bars(self, values: np.ndarray, *, labels: bool = False, highlight: int | None = None,
                  fixed_y: tuple[float, float] | None = None) -> None:
        values = np.asarray(values, dtype=np.float32)
        heights = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
        self.values = values
        if self.mode != "bars":
            self.image.hide()
            self.overlay.clear()
            self.bars.show()
            self.mode = "bars"
            self._length = -1
        brushes = [HIGHLIGHT if i == highlight else (POSITIVE if h >= 0 else NEGATIVE)
                   for i, h in enumerate(heights)]
        self.bars.setOpts(x=np.arange(len(values)), height=heights, width=0.8, brushes=brushes)
        self._set_labels(values if labels and len(values) <= MAX_VALUE_LABELS else None)
        if len(values) != self._length or fixed_y != self._fixed_y:
            self._length, self._fixed_y = len(values), fixed_y
            self.plot.setXRange(-0.6, max(len(values), 1) - 0.4, padding=0)
            if fixed_y is not None:
                self.plot.setYRange(*fixed_y, padding=0)
        if fixed_y is None:
            self.plot.enableAutoRange(axis="y")

    def show_image(self, matrix: np.ndarray, padded: np.ndarray, masked: np.ndarray | None = None,
                   diverging: bool = False, fit: bool = False) -> None:
        """matrix: (T, features); diverging: a recurrent output, drawn like the heatmap (CET-D1, ±1)."""
        image = np.ascontiguousarray(matrix.T)
        if diverging != self._diverging:
            self._diverging = diverging
            self.image.setColorMap(pg.colormap.get("CET-D1" if diverging else "viridis"))
        if self.mode != "image":
            self.bars.setOpts(x=[], height=[])
            self.bars.hide()
            self._set_labels(None)
            self.image.show()
            self.mode = "image"
            self._length = -1
        finite = image[np.isfinite(image)]
        if diverging:
            biggest = float(np.abs(finite).max()) if finite.size else 1.0
            lo, hi = (-1.0, 1.0) if biggest <= 1.0 and not fit else (-max(biggest, 1e-6), max(biggest, 1e-6))
        else:
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            if hi <= lo:
                hi = lo + 1e-6
        self.image.setImage(image, levels=(lo, hi), autoLevels=False)
        self.image.setRect(QRectF(-0.5, -0.5, image.shape[1], image.shape[0]))
        self.overlay.set_steps(padded, masked)
        self.values = image
        if image.shape != self._length:
            self._length = image.shape
            self.plot.setYRange(-0.5, image.shape[0] - 0.5, padding=0)
            self.plot.setXRange(-0.5, image.shape[1] - 0.5, padding=0)

    def clear(self) -> None:
        self.bars.setOpts(x=[], height=[])
        self.image.clear()
        self.overlay.clear()
        self._set_labels(None)
        self.values = np.zeros(0, dtype=np.float32)

    def _set_labels(self, values: np.ndarray | None) -> None:
        count = 0 if values is None else len(values)
        while len(self.labels) < count:
            label = pg.TextItem(color=self.fg, anchor=(0.5, 1.0))
            if self.font is not None:
                label.setFont(self.font)
            self.plot.addItem(label, ignoreBounds=True)
            self.labels.append(label)
        for i, label in enumerate(self.labels):
            if i >= count:
                label.hide()
                continue
            value = float(values[i])
            text = "NaN" if not np.isfinite(value) else f"{value:.2f}"
            if label.toPlainText() != text:
                label.setText(text)
            label.setAnchor((0.5, 1.0) if not value < 0 else (0.5, 0.0))
            label.setPos(i, value if np.isfinite(value) else 0.0)
            label.show()

    @property
    def text_labels(self) -> list[str]:
        return [label.toPlainText() for label in self.labels if label.isVisible()]


# --- the panel ---

class PlotsPanel(QWidget):
    """Heatmap, unit lines, attention and batch mask of the selected layer and sequence, plus the
    FC input and the final output.

    Items for tests and callers: heatmap_item, colorbar, layer_bars, padding_overlay, unit_curves,
    units, attention_curve, attention_overlay, units_overlay, mask_item, mask_codes, row_marker,
    fc_bars, fc_image, output_bars, output_image, output_labels, crosshairs, hover_label,
    message_label, selected_layer, selected_row, and the plots heatmap_plot, attention_plot,
    units_plot, mask_plot, fc_plot, output_plot.
    """

    rowPicked = Signal(int)   # the user picked a sequence row (a click in the mask plot, or the row box)
    layerPicked = Signal(str)  # the user picked a layer in the plots' layer box
    exportRequested = Signal(str, str)  # (plot name, "png" or "svg") from a plot's right-click menu

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.result: RunResult | None = None
        self.selected_layer: str | None = None
        self.selected_row: int | None = None
        self.units: list[int] = []                 # the units drawn as curves
        self.units_auto = True                     # chosen by variance (True) or typed by the user
        self._typed_units: list[int] | None = None
        self.mask_codes = np.zeros((0, 0), dtype=np.uint8)
        self._titles: dict[int, str] = {}
        self._steps = -1
        self._features = -1
        self._heatmap_steps = -1
        self._batch_shape: tuple | None = None
        self._lines_key: tuple | None = None
        self._names_key: tuple | None = None
        self._color_key: tuple | None = None
        self._range_cache: tuple | None = None   # (layer, its valid-step range) for the result on screen
        self._attention_shown = True
        self._symbol = "o"
        self._linked = {"heatmap": True, "output": False}
        self.text_scale = 1.0                      # presentation mode (set_text_scale)

        self._bg, self._fg = self._palette_colours()
        self._build_controls()
        self._build_time_plots()
        self._build_vector_plots()
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.time_view)
        splitter.addWidget(self.vector_view)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([600, 220])
        self.splitter = splitter
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(self._controls)
        layout.addWidget(splitter, 1)
        self.message_label = QLabel(self)
        self.message_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message_label.setWordWrap(True)
        self.message_label.setStyleSheet(
            "QLabel { background: rgba(255, 255, 255, 225); color: #222; border: 1px solid #999;"
            " border-radius: 6px; padding: 12px; font-size: 13px; }")
        self.message_label.hide()
        self.time_view.installEventFilter(self)
        self.vector_view.installEventFilter(self)
        self._clear_plots()

    # --- construction ---

    def _build_controls(self) -> None:
        self.layer_combo = QComboBox()
        self.layer_combo.setToolTip("the layer whose output the plots show")
        self.layer_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.layer_combo.activated.connect(self._on_layer_chosen)
        self.row_combo = QComboBox()
        self.row_combo.setToolTip("the sequence (by its line in the editor)")
        self.row_combo.activated.connect(self._on_row_chosen)
        self.units_edit = QLineEdit()
        self.units_edit.setPlaceholderText(f"auto: top {DEFAULT_UNITS} by variance")
        self.units_edit.setToolTip(f"units to draw over time, e.g. 0 5 12 or 0-3 (at most {MAX_UNIT_CURVES}); "
                                   "empty: the units that vary most")
        self.units_edit.setMaximumWidth(190)
        self.units_edit.editingFinished.connect(self._on_units_typed)
        self.fit_colors = QCheckBox("fit colours")
        self.fit_colors.setChecked(True)
        self.fit_colors.setToolTip("recurrent outputs: centre the diverging colour map on 0 and stretch it to the "
                                   "layer's largest |value|, rounded up to 1, 2 or 5 × 10ⁿ so that colours stay put "
                                   "over small edits; untick for the fixed [-1, 1] of tanh")
        self.fit_colors.toggled.connect(lambda _: self._update() if self.result is not None else None)
        self.hover_label = QLabel(" ")
        self.hover_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # a long description must never widen the panel
        self.hover_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        controls = QHBoxLayout()
        controls.setContentsMargins(4, 2, 4, 0)
        for text, widget in (("layer", self.layer_combo), ("sequence", self.row_combo), ("units", self.units_edit)):
            controls.addWidget(QLabel(text))
            controls.addWidget(widget)
        controls.addWidget(self.fit_colors)
        controls.addSpacing(12)
        controls.addWidget(self.hover_label, 1)
        self._controls = controls

    def _style(self, plot: pg.PlotItem, bottom: str, left: str) -> None:
        for side in ("left", "bottom"):
            axis = plot.getAxis(side)
            axis.setPen(self._fg)
            axis.setTextPen(self._fg)
        plot.getAxis("left").setWidth(LEFT_AXIS_WIDTH)
        for side in ("left", "bottom"):
            plot.getAxis(side).enableAutoSIPrefix(False)
        plot.setLabel("bottom", bottom, color=self._fg.name())
        plot.setLabel("left", left, color=self._fg.name())
        plot.setMenuEnabled(False)

    def _new_plot(self, view: pg.GraphicsLayoutWidget, row: int, col: int, bottom: str, left: str,
                  int_left: bool = False) -> pg.PlotItem:
        axes = {"bottom": IntAxis("bottom")}
        if int_left:
            axes["left"] = IntAxis("left")
        plot = WrappedPlot(axisItems=axes)
        view.addItem(plot, row=row, col=col)
        self._style(plot, bottom, left)
        return plot

    def _crosshair(self, plot: pg.PlotItem) -> pg.InfiniteLine:
        line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(self._fg, width=1, style=Qt.PenStyle.DashLine))
        line.setZValue(20)
        line.hide()
        plot.addItem(line, ignoreBounds=True)
        return line

    def _build_time_plots(self) -> None:
        view = pg.GraphicsLayoutWidget()
        view.setBackground(self._bg)
        view.ci.setSpacing(4)
        self.time_view = view
        layout = view.ci.layout

        # 1. heatmap (or bars for a layer without a time axis)
        self.heatmap_plot = self._new_plot(view, 0, 0, "timestep", "unit", int_left=True)
        self.heatmap_plot.invertY(True)
        self.heatmap_item = pg.ImageItem(axisOrder="row-major")
        self.heatmap_plot.addItem(self.heatmap_item)
        self.layer_bars = pg.BarGraphItem(x=[], height=[], width=0.8, pen=pg.mkPen(None), brush=POSITIVE)
        self.layer_bars.hide()
        self.heatmap_plot.addItem(self.layer_bars)
        self.padding_overlay = StepOverlay()
        self.heatmap_plot.addItem(self.padding_overlay, ignoreBounds=True)
        self.colorbar = pg.ColorBarItem(values=(-1, 1), colorMap=pg.colormap.get("CET-D1"), interactive=False,
                                        width=14, pen=self._fg, colorMapMenu=False)
        self.colorbar.setImageItem(self.heatmap_item)
        for name in ("axis", "axis_l", "axis_r"):
            axis = getattr(self.colorbar, name, None)
            if isinstance(axis, pg.AxisItem):
                axis.setPen(self._fg)
                axis.setTextPen(self._fg)
        view.addItem(self.colorbar, row=0, col=1)

        # 6. attention weights (only when the stack has attention pooling)
        self.attention_plot = self._new_plot(view, 1, 0, "timestep", "weight")
        self.attention_curve = pg.PlotDataItem(stepMode="center", fillLevel=0, pen=pg.mkPen(HIGHLIGHT, width=2),
                                               brush=QColor(242, 142, 43, 90))
        self.attention_plot.addItem(self.attention_curve)
        self.attention_overlay = StepOverlay()
        self.attention_plot.addItem(self.attention_overlay, ignoreBounds=True)
        self.attention_plot.setMouseEnabled(y=False)

        # 2. chosen units over time
        self.units_plot = self._new_plot(view, 2, 0, "timestep", "value")
        self.units_plot.setClipToView(True)
        self.units_plot.setDownsampling(auto=True, mode="peak")
        self._curve_pool = []
        for i in range(MAX_UNIT_CURVES):
            curve = pg.PlotDataItem(pen=pg.mkPen(UNIT_COLORS[i], width=2), symbol="o", symbolSize=5,
                                    symbolPen=None, symbolBrush=UNIT_COLORS[i])
            curve.hide()
            self.units_plot.addItem(curve)
            self._curve_pool.append(curve)
        self.units_overlay = StepOverlay()
        self.units_plot.addItem(self.units_overlay, ignoreBounds=True)
        self.units_plot.addLine(y=0, pen=pg.mkPen(QColor(128, 128, 128, 120)))
        self.units_plot.setAutoVisible(y=True)

        # 3. the batch mask: sequences × time
        self.mask_plot = self._new_plot(view, 3, 0, "timestep", "line")
        self.mask_plot.invertY(True)
        self.mask_plot.setMouseEnabled(y=False)
        self.mask_item = pg.ImageItem(axisOrder="row-major")
        lut = np.array([MASK_COLORS[code][0] for code in sorted(MASK_COLORS)], dtype=np.uint8)
        self.mask_item.setLookupTable(lut)
        self.mask_plot.addItem(self.mask_item)
        self.mask_plot.vb.setToolTip("click a row to select that sequence")
        self.row_marker = QGraphicsRectItem()
        self.row_marker.setPen(pg.mkPen(self._fg, width=2.5))
        self.row_marker.setZValue(15)
        self.mask_plot.addItem(self.row_marker, ignoreBounds=True)

        for plot in (self.heatmap_plot, self.attention_plot, self.units_plot):
            plot.setXLink(self.mask_plot)
        for plot in (self.heatmap_plot, self.attention_plot, self.units_plot, self.mask_plot):
            plot.enableAutoRange(axis="x", enable=False)
        layout.setRowStretchFactor(0, 5)
        layout.setRowStretchFactor(1, 2)
        layout.setRowStretchFactor(2, 3)
        layout.setRowStretchFactor(3, 2)

        self.crosshairs = {name: self._crosshair(plot) for name, plot in (
            ("heatmap", self.heatmap_plot), ("attention", self.attention_plot), ("units", self.units_plot),
            ("mask", self.mask_plot))}
        self._move_proxy = pg.SignalProxy(view.scene().sigMouseMoved, rateLimit=60,
                                          slot=partial(self._on_mouse_moved, view))
        view.scene().sigMouseClicked.connect(self._on_scene_clicked)
        view.scene().sigMouseClicked.connect(partial(self._on_right_click, view))

    def _build_vector_plots(self) -> None:
        view = pg.GraphicsLayoutWidget()
        view.scene().sigMouseClicked.connect(partial(self._on_right_click, view))
        view.setBackground(self._bg)
        view.ci.setSpacing(4)
        self.vector_view = view
        # 4. the FC input vector
        self.fc_plot = self._new_plot(view, 0, 0, "feature", "value")
        self.fc = BarPlot(self.fc_plot, self._fg)
        # 5. the final output
        self.output_plot = self._new_plot(view, 0, 1, "class", "value")
        self.output = BarPlot(self.output_plot, self._fg)
        self.crosshairs["output"] = self._crosshair(self.output_plot)
        self._output_proxy = pg.SignalProxy(view.scene().sigMouseMoved, rateLimit=60,
                                            slot=partial(self._on_mouse_moved, view))

    # --- public API ---

    @property
    def unit_curves(self) -> list[pg.PlotDataItem]:
        """The curves now drawn, one per entry of `units`."""
        return self._curve_pool[:len(self.units)]

    @property
    def fc_bars(self) -> pg.BarGraphItem:
        return self.fc.bars

    @property
    def fc_image(self) -> pg.ImageItem:
        return self.fc.image

    @property
    def output_bars(self) -> pg.BarGraphItem:
        return self.output.bars

    @property
    def output_image(self) -> pg.ImageItem:
        return self.output.image

    @property
    def output_labels(self) -> list[str]:
        """The value labels now shown on the output bars."""
        return self.output.text_labels

    def plots(self) -> dict[str, pg.PlotItem]:
        return {"heatmap": self.heatmap_plot, "units": self.units_plot, "mask": self.mask_plot,
                "fc_input": self.fc_plot, "output": self.output_plot, "attention": self.attention_plot}

    def show_result(self, result: RunResult | None) -> None:
        """Shows a run; keeps the selected layer and row while they still exist."""
        self.message_label.hide()
        self.result = result
        self._range_cache = None
        if result is None or not result.layers:
            self.result = None
            self._clear_plots()
            return
        names = [layer.name for layer in result.layers]
        if self.selected_layer not in names:
            self.selected_layer = default_layer(result)
        batch = result.mask.shape[0]
        if self.selected_row is None or not 0 <= self.selected_row < batch:
            self.selected_row = 0 if batch else None
        self._sync_controls()
        self._update()

    def select(self, layer: str | None = None, row: int | None = None) -> None:
        """Selects a layer (by name) and/or a sequence row; unknown names and rows out of range are ignored."""
        result = self.result
        if layer is not None and (result is None or any(item.name == layer for item in result.layers)):
            self.selected_layer = layer
        if row is not None and (result is None or 0 <= row < result.mask.shape[0]):
            self.selected_row = int(row)
        if result is not None:
            self._sync_controls()
            self._update()

    def show_message(self, text: str) -> None:
        """A message over the plots (loading, errors); empty text hides it."""
        if not text:
            self.message_label.hide()
            return
        self.message_label.setText(text)
        self._place_message()
        self.message_label.show()
        self.message_label.raise_()

    def export_plot(self, name: str, path: str | Path) -> Path:
        """Writes one plot ("heatmap", "units", "mask", "fc_input", "output", "attention") as PNG or SVG."""
        plots = self.plots()
        if name not in plots:
            raise ValueError(f'unknown plot "{name}"; plots: {", ".join(PLOT_NAMES)}')
        plot = plots[name]
        if name == "attention" and not self._attention_shown:
            raise ValueError("this stack has no attention pooling layer, so there is no attention plot")
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".svg", ".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"):
            raise ValueError(f"export {path.name}: use a .png or .svg file name")
        self._ensure_laid_out(plot)
        shown = [line for line in self.crosshairs.values() if line.isVisible()]
        for line in shown:            # the hover crosshair is not part of the figure
            line.hide()
        try:
            if name == "heatmap" and self.colorbar.isVisible():
                # the colour bar belongs to the heatmap: export both
                region = plot.sceneBoundingRect().united(self.colorbar.sceneBoundingRect())
                self._render_region(name, plot.scene(), region, path)
            elif suffix == ".svg":
                self._export_svg(name, plot, path)
            else:
                exporter = pg.exporters.ImageExporter(plot)
                exporter.parameters()["width"] = max(int(plot.boundingRect().width()), 600)
                exporter.parameters()["background"] = self._bg
                exporter.export(str(path))
        finally:
            for line in shown:
                line.show()
        return path

    def _export_svg(self, name: str, plot: pg.PlotItem, path: Path) -> None:
        exporter = pg.exporters.SVGExporter(plot)
        exporter.parameters()["background"] = self._bg
        try:
            exporter.export(str(path))
        except ValueError:
            # pyqtgraph 0.14 cannot parse the closed paths ("… Z") that Qt 6.10+ writes
            # (pyqtgraph issue 3495): draw the plot's part of the scene with Qt's own generator.
            self._render_region(name, plot.scene(), plot.sceneBoundingRect(), path)

    def _render_region(self, name: str, scene, region: QRectF, path: Path) -> None:
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
            device.fill(self._bg)
            target = QRectF(0, 0, device.width(), device.height())
        painter = QPainter(device)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(target, self._bg)
        scene.render(painter, target, region)
        painter.end()
        if isinstance(device, QImage) and not device.save(str(path)):
            raise OSError(f"could not write {path}")

    # --- light and dark ---

    def _palette_colours(self) -> tuple[QColor, QColor]:
        dark = self.palette().color(QPalette.ColorRole.Window).lightness() < 128
        return (QColor(25, 25, 25), QColor(220, 220, 220)) if dark else (QColor(255, 255, 255), QColor(30, 30, 30))

    def apply_colours(self) -> None:
        """Re-reads the palette (light or dark) and recolours backgrounds, axes, labels, titles and markers."""
        bg, fg = self._palette_colours()
        if bg == self._bg and fg == self._fg:
            return
        self._bg, self._fg = bg, fg
        for view in (self.time_view, self.vector_view):
            view.setBackground(bg)
        for plot in self.plots().values():
            for side in ("left", "bottom"):
                axis = plot.getAxis(side)
                axis.setPen(fg)
                axis.setTextPen(fg)
                if axis.labelText:
                    plot.setLabel(side, axis.labelText, color=fg.name())
            title = self._titles.get(id(plot))
            if title is not None:
                plot.setTitle(title, color=fg.name(), size=self._title_size())
        self._wrap_titles()
        for name in ("axis", "axis_l", "axis_r"):
            axis = getattr(self.colorbar, name, None)
            if isinstance(axis, pg.AxisItem):
                axis.setPen(fg)
                axis.setTextPen(fg)
        for line in self.crosshairs.values():
            line.setPen(pg.mkPen(fg, width=1, style=Qt.PenStyle.DashLine))
        self.row_marker.setPen(pg.mkPen(fg, width=2.5))
        for bars in (self.fc, self.output):
            bars.fg = fg
            for label in bars.labels:
                label.setColor(fg)

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange) \
                and hasattr(self, "output"):
            self.apply_colours()

    # --- events ---

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._place_message()

    def _place_message(self) -> None:
        width = min(max(self.width() - 40, 100), 560)
        self.message_label.setFixedWidth(width)
        self.message_label.adjustSize()
        self.message_label.move((self.width() - width) // 2, max((self.height() - self.message_label.height()) // 3,
                                                                 0))

    def _on_layer_chosen(self, index: int) -> None:
        name = self.layer_combo.itemData(index)
        if name:
            self.select(layer=name)
            self.layerPicked.emit(name)

    def _on_row_chosen(self, index: int) -> None:
        if index >= 0:
            self.pick_row(index)

    def _on_units_typed(self) -> None:
        try:
            units = parse_units(self.units_edit.text())
        except ValueError:
            self.units_edit.setStyleSheet("QLineEdit { background: #fdd; }")
            self.units_edit.setToolTip("type unit indices, e.g. 0 5 12 or 0-3")
            return
        self.units_edit.setStyleSheet("")
        self.set_units(units)

    def set_units(self, units: list[int] | None) -> None:
        """Units to draw as curves (at most MAX_UNIT_CURVES); None: the most varying ones."""
        self._typed_units = None if units is None else list(units)[:MAX_UNIT_CURVES]
        text = "" if units is None else " ".join(map(str, self._typed_units))
        if self.units_edit.text() != text:
            self.units_edit.setText(text)
        if self.result is not None:
            self._update()

    def pick_row(self, row: int) -> None:
        """The user picked a row: select it and emit rowPicked."""
        if self.result is None or not 0 <= row < self.result.mask.shape[0]:
            return
        self.select(row=row)
        self.rowPicked.emit(row)

    def _on_scene_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self.result is None:
            return
        position = event.scenePos()
        view = self.mask_plot.vb
        if not view.sceneBoundingRect().contains(position):
            return
        row = int(np.floor(view.mapSceneToView(position).y() + 0.5))
        self.pick_row(row)

    def plot_at(self, scene, position: QPointF) -> str | None:
        """The name of the visible plot under a scene position."""
        for name, plot in self.plots().items():
            if plot.scene() is scene and plot.isVisible() and plot.sceneBoundingRect().contains(position):
                return name
        return None

    @staticmethod
    def show_menu(menu: QMenu, position) -> None:
        """Pops a context menu up (tests replace this: a real one waits for a click)."""
        menu.exec(position)

    def export_menu(self, name: str) -> QMenu:
        """The right-click menu of one plot: save it as PNG or SVG."""
        menu = QMenu(self)
        for fmt in ("png", "svg"):
            action = menu.addAction(f"Save this plot as {fmt.upper()}…")
            action.triggered.connect(partial(self.exportRequested.emit, name, fmt))
        return menu

    def _on_right_click(self, view: pg.GraphicsLayoutWidget, event) -> None:
        if event.button() != Qt.MouseButton.RightButton or self.result is None:
            return
        name = self.plot_at(view.scene(), event.scenePos())
        if name is not None:
            event.accept()
            self.show_menu(self.export_menu(name), event.screenPos().toPoint())

    def _on_mouse_moved(self, view: pg.GraphicsLayoutWidget, args) -> None:
        position = args[0]
        for name, plot in self.plots().items():
            if plot.scene() is not view.scene() or not plot.isVisible():
                continue
            if plot.vb.sceneBoundingRect().contains(position):
                point = plot.vb.mapSceneToView(position)
                self.hover(name, point.x(), point.y())
                return
        self.hover(None, 0, 0)

    def hover(self, plot: str | None, x: float, y: float) -> str:
        """Moves the crosshair to the timestep under (x, y) of `plot` and describes the cell; returns the text."""
        text = self._describe(plot, x, y) if self.result is not None and plot else ""
        time_plots = ("heatmap", "attention", "units", "mask", "output")
        on_time = plot in time_plots and not (plot == "heatmap" and not self._linked["heatmap"]) and not (
            plot == "output" and not self._linked["output"])
        step = int(np.floor(x + 0.5))
        for name, line in self.crosshairs.items():
            show = on_time and text != "" and (name in ("attention", "units", "mask")
                                               or (name == "heatmap" and self._linked["heatmap"])
                                               or (name == "output" and self._linked["output"]))
            if show:
                line.setValue(step)
            line.setVisible(show)
        self.hover_label.setText(text or " ")
        return text

    def _describe(self, plot: str, x: float, y: float) -> str:
        result = self.result
        row = self.selected_row
        if row is None:
            return ""
        step, index = int(np.floor(x + 0.5)), int(np.floor(y + 0.5))
        line = result.lines[row] if row < len(result.lines) else row + 1
        steps = result.mask.shape[1]
        if plot == "mask":
            if not (0 <= step < steps and 0 <= index < result.mask.shape[0]):
                return ""
            code = int(self.mask_codes[index, step]) if self.mask_codes.shape == result.mask.shape else 0
            return f"line {result.lines[index]} · t={step} · {MASK_COLORS[code][1]}"
        state = ""
        if 0 <= step < steps:
            state = self._token(row, step) + ("" if result.mask[row, step] else " · padded")
            own = result.layer(self.selected_layer).mask
            if result.mask[row, step] and own is not None and own.ndim == 2 and step < own.shape[1] \
                    and not own[row, step]:
                state += " · masked by the layer"
        if plot == "heatmap":
            layer = result.layer(self.selected_layer)
            if not is_time_major(layer):
                vector = row_vector(layer, row)
                if 0 <= step < len(vector):
                    return f"line {line} · {layer.name} unit {step} = {vector[step]:+.4f}"
                return ""
            matrix = row_matrix(layer, row)
            if 0 <= step < matrix.shape[0] and 0 <= index < matrix.shape[1]:
                return f"line {line} · t={step} · unit {index} = {matrix[step, index]:+.4f}{state}"
            return ""
        if plot == "units":
            layer = result.layer(self.selected_layer)
            if not is_time_major(layer):
                return ""
            matrix = row_matrix(layer, row)
            if not 0 <= step < matrix.shape[0]:
                return ""
            values = " ".join(f"u{unit}={matrix[step, unit]:+.3f}" for unit in self.units)
            return f"line {line} · t={step} · {values}{state}"
        if plot == "attention":
            weights = self._attention_row()
            if weights is not None and 0 <= step < len(weights):
                return f"line {line} · t={step} · attention weight {weights[step]:.4f}{state}"
            return ""
        if plot == "output":
            values = self.output.values
            if self.output.mode == "image":
                if 0 <= index < values.shape[0] and 0 <= step < values.shape[1]:
                    return f"line {line} · t={step} · output {index} = {values[index, step]:.4f}{state}"
                return ""
            if 0 <= step < len(values):
                return f"line {line} · output {step} = {values[step]:.4f}"
            return ""
        if plot == "fc_input":
            values = self.fc.values
            if self.fc.mode == "bars" and 0 <= step < len(values):
                return f"line {line} · FC input feature {step} = {values[step]:+.4f}"
            if self.fc.mode == "image" and 0 <= index < values.shape[0] and 0 <= step < values.shape[1]:
                return f"line {line} · t={step} · FC input feature {index} = {values[index, step]:+.4f}"
        return ""

    def _token(self, row: int, step: int) -> str:
        """' · token 12' (or the word) at a step of the input, for token inputs."""
        batch = self.result.input
        if batch.ndim != 2 or not (row < batch.shape[0] and step < batch.shape[1]):
            return ""
        value = batch[row, step]
        vocabulary = getattr(self.result, "vocabulary", None)
        if vocabulary and isinstance(value, (int, np.integer)) and 0 <= value < len(vocabulary):
            return f' · "{vocabulary[value]}" (token id {value})'
        return f" · token {value}"

    # --- updates ---

    def _title(self, plot: pg.PlotItem, text: str) -> None:
        if self._titles.get(id(plot)) != text:
            self._titles[id(plot)] = text
            plot.setTitle(text, color=self._fg.name(), size=self._title_size())
            self._wrap_titles(plot)

    def _title_size(self) -> str:
        return f"{TITLE_POINTS * self.text_scale:.1f}pt"

    def set_text_scale(self, scale: float) -> None:
        """Presentation mode: titles, axis labels, ticks and value labels `scale` times their size."""
        self.text_scale = scale
        font = scale_axes(self.plots().values(), self.colorbar, scale)
        for plot in self.plots().values():
            title = self._titles.get(id(plot))
            if title is not None:
                plot.setTitle(title, color=self._fg.name(), size=self._title_size())
        for bars in (self.fc, self.output):
            bars.font = font
            for label in bars.labels:
                label.setFont(font)
        self._wrap_titles()

    def _wrap_titles(self, *only: pg.PlotItem) -> None:
        """Titles wrap to the width their plot gets from the view (never the other way round)."""
        margin = int(LEFT_AXIS_WIDTH * self.text_scale) + 40   # the title spans the view box only, not the left axis
        time_width = self.time_view.width() - (self.colorbar.width() if self.colorbar.isVisible() else 0) - margin
        vector_width = self.vector_view.width() / 2 - margin
        for plot in only or self.plots().values():
            plot.wrap_title(vector_width if plot in (self.fc_plot, self.output_plot) else time_width)

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.Resize and watched in (self.time_view, self.vector_view):
            self._wrap_titles()
        return super().eventFilter(watched, event)

    def _sync_controls(self) -> None:
        result = self.result
        names = tuple((layer.name, layer.type, tuple(layer.shape),
                       tuple((state.name, tuple(state.shape)) for state in layer.states)) for layer in result.layers)
        if names != self._names_key:
            self._names_key = names
            self.layer_combo.blockSignals(True)
            self.layer_combo.clear()
            for name, kind, shape, states in names:
                listed = "".join(f"  {state} {fmt_shape(state_shape)}" for state, state_shape in states)
                self.layer_combo.addItem(f"{name}  {fmt_shape(shape)}" + (f"  · states{listed}" if listed else ""),
                                         name)
            self.layer_combo.blockSignals(False)
        index = self.layer_combo.findData(self.selected_layer)
        if index != self.layer_combo.currentIndex():
            self.layer_combo.setCurrentIndex(index)
        lines = tuple(result.lines)
        if lines != self._lines_key:
            self._lines_key = lines
            self.row_combo.blockSignals(True)
            self.row_combo.clear()
            for row, line in enumerate(lines):
                self.row_combo.addItem(f"line {line}  ({int(result.lengths[row])} steps)"
                                       if row < len(result.lengths) else f"line {line}")
            self.row_combo.blockSignals(False)
            ticks = [(row, str(line)) for row, line in enumerate(lines)]
            step = max(1, int(np.ceil(len(ticks) / 24)))
            self.mask_plot.getAxis("left").setTicks([ticks[::step]])
        if self.selected_row is not None and self.row_combo.currentIndex() != self.selected_row:
            self.row_combo.setCurrentIndex(self.selected_row)

    def _update(self) -> None:
        result, row = self.result, self.selected_row
        if result is None or row is None or self.selected_layer is None:
            self._clear_plots()
            return
        layer = result.layer(self.selected_layer)
        steps = result.mask.shape[1]
        if steps != self._steps:
            self._steps = steps
            self.mask_plot.setXRange(-0.5, max(steps, 1) - 0.5, padding=0)
        self._update_mask(layer)
        self._update_time_ticks(layer)
        self._update_heatmap(layer)
        self._update_units(layer)
        self._update_attention()
        self._update_fc()
        self._update_output()

    def time_words(self) -> list[str] | None:
        """The selected sequence's words, one per timestep ("" for padding), when the input is words."""
        result, row = self.result, self.selected_row
        vocabulary = getattr(result, "vocabulary", None) if result is not None else None
        if not vocabulary or row is None or result.input.ndim != 2:
            return None
        ids = result.input[row]
        return [vocabulary[int(i)] if result.mask[row, t] and 0 <= int(i) < len(vocabulary) else ""
                for t, i in enumerate(ids)]

    def _update_time_ticks(self, layer: LayerResult) -> None:
        """Words input: the time axes show the selected sequence's words instead of step numbers."""
        words = self.time_words()
        on_heatmap = is_time_major(layer)
        key = (None if words is None else tuple(words), on_heatmap)
        if key == self._titles.get("time_words"):
            return
        self._titles["time_words"] = key
        ticks = None
        if words is not None:          # every word when there is room, else every stride-th (pyqtgraph's levels)
            labelled = [(t, word) for t, word in enumerate(words) if word]
            stride = max(1, int(np.ceil(len(labelled) / WORD_TICKS)))
            ticks = [labelled[::stride], labelled] if stride > 1 else [labelled]
        for plot in (self.heatmap_plot, self.attention_plot, self.units_plot, self.mask_plot):
            plot.getAxis("bottom").setTicks(ticks if plot is not self.heatmap_plot or on_heatmap else None)

    def _row_steps(self, layer: LayerResult | None, steps: int) -> tuple[np.ndarray, np.ndarray]:
        """(padded, masked) columns of the selected row, `steps` long; masked = valid steps the layer hides."""
        row = self.selected_row
        valid = fit(self.result.mask[row], steps, True)
        masked = np.zeros(steps, dtype=bool)
        if layer is not None and layer.mask is not None and layer.mask.ndim == 2:
            masked = valid & ~fit(layer.mask[row], steps, True)
        return ~valid, masked

    def _update_mask(self, layer: LayerResult) -> None:
        result = self.result
        valid = result.mask.astype(bool)
        codes = np.where(valid, VALID, PADDED).astype(np.uint8)
        note = ""
        if is_time_major(layer):
            own = layer.mask
            if own is not None and own.shape == valid.shape:
                codes[valid & ~own] = MASKED
                codes[~valid & own] = LEAKED
            elif own is None:
                codes[~valid] = LEAKED
                if (~valid).any():
                    note = " (no mask reaches this layer)"
        self.mask_codes = codes
        self.mask_item.setImage(codes, levels=(0, len(MASK_COLORS)), autoLevels=False)
        batch, steps = codes.shape
        if (batch, steps) != self._batch_shape:
            self._batch_shape = (batch, steps)
            self.mask_item.setRect(QRectF(-0.5, -0.5, steps, batch))
            self.mask_plot.setYRange(-0.5, batch - 0.5, padding=0.02)
        self.row_marker.setRect(QRectF(-0.5, self.selected_row - 0.5, steps, 1))
        present = sorted(set(np.unique(codes).tolist()) | {VALID, PADDED} - ({PADDED} if LEAKED in codes else set()))
        legend = " ".join(swatch(MASK_COLORS[code][0], MASK_COLORS[code][1]) for code in present)
        self._title(self.mask_plot, f"batch mask at {layer.name} ({batch} × {steps}): {legend}{note}")

    def _set_colors(self, recurrent: bool, lo: float, hi: float) -> None:
        key = (recurrent, round(lo, 6), round(hi, 6))
        if key == self._color_key:
            return
        self._color_key = key
        self.colorbar.setColorMap(pg.colormap.get("CET-D1" if recurrent else "viridis"))
        self.colorbar.setLevels(values=(lo, hi))

    def _update_heatmap(self, layer: LayerResult) -> None:
        result, row = self.result, self.selected_row
        line = result.lines[row]
        if not is_time_major(layer):
            vector = row_vector(layer, row)
            heights = np.nan_to_num(vector, nan=0.0, posinf=0.0, neginf=0.0)
            if self._linked["heatmap"]:
                self._linked["heatmap"] = False
                self.heatmap_plot.setXLink(None)
                self.heatmap_item.hide()
                self.colorbar.hide()
                self.layer_bars.show()
                self.padding_overlay.clear()
                self.heatmap_plot.invertY(False)
                self.heatmap_plot.getAxis("left").integer = False
                self.heatmap_plot.setLabel("bottom", "unit", color=self._fg.name())
                self.heatmap_plot.setLabel("left", "value", color=self._fg.name())
                self._features = -1
                self._wrap_titles()
            self.layer_bars.setOpts(x=np.arange(len(vector)), height=heights, width=0.8,
                                    brushes=[POSITIVE if h >= 0 else NEGATIVE for h in heights])
            if len(vector) != self._features:
                self._features = len(vector)
                self.heatmap_plot.setXRange(-0.6, max(len(vector), 1) - 0.4, padding=0)
            self.heatmap_plot.enableAutoRange(axis="y")
            why = (f"its final state {layer.feeds} (return_state), passed on instead of its output"
                   if layer.feeds != "output" else "return_sequences off: only the last state"
                   if layer.type in RECURRENT else "no time axis after this layer")
            nan = " · NaN shown as 0" if np.isnan(vector).any() else ""
            self._title(self.heatmap_plot, f"<b>{layer.name}</b> output for line {line}: a vector of "
                                           f"{len(vector)} {fmt_shape(layer.shape)} · {why}{nan}")
            return
        matrix = row_matrix(layer, row)
        steps, features = matrix.shape
        if not self._linked["heatmap"]:
            self._linked["heatmap"] = True
            self.layer_bars.setOpts(x=[], height=[])
            self.layer_bars.hide()
            self.heatmap_item.show()
            self.colorbar.show()
            self.heatmap_plot.invertY(True)
            self.heatmap_plot.getAxis("left").integer = True
            self.heatmap_plot.setXLink(self.mask_plot)
            self.heatmap_plot.setLabel("bottom", "timestep", color=self._fg.name())
            self.heatmap_plot.setLabel("left", "unit", color=self._fg.name())
            self._features = -1
            self._wrap_titles()
        image = np.ascontiguousarray(matrix.T)
        padded, masked = self._row_steps(layer, steps)
        recurrent = layer.type in RECURRENT
        if recurrent:
            biggest = layer_abs_max(layer)
            if self.fit_colors.isChecked():
                limit = nice_limit(biggest)
            else:
                limit = 1.0 if biggest <= 1.0 + 1e-6 else biggest
            lo, hi = -limit, limit
        else:
            lo, hi = self._valid_range(layer)
            if hi - lo < 1e-9:
                lo, hi = lo - 0.5, hi + 0.5
        self.heatmap_item.setImage(image, autoLevels=False)
        self._set_colors(recurrent, lo, hi)
        self.heatmap_item.setLevels((lo, hi))
        if (steps, features) != (self._heatmap_steps, self._features):
            self._features = features
            self._heatmap_steps = steps
            self.heatmap_item.setRect(QRectF(-0.5, -0.5, steps, features))
            self.heatmap_plot.setYRange(-0.5, features - 0.5, padding=0)
        self.padding_overlay.set_steps(padded, masked)
        parts = [f"<b>{layer.name}</b> output, line {line} ({features} units × {steps} steps)"]
        if recurrent:
            if not self.fit_colors.isChecked():
                parts.append(f"fixed scale ±1, max |value| {biggest:.2g} (tick fit colours to stretch)"
                             if biggest < 0.2 else "fixed scale ±1")
            else:
                parts.append(f"scale ±{hi:.2g} (max |value| {biggest:.2g}; untick fit colours for ±1)")
        if padded.any():
            parts.append(swatch(PAD_FILL.name(), "hatched = padded"))
        if masked.any():
            parts.append(swatch(MASK_LINES.name(), "cross-hatched = masked by layer"))
        if layer.mask is None and padded.any():
            parts.append('<span style="color:#e15759">no mask: padding computed as data</span>')
        self._title(self.heatmap_plot, " · ".join(parts))

    def _valid_range(self, layer: LayerResult) -> tuple[float, float]:
        """(min, max) of the layer's finite outputs on the batch's valid steps; kept for the result on screen,
        so that picking another row does not read the whole layer again."""
        cached = self._range_cache
        if cached is not None and cached[0] is layer:
            return cached[1]
        cells = layer.output.reshape(layer.output.shape[0], layer.output.shape[1], -1)
        batch_valid = self.result.mask.astype(bool)
        known = layer.value_range if hasattr(layer, "value_range") else None
        if batch_valid.all() and known is not None and np.isfinite(known).all():
            found = (float(known[0]), float(known[1]))     # every cell is valid: the engine's range
        else:
            if batch_valid.shape == cells.shape[:2] and batch_valid.any():
                cells = cells[batch_valid]
            finite = cells[np.isfinite(cells)]
            found = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        self._range_cache = (layer, found)
        return found

    def _update_units(self, layer: LayerResult) -> None:
        result, row = self.result, self.selected_row
        line = result.lines[row]
        if not is_time_major(layer):
            self.units = []
            for curve in self._curve_pool:
                curve.setData([], [])
                curve.hide()
            self.units_overlay.clear()
            self._title(self.units_plot, f"units over time: {layer.name} has no time axis; "
                                         "pick a layer that keeps one (e.g. return_sequences on)")
            return
        matrix = row_matrix(layer, row)
        steps, features = matrix.shape
        padded, masked = self._row_steps(layer, steps)
        typed = [unit for unit in (self._typed_units or []) if unit < features]
        self.units_auto = not typed
        self.units = typed if typed else top_variance_units(matrix, ~padded & ~masked)
        symbol = "o" if steps <= SYMBOLS_UP_TO else None     # dots mark the steps of short sequences
        if symbol != self._symbol:
            self._symbol = symbol
            for curve in self._curve_pool:
                curve.setSymbol(symbol)
        x = np.arange(steps, dtype=np.float32)
        for i, curve in enumerate(self._curve_pool):
            if i < len(self.units):
                curve.setData(x, matrix[:, self.units[i]])
                curve.show()
            elif curve.isVisible():
                curve.setData([], [])
                curve.hide()
        self.units_overlay.set_steps(padded, masked)
        names = " ".join(swatch(UNIT_COLORS[i], f"unit {unit}") for i, unit in enumerate(self.units))
        how = "most varying on valid steps" if self.units_auto else "chosen"
        self._title(self.units_plot, f"{layer.name} units, line {line}: {names} ({how})")

    def _attention_layer(self) -> tuple[str, np.ndarray] | None:
        for layer in self.result.layers:
            for key, value in layer.extras.items():
                if key.endswith("/attention") and value.ndim == 2:
                    return layer.name, value
        return None

    def _attention_row(self) -> np.ndarray | None:
        found = self._attention_layer() if self.result is not None else None
        if found is None or self.selected_row is None:
            return None
        return np.asarray(found[1][self.selected_row], dtype=np.float32)

    def _show_attention_plot(self, show: bool) -> None:
        if show == self._attention_shown:
            return
        self._attention_shown = show
        layout = self.time_view.ci
        if show:
            layout.addItem(self.attention_plot, row=1, col=0)
            self.attention_plot.show()
            layout.layout.setRowStretchFactor(1, 2)
        else:
            layout.removeItem(self.attention_plot)
            self.attention_plot.hide()
            layout.layout.setRowStretchFactor(1, 0)
            self.crosshairs["attention"].hide()

    def _update_attention(self) -> None:
        found = self._attention_layer()
        if found is None:
            self.attention_curve.setData([], [])
            self.attention_overlay.clear()
            self._show_attention_plot(False)
            return
        self._show_attention_plot(True)
        name, weights = found
        row = self.selected_row
        values = np.nan_to_num(np.asarray(weights[row], dtype=np.float32))
        steps = len(values)
        self.attention_curve.setData(np.arange(steps + 1, dtype=np.float32) - 0.5, values)
        padded, _ = self._row_steps(None, steps)
        self.attention_overlay.set_steps(padded)
        top = float(values.max()) if steps else 1.0
        self.attention_plot.setYRange(0, max(top, 1e-6) * 1.12, padding=0)
        self._title(self.attention_plot, f"attention weights of <b>{name}</b>, line {self.result.lines[row]} "
                                         f"(softmax over valid steps, sum {values.sum():.2f})")

    def _update_fc(self) -> None:
        result, row = self.result, self.selected_row
        fc = result.fc_input
        names = [layer.name for layer in result.layers]
        if fc is None or fc.layer not in names or names.index(fc.layer) == 0:
            self.fc.clear()
            self._title(self.fc_plot, "FC input: no Dense layer after the recurrent layers")
            return
        source = result.layers[names.index(fc.layer) - 1]
        head = (f"FC input of <b>{fc.layer}</b> from {source.name}: {fmt_shape(fc.shape)} "
                f"(symbolic {fmt_shape(fc.symbolic_shape)}) · line {result.lines[row]}")
        if is_time_major(source):
            matrix = row_matrix(source, row)
            padded, masked = self._row_steps(source, matrix.shape[0])
            self.fc.show_image(matrix, padded, masked, diverging=source.type in RECURRENT,
                               fit=self.fit_colors.isChecked())
            self._style_axes(self.fc_plot, "timestep", "feature")
            self._title(self.fc_plot, head + " · a sequence: Dense runs at every step")
            return
        vector = row_vector(source, row)
        self.fc.show_bars(vector)
        self._style_axes(self.fc_plot, "feature", "value")
        self._title(self.fc_plot, head)

    def _style_axes(self, plot: pg.PlotItem, bottom: str, left: str) -> None:
        key = (id(plot), "axes")
        if self._titles.get(key) != (bottom, left):
            self._titles[key] = (bottom, left)
            plot.setLabel("bottom", bottom, color=self._fg.name())
            plot.setLabel("left", left, color=self._fg.name())
            plot.invertY(bottom == "timestep")

    def _update_output(self) -> None:
        result, row = self.result, self.selected_row
        last = result.layers[-1]
        line = result.lines[row]
        if is_time_major(last):
            matrix = row_matrix(last, row)
            padded, masked = self._row_steps(last, matrix.shape[0])
            self.output.show_image(matrix, padded, masked, diverging=last.type in RECURRENT,
                                   fit=self.fit_colors.isChecked())
            self._style_axes(self.output_plot, "timestep", "output")
            self._linked["output"] = True   # same time range as the time plots (no cross-widget link:
            #                                 pyqtgraph would align the two views by pixel position)
            note = ""
            if matrix.shape[0] != result.mask.shape[1]:
                note = f' · <span style="color:#e15759">{matrix.shape[0]} steps, the batch has {result.mask.shape[1]}</span>'
            self._title(self.output_plot, f"output of <b>{last.name}</b> {fmt_shape(last.shape)} for line {line}: "
                                          f"{matrix.shape[1]} outputs at every step{note}")
            return
        if self._linked["output"]:
            self._linked["output"] = False
            self.crosshairs["output"].hide()
        vector = row_vector(last, row)
        probability = is_probability(vector)
        best = int(np.nanargmax(vector)) if vector.size and np.isfinite(vector).any() else None
        self.output.show_bars(vector, labels=True, highlight=best if probability else None,
                              fixed_y=(0.0, 1.15) if probability else None)
        self._style_axes(self.output_plot, "class" if probability else "output", "probability" if probability
                         else "value")
        what = f"class probabilities, most likely {best}" if probability else "values"
        self._title(self.output_plot, f"output of <b>{last.name}</b> {fmt_shape(last.shape)} for line {line}: "
                                      f"{what}")

    def _clear_plots(self) -> None:
        self.heatmap_item.clear()
        self.layer_bars.setOpts(x=[], height=[])
        self.padding_overlay.clear()
        for curve in self._curve_pool:
            curve.setData([], [])
            curve.hide()
        self.units = []
        self.units_overlay.clear()
        self.attention_curve.setData([], [])
        self.attention_overlay.clear()
        self.mask_item.clear()
        self.mask_codes = np.zeros((0, 0), dtype=np.uint8)
        self.row_marker.setRect(QRectF())
        self.fc.clear()
        self.output.clear()
        for line in self.crosshairs.values():
            line.hide()
        for plot, text in ((self.heatmap_plot, "layer output (units × timestep): run a stack to see it"),
                           (self.units_plot, "units over time"), (self.mask_plot, "batch mask"),
                           (self.attention_plot, "attention weights"), (self.fc_plot, "FC input"),
                           (self.output_plot, "output")):
            self._title(plot, text)
        self._steps = -1
        self._batch_shape = None
        self._features = -1
        self._heatmap_steps = -1

    def _ensure_laid_out(self, plot: pg.PlotItem) -> None:
        """An offscreen panel that was never shown has zero-sized plots: give it a size first."""
        if plot.boundingRect().width() >= 10 and plot.boundingRect().height() >= 10:
            return
        if self.width() < 200 or self.height() < 200:
            self.resize(max(self.width(), 1000), max(self.height(), 800))
        for view in (self.time_view, self.vector_view):
            view.resize(max(view.width(), 900), max(view.height(), 300))
            view.ci.layout.activate()
            view.ci.setGeometry(QRectF(0, 0, view.width(), view.height()))
            view.ci.layout.activate()
