"""The batch mask at the selected layer: sequences × timesteps, each cell valid, padded, masked by the layer
although it holds data, or padded and not masked (padding the layer computes as data). A click on a row
picks that sequence."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QGraphicsRectItem

from .base import Plot
from .state import LEAKED, MASK_COLORS, MASKED, PADDED, VALID, is_time_major, swatch


class MaskPlot(Plot):
    name = "mask"
    blank_title = "batch mask"

    def __init__(self, state, view, row: int, col: int):
        super().__init__(state, view, row, col, "timestep", "line")
        self.plot.invertY(True)
        self.plot.setMouseEnabled(y=False)
        self.item = pg.ImageItem(axisOrder="row-major")
        lut = np.array([MASK_COLORS[code][0] for code in sorted(MASK_COLORS)], dtype=np.uint8)
        self.item.setLookupTable(lut)
        self.plot.addItem(self.item)
        self.plot.vb.setToolTip("click a row to select that sequence")
        self.row_marker = QGraphicsRectItem()
        self.row_marker.setPen(pg.mkPen(state.fg, width=2.5))
        self.row_marker.setZValue(15)
        self.plot.addItem(self.row_marker, ignoreBounds=True)
        self.codes = np.zeros((0, 0), dtype=np.uint8)
        self._shape: tuple | None = None
        self._lines: tuple | None = None

    def recolour(self, fg) -> None:
        super().recolour(fg)
        if hasattr(self, "row_marker"):
            self.row_marker.setPen(pg.mkPen(fg, width=2.5))

    def update(self) -> None:
        state = self.state
        result, layer = state.result, state.layer
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
        self.codes = codes
        self.item.setImage(codes, levels=(0, len(MASK_COLORS)), autoLevels=False)
        batch, steps = codes.shape
        if (batch, steps) != self._shape:
            self._shape = (batch, steps)
            self.item.setRect(QRectF(-0.5, -0.5, steps, batch))
            self.plot.setYRange(-0.5, batch - 0.5, padding=0.02)
        lines = tuple(result.lines)
        if lines != self._lines:
            self._lines = lines
            ticks = [(row, str(line)) for row, line in enumerate(lines)]
            every = max(1, int(np.ceil(len(ticks) / 24)))
            self.plot.getAxis("left").setTicks([ticks[::every]])
        self.row_marker.setRect(QRectF(-0.5, state.selected_row - 0.5, steps, 1))
        seen = np.flatnonzero(np.bincount(codes.ravel(), minlength=len(MASK_COLORS))).tolist()   # not np.unique:
        # NumPy 2's loads numpy.ma on its first call, a stall of 20-60 ms when the first result is shown
        present = sorted(set(seen) | {VALID, PADDED} - ({PADDED} if LEAKED in codes else set()))
        legend = " ".join(swatch(MASK_COLORS[code][0], MASK_COLORS[code][1]) for code in present)
        self.title(f"batch mask at {layer.name} ({batch} × {steps}): {legend}{note}")

    def clear(self) -> None:
        super().clear()
        self.item.clear()
        self.codes = np.zeros((0, 0), dtype=np.uint8)
        self.row_marker.setRect(QRectF())
        self._shape = None

    def row_at(self, scene_position) -> int | None:
        """The row under a scene position (a click), or None outside the plot."""
        view = self.plot.vb
        if not view.sceneBoundingRect().contains(scene_position):
            return None
        return int(np.floor(view.mapSceneToView(scene_position).y() + 0.5))

    def describe(self, x: float, y: float) -> str:
        result = self.state.result
        step, index = int(np.floor(x + 0.5)), int(np.floor(y + 0.5))
        if not (0 <= step < result.mask.shape[1] and 0 <= index < result.mask.shape[0]):
            return ""
        code = int(self.codes[index, step]) if self.codes.shape == result.mask.shape else 0
        return f"line {result.lines[index]} · t={step} · {MASK_COLORS[code][1]}"
