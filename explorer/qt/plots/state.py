"""What every plot shares: the result on screen, the selected layer and row, the units, the colours, and
the one colour-scale rule.

`PlotState` is a plain object the panel owns and passes to each plot; a plot reads it and never keeps a
copy of its own. Pure helpers (no widgets) live here too, so the plots and the tests use one definition.

The colour-scale rule (`PlotState.scale`): a layer's values are drawn on one scale for the whole batch,
whatever the row, by every plot that shows that layer (the heatmap and its colour bar, the bars of a
layer without a time axis, the FC input and the output):
- recurrent outputs: a diverging map centred on 0, ±1 (tanh) or, with "fit colours", the layer's largest
  |value| rounded up to 1, 2 or 5 × 10ⁿ, so that colours stay put over small edits;
- other layers: the range of the layer's finite values on the valid steps of the batch.
An array drawn on its own (a gate of one sequence, a Δ against a pinned run) follows `value_scale`: a gate
bounded in [0, 1] on the sequential map over [0, 1], anything else diverging around 0.

The text-scale rule: titles, axis labels and ticks are TITLE_POINTS times the presentation scale
(`title_size`, and `items.scale_axes` for the axes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtGui import QColor, QPalette

from ...core.spec import RECURRENT_TYPES
from ...core.vocabulary import shown_word
from ..style import is_dark

if TYPE_CHECKING:
    from ...core.run import LayerResult, RunResult

RECURRENT = RECURRENT_TYPES
PLOT_NAMES = ("heatmap", "units", "mask", "fc_input", "output", "attention")
MAX_UNIT_CURVES = 8          # curves only for the units the user picked, never thousands
DEFAULT_UNITS = 3            # shown by default: the units that vary most over the valid steps
SYMBOLS_UP_TO = 40           # unit curves get a dot per step up to this many steps
MAX_VALUE_LABELS = 24        # value labels on output bars up to this many classes
LEFT_AXIS_WIDTH = 58         # equal left axes keep the linked time axes aligned pixel for pixel
COLORBAR_AXIS_WIDTH = 45     # pyqtgraph's own, for its tick labels at the normal text size
WORD_TICKS = 16              # words labelled on a time axis before they thin out
TITLE_POINTS = 9.0           # plot titles, axis labels and ticks, times the presentation scale

# Batch-mask cell codes (MaskPlot.codes). A layer with steps of its own (LayerResult.own_steps) has only its own
# mask to show: OWN_MASKED where it hides a step, NO_MASK everywhere when none leaves the layer.
VALID, PADDED, MASKED, LEAKED, OWN_MASKED, NO_MASK = 0, 1, 2, 3, 4, 5
MASK_COLORS = {          # code: (RGBA, legend)
    VALID: ((76, 120, 168, 255), "valid"),
    PADDED: ((200, 200, 200, 255), "padded"),
    MASKED: ((242, 142, 43, 255), "valid but masked by this layer"),
    LEAKED: ((225, 87, 89, 255), "padded, NOT masked"),
    OWN_MASKED: ((200, 200, 200, 255), "masked by its own mask"),
    NO_MASK: ((176, 160, 208, 255), "no mask: every step computed as data"),
}
PAD_FILL = QColor(150, 150, 150, 175)
PAD_LINES = QColor(70, 70, 70, 200)
MASK_LINES = QColor(242, 142, 43, 230)
UNIT_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]
POSITIVE, NEGATIVE, HIGHLIGHT = QColor(76, 120, 168), QColor(225, 87, 89), QColor(242, 142, 43)
DIVERGING, SEQUENTIAL = "CET-D1", "viridis"


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


def title_size(scale: float) -> str:
    """A plot title's size at the presentation scale."""
    return f"{TITLE_POINTS * scale:.1f}pt"


def swatch(color, text: str) -> str:
    if not isinstance(color, str):
        color = QColor(*color[:3]).name()
    return f'<span style="color:{color}">&#9632;</span>&nbsp;{text}'


def line_label(line: int, steps: int, tokens: int | None = None) -> str:
    """The sequence picker's words: 'line 4 (6 steps)', 'line 2 (1 step)', 'line 7 (3 of 500 steps: truncated)'."""
    if tokens is not None and tokens > steps:
        return f"line {line} ({steps} of {tokens} steps: truncated)"
    return f"line {line} ({steps} step{'' if steps == 1 else 's'})"


def palette_colours(palette: QPalette) -> tuple[QColor, QColor]:
    """(background, foreground) of the plots for a light or a dark palette."""
    return (QColor(25, 25, 25), QColor(220, 220, 220)) if is_dark(palette) else \
        (QColor(255, 255, 255), QColor(30, 30, 30))


# --- the shared state ---

@dataclass(frozen=True)
class Scale:
    """The value range a layer is drawn on. `diverging`: centred on 0 (CET-D1), else sequential (viridis);
    `biggest`: the layer's largest |value|."""

    lo: float
    hi: float
    diverging: bool
    biggest: float

    @property
    def colour_map(self) -> str:
        return DIVERGING if self.diverging else SEQUENTIAL


def value_scale(values: np.ndarray, bounded: bool = False, nice: bool = True) -> Scale:
    """The scale of one array drawn on its own: [0, 1] sequential when `bounded` (a gate), else diverging
    ± its largest finite |value|, rounded up to 1, 2 or 5 × 10ⁿ when `nice`."""
    finite = np.abs(values[np.isfinite(values)])
    biggest = float(finite.max()) if finite.size else 0.0
    if bounded:
        return Scale(0.0, 1.0, False, biggest)
    limit = nice_limit(biggest) if nice else (biggest if biggest > 0 else 1e-6)
    return Scale(-limit, limit, True, biggest)


class PlotState:
    """The run on screen and what is selected in it, shared by every plot of the panel."""

    def __init__(self, palette: QPalette):
        self.result: RunResult | None = None
        self.selected_layer: str | None = None
        self.selected_row: int | None = None
        self.typed_units: list[int] | None = None
        self.fit_colours = True
        self.text_scale = 1.0                      # presentation mode (PlotsPanel.set_text_scale)
        self.bg, self.fg = palette_colours(palette)
        self._scales: dict[tuple, Scale] = {}

    def show(self, result: RunResult | None) -> None:
        self.result = result
        self._scales = {}

    @property
    def layer(self) -> LayerResult | None:
        if self.result is None or self.selected_layer is None:
            return None
        return self.result.layer(self.selected_layer)

    @property
    def seen(self) -> RunResult | None:
        """The run as the selected layer sees it (RunResult.seen_by): its input's padded batch, mask and words."""
        layer = self.layer
        return self.result if layer is None else self.result.seen_by(layer)

    @property
    def title_size(self) -> str:
        return title_size(self.text_scale)

    def time_words(self) -> list[str] | None:
        """The selected sequence's words, one per timestep ("" for padding), when the selected layer's input is
        words."""
        result, row = self.seen, self.selected_row
        vocabulary = getattr(result, "vocabulary", None) if result is not None else None
        if not vocabulary or row is None or result.input.ndim != 2 or result.input.dtype.kind == "f":   # a bag
            return None
        ids = result.input[row]
        return [shown_word(vocabulary[int(i)]) if result.mask[row, t] and 0 <= int(i) < len(vocabulary) else ""
                for t, i in enumerate(ids)]

    @property
    def line(self) -> int:
        """The editor line of the selected row."""
        return self.result.lines[self.selected_row]

    def row_steps(self, layer: LayerResult | None, steps: int) -> tuple[np.ndarray, np.ndarray]:
        """(padded, masked) columns of the selected row, `steps` long; masked = valid steps the layer hides. A layer
        with steps of its own has no padded steps, only the steps its own mask hides (none without a mask)."""
        if layer is not None and layer.own_steps:
            own = layer.mask[self.selected_row] if layer.mask is not None else np.ones(steps, dtype=bool)
            return ~fit(own, steps, True), np.zeros(steps, dtype=bool)
        valid = fit((self.result if layer is None else self.result.seen_by(layer)).mask[self.selected_row], steps, True)
        masked = np.zeros(steps, dtype=bool)
        if layer is not None and layer.mask is not None and layer.mask.ndim == 2:
            masked = valid & ~fit(layer.mask[self.selected_row], steps, True)
        return ~valid, masked

    def scale(self, layer: LayerResult) -> Scale:
        """The colour-scale rule (see the module's docstring): one scale per layer for the whole batch."""
        key = (id(layer), self.fit_colours)
        known = self._scales.get(key)
        if known is not None:
            return known
        biggest = layer_abs_max(layer)
        if layer.type in RECURRENT:
            limit = nice_limit(biggest) if self.fit_colours else (1.0 if biggest <= 1.0 + 1e-6 else biggest)
            scale = Scale(-limit, limit, True, biggest)
        else:
            lo, hi = self._valid_range(layer)
            if hi - lo < 1e-9:
                lo, hi = lo - 0.5, hi + 0.5
            scale = Scale(lo, hi, False, biggest)
        self._scales[key] = scale
        return scale

    def _valid_range(self, layer: LayerResult) -> tuple[float, float]:
        """(min, max) of the layer's finite outputs on the batch's valid steps (every row of a layer without a
        time axis)."""
        output = np.asarray(layer.output)
        batch_valid = self.result.seen_by(layer).mask.astype(bool)
        known = getattr(layer, "value_range", None)
        time_major = is_time_major(layer)
        if (batch_valid.all() or not time_major) and known is not None and np.isfinite(known).all():
            return float(known[0]), float(known[1])      # every cell counts: the engine's range
        cells = output.reshape(output.shape[0], output.shape[1], -1) if time_major else output
        if time_major and batch_valid.shape == cells.shape[:2] and batch_valid.any():
            cells = cells[batch_valid]
        finite = cells[np.isfinite(cells)]
        return (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
