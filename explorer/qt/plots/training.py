"""The Training panel's plots: the loss and accuracy curves of every training (the earlier ones dashed), and the
Compare tab's Δ heatmap (current − pinned) on a diverging scale of its own (`value_scale`)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette

from ..style import muted_colour
from .items import WrappedPlot, scale_axes
from .state import LEFT_AXIS_WIDTH, title_size, value_scale

CURVE_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


class CurveWidget(pg.PlotWidget):
    """A plot of its own in a panel's layout, whose title wraps to its width."""

    text_scale = 1.0           # presentation mode (TrainingCurves.set_text_scale)

    def __init__(self):
        super().__init__(plotItem=WrappedPlot())

    def wrap_title(self) -> None:
        self.getPlotItem().wrap_title(self.width() - int(LEFT_AXIS_WIDTH * self.text_scale) - 20)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.getPlotItem() is not None:       # pyqtgraph resizes the view before it holds the plot
            self.wrap_title()


def curve_widget(left: str, palette: QPalette) -> CurveWidget:
    """A gridded plot without a context menu, coloured for `palette`."""
    widget = CurveWidget()
    recolour_widget(widget, palette)
    item = widget.getPlotItem()
    item.setLabel("left", left)
    item.showGrid(x=True, y=True, alpha=0.2)
    item.setMenuEnabled(False)
    item.getAxis("left").enableAutoSIPrefix(False)
    widget.setMinimumHeight(100)
    return widget


def recolour_widget(widget: pg.PlotWidget, palette: QPalette) -> None:
    """The palette's background and text colours on a plot, its axes and its legend."""
    foreground = palette.color(QPalette.ColorRole.Text)
    widget.setBackground(palette.color(QPalette.ColorRole.Base))
    item = widget.getPlotItem()
    for name in ("left", "bottom"):
        axis = item.getAxis(name)
        axis.setPen(foreground)
        axis.setTextPen(foreground)
    if item.legend is not None:
        item.legend.setLabelTextColor(foreground)


class TrainingCurves:
    """Loss and accuracy against the step, linked in x: `loss_plot`, `accuracy_plot`, `loss_legend`."""

    def __init__(self, palette: QPalette):
        self.loss_plot = curve_widget("loss", palette)
        self.loss_plot.getPlotItem().setLabel("bottom", "step")
        self.accuracy_plot = curve_widget("accuracy", palette)
        self.accuracy_plot.setXLink(self.loss_plot)
        self.accuracy_plot.setYRange(0, 1.02, padding=0)
        self.accuracy_plot.getPlotItem().setLabel("bottom", "step")
        self.loss_legend = self.loss_plot.getPlotItem().addLegend(offset=(-4, 4), labelTextSize="8pt")
        recolour_widget(self.loss_plot, palette)
        self.text_scale = 1.0            # presentation mode (set_text_scale)
        self._titles = ("", "")

    @property
    def widgets(self) -> tuple[CurveWidget, CurveWidget]:
        return self.loss_plot, self.accuracy_plot

    def draw(self, archived: list[tuple[str, list[float], list[float]]], label: str, loss: list[float],
             accuracy: list[float], restarts: list[int]) -> None:
        """The earlier trainings dashed, the current one solid, a dotted line where the stack changed."""
        for plot in self.widgets:
            plot.getPlotItem().clear()
        self.loss_legend.clear()
        muted = QColor(muted_colour())
        for index, (old_label, old_loss, old_accuracy) in enumerate(archived):
            colour = QColor(CURVE_COLOURS[(index + 1) % len(CURVE_COLOURS)])
            colour.setAlpha(150)
            pen = pg.mkPen(colour, width=1.5, style=Qt.PenStyle.DashLine)
            self.loss_plot.plot(np.arange(1, len(old_loss) + 1), old_loss, pen=pen, name=old_label)
            if old_accuracy:
                self.accuracy_plot.plot(np.arange(1, len(old_accuracy) + 1), old_accuracy, pen=pen)
        if loss:
            pen = pg.mkPen(CURVE_COLOURS[0], width=2)
            self.loss_plot.plot(np.arange(1, len(loss) + 1), loss, pen=pen,
                                name=label + (" (now)" if archived else ""))
            if accuracy:
                self.accuracy_plot.plot(np.arange(1, len(accuracy) + 1), accuracy, pen=pen)
        for step in restarts:
            for plot in self.widgets:
                plot.addItem(pg.InfiniteLine(step + 0.5, angle=90, pen=pg.mkPen(muted, style=Qt.PenStyle.DotLine)))
        self.accuracy_plot.setYRange(0, 1.02, padding=0)

    def titles(self, loss: str, accuracy: str) -> None:
        self._titles = (loss, accuracy)
        for plot, text in zip(self.widgets, self._titles):
            plot.getPlotItem().setTitle(text, size=title_size(self.text_scale))
            plot.text_scale = self.text_scale
            plot.wrap_title()

    def set_text_scale(self, scale: float) -> None:
        """Presentation mode: titles, axis labels and ticks `scale` times their size."""
        self.text_scale = scale
        scale_axes([plot.getPlotItem() for plot in self.widgets], None, scale)
        self.titles(*self._titles)


class DeltaHeatmap:
    """One layer's current − pinned for one sequence: `delta_plot` (units × timesteps, or one row of units),
    `delta_image`, `delta_bar`; steps left out (not valid in both runs) show the grey behind."""

    def __init__(self, palette: QPalette):
        self.delta_plot = curve_widget("unit", palette)
        plot = self.delta_plot.getPlotItem()
        plot.setLabel("bottom", "timestep")
        plot.getAxis("bottom").enableAutoSIPrefix(False)
        grey = QColor(muted_colour())
        grey.setAlpha(90)
        plot.getViewBox().setBackgroundColor(grey)
        self.delta_image = pg.ImageItem(axisOrder="row-major")
        self.delta_plot.addItem(self.delta_image)
        self.delta_bar = pg.ColorBarItem(values=(-1, 1), colorMap=pg.colormap.get(value_scale(np.zeros(1)).colour_map),
                                         interactive=False, width=12, colorMapMenu=False)
        self.delta_bar.setImageItem(self.delta_image, insert_in=plot)

    def clear(self) -> None:
        self.delta_image.clear()

    def set_text_scale(self, scale: float) -> None:
        """Presentation mode: axis labels and ticks (the colour bar's too) `scale` times their size."""
        scale_axes([self.delta_plot.getPlotItem()], self.delta_bar, scale)

    def show(self, values: np.ndarray) -> float:
        """Draws (T, units) as units × timesteps, or a vector as one row of units; returns the scale's ±limit."""
        plot = self.delta_plot.getPlotItem()
        if values.ndim == 2:
            image = values.T
            plot.setLabel("bottom", "timestep")
            plot.setLabel("left", "unit")
        else:
            image = values.reshape(1, -1)
            plot.setLabel("bottom", "unit")
            plot.setLabel("left", "")
        scale = value_scale(image, nice=False)
        self.delta_image.setImage(image.astype(np.float32), autoLevels=False)
        self.delta_bar.setLevels(values=(scale.lo, scale.hi))
        self.delta_image.setRect(-0.5, -0.5, image.shape[1], image.shape[0])
        plot.setRange(xRange=(-0.5, image.shape[1] - 0.5), yRange=(-0.5, image.shape[0] - 0.5), padding=0)
        return scale.hi
