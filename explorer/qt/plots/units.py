"""A few units of the selected layer over time for the selected sequence: the ones the user typed, else
the ones that vary most on the valid steps."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor

from .base import Plot
from .items import StepOverlay
from .state import MAX_UNIT_CURVES, SYMBOLS_UP_TO, UNIT_COLORS, is_time_major, row_matrix, swatch, top_variance_units


class UnitsPlot(Plot):
    name = "units"
    blank_title = "units over time"
    stretch = 3

    def __init__(self, state, view, row: int, col: int):
        super().__init__(state, view, row, col, "timestep", "value")
        self.plot.setClipToView(True)
        self.plot.setDownsampling(auto=True, mode="peak")
        self.pool = []
        for i in range(MAX_UNIT_CURVES):
            curve = pg.PlotDataItem(pen=pg.mkPen(UNIT_COLORS[i], width=2), symbol="o", symbolSize=5,
                                    symbolPen=None, symbolBrush=UNIT_COLORS[i])
            curve.hide()
            self.plot.addItem(curve)
            self.pool.append(curve)
        self.overlay = StepOverlay()
        self.plot.addItem(self.overlay, ignoreBounds=True)
        self.plot.addLine(y=0, pen=pg.mkPen(QColor(128, 128, 128, 120)))
        self.plot.setAutoVisible(y=True)
        self.units: list[int] = []        # the units drawn, one curve each
        self.auto = True                  # chosen by variance (True) or typed by the user
        self._symbol = "o"

    @property
    def curves(self) -> list[pg.PlotDataItem]:
        return self.pool[:len(self.units)]

    def update(self) -> None:
        state = self.state
        layer, row, line = state.layer, state.selected_row, state.line
        if not is_time_major(layer):
            self._hide_curves()
            self.show_in_layout(False)      # the heatmap's title says why
            return
        self.show_in_layout(True)
        matrix = row_matrix(layer, row)
        steps, features = matrix.shape
        padded, masked = state.row_steps(layer, steps)
        typed = [unit for unit in (state.typed_units or []) if unit < features]
        self.auto = not typed
        self.units = typed if typed else top_variance_units(matrix, ~padded & ~masked)
        symbol = "o" if steps <= SYMBOLS_UP_TO else None     # dots mark the steps of short sequences
        if symbol != self._symbol:
            self._symbol = symbol
            for curve in self.pool:
                curve.setSymbol(symbol)
        x = np.arange(steps, dtype=np.float32)
        for i, curve in enumerate(self.pool):
            if i < len(self.units):
                curve.setData(x, matrix[:, self.units[i]])
                curve.show()
            elif curve.isVisible():
                curve.setData([], [])
                curve.hide()
        self.overlay.set_steps(padded, masked)
        names = " ".join(swatch(UNIT_COLORS[i], f"unit {unit}") for i, unit in enumerate(self.units))
        how = "most varying on valid steps" if self.auto else "chosen"
        self.title(f"{layer.name} units, line {line}: {names} ({how})")

    def _hide_curves(self) -> None:
        self.units = []
        for curve in self.pool:
            curve.setData([], [])
            curve.hide()
        self.overlay.clear()

    def clear(self) -> None:
        super().clear()
        self._hide_curves()

    def describe(self, x: float, y: float) -> str:
        state = self.state
        layer = state.layer
        if not is_time_major(layer):
            return ""
        matrix = row_matrix(layer, state.selected_row)
        step = int(np.floor(x + 0.5))
        if not 0 <= step < matrix.shape[0]:
            return ""
        values = " ".join(f"u{unit}={matrix[step, unit]:+.3f}" for unit in self.units)
        return f"line {state.line} · t={step} · {values}{self.step_state(step)}"
