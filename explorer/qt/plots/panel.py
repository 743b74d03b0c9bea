"""The plots panel: what the selected layer does at every timestep of the selected sequence.

Time runs left to right in every time plot and their x axes are linked, so the heatmap, the attention
weights, the unit lines and the batch mask line up step for step; hovering any of them moves one
crosshair through all of them. Padded steps are greyed and hatched by an overlay (never left to the
colour map); steps that the layer's own mask hides although they hold data (e.g. token 0 with
mask_zero) are cross-hatched in orange.

`PlotsPanel(session)` follows the session: the current result is drawn, a result that is not current is
greyed with the reason, the selection (layer, line, units) is the session's, and a pick in the plots
selects in the session. Each plot is its own class (heatmap, units, mask, attention, FC input, output)
drawing from one shared `PlotState`; plot items are created once and updated in place, so a new run
re-plots in a few milliseconds.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QLabel, QLineEdit, QMenu, QSplitter,
                               QVBoxLayout, QWidget)

from ...core.diagnose import format_shape
from ...session import CURRENT, FAILED, NONE, Session
from ..stale import StateGate
from .attention import AttentionPlot
from .heatmap import HeatmapPlot
from .mask import MaskPlot
from .items import MessageCard, controls_row, scale_axes
from .state import (DEFAULT_UNITS, LEFT_AXIS_WIDTH, MAX_UNIT_CURVES, PLOT_NAMES, WORD_TICKS, PlotState, default_layer,
                    is_time_major, line_label, palette_colours, parse_units)
from .units import UnitsPlot
from .vectors import FcInputPlot, OutputPlot

if TYPE_CHECKING:
    from ...core.run import RunResult


class PlotsPanel(QWidget):
    """Heatmap, unit lines, attention and batch mask of the selected layer and sequence, plus the FC input
    and the final output. The parts: `heatmap`, `units_part`, `mask`, `attention`, `fc`, `output` (each a
    Plot with its PlotItem in `.plot` and its items), and the shared `state`."""

    exportRequested = Signal(str, str)  # (plot name, "png" or "svg") from a plot's right-click menu
    vectorsChanged = Signal()           # an output plot came or went (a model with another number of outputs)

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.state = PlotState(self.palette())
        self._build_controls()
        self.time_view = self._new_view()
        self.vector_view = self._new_view()
        self.mask = MaskPlot(self.state, self.time_view, 3, 0)
        self.heatmap = HeatmapPlot(self.state, self.time_view, 0, 0, self.mask.plot)
        self.attention = AttentionPlot(self.state, self.time_view, 1, 0)
        self.units_part = UnitsPlot(self.state, self.time_view, 2, 0)
        self.fc = FcInputPlot(self.state, self.vector_view, 0, 0)
        self.output = OutputPlot(self.state, self.vector_view, 0, 1)
        self.outputs = [self.output]     # one per model output
        self.vector_columns = 2          # FC input and outputs side by side (the window's layout sets it)
        self.parts = {part.name: part for part in (self.heatmap, self.units_part, self.mask, self.fc, self.output,
                                                   self.attention)}
        for part in (self.heatmap, self.attention, self.units_part):
            part.plot.setXLink(self.mask.plot)
        for part in (self.heatmap, self.attention, self.units_part, self.mask):
            part.plot.enableAutoRange(axis="x", enable=False)
        layout = self.time_view.ci.layout
        for part in (self.heatmap, self.attention, self.units_part, self.mask):
            layout.setRowStretchFactor(part.row, part.stretch)
        self.crosshairs = {name: self.parts[name].crosshair() for name in ("heatmap", "attention", "units", "mask",
                                                                           "output")}
        for view in (self.time_view, self.vector_view):
            view.scene().sigMouseClicked.connect(partial(self._on_right_click, view))
        self.time_view.scene().sigMouseClicked.connect(self._on_scene_clicked)
        self._proxies = [pg.SignalProxy(view.scene().sigMouseMoved, rateLimit=60, slot=partial(self._on_mouse_moved,
                                                                                                 view))
                         for view in (self.time_view, self.vector_view)]
        self._steps = -1
        self._names_key: tuple | None = None
        self._lines_key: tuple | None = None
        self._words_key: tuple | None = None

        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.time_view)
        splitter.addWidget(self.vector_view)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([600, 220])
        self.splitter = splitter
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(2)
        outer.addLayout(self._controls)
        outer.addWidget(splitter, 1)
        self.veil = QLabel(self)         # greys the plots while they do not show the current state
        self.veil.setStyleSheet("QLabel { background: rgba(128, 128, 128, 150); }")
        self.veil.hide()
        self.message_label = MessageCard(self)
        self.time_view.installEventFilter(self)
        self.vector_view.installEventFilter(self)
        self._clear_plots()
        session.events.selection.connect(self._selection_changed)
        self._gate = StateGate(session, self, self._state_changed)
        self._state_changed()

    # --- construction ---

    def _new_view(self) -> pg.GraphicsLayoutWidget:
        view = pg.GraphicsLayoutWidget()
        view.setBackground(self.state.bg)
        view.ci.setSpacing(4)
        return view

    def _build_controls(self) -> None:
        self.layer_combo = QComboBox()
        self.layer_combo.setToolTip("the layer whose output the plots show")
        # as wide as its longest entry (the controls wrap onto a second line when the panel is narrow)
        self.layer_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.layer_combo.setMinimumContentsLength(len("lstm_1  (3,"))
        self.layer_combo.activated.connect(self._on_layer_chosen)
        self.row_combo = QComboBox()
        self.row_combo.setToolTip("the sequence (by its line in the editor)")
        self.row_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.row_combo.setMinimumContentsLength(len("line 3 (3 st"))
        self.row_combo.activated.connect(self._on_row_chosen)
        self.units_edit = QLineEdit()
        self.units_edit.setPlaceholderText(f"auto: top {DEFAULT_UNITS} by variance")
        self.units_edit.setToolTip(f"units to draw over time, e.g. 0 5 12 or 0-3 (at most {MAX_UNIT_CURVES}); "
                                   "empty: the units that vary most")
        self.units_edit.setMaximumWidth(190)
        self.units_edit.editingFinished.connect(self._on_units_typed)
        self.fit_colors = QCheckBox("fit colours")
        self.fit_colors.setChecked(True)
        self.fit_colors.setToolTip("recurrent outputs: centre the diverging colour map on 0 and stretch it to the "
                                   "layer's largest |value|, rounded up to 1, 2 or 5 × 10ⁿ so that colours stay put "
                                   "over small edits; untick for the fixed [-1, 1] of tanh")
        self.fit_colors.toggled.connect(self._fit_toggled)
        self.hover_label = QLabel(" ")
        self.hover_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._controls = controls_row((("layer", self.layer_combo), ("sequence", self.row_combo),
                                       ("units", self.units_edit)), self.fit_colors, self.hover_label, spacing=12)

    # --- the session ---

    def _state_changed(self) -> None:
        state, result = self._gate.shown, self.session.result
        if state.kind == CURRENT:
            self._set_greyed("")
            if result is not self.result:
                self.show_result(result)
            self._selection_changed()
            return
        if result is None and state.kind != FAILED:
            self._set_greyed("")
            self.show_message(state.reason if state.kind != NONE else "")
            return
        self._set_greyed(state.reason or "not current")

    def _set_greyed(self, reason: str) -> None:
        """A reason greys every plot and says why; an empty one shows them as current."""
        if not reason:
            self.veil.hide()
            self.show_message("")
            return
        self.veil.show()
        self.veil.raise_()
        self.show_message(reason)

    @property
    def greyed(self) -> bool:
        return not self.veil.isHidden()

    def _selection_changed(self) -> None:
        session = self.session
        if self.result is None:
            return
        typed = None if session.units is None else list(session.units)[:MAX_UNIT_CURVES]
        units_changed = typed != self.state.typed_units
        self.state.typed_units = typed
        self._show_units_text()
        layer, row = session.selected_layer, session.selected_row(self.result)
        if units_changed or (layer is not None and layer != self.selected_layer) or \
                (row is not None and row != self.selected_row):
            self.select(layer=layer, row=row)

    # --- what the panel shows (drawn from the state) ---

    @property
    def result(self) -> RunResult | None:
        return self.state.result

    @property
    def selected_layer(self) -> str | None:
        return self.state.selected_layer

    @property
    def selected_row(self) -> int | None:
        return self.state.selected_row

    def show_result(self, result: RunResult | None) -> None:
        """Draws a run; keeps the selected layer and row while they still exist."""
        self.message_label.hide()
        state = self.state
        if result is None or not result.layers:
            state.show(None)
            self._clear_plots()
            return
        state.show(result)
        names = [layer.name for layer in result.shown()]
        if state.selected_layer not in names:
            state.selected_layer = default_layer(result)
        batch = result.mask.shape[0]
        if state.selected_row is None or not 0 <= state.selected_row < batch:
            state.selected_row = 0 if batch else None
        self._sync_controls()
        self._update()

    def select(self, layer: str | None = None, row: int | None = None) -> None:
        """Selects a layer (by name) and/or a sequence row; unknown names and rows out of range are ignored."""
        state, result = self.state, self.state.result
        if layer is not None and (result is None or any(item.name == layer for item in result.shown())):
            state.selected_layer = layer
        if row is not None and (result is None or 0 <= row < result.mask.shape[0]):
            state.selected_row = int(row)
        if result is not None:
            self._sync_controls()
            self._update()


    def show_message(self, text: str) -> None:
        """A message over the plots (loading, errors, why they are greyed); empty text hides it."""
        if not text:
            self.message_label.hide()
            return
        self.veil.setGeometry(self.splitter.geometry())
        self.message_label.say(text)

    def plots(self) -> dict[str, pg.PlotItem]:
        return {name: self.parts[name].plot for name in (*PLOT_NAMES, *(part.name for part in self.outputs[1:]))}

    def vector_parts(self) -> list:
        """The plots of the lower view: the FC input, then one per model output."""
        return [self.fc, *self.outputs]

    def _sync_outputs(self, count: int) -> None:
        """One output plot per model output: the first always, the others made and removed as models change."""
        count = max(count, 1)
        if count == len(self.outputs):
            return
        while len(self.outputs) < count:
            part = OutputPlot(self.state, self.vector_view, 0, len(self.outputs) + 1, index=len(self.outputs))
            if self.state.text_scale != 1.0:
                part.bars.font = scale_axes([part.plot], None, self.state.text_scale)
            self.outputs.append(part)
            self.parts[part.name] = part
            self.crosshairs[part.name] = part.crosshair()
        while len(self.outputs) > count:
            part = self.outputs.pop()
            self.vector_view.ci.removeItem(part.plot)
            del self.parts[part.name], self.crosshairs[part.name]
        self.vector_columns = len(self.vector_parts())   # side by side until the window's layout says otherwise
        self.vectorsChanged.emit()

    def _sync_controls(self) -> None:
        result = self.result
        names = tuple((layer.name, tuple(layer.shape),
                       tuple((state.name + (" → next layer" if state.name == layer.feeds else ""), tuple(state.shape))
                             for state in layer.states)) for layer in result.shown())
        if names != self._names_key:
            self._names_key = names
            self.layer_combo.blockSignals(True)
            self.layer_combo.clear()
            for name, shape, states in names:   # return_state's states beside their layer
                listed = "".join(f"  {state} {format_shape(state_shape)}" for state, state_shape in states)
                self.layer_combo.addItem(f"{name}  {format_shape(shape)}" + (f"  · states{listed}" if listed else ""),
                                         name)
            self.layer_combo.blockSignals(False)
        index = self.layer_combo.findData(self.selected_layer)
        if index != self.layer_combo.currentIndex():
            self.layer_combo.setCurrentIndex(index)
        parsed = self.session.text_check.parsed      # the tokens typed, before truncation (of the text run)
        seen = self.state.seen                       # the lengths of the input whose steps the layer has
        typed = dict(zip(parsed.lines, parsed.lengths.tolist())) if parsed is not None and self.session.state.current \
            and seen is result and self.session.document.input.has_steps else {}   # a bag's words are no steps
        labels = tuple(line_label(line, int(seen.lengths[row]), typed.get(line)) if row < len(seen.lengths)
                       else f"line {line}" for row, line in enumerate(result.lines))
        if labels != self._lines_key:
            self._lines_key = labels
            self.row_combo.blockSignals(True)
            self.row_combo.clear()
            self.row_combo.addItems(list(labels))
            self.row_combo.blockSignals(False)
        if self.selected_row is not None and self.row_combo.currentIndex() != self.selected_row:
            self.row_combo.setCurrentIndex(self.selected_row)

    def _update(self) -> None:
        state = self.state
        if state.result is None or state.selected_row is None or state.selected_layer is None:
            self._clear_plots()
            return
        layer = state.layer
        steps = layer.output.shape[1] if layer.own_steps else state.seen.mask.shape[1]   # the time axes' span
        if steps != self._steps:
            self._steps = steps
            self.mask.plot.setXRange(-0.5, max(steps, 1) - 0.5, padding=0)
        self._update_time_ticks()
        self._sync_outputs(len(state.result.outputs))
        for part in (self.mask, self.heatmap, self.units_part, self.attention, self.fc, *self.outputs):
            part.update()
        if not self.attention.shown:
            self.crosshairs["attention"].hide()
        self._wrap_titles()

    def _update_time_ticks(self) -> None:
        """Words input: the time axes show the selected sequence's words instead of step numbers."""
        words = None if self.state.layer.own_steps else self.state.time_words()   # the input's words, the input's steps
        on_heatmap = is_time_major(self.state.layer)
        key = (None if words is None else tuple(words), on_heatmap)
        if key == self._words_key:
            return
        self._words_key = key
        ticks = None
        if words is not None:          # every word when there is room, else every stride-th (pyqtgraph's levels)
            labelled = [(t, word) for t, word in enumerate(words) if word]
            stride = max(1, int(np.ceil(len(labelled) / WORD_TICKS)))
            ticks = [labelled[::stride], labelled] if stride > 1 else [labelled]
        for part in (self.heatmap, self.attention, self.units_part, self.mask):
            part.plot.getAxis("bottom").setTicks(ticks if part is not self.heatmap or on_heatmap else None)

    def _clear_plots(self) -> None:
        for part in self.parts.values():
            part.clear()
        for line in self.crosshairs.values():
            line.hide()
        self._steps = -1

    # --- user picks: into the session ---

    def _on_layer_chosen(self, index: int) -> None:
        name = self.layer_combo.itemData(index)
        if name:
            self.select(layer=name)
            self.session.select_layer(name)

    def _on_row_chosen(self, index: int) -> None:
        if index >= 0:
            self.pick_row(index)

    def _on_units_typed(self) -> None:
        try:
            units = parse_units(self.units_edit.text())
        except ValueError:
            self.units_edit.setStyleSheet("QLineEdit { background: #fdd; }")
            self.units_edit.setToolTip("type unit indices, e.g. 0 5 12 or 0-3")
            return
        self.units_edit.setStyleSheet("")
        self.session.set_units(units)

    def _show_units_text(self) -> None:
        typed = self.state.typed_units
        text = "" if typed is None else " ".join(map(str, typed))
        if self.units_edit.text() != text:
            self.units_edit.setText(text)

    def _fit_toggled(self, fit: bool) -> None:
        self.state.fit_colours = fit
        if self.result is not None:
            self._update()

    def pick_row(self, row: int) -> None:
        """The user picked a row: select it here and its line in the session."""
        if self.result is None or not 0 <= row < self.result.mask.shape[0]:
            return
        self.select(row=row)
        self.session.select_line(self.result.lines[row])

    def _on_scene_clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton or self.result is None:
            return
        row = self.mask.row_at(event.scenePos())
        if row is not None:
            self.pick_row(row)

    # --- hover ---

    def _on_mouse_moved(self, view: pg.GraphicsLayoutWidget, args) -> None:
        position = args[0]
        for name, plot in self.plots().items():
            if plot.scene() is not view.scene() or not plot.isVisible():
                continue
            if plot.vb.sceneBoundingRect().contains(position):
                point = plot.vb.mapSceneToView(position)
                self.hover(name, point.x(), point.y())
                return
        self.hover(None, 0, 0)

    def hover(self, plot: str | None, x: float, y: float) -> str:
        """Moves the crosshair to the timestep under (x, y) of `plot` and describes the cell; returns the text."""
        ready = self.result is not None and self.selected_row is not None and plot is not None
        text = self.parts[plot].describe(x, y) if ready else ""
        on_time = plot in self.crosshairs and self.parts[plot].linked_in_time
        step = int(np.floor(x + 0.5))
        for name, line in self.crosshairs.items():
            part = self.parts[name]
            show = on_time and text != "" and part.linked_in_time and (name != "attention" or part.shown)
            if show:
                line.setValue(step)
            line.setVisible(show)
        self.hover_label.setText(text or " ")
        return text

    # --- right click: export ---

    def plot_at(self, scene, position: QPointF) -> str | None:
        """The name of the visible plot under a scene position."""
        for name, plot in self.plots().items():
            if plot.scene() is scene and plot.isVisible() and plot.sceneBoundingRect().contains(position):
                return name
        return None

    @staticmethod
    def show_menu(menu: QMenu, position) -> None:
        """Pops a context menu up (tests replace this: a real one waits for a click)."""
        menu.exec(position)

    def export_menu(self, name: str) -> QMenu:
        """The right-click menu of one plot: save it as PNG or SVG."""
        menu = QMenu(self)
        for fmt in ("png", "svg"):
            action = menu.addAction(f"Save this plot as {fmt.upper()}…")
            action.triggered.connect(partial(self.exportRequested.emit, name, fmt))
        return menu

    def _on_right_click(self, view: pg.GraphicsLayoutWidget, event) -> None:
        if event.button() != Qt.MouseButton.RightButton or self.result is None:
            return
        name = self.plot_at(view.scene(), event.scenePos())
        if name is not None:
            event.accept()
            self.show_menu(self.export_menu(name), event.screenPos().toPoint())

    # --- light and dark ---

    def set_text_scale(self, scale: float) -> None:
        """Presentation mode: titles, axis labels, ticks and value labels `scale` times their size."""
        self.state.text_scale = scale
        font = scale_axes(self.plots().values(), self.heatmap.colorbar, scale)
        for part in self.parts.values():
            part.recolour(self.state.fg)             # titles again, at the new size
        for part in self.vector_parts():
            part.bars.font = font
            for label in part.bars.labels:
                label.setFont(font)
        self._wrap_titles()

    @property
    def text_scale(self) -> float:
        return self.state.text_scale

    def apply_colours(self) -> None:
        """Re-reads the palette (light or dark) and recolours backgrounds, axes, labels, titles and markers."""
        bg, fg = palette_colours(self.palette())
        if (bg, fg) == (self.state.bg, self.state.fg):
            return
        self.state.bg, self.state.fg = bg, fg
        for view in (self.time_view, self.vector_view):
            view.setBackground(bg)
        for part in self.parts.values():
            part.recolour(fg)
        self._wrap_titles()
        for line in self.crosshairs.values():
            line.setPen(pg.mkPen(fg, width=1, style=Qt.PenStyle.DashLine))

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange) \
                and hasattr(self, "parts"):
            self.apply_colours()

    # --- layout ---

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._place_message()

    def _place_message(self) -> None:
        self.veil.setGeometry(self.splitter.geometry())
        self.message_label.place()

    def _wrap_titles(self) -> None:
        """Titles wrap to the width their plot gets from the view (never the other way round)."""
        margin = int(LEFT_AXIS_WIDTH * self.state.text_scale) + 40   # the title spans the view box only
        colorbar = self.heatmap.colorbar
        time_width = self.time_view.width() - (colorbar.width() if colorbar.isVisible() else 0) - margin
        vector_width = self.vector_view.width() / max(self.vector_columns, 1) - margin
        for part in self.parts.values():
            part.plot.wrap_title(vector_width if part.view is self.vector_view else time_width)

    def eventFilter(self, watched, event) -> bool:
        if event.type() == QEvent.Type.Resize and watched in (self.time_view, self.vector_view):
            self._wrap_titles()
        return super().eventFilter(watched, event)
