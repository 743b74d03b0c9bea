"""The selected layer's output for the selected sequence: units × timesteps as an image with its colour
bar, padded steps hatched; a layer without a time axis is drawn as bars on the same scale."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF

from ...core.diagnose import format_shape
from .base import Plot
from .items import StepOverlay, bar_range
from .state import (MASK_LINES, NEGATIVE, PAD_FILL, POSITIVE, RECURRENT, DIVERGING, is_time_major,
                    row_matrix, row_vector, swatch)


class HeatmapPlot(Plot):
    name = "heatmap"
    blank_title = "layer output (units × timestep): run a stack to see it"
    stretch = 5

    def __init__(self, state, view, row: int, col: int, time_axis: pg.PlotItem):
        super().__init__(state, view, row, col, "timestep", "unit", int_left=True)
        self.time_axis = time_axis
        self.plot.invertY(True)
        self.item = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.item)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8, pen=pg.mkPen(None), brush=POSITIVE)
        self.bars.hide()
        self.plot.addItem(self.bars)
        self.overlay = StepOverlay()
        self.plot.addItem(self.overlay, ignoreBounds=True)
        self.colorbar = pg.ColorBarItem(values=(-1, 1), colorMap=pg.colormap.get(DIVERGING), interactive=False,
                                        width=14, pen=state.fg, colorMapMenu=False)
        self.colorbar.setImageItem(self.item)
        view.addItem(self.colorbar, row=row, col=col + 1)
        self.recolour(state.fg)
        self.timed = True              # time-major: an image linked in time; else bars over the units
        self._shape: tuple | None = None
        self._scale_key: tuple | None = None

    def recolour(self, fg) -> None:
        super().recolour(fg)
        for name in ("axis", "axis_l", "axis_r"):
            axis = getattr(getattr(self, "colorbar", None), name, None)
            if isinstance(axis, pg.AxisItem):
                axis.setPen(fg)
                axis.setTextPen(fg)

    @property
    def linked_in_time(self) -> bool:
        return self.timed

    def _switch(self, timed: bool) -> None:
        if timed == self.timed:
            return
        self.timed = timed
        self._shape = None
        self.item.setVisible(timed)
        self.colorbar.setVisible(timed)
        self.bars.setVisible(not timed)
        if timed:
            self.bars.setOpts(x=[], height=[])
            self.plot.setXLink(self.time_axis)
        else:
            self.plot.setXLink(None)
            self.overlay.clear()
        self.plot.invertY(timed)
        self.plot.getAxis("left").integer = timed
        self.labels("timestep", "unit") if timed else self.labels("unit", "value")

    def update(self) -> None:
        state = self.state
        layer, row, line = state.layer, state.selected_row, state.line
        scale = state.scale(layer)
        if not is_time_major(layer):
            self._switch(False)
            vector = row_vector(layer, row)
            heights = np.nan_to_num(vector, nan=0.0, posinf=0.0, neginf=0.0)
            self.bars.setOpts(x=np.arange(len(vector)), height=heights, width=0.8,
                              brushes=[POSITIVE if h >= 0 else NEGATIVE for h in heights])
            key = (len(vector), bar_range(scale))
            if key != self._shape:
                self._shape = key
                self.plot.setXRange(-0.6, max(len(vector), 1) - 0.4, padding=0)
                self.plot.setYRange(*key[1], padding=0)
            why = ("return_sequences off: the output at the last step" if layer.type in RECURRENT
                   else "no time axis after this layer") + _passed_state(layer)
            nan = " · NaN shown as 0" if np.isnan(vector).any() else ""
            self.title(f"<b>{layer.name}</b> output for line {line}: a vector of {len(vector)} "
                       f"{format_shape(layer.shape)} · {why}{nan} · scale {scale.lo:.2g} to {scale.hi:.2g}<br>"
                       "no unit lines over time: this layer has no time axis")
            return
        self._switch(True)
        matrix = row_matrix(layer, row)
        steps, features = matrix.shape
        padded, masked = state.row_steps(layer, steps)
        self.item.setImage(np.ascontiguousarray(matrix.T), autoLevels=False)
        key = (scale.colour_map, round(scale.lo, 6), round(scale.hi, 6))
        if key != self._scale_key:
            self._scale_key = key
            self.colorbar.setColorMap(pg.colormap.get(scale.colour_map))
            self.colorbar.setLevels(values=(scale.lo, scale.hi))
        self.item.setLevels((scale.lo, scale.hi))
        if (steps, features) != self._shape:
            self._shape = (steps, features)
            self.item.setRect(QRectF(-0.5, -0.5, steps, features))
            self.plot.setYRange(-0.5, features - 0.5, padding=0)
        self.overlay.set_steps(padded, masked)
        per_step = layer.output.shape[2:]   # a step of several axes (a Conv2D's height × channels) is read flat
        flat = f" = {' × '.join(map(str, per_step))}, read in C order" if len(per_step) > 1 else ""
        parts = [f"<b>{layer.name}</b> output, line {line} ({features} units{flat} × {steps} steps)"]
        if scale.diverging:
            if not state.fit_colours:
                parts.append(f"fixed scale ±1, max |value| {scale.biggest:.2g} (tick fit colours to stretch)"
                             if scale.biggest < 0.2 else "fixed scale ±1")
            else:
                parts.append(f"scale ±{scale.hi:.2g} (max |value| {scale.biggest:.2g}; untick fit colours for ±1)")
        if layer.own_steps:
            parts.append(f"its own {steps} steps, not the input's {state.result.mask.shape[1]}")
        elif layer.steps_from:
            parts.append(f"the steps of the input {layer.steps_from}")
        if padded.any():
            parts.append(swatch(PAD_FILL.name(), "hatched = masked by its own mask" if layer.own_steps
                                else "hatched = padded"))
        if masked.any():
            parts.append(swatch(MASK_LINES.name(), "cross-hatched = masked by layer"))
        if layer.mask is None and padded.any():
            parts.append('<span style="color:#e15759">no mask: padding computed as data</span>')
        self.title(" · ".join(parts) + _passed_state(layer))

    def clear(self) -> None:
        super().clear()
        self.item.clear()
        self.bars.setOpts(x=[], height=[])
        self.overlay.clear()
        self._shape = None

    def describe(self, x: float, y: float) -> str:
        state = self.state
        layer, row, line = state.layer, state.selected_row, state.line
        step, index = int(np.floor(x + 0.5)), int(np.floor(y + 0.5))
        if not is_time_major(layer):
            vector = row_vector(layer, row)
            if 0 <= step < len(vector):
                return f"line {line} · {layer.name} unit {step} = {vector[step]:+.4f}"
            return ""
        matrix = row_matrix(layer, row)
        if 0 <= step < matrix.shape[0] and 0 <= index < matrix.shape[1]:
            return f"line {line} · t={step} · unit {index} = {matrix[step, index]:+.4f}{self.step_state(step)}"
        return ""


def _passed_state(layer) -> str:
    """The title's note when the next layer takes one of the layer's return_state states, not this output."""
    if layer.feeds == "output":
        return ""
    return f" · the next layer takes its state {layer.feeds} (return_state), not this output"
