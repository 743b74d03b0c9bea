"""What each plot of the panel has: a PlotItem in a view, styled for the palette, with a title and axis
labels set only when they change, and the shared PlotState to draw from."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from ...core.vocabulary import shown_word
from .items import IntAxis, WrappedPlot
from .state import LEFT_AXIS_WIDTH, PlotState


class Plot:
    """One plot; subclasses draw the state in `update()`, empty themselves in `clear()` and describe the
    cell under the mouse in `describe(x, y)`."""

    name = ""
    blank_title = ""
    stretch = 1          # its share of the column's height

    def __init__(self, state: PlotState, view: pg.GraphicsLayoutWidget, row: int, col: int, bottom: str, left: str,
                 int_left: bool = False):
        self.state = state
        self.view = view
        self.row, self.col = row, col
        self.shown = True
        axes = {"bottom": IntAxis("bottom")}
        if int_left:
            axes["left"] = IntAxis("left")
        self.plot = WrappedPlot(axisItems=axes)
        view.addItem(self.plot, row=row, col=col)
        self._title: str | None = None
        self._labels: tuple[str, str] = (bottom, left)
        for side in ("left", "bottom"):
            self.plot.getAxis(side).enableAutoSIPrefix(False)
        self.plot.getAxis("left").setWidth(LEFT_AXIS_WIDTH)
        self.plot.setMenuEnabled(False)
        self.recolour(state.fg)

    def title(self, text: str) -> None:
        if self._title != text:
            self._title = text
            self.plot.setTitle(text, color=self.state.fg.name(), size=self.state.title_size)

    def labels(self, bottom: str, left: str) -> None:
        if self._labels != (bottom, left):
            self._labels = (bottom, left)
            self.plot.setLabel("bottom", bottom, color=self.state.fg.name())
            self.plot.setLabel("left", left, color=self.state.fg.name())

    def recolour(self, fg: QColor) -> None:
        for side in ("left", "bottom"):
            axis = self.plot.getAxis(side)
            axis.setPen(fg)
            axis.setTextPen(fg)
        bottom, left = self._labels
        self.plot.setLabel("bottom", bottom, color=fg.name())
        self.plot.setLabel("left", left, color=fg.name())
        if self._title is not None:
            self.plot.setTitle(self._title, color=fg.name(), size=self.state.title_size)

    def show_in_layout(self, show: bool) -> None:
        """Out of the layout while it has nothing to show: the other plots get its room."""
        if show == self.shown:
            return
        self.shown = show
        layout = self.view.ci
        if show:
            layout.addItem(self.plot, row=self.row, col=self.col)
            self.plot.show()
        else:
            layout.removeItem(self.plot)
            self.plot.hide()
        layout.layout.setRowStretchFactor(self.row, self.stretch if show else 0)

    def crosshair(self) -> pg.InfiniteLine:
        line = pg.InfiniteLine(angle=90, movable=False,
                               pen=pg.mkPen(self.state.fg, width=1, style=Qt.PenStyle.DashLine))
        line.setZValue(20)
        line.hide()
        self.plot.addItem(line, ignoreBounds=True)
        return line

    @property
    def linked_in_time(self) -> bool:
        """The x axis is the batch's timesteps (the crosshair runs through it)."""
        return True

    def update(self) -> None:
        raise NotImplementedError

    def clear(self) -> None:
        self.title(self.blank_title)

    def describe(self, x: float, y: float) -> str:
        return ""

    def token(self, row: int, step: int) -> str:
        """' · token 12' (or the word) at a step of the input, for token inputs."""
        result = self.state.seen
        batch = result.input
        if batch.ndim != 2 or not (row < batch.shape[0] and step < batch.shape[1]):
            return ""
        value = batch[row, step]
        vocabulary = getattr(result, "vocabulary", None)
        if vocabulary and isinstance(value, (int, np.integer)) and 0 <= value < len(vocabulary):
            return f' · "{shown_word(vocabulary[value])}" (token id {value})'
        return f" · token {value}"

    def step_state(self, step: int) -> str:
        """What the selected row's step is: its token, padded, masked by the selected layer."""
        result, row, layer = self.state.seen, self.state.selected_row, self.state.layer
        if layer.own_steps:     # its steps are not the input's: only its own mask says anything about them
            hidden = layer.mask is not None and 0 <= step < layer.mask.shape[1] and not layer.mask[row, step]
            return " · masked by its own mask" if hidden else ""
        if not 0 <= step < result.mask.shape[1]:
            return ""
        text = self.token(row, step) + ("" if result.mask[row, step] else " · padded")
        own = layer.mask
        if result.mask[row, step] and own is not None and own.ndim == 2 and step < own.shape[1] \
                and not own[row, step]:
            text += " · masked by the layer"
        return text
