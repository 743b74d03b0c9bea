"""The attention weights over time of the selected sequence, when the stack has attention pooling; the plot
leaves the layout when there is none."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor

from .base import Plot
from .items import StepOverlay
from .state import HIGHLIGHT


class AttentionPlot(Plot):
    name = "attention"
    blank_title = "attention weights"
    stretch = 2

    def __init__(self, state, view, row: int, col: int):
        super().__init__(state, view, row, col, "timestep", "weight")
        self.curve = pg.PlotDataItem(stepMode="center", fillLevel=0, pen=pg.mkPen(HIGHLIGHT, width=2),
                                     brush=QColor(242, 142, 43, 90))
        self.plot.addItem(self.curve)
        self.overlay = StepOverlay()
        self.plot.addItem(self.overlay, ignoreBounds=True)
        self.plot.setMouseEnabled(y=False)

    def weights(self) -> tuple[str, np.ndarray] | None:
        """(layer name, (B, T) weights) of the stack's attention pooling, if any."""
        if self.state.result is None:
            return None
        for layer in self.state.result.layers:
            for key, value in layer.extras.items():
                if key.endswith("/attention") and value.ndim == 2:
                    return layer.name, value
        return None

    def row_weights(self) -> np.ndarray | None:
        found = self.weights()
        if found is None or self.state.selected_row is None:
            return None
        return np.asarray(found[1][self.state.selected_row], dtype=np.float32)

    def update(self) -> None:
        found = self.weights()
        if found is None:
            self.curve.setData([], [])
            self.overlay.clear()
            self.show_in_layout(False)
            return
        self.show_in_layout(True)
        name, _ = found
        values = np.nan_to_num(self.row_weights())
        steps = len(values)
        self.curve.setData(np.arange(steps + 1, dtype=np.float32) - 0.5, values)
        padded, _ = self.state.row_steps(None, steps)
        self.overlay.set_steps(padded)
        top = float(values.max()) if steps else 1.0
        self.plot.setYRange(0, max(top, 1e-6) * 1.12, padding=0)
        self.title(f"attention weights of <b>{name}</b>, line {self.state.line} "
                   f"(softmax over valid steps, sum {values.sum():.2f})")

    def clear(self) -> None:
        super().clear()
        self.curve.setData([], [])
        self.overlay.clear()

    def describe(self, x: float, y: float) -> str:
        weights = self.row_weights()
        step = int(np.floor(x + 0.5))
        if weights is not None and 0 <= step < len(weights):
            return f"line {self.state.line} · t={step} · attention weight {weights[step]:.4f}{self.step_state(step)}"
        return ""
