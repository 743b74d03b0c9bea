"""The batch mask at the selected layer: sequences × timesteps, each cell valid, padded, masked by the layer
although it holds data, or padded and not masked (padding the layer computes as data). A click on a row
picks that sequence."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QFontMetricsF
from PySide6.QtWidgets import QGraphicsRectItem

from .base import Plot
from .items import CellHatch
from .state import LEAKED, MASK_COLORS, MASKED, NO_MASK, OWN_MASKED, PAD_LINES, PADDED, VALID, is_time_major, swatch

LINE_LABEL_SPACING = 1.4   # line numbers on the left axis at least this many text lines apart, else thinned


class MaskPlot(Plot):
    name = "mask"
    blank_title = "batch mask"
    stretch = 2

    def __init__(self, state, view, row: int, col: int):
        super().__init__(state, view, row, col, "timestep", "line")
        self.plot.invertY(True)
        self.plot.setMouseEnabled(y=False)
        self.item = pg.ImageItem(axisOrder="row-major")
        lut = np.array([MASK_COLORS[code][0] for code in sorted(MASK_COLORS)], dtype=np.uint8)
        self.item.setLookupTable(lut)
        self.plot.addItem(self.item)
        self.leaked_hatch = CellHatch(PAD_LINES)     # red and hatched: padding computed as data
        self.plot.addItem(self.leaked_hatch, ignoreBounds=True)
        self.plot.vb.setToolTip("click a row to select that sequence")
        self.row_marker = QGraphicsRectItem()
        self.row_marker.setPen(pg.mkPen(state.fg, width=2.5))
        self.row_marker.setZValue(15)
        self.plot.addItem(self.row_marker, ignoreBounds=True)
        self.codes = np.zeros((0, 0), dtype=np.uint8)
        self._shape: tuple | None = None
        self._lines: tuple | None = None
        self._ticks_key: tuple | None = None
        self.plot.vb.sigResized.connect(lambda _view: self._label_lines())

    def recolour(self, fg) -> None:
        super().recolour(fg)
        if hasattr(self, "row_marker"):
            self.row_marker.setPen(pg.mkPen(fg, width=2.5))

    def update(self) -> None:
        state = self.state
        result, layer = state.seen, state.layer
        if layer.own_steps:
            codes, note = own_codes(result, layer)
        else:
            codes, note = self._batch_codes(result, layer)
        self.codes = codes
        self.leaked_hatch.set_cells(codes == LEAKED)
        self.item.setImage(codes, levels=(0, len(MASK_COLORS)), autoLevels=False)
        batch, steps = codes.shape
        if (batch, steps) != self._shape:
            self._shape = (batch, steps)
            self.item.setRect(QRectF(-0.5, -0.5, steps, batch))
            self.plot.setYRange(-0.5, batch - 0.5, padding=0.02)
        self._lines = tuple(result.lines)
        self._label_lines()
        self.row_marker.setRect(QRectF(-0.5, state.selected_row - 0.5, steps, 1))
        seen = np.flatnonzero(np.bincount(codes.ravel(), minlength=len(MASK_COLORS))).tolist()   # not np.unique:
        # NumPy 2's loads numpy.ma on its first call, a stall of 20-60 ms when the first result is shown
        present = set(seen) if layer.own_steps else set(seen) | {VALID, PADDED} - ({PADDED} if LEAKED in codes
                                                                                     else set())
        legend = " ".join(swatch(MASK_COLORS[code][0], MASK_COLORS[code][1] + (" (hatched)" if code == LEAKED else ""))
                          for code in sorted(present))
        what = "mask" if layer.own_steps else "batch mask"
        if layer.steps_from:
            note += f" · the steps of the input {layer.steps_from}"
        self.title(f"{what} at {layer.name} ({batch} × {steps}): {legend}{note}")

    def _batch_codes(self, result, layer) -> tuple[np.ndarray, str]:
        """The batch's steps: valid, padded, masked by the layer although valid, padded and not masked."""
        valid = result.mask.astype(bool)
        codes = np.where(valid, VALID, PADDED).astype(np.uint8)
        note = ""
        unmasked = unmasked_before(result, layer)
        if unmasked is not None and (~valid).any():
            codes[~valid] = LEAKED          # the padding ran as data on the way here
            note = f" ({unmasked} computed the padding as data)" if unmasked != layer.name else \
                " (no mask reaches this layer)"
        elif is_time_major(layer) and layer.mask is not None and layer.mask.shape == valid.shape:
            codes[valid & ~layer.mask] = MASKED
            codes[~valid & layer.mask] = LEAKED
        return codes, note

    def _label_lines(self) -> None:
        """Every line's number where the rows are tall enough, else every n-th: never a smear."""
        lines = self._lines or ()
        axis = self.plot.getAxis("left")
        font = axis.style.get("tickFont")
        text_height = QFontMetricsF(font).height() if font is not None else 12.0
        height = self.plot.vb.height() if self.view.isVisible() else 0     # not laid out yet: every line
        room = int(height / (LINE_LABEL_SPACING * text_height)) if height > 0 else len(lines)
        every = max(1, int(np.ceil(len(lines) / max(room, 1))))
        key = (lines, every)
        if key != self._ticks_key:
            self._ticks_key = key
            axis.setTicks([[(row, str(line)) for row, line in enumerate(lines)][::every]])

    def clear(self) -> None:
        super().clear()
        self.item.clear()
        self.codes = np.zeros((0, 0), dtype=np.uint8)
        self.leaked_hatch.set_cells(np.zeros((0, 0), dtype=bool))
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
        if not (0 <= step < self.codes.shape[1] and 0 <= index < self.codes.shape[0]):
            return ""
        return f"line {result.lines[index]} · t={step} · {MASK_COLORS[int(self.codes[index, step])][1]}"


def own_codes(result, layer) -> tuple[np.ndarray, str]:
    """A layer with steps of its own (Conv1D "valid", pooling, RepeatVector): its own mask over its own steps, or
    NO_MASK everywhere with the layer that dropped the mask; the input's padding does not line up with them."""
    batch, steps = layer.output.shape[:2]
    note = f" · its own {steps} steps (the input has {result.mask.shape[1]})"
    if layer.mask is not None:
        return np.where(layer.mask, VALID, OWN_MASKED).astype(np.uint8), note
    dropped = mask_dropped_at(result, layer)
    why = f"Keras drops the mask at {dropped}" if dropped else "no mask reaches this layer"
    return np.full((batch, steps), NO_MASK, dtype=np.uint8), f"{note}; {why}"


def mask_dropped_at(result, layer) -> str | None:
    """The last layer, up to and including `layer`, that dropped the mask reaching it (mask role "drops")."""
    dropped = None
    for item in result.shown():
        if item.mask_role == "drops":
            dropped = item.name
        if item is layer:
            break
    return dropped


def unmasked_before(result, layer) -> str | None:
    """The first layer, up to and including `layer`, that has a time axis and no mask: the padding reached it and
    ran as data. None when every such layer had a mask, or when no padding ran (one by one)."""
    if result.mode == "one_by_one":
        return None
    for item in result.shown():
        if is_time_major(item) and item.mask is None and item.steps_from == layer.steps_from:
            return item.name
        if item is layer:
            return None
    return None
