"""The graphics items the plots are made of: padded-step overlays, integer axes, wrapping titles, bars."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, QRect, QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QFont, QGuiApplication, QPainter, QPen, QPixmap, QTextOption
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLayout, QSizePolicy, QWidget

from .state import (COLORBAR_AXIS_WIDTH, HIGHLIGHT, LEFT_AXIS_WIDTH, MASK_LINES, MAX_VALUE_LABELS, NEGATIVE, PAD_FILL,
                    PAD_LINES, POSITIVE, SEQUENTIAL, TITLE_POINTS, Scale, runs)


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



class WrappingRow(QLayout):
    """Widgets left to right, onto the next line when the width runs out (a narrow window, a large text scale),
    so a row of controls never makes its panel wider than the window. The last widget takes what is left of its
    line, at least `status_min` pixels."""

    def __init__(self, spacing: int, status_min: int = 120):
        super().__init__()
        self._items: list = []
        self._status_min = status_min
        self._height: int | None = None
        self.setSpacing(spacing)

    def addItem(self, item) -> None:
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int):
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int):
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientation:
        return Qt.Orientation(0)

    def setGeometry(self, rect: QRect) -> None:
        super().setGeometry(rect)
        height = self._place(rect)
        if height != self._height:      # wrapped onto more (or fewer) lines: ask the panel for that height
            self._height = height
            QTimer.singleShot(0, self, self.update)

    def sizeHint(self) -> QSize:
        margins = self.contentsMargins()
        width = sum(item.sizeHint().width() for item in self._items) + self.spacing() * (len(self._items) - 1)
        return QSize(width + margins.left() + margins.right(), self._line_height())

    def minimumSize(self) -> QSize:
        margins = self.contentsMargins()
        width = max((item.minimumSize().width() for item in self._items[:-1]), default=0)
        return QSize(max(width, self._status_min) + margins.left() + margins.right(), self._line_height())

    def _line_height(self) -> int:
        """The height the row took at its last width (one line before it is first laid out)."""
        if self._height is not None:
            return self._height
        margins = self.contentsMargins()
        return max((item.sizeHint().height() for item in self._items), default=0) + margins.top() + margins.bottom()

    def _place(self, rect: QRect) -> int:
        """Lays the items out in `rect`; returns the height used."""
        margins = self.contentsMargins()
        area = rect.adjusted(margins.left(), margins.top(), -margins.right(), -margins.bottom())
        x, y, line_height = area.x(), area.y(), 0
        for index, item in enumerate(self._items):
            size = item.sizeHint()
            last = index == len(self._items) - 1
            width = max(self._status_min, area.right() + 1 - x) if last else min(size.width(), area.width())
            if x > area.x() and x + width > area.right() + 1:
                x, y, line_height = area.x(), y + line_height + self.spacing(), 0
                width = area.width() if last else width
            item.setGeometry(QRect(QPoint(x, y), QSize(width, size.height())))
            x += width + self.spacing()
            line_height = max(line_height, size.height())
        return y + line_height - rect.y() + margins.bottom()


def controls_row(labelled: tuple[tuple[str, QWidget], ...], toggle: QWidget, status: QLabel,
                 spacing: int) -> WrappingRow:
    """The row above a plot view: labelled pickers, a check box, then a status label that takes the rest of the
    width and never widens the panel with a long text. Each label stays with its picker when the row wraps."""
    status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    row = WrappingRow(spacing=6)
    row.setContentsMargins(4, 2, 4, 0)
    for text, widget in labelled:
        pair = QWidget()
        pair_layout = QHBoxLayout(pair)
        pair_layout.setContentsMargins(0, 0, spacing - 6, 0)
        pair_layout.setSpacing(4)
        pair_layout.addWidget(QLabel(text))
        pair_layout.addWidget(widget)
        row.addWidget(pair)
    row.addWidget(toggle)
    row.addWidget(status)
    return row


class MessageCard(QLabel):
    """The one overlay of every plot panel: a card centred over its parent, a third of the way down, that says
    why there is nothing (current) to plot. Hidden until `say` has something to say."""

    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setWordWrap(True)
        self.setStyleSheet("QLabel { background: rgba(255, 255, 255, 225); color: #222; border: 1px solid #999;"
                           " border-radius: 6px; padding: 12px; font-size: 13px; }")
        self.hide()

    def say(self, text: str) -> None:
        """Shows `text` over the parent; empty text hides the card."""
        if not text:
            self.hide()
            return
        self.setText(text)
        self.place()
        self.show()
        self.raise_()

    def place(self) -> None:
        """Centred for the parent's size (call it when the parent is resized)."""
        parent = self.parentWidget()
        width = min(max(parent.width() - 40, 100), 560)
        self.setFixedWidth(width)
        self.adjustSize()
        self.move((parent.width() - width) // 2, max((parent.height() - self.height()) // 3, 0))

def hatch(color: QColor, cross: bool = False) -> QBrush:
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
        self._pad_hatch = hatch(PAD_LINES)
        self._mask_hatch = hatch(MASK_LINES, cross=True)
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


class CellHatch(pg.GraphicsObject):
    """Hatches cells of an image plot (row, step): the batch mask's padding that no mask hid. Add with
    ignoreBounds=True."""

    def __init__(self, color: QColor):
        super().__init__()
        self.cells = np.zeros((0, 0), dtype=bool)
        self._runs: list[tuple[int, int, int]] = []      # (row, start, stop)
        self._hatch = hatch(color)
        self.setZValue(5)

    def set_cells(self, cells: np.ndarray) -> None:
        cells = np.asarray(cells, dtype=bool)
        if np.array_equal(cells, self.cells):
            return
        self.prepareGeometryChange()
        self.cells = cells.copy()
        self._runs = [(row, start, stop) for row in range(cells.shape[0]) for start, stop in runs(cells[row])]
        self.update()

    def boundingRect(self) -> QRectF:
        rows, steps = self.cells.shape if self.cells.ndim == 2 else (0, 0)
        return QRectF(-0.5, -0.5, steps, rows) if self._runs else QRectF()

    def paint(self, painter: QPainter, *args) -> None:
        if not self._runs:
            return
        transform = painter.transform()
        painter.save()
        painter.resetTransform()   # hatch in device pixels, whatever the zoom
        for row, start, stop in self._runs:
            painter.fillRect(transform.mapRect(QRectF(start - 0.5, row - 0.5, stop - start, 1)), self._hatch)
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
        return [(spacing, [float(v) + 0.0 for v in values]) for spacing, values in levels]   # + 0.0: no "-0"


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


def bar_range(scale: Scale) -> tuple[float, float]:
    """The y range of bars drawn on `scale`: it holds 0 and every value of the layer, for every row."""
    lo, hi = min(scale.lo, 0.0), max(scale.hi, 0.0)
    margin = 0.06 * (hi - lo or 1.0)
    return lo - (margin if lo < 0 else 0.0), hi + margin


class BarPlot:
    """A PlotItem that shows a vector as bars (optionally with value labels) or a (features × T) sequence as
    an image with padded steps marked; both on the scale of the layer they come from."""

    def __init__(self, plot: pg.PlotItem, fg: QColor):
        self.plot = plot
        self.fg = fg
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8, pen=pg.mkPen(None))
        plot.addItem(self.bars)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setColorMap(pg.colormap.get(SEQUENTIAL))
        self.image.hide()
        plot.addItem(self.image)
        self.overlay = StepOverlay()
        plot.addItem(self.overlay, ignoreBounds=True)
        self.labels: list[pg.TextItem] = []
        self.values = np.zeros(0, dtype=np.float32)
        self.mode = "bars"
        self._length: int | tuple = -1
        self._y_range: tuple[float, float] | None = None
        self._colour_map = SEQUENTIAL
        self.font: QFont | None = None        # the value labels' font in presentation mode

    def show_bars(self, values: np.ndarray, y_range: tuple[float, float], *, labels: bool = False,
                  highlight: int | None = None) -> None:
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
        if len(values) != self._length or y_range != self._y_range:
            self._length, self._y_range = len(values), y_range
            self.plot.setXRange(-0.6, max(len(values), 1) - 0.4, padding=0)
            self.plot.setYRange(*y_range, padding=0)

    def show_image(self, matrix: np.ndarray, padded: np.ndarray, masked: np.ndarray | None, scale: Scale) -> None:
        """matrix: (T, features), drawn with the colour map and levels of `scale`."""
        image = np.ascontiguousarray(matrix.T)
        if scale.colour_map != self._colour_map:
            self._colour_map = scale.colour_map
            self.image.setColorMap(pg.colormap.get(scale.colour_map))
        if self.mode != "image":
            self.bars.setOpts(x=[], height=[])
            self.bars.hide()
            self._set_labels(None)
            self.image.show()
            self.mode = "image"
            self._length = -1
        self.image.setImage(image, levels=(scale.lo, scale.hi), autoLevels=False)
        self.image.setRect(QRectF(-0.5, -0.5, image.shape[1], image.shape[0]))
        self.overlay.set_steps(padded, masked)
        self.values = image
        if image.shape != self._length:
            self._length = image.shape
            self._y_range = None
            self.plot.setYRange(-0.5, image.shape[0] - 0.5, padding=0)
            self.plot.setXRange(-0.5, image.shape[1] - 0.5, padding=0)

    def clear(self) -> None:
        self.bars.setOpts(x=[], height=[])
        self.image.clear()
        self.overlay.clear()
        self._set_labels(None)
        self.values = np.zeros(0, dtype=np.float32)

    def set_foreground(self, fg: QColor) -> None:
        self.fg = fg
        for label in self.labels:
            label.setColor(fg)

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
