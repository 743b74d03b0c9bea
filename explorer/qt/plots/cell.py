"""Inside the cell: the gates of an LSTM or GRU layer (units × time), how often each unit's gate is saturated, and
how far back the output can "see" (gradient norms through time), for the selected sequence.

`CellPanel(session, runs, time_plot)` follows the session: its current run, its selected layer and line; the
time axis is linked with `time_plot` (the other plots') and padded steps are hatched the same way. The numbers
are computed in the engine after each run (gates and gradients of the selected sequence only), and only
while this tab is shown; until they arrive the panel says that it is updating, and while the session's result
is not current the panel says why over its plots.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (QCheckBox, QComboBox, QLabel, QSpinBox, QVBoxLayout,
                               QWidget)

from ...core.registry import SIGMOID_GATES
from ...requests import CELL
from ...session import Session
from ..stale import StateGate
from ..style import escape
from .items import IntAxis, MessageCard, StepOverlay, WrappedPlot, controls_row, scale_axes
from .state import LEFT_AXIS_WIDTH, UNIT_COLORS, palette_colours, swatch, title_size, value_scale

LOW, HIGH = 0.1, 0.9            # a gate below LOW or above HIGH is saturated
SATURATION_WIDTH = 110
GATE_HELP = {
    "input": "how much of the candidate enters the cell",
    "forget": "how much of the cell state is kept (1 = remember)",
    "candidate": "the new content offered to the state",
    "output": "how much of the cell state shows in h",
    "cell": "the cell state c",
    "update": "how much of the old h is kept (1 = remember)",
    "reset": "how much of the old h feeds the candidate",
}


class GradientAxis(pg.AxisItem):
    """On a log scale, labels only 1, 2 and 5 × 10ⁿ (only 10ⁿ over more than two decades): the minor labels
    pyqtgraph writes at every 2…9 × 10ⁿ run into each other."""

    def logTickStrings(self, values, scale, spacing):
        low, high = self.range if self.range else (0.0, 1.0)
        keep = (1,) if abs(high - low) > 2 else (1, 2, 5)
        strings = []
        for value in values:
            mantissa = 10 ** (value - np.floor(value + 1e-9))
            strings.append(f"{10 ** value:.3g}" if round(mantissa) in keep and abs(mantissa - round(mantissa)) < 1e-3
                           else "")
        return strings


def saturation(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per unit, the share of valid steps where the gate is below LOW or above HIGH. values: (T, units)."""
    chosen = values[np.asarray(valid, bool)]
    if not len(chosen):
        return np.zeros(values.shape[1])
    return np.mean((chosen < LOW) | (chosen > HIGH), axis=0)


def called(prefix: str) -> tuple[str, str]:
    """A gates prefix as (the call it belongs to, its direction): "gru_1/forward" → ("gru_1", "forward"),
    "reader/call/1" → ("reader/call/1", "")."""
    base, _, direction = prefix.rpartition("/")
    return (base, direction) if direction in ("forward", "backward") and base else (prefix, "")


def gate_groups(keys) -> dict[str, list[str]]:
    """"lstm_1" or "gru_1/forward" → its gate names, in order, from keys like "gru_1/forward/update"."""
    groups: dict[str, list[str]] = {}
    for key in keys:
        prefix, gate = key.rsplit("/", 1)
        groups.setdefault(prefix, []).append(gate)
    return groups


class CellPanel(QWidget):
    """Gate heatmap, saturation bars and gradient-through-time curves of one sequence.

    Items for tests and callers: gate_plot, gate_image, gate_overlay, saturation_plot, saturation_bars,
    gradient_plot, gradient_curves (name → curve), gradient_overlay, layer_combo, gate_combo, target_spin,
    log_check, state_label, message_label, data (the numbers shown, with the run "result" and the "row" they
    belong to), row (the sequence followed), stale."""

    answered = Signal()   # the engine's reply to the last request is on screen (numbers or its error)

    def __init__(self, session: Session, runs, time_plot: pg.PlotItem, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.runs = runs
        self.time_plot = time_plot
        self.text_scale = 1.0          # presentation mode (set_text_scale)
        self.data: dict | None = None
        self.row: int | None = None
        self.stale = True
        self._ran = None                 # (spec, text, device) of the run on screen
        self._request_id = 0
        self.waiting = False     # a request is out and its reply not yet shown
        self._asked = (None, None)           # (run result, row) of the request in flight
        self._wanted_layer: str | None = session.selected_layer
        self._fg = self.palette().color(QPalette.ColorRole.WindowText)
        self._build()
        self._attach()

    # --- construction ---

    def _build(self) -> None:
        self.layer_combo = QComboBox()
        self.layer_combo.setPlaceholderText("none")
        self.layer_combo.setToolTip("the LSTM or GRU layer (and direction) whose gates are shown")
        self.layer_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.layer_combo.activated.connect(lambda _: self._on_layer_chosen())
        self.gate_combo = QComboBox()
        self.gate_combo.setPlaceholderText("none")
        self.gate_combo.setToolTip("the gate drawn as a heatmap")
        self.gate_combo.activated.connect(lambda _: self._draw_gates())
        self.target_spin = QSpinBox()
        self.target_spin.setRange(-1, 0)
        self.target_spin.setSpecialValueText("largest")
        self.target_spin.setValue(-1)
        self.target_spin.setToolTip("the output unit whose gradient is followed back in time "
                                    "(largest: the sequence's largest output)")
        self.target_spin.valueChanged.connect(lambda _: self._invalidate(request=True))
        self.steps_combo = QComboBox()
        self.steps_combo.setToolTip("the input whose steps the gradients are drawn over: the output's gradient at "
                                    "that input, and at each layer that runs over its steps")
        self.steps_combo.activated.connect(lambda _: self._invalidate(request=True))
        self.log_check = QCheckBox("log scale")
        self.log_check.setChecked(True)
        self.log_check.setToolTip("gradient norms on a logarithmic axis: vanishing gradients span many decades")
        self.log_check.toggled.connect(lambda _: self._draw_gradients())
        self.state_label = QLabel(" ")
        controls = controls_row((("layer", self.layer_combo), ("gate", self.gate_combo),
                                 ("output unit", self.target_spin), ("gradients over", self.steps_combo)),
                                self.log_check, self.state_label, spacing=8)
        self.steps_combo.parentWidget().hide()   # shown for a model of several sequence inputs

        view = pg.GraphicsLayoutWidget()
        view.ci.setSpacing(4)
        self.view = view
        self.gate_plot = self._new_plot(0, 0, "timestep", "unit", int_left=True)
        self.gate_plot.invertY(True)
        self.gate_image = pg.ImageItem(axisOrder="row-major")
        self.gate_plot.addItem(self.gate_image)
        self.gate_overlay = StepOverlay()
        self.gate_plot.addItem(self.gate_overlay, ignoreBounds=True)
        self.colorbar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get("viridis"), interactive=False,
                                        width=14, colorMapMenu=False)
        self.colorbar.setImageItem(self.gate_image)
        view.addItem(self.colorbar, row=0, col=1)
        self.saturation_plot = WrappedPlot(axisItems={"left": IntAxis("left")})
        view.addItem(self.saturation_plot, row=0, col=2)
        self.saturation_plot.setMenuEnabled(False)
        self.saturation_plot.getAxis("bottom").setTicks([[(0, "0"), (0.5, "½"), (1, "1")]])
        self.saturation_plot.getAxis("left").setStyle(showValues=False)
        self.saturation_plot.getAxis("left").setWidth(6)
        self.saturation_plot.invertY(True)
        self.saturation_plot.setYLink(self.gate_plot)
        self.saturation_plot.setXRange(0, 1, padding=0.04)
        self.saturation_plot.setMouseEnabled(x=False, y=False)
        self.saturation_plot.setMaximumWidth(SATURATION_WIDTH)
        self.saturation_plot.vb.setToolTip(f"per unit: the share of the sequence's valid steps where the gate is "
                                           f"below {LOW} or above {HIGH}")
        self.saturation_bars = pg.BarGraphItem(x0=[], y=[], width=[], height=0.8, pen=pg.mkPen(None),
                                               brush=QColor(242, 142, 43))
        self.saturation_plot.addItem(self.saturation_bars)

        self.gradient_plot = WrappedPlot(axisItems={"bottom": IntAxis("bottom"), "left": GradientAxis("left")})
        view.addItem(self.gradient_plot, row=1, col=0)
        self._style(self.gradient_plot, "timestep", "‖∂ output / ∂ x‖")
        self.gradient_plot.setXLink(self.gate_plot)
        self.gradient_curves: dict[str, pg.PlotDataItem] = {}
        self.gradient_overlay = StepOverlay()
        self.gradient_plot.addItem(self.gradient_overlay, ignoreBounds=True)
        view.ci.layout.setRowStretchFactor(0, 3)
        view.ci.layout.setRowStretchFactor(1, 2)
        for plot in (self.gate_plot, self.gradient_plot):
            plot.enableAutoRange(axis="x", enable=False)
        self._linking = False

        self._hover_proxy = pg.SignalProxy(view.scene().sigMouseMoved, rateLimit=60, slot=self._on_mouse_moved)

        self.message_label = MessageCard(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(controls)
        layout.addWidget(view, 1)
        self._recolour()

    def _new_plot(self, row: int, col: int, bottom: str, left: str, int_left: bool = False) -> pg.PlotItem:
        axes = {"bottom": IntAxis("bottom")}
        if int_left:
            axes["left"] = IntAxis("left")
        plot = WrappedPlot(axisItems=axes)
        self.view.addItem(plot, row=row, col=col)
        self._style(plot, bottom, left)
        return plot

    def _style(self, plot: pg.PlotItem, bottom: str, left: str) -> None:
        plot.getAxis("left").setWidth(LEFT_AXIS_WIDTH)
        for side, text in (("bottom", bottom), ("left", left)):
            plot.getAxis(side).enableAutoSIPrefix(False)
            plot.setLabel(side, text)
        plot.setMenuEnabled(False)

    def _recolour(self) -> None:
        bg, fg = palette_colours(self.palette())
        self._fg = fg
        self.view.setBackground(bg)
        for plot in (self.gate_plot, self.saturation_plot, self.gradient_plot):
            for side in ("left", "bottom"):
                axis = plot.getAxis(side)
                axis.setPen(fg)
                axis.setTextPen(fg)
                if axis.labelText:
                    plot.setLabel(side, axis.labelText, color=fg.name())

    # --- the session ---

    def _attach(self) -> None:
        """Follows the session's runs and selection, links the time axis with the other plots, and asks the
        engine for the gates and gradients of the selected sequence."""
        # the same timesteps as the other plots (by value: the two tabs are never on screen together)
        self.time_plot.vb.sigXRangeChanged.connect(lambda _, span: self._link_x(self.gate_plot, span))
        self.gate_plot.vb.sigXRangeChanged.connect(lambda _, span: self._link_x(self.time_plot, span))
        self.runs.runFinished.connect(self._run_finished)
        self.session.events.selection.connect(self._selection_changed)
        self._gate = StateGate(self.session, self, self._state_changed)

    def _state_changed(self) -> None:
        """A result that is not current is said over the plots, with the reason."""
        state = self._gate.shown
        if state.current or self.data is None:
            if self.data is not None:
                self.message_label.say("")
            return
        self.message_label.say(f"not current: {state.reason}" if state.kind != "failed" else state.reason)

    def _selection_changed(self) -> None:
        self._follow_row()
        if self.session.selected_layer != self._wanted_layer:
            self._follow_layer(self.session.selected_layer)

    def _link_x(self, plot: pg.PlotItem, span) -> None:
        if self._linking:
            return
        self._linking = True
        try:
            plot.setXRange(*span, padding=0)
        finally:
            self._linking = False

    def _run_finished(self, reply) -> None:
        if not reply.ok:
            self._ran = None
            self.data = None
            self._clear()
            self.message_label.say(f"no gates or gradients: {reply.error}" if reply.error else "")
            return
        spec = self.session.result_spec                 # exactly what this run was sent with
        self._ran = (spec, spec.sequences, self.session.device)
        shape = self.session.result.output_shape        # the output units one may follow back
        self.target_spin.blockSignals(True)
        self.target_spin.setMaximum(max(int(np.prod(shape[2:] if len(shape) >= 3 else shape[1:])) - 1, 0))
        self.target_spin.blockSignals(False)
        self._fill_sources(spec)
        self._follow_row(request=False)
        self._invalidate(request=True)

    def _fill_sources(self, spec) -> None:
        """The inputs whose steps the gradients may be over: a model's sequence inputs, when it has several."""
        names = [item.name for item in spec.all_inputs() if item.has_steps] if spec.more_inputs else []
        chosen = self.steps_combo.currentData()
        self.steps_combo.clear()
        for name in names:
            self.steps_combo.addItem(name, name)
        self.steps_combo.setCurrentIndex(names.index(chosen) if chosen in names else 0)
        self.steps_combo.parentWidget().setVisible(len(names) > 1)

    def _follow_row(self, request: bool = True) -> None:
        row = self.session.selected_row(self.session.result) if self.session.state.current else self.row
        if row != self.row:
            self.row = row
            if request:
                self._invalidate(request=True)

    def _follow_layer(self, name: str | None) -> None:
        self._wanted_layer = name
        result = self.session.result
        if name and result is not None and self.steps_combo.count() > 1 \
                and name in [layer.name for layer in (*result.layers, *result.calls)]:
            steps = result.layer(name).steps_from or next(iter(result.inputs))   # the steps the layer runs over
            if steps != self.steps_combo.currentData() and self.steps_combo.findData(steps) >= 0:
                self.steps_combo.setCurrentIndex(self.steps_combo.findData(steps))
                self._invalidate(request=True)
        for index in range(self.layer_combo.count()):
            if called(str(self.layer_combo.itemData(index)))[0] == name:
                self.layer_combo.setCurrentIndex(index)
                self._on_layer_chosen()
                return

    def _invalidate(self, request: bool) -> None:
        self.stale = True
        if request and self.isVisible():
            self.request()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self.stale:
            self.request()
        self._link_x(self.gate_plot, self.time_plot.vb.viewRange()[0])

    def request(self) -> None:
        """Asks the engine for the gates and gradients of the selected sequence of the run on screen."""
        if self._ran is None or self.row is None or not self.session.state.current:
            return
        spec, text, device = self._ran
        target = self.target_spin.value() if self.target_spin.value() >= 0 else None
        source = self.steps_combo.currentData() if self.steps_combo.count() > 1 else None
        self._request_id = self.runs.submit(CELL, self._on_reply, spec=spec, text=text, rows=[self.row], target=target,
                                            device=device, source=source).id
        self._asked = (self.session.result, self.row)     # the run and the sequence these numbers will belong to
        self.stale = False
        self.waiting = True
        self._say("computing gates and gradients…")

    def _on_reply(self, reply) -> None:
        if reply.kind != "cell" or reply.id != self._request_id:
            return
        self.waiting = False
        if reply.cancelled:
            self.stale = True
            return
        if not reply.ok:
            self.data = None
            self._clear()
            self.message_label.say(reply.error or "the gates and gradients could not be computed")
            self._say("")
            self.answered.emit()
            return
        self.message_label.hide()
        result, row = self._asked
        self.data = {**reply.value, "result": result, "row": row}
        later = "" if self.runs.settled else " · updating: a new run is on its way"
        none = "" if self.data["gates"] else "no gates: only LSTM and GRU layers have them · "
        self._say(f"{none}line {self._line()} · {reply.elapsed_ms:.0f} ms{later}")
        self._fill_choices()
        self._draw_gates()
        self._draw_gradients()
        self.answered.emit()

    # --- hover ---

    def _on_mouse_moved(self, args) -> None:
        position = args[0]
        for plot in (self.gate_plot, self.gradient_plot):
            if plot.sceneBoundingRect().contains(position):
                point = plot.vb.mapSceneToView(position)
                self._say(self.describe(plot, point.x(), point.y()))
                return

    def describe(self, plot: pg.PlotItem, x: float, y: float) -> str:
        """The value under the mouse: "step 3, unit 5: forget 0.93" or "step 3: input 2.1e-05, lstm_1 …"."""
        if self.data is None:
            return ""
        step = int(round(x))
        if plot is self.gate_plot:
            key = f"{self.layer_combo.currentData()}/{self.gate_combo.currentText()}"
            values = self.data["gates"].get(key)
            unit = int(round(y))
            if values is None or not 0 <= unit < values.shape[2] or not 0 <= step < values.shape[1]:
                return ""
            padded, _ = self._steps(called(key.rsplit("/", 1)[0])[0], values.shape[1])
            state = " (padded)" if padded[step] else ""
            return f"step {step}{state}, unit {unit}: {self.gate_combo.currentText()} {values[0, step, unit]:.4g}"
        if self.data["gradients"] is None:
            return ""
        result, source = self.data["result"], self.data["gradients"].source
        valid = (result.inputs[source] if source else result).mask[self.data["row"]]
        state = "" if step >= len(valid) or valid[step] else " (padded)"
        norms = {name: values for name, values in self._gradients_drawn()[0].items() if step < values.shape[1]}
        return f"step {step}{state}: " + ", ".join(f"{name} {values[0, step]:.3g}" for name, values in norms.items())

    # --- drawing ---

    def _line(self) -> str:
        return str(self.data["result"].lines[self.data["row"]])

    def _fill_choices(self) -> None:
        groups = gate_groups(self.data["gates"])
        current = self.layer_combo.currentData()
        self.layer_combo.clear()
        for prefix in groups:
            name, direction = called(prefix)
            self.layer_combo.addItem(f"{name} ({direction})" if direction else name, prefix)
        wanted = [prefix for prefix in groups if called(prefix)[0] == self._wanted_layer]
        if current in groups:
            self.layer_combo.setCurrentIndex(list(groups).index(current))
        elif wanted:
            self.layer_combo.setCurrentIndex(list(groups).index(wanted[0]))
        elif groups:
            self.layer_combo.setCurrentIndex(0)     # with a placeholder, a combo box selects nothing by itself
        self.layer_combo.setEnabled(bool(groups))
        self._on_layer_chosen(draw=False)

    def _on_layer_chosen(self, draw: bool = True) -> None:
        if self.data is None:
            return
        groups = gate_groups(self.data["gates"])
        gate = self.gate_combo.currentText()
        gates = groups.get(self.layer_combo.currentData(), [])
        self.gate_combo.clear()
        for name in gates:
            self.gate_combo.addItem(name)
            self.gate_combo.setItemData(self.gate_combo.count() - 1, GATE_HELP.get(name, ""),
                                        Qt.ItemDataRole.ToolTipRole)
        if gate in gates:
            self.gate_combo.setCurrentIndex(gates.index(gate))
        elif gates:
            self.gate_combo.setCurrentIndex(gates.index("forget") if "forget" in gates else 0)
        self.gate_combo.setEnabled(bool(gates))
        if draw:
            self._draw_gates()

    def _steps(self, layer_name: str | None, steps: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """The padded steps of the selected sequence in the input whose steps `layer_name` runs on (a decoder: the
        decoder's input), and the valid steps that the mask its call receives hides. `steps`: the layer's own number
        of steps, when it has steps of its own (RepeatVector, Conv1D "valid"): then nothing is padded."""
        result, row = self.data["result"], self.data["row"]
        shown = {layer.name: layer for layer in (*result.layers, *result.calls)}   # a shared layer's calls too
        seen = result.seen_by(shown[layer_name]) if layer_name in shown else result
        valid = seen.mask[row]
        if steps is not None and steps != len(valid):
            valid = np.ones(steps, bool)
        received = self.data.get("masks", {}).get(layer_name)
        masked = valid & ~received[0] if received is not None and received.shape[1] == len(valid) else None
        return ~valid, masked

    def _draw_gates(self) -> None:
        if self.data is None:
            return
        prefix, gate = self.layer_combo.currentData(), self.gate_combo.currentText()
        key = f"{prefix}/{gate}"
        shown = prefix is not None and key in self.data["gates"]
        for item in (self.gate_plot, self.colorbar, self.saturation_plot):
            item.setVisible(shown)
        self.view.ci.layout.setRowStretchFactor(0, 3 if shown else 0)
        self.view.ci.layout.setRowMaximumHeight(0, 1e6 if shown else 0)
        self.gradient_plot.getAxis("bottom").setLabel("timestep" if shown else
                                                      "timestep · no gates: this stack has no LSTM or GRU layer")
        if not shown:
            return
        values = self.data["gates"][key][0]                 # (T, units)
        layer = called(prefix)[0]
        padded, masked = self._steps(layer, len(values))
        bounded = gate in SIGMOID_GATES and values.size and values.min() >= 0 and values.max() <= 1
        scale = value_scale(values, bounded=bool(bounded))
        levels = (scale.lo, scale.hi)
        self.colorbar.setColorMap(pg.colormap.get(scale.colour_map))
        self.colorbar.setLevels(levels)
        image = np.ascontiguousarray(values.T)
        self.gate_image.setImage(image, levels=levels, autoLevels=False)
        self.gate_image.setRect(QRectF(-0.5, -0.5, image.shape[1], image.shape[0]))
        self.gate_plot.setYRange(-0.5, image.shape[0] - 0.5, padding=0)
        self.gate_overlay.set_steps(padded, masked)
        skipped = ~padded if masked is None else ~padded & ~masked
        backwards = prefix.endswith("/backward") or self._goes_backwards(layer)
        self._title(self.gate_plot, f"{gate} gate of {prefix.replace('/', ' ')}, line {self._line()}: "
                                    f"{GATE_HELP.get(gate, '')}" + (" · read from the last step to the first"
                                                                     if backwards else ""))
        if bounded:
            share = saturation(values, skipped)
            self.saturation_bars.setOpts(x0=np.zeros(len(share)), y=np.arange(len(share)), width=share, height=0.8)
            self._title(self.saturation_plot, f"saturated:<br>{share.mean():.0%} of steps")
        else:
            self.saturation_bars.setOpts(x0=[], y=[], width=[])
            self._title(self.saturation_plot, "saturation:<br>gates in [0, 1]")

    def _goes_backwards(self, layer: str) -> bool:
        spec = self._ran[0] if self._ran else None
        layer = layer.partition("/call/")[0]   # a shared layer's further call runs the same way
        if spec is None or layer not in spec.layer_names():
            return False
        return bool(spec.layers[spec.layer_names().index(layer)].params.get("go_backwards"))

    def _draw_gradients(self) -> None:
        if self.data is None:
            return
        found = self.data["gradients"]
        log = self.log_check.isChecked()
        self.gradient_plot.setLogMode(y=log)
        if found is None:   # no sequence input to follow back (one vector per example)
            for curve in self.gradient_curves.values():
                curve.setData([], [])
            self.gradient_overlay.clear()
            self._title(self.gradient_plot, f"no gradients: {escape(self.data.get('no_gradients', ''))}")
            return
        norms, elsewhere = self._gradients_drawn()
        for name in list(self.gradient_curves):
            if name not in norms:
                self.gradient_plot.removeItem(self.gradient_curves.pop(name))
        legend = []
        for index, (name, values) in enumerate(norms.items()):
            colour = UNIT_COLORS[index % len(UNIT_COLORS)]
            legend.append(swatch(colour, escape(f"{name} ({found.source})" if name == "input" and found.source
                                                else name)))
            curve = self.gradient_curves.get(name)
            if curve is None:
                curve = pg.PlotDataItem(symbol="o", symbolSize=4, symbolPen=None, connect="finite")
                self.gradient_plot.addItem(curve)
                self.gradient_curves[name] = curve
            curve.setPen(pg.mkPen(colour, width=3 if name == "input" else 1.5))
            curve.setSymbolBrush(colour)
            row = values[0].astype(np.float64)
            if log:
                row = np.where(row > 0, row, np.nan)     # exact zeros (masked steps) have no logarithm
            curve.setData(np.arange(len(row)), row)
        self.gradient_plot.enableAutoRange(axis="y")
        result, row = self.data["result"], self.data["row"]
        self.gradient_overlay.set_steps(~(result.inputs[found.source].mask[row] if found.source else result.mask[row]))
        unit = int(found.target[0])
        where = f" at step {int(found.step[0])}" if found.step is not None else ""
        zeros = " · 0 (masked) not drawn" if log and any((v[0] == 0).any() for v in norms.values()) else ""
        over = f" of {found.source}" if found.source else ""
        others = (f" · {escape(', '.join(elsewhere))} run over another input's steps: choose it in "
                  "<i>gradients over</i>" if elsewhere else "")
        self._title(self.gradient_plot, f"how much output unit {unit}{where} depends on each step{escape(over)}, "
                                        f"line {self._line()}{zeros}{others}<br>" + " ".join(legend))

    def _gradients_drawn(self) -> tuple[dict[str, np.ndarray], list[str]]:
        """The gradient norms over the steps of the input they were taken for (all of them with one input), and the
        layers left out, whose time axis is another input's (a decoder's, when the gradient is over the source)."""
        found, result = self.data["gradients"], self.data["result"]
        if not found.source:
            return dict(found.norms), []
        first = next(iter(result.inputs))
        names = [layer.name for layer in (*result.layers, *result.calls)]
        drawn = {name: values for name, values in found.norms.items()
                 if name == "input" or name not in names or (result.layer(name).steps_from or first) == found.source}
        return drawn, [name for name in found.norms if name not in drawn]

    def _title(self, plot: pg.PlotItem, text: str) -> None:
        plot.setTitle(text, color=self._fg.name(), size=title_size(self.text_scale))
        self._wrap_titles()

    def set_text_scale(self, scale: float) -> None:
        """Presentation mode: titles, axis labels and ticks `scale` times their size."""
        self.text_scale = scale
        scale_axes((self.gate_plot, self.saturation_plot, self.gradient_plot), self.colorbar, scale)
        for plot in (self.gate_plot, self.saturation_plot, self.gradient_plot):
            if plot.titleLabel.text:
                self._title(plot, plot.titleLabel.text)

    def _wrap_titles(self) -> None:
        """Titles wrap to the width the view gives their plot (a long title never widens its plot)."""
        width = self.view.width() - LEFT_AXIS_WIDTH - 40
        if self.gate_plot.isVisible():
            width -= self.colorbar.width() + SATURATION_WIDTH
        for plot in (self.gate_plot, self.gradient_plot):
            plot.wrap_title(width)
        self.saturation_plot.wrap_title(SATURATION_WIDTH - 20)

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange) \
                and hasattr(self, "view"):
            self._recolour()
            self._draw_gates()
            self._draw_gradients()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._wrap_titles()
        self.message_label.place()

    def _clear(self) -> None:
        self.gate_image.clear()
        self.gate_overlay.clear()
        self.gradient_overlay.clear()
        self.saturation_bars.setOpts(x0=[], y=[], width=[])
        for curve in self.gradient_curves.values():
            curve.setData([], [])

    def _say(self, text: str) -> None:
        self.state_label.setText(text)

