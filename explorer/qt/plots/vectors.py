"""The FC input (what the first Dense of a head receives, after the recurrent layers) and each model output, for
the selected sequence: bars for a vector, an image for a sequence, on the scale of the layer they come from. A
model with several outputs has an output plot per output; the FC input plot shows the head of the selected layer
(the first head otherwise), with the other heads that take the same tensor."""

from __future__ import annotations

import numpy as np

from ...core.diagnose import format_shape
from .base import Plot
from .items import BarPlot, bar_range
from .state import Scale, is_probability, is_time_major, row_matrix, row_vector

PROBABILITY_RANGE = (0.0, 1.15)


class _VectorPlot(Plot):
    def __init__(self, state, view, row: int, col: int, bottom: str, left: str):
        super().__init__(state, view, row, col, bottom, left)
        self.bars = BarPlot(self.plot, state.fg)

    def recolour(self, fg) -> None:
        super().recolour(fg)
        if hasattr(self, "bars"):
            self.bars.set_foreground(fg)

    def show_sequence(self, layer, values: np.ndarray | None = None, scale: Scale | None = None) -> None:
        """The layer's output for the selected row as an image; `values`: another (B, T, …) tensor of the layer
        (a backward output, a further call), shown on its steps and on `scale` (default: the layer's)."""
        state = self.state
        matrix = row_matrix(layer, state.selected_row) if values is None else \
            np.asarray(values[state.selected_row], dtype=np.float32).reshape(values.shape[1], -1)
        padded, masked = state.row_steps(layer, matrix.shape[0])
        self.bars.show_image(matrix, padded, masked, scale or state.scale(layer))
        self.labels("timestep", "feature" if self.name == "fc_input" else "output")
        self.plot.invertY(True)

    def clear(self) -> None:
        super().clear()
        self.bars.clear()

    def describe(self, x: float, y: float) -> str:
        values, line = self.bars.values, self.state.line
        step, index = int(np.floor(x + 0.5)), int(np.floor(y + 0.5))
        what = "FC input feature" if self.name == "fc_input" else "output"
        if self.bars.mode == "image":
            if 0 <= index < values.shape[0] and 0 <= step < values.shape[1]:
                return f"line {line} · t={step} · {what} {index} = {values[index, step]:+.4f}{self.step_state(step)}"
            return ""
        if 0 <= step < len(values):
            return f"line {line} · {what} {step} = {values[step]:+.4f}"
        return ""


class FcInputPlot(_VectorPlot):
    name = "fc_input"
    blank_title = "FC input"

    def __init__(self, state, view, row: int, col: int):
        super().__init__(state, view, row, col, "feature", "value")
        self.plot.vb.setToolTip("the FC input of the selected layer's head (of the first head when the selected "
                                "layer is in none): select a layer of another head to see its FC input")

    @property
    def linked_in_time(self) -> bool:
        return False

    def head(self):
        """The FC input shown: of the head the selected layer belongs to (its Dense, its output or its source),
        else the first head's; None without a head."""
        heads, selected = self.state.result.fc_inputs, self.state.selected_layer
        return next((fc for fc in heads if selected in (fc.layer, fc.output)), None) or \
            next((fc for fc in heads if selected == fc.source), None) or (heads[0] if heads else None)

    def update(self) -> None:
        state = self.state
        result, row = state.result, state.selected_row
        fc = self.head()
        names = [layer.name for layer in result.layers]
        if fc is None or fc.layer not in names or names.index(fc.layer) == 0:
            self.bars.clear()
            self.title("FC input: no Dense layer after the recurrent layers")
            return
        source = result.layers[names.index(fc.source) if fc.source in names else names.index(fc.layer) - 1]
        origin = source.name if source.feeds == "output" else f"{source.name}'s state {source.feeds}"
        sharing = [other.layer for other in result.fc_inputs if other.source == fc.source]   # heads on one tensor
        heads = ", ".join(f"<b>{name}</b>" for name in sharing)
        count = len(result.fc_inputs)
        others = f" · head {result.fc_inputs.index(fc) + 1} of {count}" if count > len(sharing) else ""
        head = (f"FC input of {heads} from {origin}: {format_shape(fc.shape)} "
                f"(symbolic {format_shape(fc.symbolic_shape)}) · line {state.line}{others}")
        if source.feeds != "output":    # a return_state state: bars on the state's own range
            values = np.asarray(source.passed, dtype=np.float32)
            finite = values[np.isfinite(values)]
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (-1.0, 1.0)
            self.bars.show_bars(values[row].ravel(), bar_range(Scale(lo, hi, False, max(-lo, hi))))
            self.labels("feature", "value")
            self.plot.invertY(False)
            self.title(head + " · a state, passed on instead of the output")
            return
        if is_time_major(source):
            self.show_sequence(source)
            self.title(head + " · a sequence: Dense runs at every step")
            return
        self.bars.show_bars(row_vector(source, row), bar_range(state.scale(source)))
        self.labels("feature", "value")
        self.plot.invertY(False)
        self.title(head)


class OutputPlot(_VectorPlot):
    """The model output number `index` (0: the first, in Keras's order of the model's outputs)."""

    name = "output"
    blank_title = "output"

    def __init__(self, state, view, row: int, col: int, index: int = 0):
        super().__init__(state, view, row, col, "class", "value")
        self.index = index
        if index:
            self.name = f"output_{index + 1}"

    @property
    def linked_in_time(self) -> bool:
        """A time-major output runs over the batch's timesteps (no cross-widget link: pyqtgraph would align
        the two views by pixel position)."""
        return self.bars.mode == "image"

    def update(self) -> None:
        state = self.state
        result, row = state.result, state.selected_row
        output = result.outputs[self.index]
        last, value = result.output_layer(output), result.output_value(output)
        further = "/" in output   # a state, a backward output or a further call of the layer
        named, shape = output.replace("/", " "), value.shape if further else last.shape   # "encoder state h"
        batch_steps = result.seen_by(last).mask.shape[1]    # the steps of the input its time axis follows
        if further and value.ndim == 4 and value.shape[2] == batch_steps:   # attention scores (B, heads, T, S)
            scores = value.mean(axis=1)
            top = float(np.nanmax(scores)) if np.isfinite(scores).any() else 1.0
            self.show_sequence(last, scores, Scale(0.0, top, False, top))   # weights: from 0 to the largest
            self.labels("query step", "key step")
            heads = f"mean of {value.shape[1]} heads" if value.shape[1] > 1 else "one head"
            self.title(f"attention scores of <b>{named}</b> {format_shape(shape)} for line {state.line}: each query "
                       f"step's weights over the {value.shape[3]} key steps, {heads}")
            return
        if (last.time_major and value.ndim >= 3) if further else is_time_major(last):
            self.show_sequence(last, value if further else None)
            steps, outputs = (value.shape[1], int(np.prod(value.shape[2:]))) if further else row_matrix(last, row).shape
            note = ""
            if steps != batch_steps:
                note = f' · <span style="color:#e15759">{steps} steps, the batch has {batch_steps}</span>'
            self.title(f"output of <b>{named}</b> {format_shape(shape)} for line {state.line}: "
                       f"{outputs} outputs at every step{note}")
            return
        vector = np.asarray(value[row], dtype=np.float32).ravel()   # the model's output: a state, if fed or named
        probability = is_probability(vector)
        best = int(np.nanargmax(vector)) if vector.size and np.isfinite(vector).any() else None
        y_range = PROBABILITY_RANGE if probability else bar_range(state.scale(last))
        self.bars.show_bars(vector, y_range, labels=True, highlight=best if probability else None)
        self.labels("class" if probability else "output", "probability" if probability else "value")
        self.plot.invertY(False)
        what = f"class probabilities, most likely {best}" if probability else "values"
        self.title(f"output of <b>{named}</b> {format_shape(shape)} for line {state.line}: {what}")
