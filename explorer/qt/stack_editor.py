"""The stack editor: input settings and a column of layer cards, each with a live shape badge.

`StackEditor(session)` edits the session's input, seed and layers (`Session.set_stack` after every edit)
and redraws from the session's events: another document or an undo rebuilds the cards, the selection
moves the highlight, and the result's state fills the badges. While the result is not current the
badges are greyed with the reason; after a failure the layers before the failing one show their shapes
(a run of those layers alone), the failing layer its error, and every later layer says it was not built.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from PySide6.QtCore import QEvent, QMimeData, QPoint, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QDrag, QMouseEvent
from PySide6.QtWidgets import (QApplication, QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout,
                               QFrame, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QMenu,
                               QScrollArea, QSizePolicy, QSpinBox, QToolButton, QVBoxLayout, QWidget)

from ..core.diagnose import format_shape
from ..core.prepare import retyped
from ..core.registry import GROUPS, KERAS_STARTERS, TYPES
from ..core.spec import (INPUT_REF, LAYER_PARAMS, MAX_FEATURES, MAX_SEED, MAX_VOCAB, PADDING_WORD,
                         InputSpec, LayerSpec,
                         StackSpec, ngram_widths)
from ..core.spec import layer_label as friendly
from ..core.spec import call_outputs, mask_text, option_text, shown_options
from ..session import FAILED, Session
from .stale import StateGate
from .expression_editor import ExpressionEdit
from .style import (ERROR_COLOUR, MASK_ROLES, SELECTED_BORDER, WARNING_COLOUR, escape, mask_role_colour, mono_font,
                    muted_colour)

MIME_TYPE = "application/x-rnn-explorer-layer"
STANDARDIZE_CHOICES = (("lower case, no punctuation", "lower_and_strip_punctuation"), ("lower case", "lower"),
                       ("no punctuation", "strip_punctuation"), ("as typed", None))
OUTPUT_MODE_CHOICES = (("token ids, a sequence", "int"), ("bag of words: multi-hot", "multi_hot"),
                       ("bag of words: counts", "count"), ("bag of words: tf-idf", "tf_idf"))
SPLIT_CHOICES = (("into words, at whitespace", "whitespace"), ("into characters", "character"),
                 ("typed apart, each token standardised (None)", None))


def palette_groups() -> list[tuple[str, list[str]]]:
    """The add-layer menu: every registered type, in its registry group."""
    groups = [(title, [key for key, kind in TYPES.items() if kind.group == title]) for title in GROUPS]
    return [(title, types) for title, types in groups if types]


class _NoWheelSpinBox(QSpinBox):
    """A spin box that ignores the mouse wheel unless focused, so scrolling the card column edits nothing."""

    def wheelEvent(self, event):
        if self.hasFocus():
            super().wheelEvent(event)
        else:
            event.ignore()


class _NoWheelDoubleSpinBox(QDoubleSpinBox):
    def wheelEvent(self, event):
        if self.hasFocus():
            super().wheelEvent(event)
        else:
            event.ignore()


class _NoWheelComboBox(QComboBox):
    def wheelEvent(self, event):
        if self.hasFocus():
            super().wheelEvent(event)
        else:
            event.ignore()


def _param_widget(layer_type: str, key: str, value: Any, on_change) -> QWidget:
    """One editing widget for one parameter; `on_change(value)` is called with the clean new value."""
    param = TYPES[layer_type].params[key]
    default = param.default
    if layer_type == "keras":
        return _keras_class_widget(param, value, on_change) if key == "class_name" else _config_widget(value, on_change)
    if param.options:
        combo = _NoWheelComboBox()
        for option in param.options:
            combo.addItem("none" if option is None else option, option)
        combo.setMinimumContentsLength(7)    # long names (sparse_sigmoid) must not widen the card column
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setCurrentIndex(max(0, combo.findData(value)))
        combo.currentIndexChanged.connect(lambda _i: on_change(combo.currentData()))
        return combo
    if isinstance(default, bool):
        box = QCheckBox(key)
        box.setChecked(bool(value))
        box.toggled.connect(on_change)
        return box
    if isinstance(default, int):
        spin = _NoWheelSpinBox()
        spin.setRange(1, param.limit or 2**31 - 1)
        spin.setValue(int(value))
        spin.setKeyboardTracking(False)
        spin.valueChanged.connect(on_change)
        return spin
    if isinstance(default, float):
        spin = _NoWheelDoubleSpinBox()
        spin.setRange(-1e9, 1e9)
        spin.setDecimals(3)
        spin.setValue(float(value))
        spin.setKeyboardTracking(False)
        spin.valueChanged.connect(on_change)
        return spin
    if key == "expression":
        edit = ExpressionEdit(str(value))
    else:
        edit = QLineEdit(str(value))
        edit.setFont(mono_font())
    state = {"last": str(value)}

    def finished() -> None:
        text = edit.text()
        if isinstance(edit, ExpressionEdit) and not edit.valid:
            return                      # shown under the field; the layer keeps its last valid expression
        if text.strip() and text != state["last"]:
            state["last"] = text
            if isinstance(edit, ExpressionEdit):
                edit.mark_applied(text)
            on_change(text)

    edit.editingFinished.connect(finished)
    return edit


def _keras_class_widget(param, value: str, on_change) -> QComboBox:
    """The Keras layer card's class: a few common ones to pick, or any class of keras.layers typed in."""
    combo = _NoWheelComboBox()
    combo.setEditable(True)
    combo.addItems(list(param.options))
    combo.setCurrentText(value)
    combo.setMinimumContentsLength(12)
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    state = {"last": value}

    def picked() -> None:
        text = combo.currentText().strip()
        try:
            text = param.check(text)
        except ValueError as problem:
            combo.setToolTip(f"{param.help}\n✖ {problem}")
            return
        if text != state["last"]:
            state["last"] = text
            on_change(text)

    combo.activated.connect(lambda _index: picked())
    combo.lineEdit().editingFinished.connect(picked)
    return combo


def config_text(config: dict) -> str:
    """A card's config as one line of JSON, the layer's own settings before trainable and dtype."""
    plumbing = ("trainable", "dtype")
    ordered = {**{k: v for k, v in config.items() if k not in plumbing},
               **{k: v for k, v in config.items() if k in plumbing}}
    return json.dumps(ordered)


def _config_widget(value: dict, on_change) -> QLineEdit:
    """The Keras layer card's config as JSON; an edit that is not a JSON object is shown, never applied."""
    edit = QLineEdit(config_text(value))
    edit.setFont(mono_font())
    edit.setCursorPosition(0)
    edit.setToolTip(json.dumps(value, indent=1))
    state = {"last": edit.text()}

    def finished() -> None:
        text = edit.text()
        if text == state["last"]:
            return
        try:
            config = json.loads(text)
            if not isinstance(config, dict):
                raise ValueError("the config must be a JSON object {…}")
        except ValueError as problem:
            edit.setStyleSheet(f"color:{ERROR_COLOUR}")
            edit.setToolTip(f"✖ {problem}; the layer keeps its last config")
            return
        edit.setStyleSheet("")
        edit.setToolTip(json.dumps(config, indent=1))
        state["last"] = text
        on_change(config)

    edit.editingFinished.connect(finished)
    return edit


class LayerCard(QFrame):
    """One layer: its type, its parameters, and a badge with its shapes, mask role and messages."""

    paramChanged = Signal(object, str, object)   # card, parameter, value
    typeChanged = Signal(object, str)            # card, new type
    moveRequested = Signal(object, int)          # card, -1 up / +1 down
    removeRequested = Signal(object)
    clicked = Signal(object)

    def __init__(self, layer: LayerSpec, name: str, parent: QWidget | None = None, pairs: int = 2):
        """`pairs`: parameters side by side in a row (1 in a narrow column at a large text scale)."""
        super().__init__(parent)
        self.layer = layer
        self.name = name
        self._selected = False
        self._drag_start: QPoint | None = None
        self.setObjectName("layerCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 6, 8, 6)
        outer.setSpacing(4)

        header = QHBoxLayout()
        header.setSpacing(4)
        self.handle = QLabel("⠿")
        self.handle.setToolTip("Drag to move this layer")
        self.handle.setCursor(Qt.CursorShape.OpenHandCursor)
        self.handle.setStyleSheet("color:palette(placeholder-text); font-size:14pt")
        header.addWidget(self.handle)
        self.name_label = QLabel(name.replace("_", "_\u200b"))   # may break after an underscore, never cut short
        self.name_label.setWordWrap(True)
        self.name_label.setToolTip(name)
        self.name_label.setFont(mono_font())
        self.name_label.setStyleSheet("font-weight:600")
        header.addWidget(self.name_label, 1)
        self.type_combo = _NoWheelComboBox()
        for layer_type in LAYER_PARAMS:
            self.type_combo.addItem(friendly(layer_type), layer_type)
        self.type_combo.setCurrentIndex(self.type_combo.findData(layer.type))
        self.type_combo.setToolTip("The layer's type: changing it keeps the parameters both types share")
        self.type_combo.currentIndexChanged.connect(self._type_picked)
        self.type_combo.setMinimumContentsLength(12)
        self.type_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.up_button = self._tool_button("▲", "Move this layer up", lambda: self.moveRequested.emit(self, -1))
        self.down_button = self._tool_button("▼", "Move this layer down", lambda: self.moveRequested.emit(self, 1))
        self.remove_button = self._tool_button("✕", "Remove this layer", lambda: self.removeRequested.emit(self))
        for button in (self.up_button, self.down_button, self.remove_button):
            header.addWidget(button)
        outer.addLayout(header)
        type_row = QHBoxLayout()       # under the name, so that long names are never cut short
        type_row.setSpacing(6)
        type_label = QLabel("type")
        type_label.setToolTip(self.type_combo.toolTip())
        type_row.addWidget(type_label)
        type_row.addWidget(self.type_combo, 1)
        outer.addLayout(type_row)
        if layer.inputs:   # a branch or a merge: where its tensors come from, as Keras's summary says
            sources = ["the input" if source == INPUT_REF else source for source in layer.inputs]
            if layer.arguments:   # each to a parameter of the call: query=lstm, value=lstm
                sources = [source if argument == "*" else f"{argument}={source}"
                           for argument, source in zip(layer.arguments, sources)]
            self.inputs_label = QLabel("from " + ", ".join(sources))
            self.inputs_label.setFont(mono_font())
            self.inputs_label.setWordWrap(True)
            self.inputs_label.setToolTip("The layers whose outputs this layer takes")
            outer.addWidget(self.inputs_label)
        if layer.mask:   # a mask the model computes and passes itself
            self.mask_label = QLabel(f"mask from {mask_text(layer.mask)}")
            self.mask_label.setFont(mono_font())
            self.mask_label.setWordWrap(True)
            self.mask_label.setToolTip("The tensor this layer's call takes as its mask (mask=…), instead of the mask "
                                       "Keras passes on from the layer before")
            outer.addWidget(self.mask_label)
        if layer.options:   # the call's keyword arguments, as the model called it
            self.options_label = QLabel("called with " + ", ".join(f"{key}={option_text(value)}"
                                                                     for key, value in shown_options(layer).items()))
            self.options_label.setFont(mono_font())
            self.options_label.setWordWrap(True)
            self.options_label.setToolTip("Keyword arguments of the layer's call (not its config), as the model "
                                          "called it: they change what it computes")
            outer.addWidget(self.options_label)
        if layer.returns:   # a Keras layer card whose call returns several tensors
            self.returns_label = QLabel("also returns " + ", ".join(call_outputs(layer, name, 0)[1:]))
            self.returns_label.setFont(mono_font())
            self.returns_label.setWordWrap(True)
            self.returns_label.setToolTip("The tensors the layer's call returns after its first one, which later "
                                          "layers and the model's outputs may take")
            outer.addWidget(self.returns_label)
        if layer.initial_state:   # encoder-decoder: which state starts which of this layer's states
            self.states_label = QLabel("initial state from " + ", ".join(source.replace("/state/", " ")
                                                                          for source in layer.initial_state))
            self.states_label.setFont(mono_font())
            self.states_label.setWordWrap(True)
            self.states_label.setToolTip("The return_state states of other layers that start this layer's states "
                                         "(initial_state), in Keras's order")
            outer.addWidget(self.states_label)
        if layer.calls:   # a shared layer: one card, its weights called again on other tensors
            self.calls_label = QLabel("also applied to " + "; ".join(
                f"{', '.join('the input' if source == INPUT_REF else source for source in call)}"
                + (f" from {', '.join(s.replace('/state/', ' ') for s in layer.call_state(k))}"
                   if layer.call_state(k) else "")
                + (f" with mask {mask_text(layer.call_mask(k))}" if layer.call_mask(k) else "")
                + " → " + ", ".join(call_outputs(layer, name, k))
                for k, call in enumerate(layer.calls, start=1)))
            self.calls_label.setFont(mono_font())
            self.calls_label.setWordWrap(True)
            self.calls_label.setToolTip("A shared layer: the same weights applied again, each call once every tensor "
                                        "it takes exists; call k gives <name>/call/<k> (and its states or backward "
                                        "output as <name>/call/<k>/state/h …)")
            outer.addWidget(self.calls_label)

        self._widgets: dict[str, QWidget] = {}
        params = LAYER_PARAMS[layer.type]
        if params:
            grid = QGridLayout()
            grid.setHorizontalSpacing(6)
            grid.setVerticalSpacing(2)
            row, column = 0, 0
            for key in params:
                widget = _param_widget(layer.type, key, layer.params[key],
                                       lambda value, key=key: self._edited(key, value))
                widget.setToolTip(TYPES[layer.type].params[key].help)
                self._widgets[key] = widget
                if isinstance(widget, QLineEdit):
                    if column:
                        row, column = row + 1, 0
                    label = QLabel(key)
                    label.setToolTip(widget.toolTip())
                    grid.addWidget(label, row, 0)
                    grid.addWidget(widget, row, 1, 1, 2 * pairs - 1)
                    row += 1
                    if isinstance(widget, ExpressionEdit):   # validity, output shape and errors under it
                        grid.addWidget(widget.status_label, row, 1, 1, 2 * pairs - 1)
                        row += 1
                    continue
                if isinstance(widget, QCheckBox):
                    grid.addWidget(widget, row, column, 1, 2)
                else:
                    label = QLabel(key)
                    label.setToolTip(widget.toolTip())
                    grid.addWidget(label, row, column)
                    grid.addWidget(widget, row, column + 1)
                column += 2
                if column >= 2 * pairs:
                    row, column = row + 1, 0
            grid.setColumnStretch(1, 1)
            grid.setColumnStretch(3, 1)
            outer.addLayout(grid)
            self._update_enabled()

        # one word-wrapped label: the three parts go onto two lines when the column is narrow
        self.symbolic_text = "…"    # what the badge says, for callers and tests
        self.batch_text = ""
        self.states_text = ""
        self.mask_role = ""
        self.badge_label = QLabel("")
        self.badge_label.setWordWrap(True)
        self.badge_label.setTextFormat(Qt.TextFormat.RichText)
        self.badge_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        outer.addWidget(self.badge_label)
        self.show_shapes(None, None, None, unknown="…")
        self.message_label = QLabel("")
        self.message_label.setWordWrap(True)
        self.message_label.setTextFormat(Qt.TextFormat.RichText)
        self.message_label.hide()
        outer.addWidget(self.message_label)
        self._apply_style()

    # --- building ---

    def _tool_button(self, text: str, tip: str, slot) -> QToolButton:
        button = QToolButton()
        button.setText(text)
        button.setToolTip(tip)
        button.setAutoRaise(True)
        button.clicked.connect(slot)
        return button

    def param_widget(self, key: str) -> QWidget:
        return self._widgets[key]

    def _update_enabled(self) -> None:
        if "merge_mode" in self._widgets:
            self._widgets["merge_mode"].setEnabled(bool(self.layer.params.get("bidirectional")))
        if "feeds" in self._widgets:
            self._widgets["feeds"].setEnabled(bool(self.layer.params.get("return_state"))
                                              or self.layer.params.get("feeds") != "output")

    def _apply_style(self) -> None:
        border = f"2px solid {SELECTED_BORDER}" if self._selected else "1px solid palette(mid)"
        self.setStyleSheet(f"QFrame#layerCard {{ border:{border}; border-radius:6px; background:palette(base); }}")

    # --- events ---

    def _edited(self, key: str, value: Any) -> None:
        self.layer.params[key] = value
        if self.layer.type == "keras" and key == "class_name":   # another class starts from its own config
            self.layer.params["config"] = copy.deepcopy(KERAS_STARTERS.get(value, {}))
            self._widgets["config"].setText(config_text(self.layer.params["config"]))
        self._update_enabled()
        self.paramChanged.emit(self, key, value)

    def _type_picked(self, _index: int) -> None:
        new_type = self.type_combo.currentData()
        if new_type and new_type != self.layer.type:
            self.typeChanged.emit(self, new_type)

    def set_selected(self, selected: bool) -> None:
        if selected != self._selected:
            self._selected = selected
            self._apply_style()

    @property
    def selected(self) -> bool:
        return self._selected

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._drag_start = event.position().toPoint()
            self.clicked.emit(self)
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        start = self._drag_start
        if start is None or not event.buttons() & Qt.MouseButton.LeftButton:
            return
        if (event.position().toPoint() - start).manhattanLength() < QApplication.startDragDistance():
            return
        self._drag_start = None
        column = self.parentWidget()
        index = column.index_of(self) if isinstance(column, _CardColumn) else -1
        mime = QMimeData()
        mime.setData(MIME_TYPE, str(index).encode())
        drag = QDrag(column if column is not None else self)   # the card itself is rebuilt by the drop
        drag.setMimeData(mime)
        pixmap = self.grab()
        drag.setPixmap(pixmap.scaledToWidth(max(1, int(pixmap.width() * 0.8)),
                                            Qt.TransformationMode.SmoothTransformation))
        drag.setHotSpot(QPoint(10, 10))
        drag.exec(Qt.DropAction.MoveAction)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._drag_start = None
        super().mouseReleaseEvent(event)

    # --- the badge ---

    def show_shapes(self, symbolic: tuple | None, batch: tuple | None, role: str | None, *,
                    stale: bool = False, unknown: str = "?", reason: str = "", states: list | None = None) -> None:
        """`stale`: these shapes are not current (`reason` says why); they are greyed until the next run.
        No `symbolic`: the shape is not known (`unknown` is shown: … before a run, ? after a failed one).
        `states`: return_state's states (run.StateResult), shown on a line of their own."""
        expression = self._widgets.get("expression")
        if isinstance(expression, ExpressionEdit):
            expression.show_shapes(None if symbolic is None else format_shape(symbolic),
                                   format_shape(batch) if symbolic is not None and batch is not None else None,
                                   stale=stale)
        mono = mono_font().family()
        if symbolic is None:
            self.symbolic_text, self.batch_text, self.mask_role, self.states_text = unknown, "", "", ""
            self.badge_label.setText(f'<span style="font-family:\'{mono}\'; font-weight:600; '
                                     f'color:{muted_colour()}">{unknown}</span>')
            self.badge_label.setToolTip(reason or "The shapes appear after a successful run")
            return
        self.symbolic_text = format_shape(symbolic)
        self.batch_text = format_shape(batch) if batch is not None else ""
        self.mask_role = role or "none"
        _, meaning = MASK_ROLES.get(self.mask_role, MASK_ROLES["none"])
        colour = mask_role_colour(self.mask_role)
        muted = f"color:{muted_colour()};" if stale else ""

        def nbsp(text: str) -> str:
            return escape(text).replace(" ", "&nbsp;")

        parts = [f'<span style="font-family:\'{mono}\'; font-weight:600; {muted}">{nbsp(self.symbolic_text)}</span>']
        if self.batch_text:
            parts.append(f'<span style="font-family:\'{mono}\'; color:{muted_colour()}">'
                         f'{nbsp("batch " + self.batch_text)}</span>')
        parts.append(f'<span style="color:{colour}; font-weight:600">{nbsp("mask " + self.mask_role)}</span>')
        self.states_text = " · ".join(f"{state.name} {format_shape(state.symbolic_shape)}" for state in states or [])
        text = " &nbsp;&nbsp; ".join(parts)
        if self.states_text:
            feeds = self.layer.params.get("feeds", "output")
            passed = f" &nbsp; → next layer: {escape(feeds)}" if feeds != "output" else ""
            text += (f'<br><span style="font-family:\'{mono}\'; {muted}">{nbsp("states " + self.states_text)}'
                     f"</span>{passed}")
        if self.layer.params.get("bidirectional") and self.layer.params.get("merge_mode", "concat") is None:
            text += (f'<br><span style="font-family:\'{mono}\'; {muted}">'   # Keras returns both directions
                     f'{nbsp(f"output = forward · backward {self.symbolic_text} as {self.name}/backward")}</span>')
        self.badge_label.setText(text)
        self.badge_label.setToolTip(f"{self.symbolic_text}: the symbolic shape (None = any batch size / any number "
                                    f"of timesteps)\n" + (f"{self.batch_text}: the shape for the sequences in the "
                                                         "editor\n" if self.batch_text else "")
                                    + f"mask {self.mask_role}: {meaning}"
                                    + (f"\n(greyed: {reason or 'not current'})" if stale else ""))

    def show_messages(self, error: str | None, warnings: list[str], note: str = "") -> None:
        """The last run's error on this layer (under the expression of a custom layer), its warnings, and a
        `note` (why a later layer has no shapes)."""
        parts = []
        expression = self._widgets.get("expression")
        if isinstance(expression, ExpressionEdit):
            expression.show_run_error(error)
        elif error:
            parts.append(f'<span style="color:{ERROR_COLOUR}; font-weight:600">✖ {escape(error)}</span>')
        if note:
            parts.append(f'<span style="color:{muted_colour()}">{escape(note)}</span>')
        parts += [f'<span style="color:{WARNING_COLOUR}">⚠ {escape(w)}</span>' for w in warnings]
        self.message_label.setText("<br>".join(parts))
        self.message_label.setVisible(bool(parts))



class _CardColumn(QWidget):
    """The cards, one above the other; accepts cards dropped between others."""

    def __init__(self, editor: StackEditor):
        super().__init__()
        self._editor = editor
        self.setAcceptDrops(True)
        self.layout_ = QVBoxLayout(self)
        self.layout_.setContentsMargins(0, 0, 0, 0)
        self.layout_.setSpacing(6)
        self._indicator = QFrame(self)
        self._indicator.setStyleSheet(f"background:{SELECTED_BORDER}")
        self._indicator.setFixedHeight(3)
        self._indicator.hide()

    def index_of(self, card: LayerCard) -> int:
        return self._editor.cards.index(card) if card in self._editor.cards else -1

    def gap_at(self, y: float) -> int:
        """The gap (0 = before the first card … n = after the last) nearest to `y`."""
        for index, card in enumerate(self._editor.cards):
            if y < card.geometry().center().y():
                return index
        return len(self._editor.cards)

    def _gap_y(self, gap: int) -> int:
        cards = self._editor.cards
        if not cards:
            return 0
        if gap < len(cards):
            return max(0, cards[gap].geometry().top() - 4)
        return cards[-1].geometry().bottom() + 2

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasFormat(MIME_TYPE):
            event.acceptProposedAction()

    def dragMoveEvent(self, event) -> None:
        if not event.mimeData().hasFormat(MIME_TYPE):
            return
        event.acceptProposedAction()
        gap = self.gap_at(event.position().y())
        self._indicator.setGeometry(0, self._gap_y(gap), self.width(), 3)
        self._indicator.show()
        self._indicator.raise_()

    def dragLeaveEvent(self, event) -> None:
        self._indicator.hide()

    def dropEvent(self, event) -> None:
        self._indicator.hide()
        if not event.mimeData().hasFormat(MIME_TYPE):
            return
        try:
            source = int(bytes(event.mimeData().data(MIME_TYPE)).decode())
        except ValueError:
            return
        event.acceptProposedAction()
        gap = self.gap_at(event.position().y())
        # after the drag has finished: the move rebuilds the cards, the dragged one included
        QTimer.singleShot(0, lambda: self._editor.move_to_gap(source, gap))


class _CardScroll(QScrollArea):
    """Never narrower than its cards: the splitter stops here instead of clipping them."""

    def setWidget(self, widget: QWidget) -> None:
        super().setWidget(widget)
        widget.installEventFilter(self)

    def eventFilter(self, watched, event) -> bool:
        if watched is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()      # the cards' minimum width changed (rebuilt, restyled, shown)
        return super().eventFilter(watched, event)

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        inner = self.widget()
        if inner is not None:
            hint.setWidth(inner.minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width()
                          + 2 * self.frameWidth())
        return hint


class StackEditor(QWidget):
    """Edits the session's input, seed and layers; shows each layer's shapes from the session's result."""

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self._spec = session.document.copy()
        self._selected: str | None = session.selected_layer
        self.cards: list[LayerCard] = []
        self.param_pairs = 2

        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        outer.setSpacing(6)
        outer.addWidget(self._build_input())

        self._column = _CardColumn(self)
        holder = QWidget()
        holder_layout = QVBoxLayout(holder)
        holder_layout.setContentsMargins(2, 2, 6, 2)
        holder_layout.addWidget(self._column)
        self.add_button = QToolButton()
        self.add_button.setText("+ Add layer")
        self.add_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.add_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.add_button.setToolTip("Add a layer after the selected one (or at the end)")
        self.add_menu = QMenu(self.add_button)
        for title, types in palette_groups():
            self.add_menu.addSection(title)
            for layer_type in types:
                action = self.add_menu.addAction(friendly(layer_type))
                action.setData(layer_type)
                action.triggered.connect(lambda _checked=False, t=layer_type: self.add_layer(t))
        self.add_button.setMenu(self.add_menu)
        holder_layout.addWidget(self.add_button, 0, Qt.AlignmentFlag.AlignLeft)
        holder_layout.addStretch(1)
        self.scroll = _CardScroll()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(holder)
        self._holder = holder
        outer.addWidget(self.scroll, 1)
        self._rebuild_cards()
        session.events.stack.connect(self._stack_changed)
        session.events.selection.connect(self._follow_selection)   # a bound method: held weakly
        self._gate = StateGate(session, self, self._show_badges)
        self._show_badges()

    # --- input ---

    def _build_input(self) -> QGroupBox:
        box = QGroupBox("Input")
        form = QFormLayout(box)
        form.setContentsMargins(8, 4, 8, 6)
        form.setVerticalSpacing(3)
        self.input_kind_combo = _NoWheelComboBox()
        self.input_kind_combo.addItem("token ids (integers)", "tokens")
        self.input_kind_combo.addItem("feature vectors (floats)", "features")
        self.input_kind_combo.addItem("words (vocabulary from the text)", "words")
        self.input_kind_combo.addItem("one vector per example (floats)", "vector")
        self.input_kind_combo.setToolTip("Token ids go through an Embedding; feature vectors go straight into the "
                                         "recurrent layer (mask them with a Masking layer); words are looked up in "
                                         "a vocabulary built from the text (id 0 padding, id 1 unknown word), or in "
                                         "an opened model's own (its TextVectorization's or StringLookup's); one "
                                         "vector per example, without timesteps, is a further input's (a state, "
                                         "side data)")
        self.vocab_spin = _NoWheelSpinBox()
        self.vocab_spin.setRange(1, MAX_VOCAB)
        self.vocab_spin.setKeyboardTracking(False)
        self.vocab_spin.setToolTip("vocab_size: token ids run from 0 to vocab_size − 1")
        self.features_spin = _NoWheelSpinBox()
        self.features_spin.setRange(1, MAX_FEATURES)
        self.features_spin.setKeyboardTracking(False)
        self.features_spin.setToolTip("features: how many numbers make one timestep")
        self.standardize_combo = _NoWheelComboBox()
        for label, value in STANDARDIZE_CHOICES:
            self.standardize_combo.addItem(label, value)
        self.standardize_combo.setToolTip("standardize: how words are cleaned before they are split at spaces, as "
                                          "Keras's TextVectorization does (its default: lower case, punctuation "
                                          "stripped, so \"Cat,\" and \"cat\" are one word)")
        self.split_combo = _NoWheelComboBox()
        for label, value in SPLIT_CHOICES:
            self.split_combo.addItem(label, value)
        self.split_combo.setToolTip("split: where the standardised text is cut into tokens, as TextVectorization's "
                                    "split: words at whitespace, or every character (spaces included, shown ␣)")
        self.output_mode_combo = _NoWheelComboBox()
        for label, value in OUTPUT_MODE_CHOICES:
            self.output_mode_combo.addItem(label, value)
        self.output_mode_combo.setToolTip("output_mode: what the words give the model, as TextVectorization's: "
                                          "their ids, a sequence; or one vector per text over the vocabulary "
                                          "(a bag of words: each word there or not, how often, or that count × "
                                          "its idf weight, which only a model's TextVectorization holds)")
        self.ngrams_edit = QLineEdit()
        self.ngrams_edit.setPlaceholderText("none")
        self.ngrams_tip = ("ngrams: the widths of the ngrams made of the tokens, as TextVectorization's ngrams "
                           "(\"1 2\": each token, then each pair, joined by a space); empty: the tokens alone")
        self.ngrams_edit.setToolTip(self.ngrams_tip)
        self.seed_spin = _NoWheelSpinBox()
        self.seed_spin.setRange(0, MAX_SEED)
        self.seed_spin.setKeyboardTracking(False)
        self.seed_spin.setToolTip("seed: fixes every initial weight, so the same stack gives the same numbers")
        self.input_choice_combo = _NoWheelComboBox()    # several inputs: which one the fields below edit
        self.input_choice_combo.setToolTip("The model's inputs: kind, vocab_size, features and standardize below "
                                           "are this input's")
        kind_row = QHBoxLayout()
        kind_row.addWidget(self.input_kind_combo, 1)
        self.input_shape_label = QLabel("")
        self.input_shape_label.setWordWrap(True)        # two lines rather than a wider column
        self.input_shape_label.setFont(mono_font())
        self.input_shape_label.setToolTip("The input's symbolic shape and this batch's padded shape")
        self.input_choice_label = QLabel("input")
        form.addRow(self.input_choice_label, self.input_choice_combo)
        form.addRow("kind", kind_row)
        self.vocab_label = QLabel("vocab_size")
        self.features_label = QLabel("features")
        form.addRow(self.vocab_label, self.vocab_spin)
        form.addRow(self.features_label, self.features_spin)
        self.standardize_label = QLabel("standardize")
        form.addRow(self.standardize_label, self.standardize_combo)
        self.split_label = QLabel("split")
        form.addRow(self.split_label, self.split_combo)
        self.ngrams_label = QLabel("ngrams")
        form.addRow(self.ngrams_label, self.ngrams_edit)
        self.output_mode_label = QLabel("output_mode")
        form.addRow(self.output_mode_label, self.output_mode_combo)
        form.addRow("seed", self.seed_spin)
        form.addRow("shape", self.input_shape_label)
        self._show_input()
        self.input_choice_combo.currentIndexChanged.connect(lambda _index: self._show_input())
        self.input_kind_combo.currentIndexChanged.connect(self._input_edited)
        self.vocab_spin.valueChanged.connect(self._input_edited)
        self.features_spin.valueChanged.connect(self._input_edited)
        self.standardize_combo.currentIndexChanged.connect(self._input_edited)
        self.split_combo.currentIndexChanged.connect(self._input_edited)
        self.output_mode_combo.currentIndexChanged.connect(self._input_edited)
        self.ngrams_edit.editingFinished.connect(self._ngrams_edited)
        self.seed_spin.valueChanged.connect(self._seed_edited)
        return box

    @property
    def edited_input(self) -> InputSpec:
        """The input whose fields the Input box shows: the one chosen among several, else the only one."""
        return self._spec.all_inputs()[max(0, self.input_choice_combo.currentIndex())]

    def choose_input(self, name: str) -> None:
        """Shows the fields of the input `name` (a model of several inputs); another name changes nothing."""
        found = self.input_choice_combo.findText(name)
        if found >= 0:
            self.input_choice_combo.setCurrentIndex(found)

    def _show_input(self) -> None:
        spec = self._spec
        names = [item.name for item in spec.all_inputs()] if spec.more_inputs else []
        choice = self.input_choice_combo
        if [choice.itemText(i) for i in range(choice.count())] != names:
            shown = choice.currentText()
            choice.blockSignals(True)
            choice.clear()
            choice.addItems(names)
            choice.setCurrentIndex(max(0, choice.findText(shown)))
            choice.blockSignals(False)
        choice.setVisible(bool(names))
        self.input_choice_label.setVisible(bool(names))
        item = self.edited_input
        widgets = (self.input_kind_combo, self.vocab_spin, self.features_spin, self.seed_spin, self.standardize_combo,
                   self.split_combo, self.output_mode_combo)
        for widget in widgets:
            widget.blockSignals(True)
        self.input_kind_combo.setCurrentIndex(self.input_kind_combo.findData(item.kind))
        own = "words (the model's vocabulary)" if item.mask_token in (PADDING_WORD, None) else \
            f"words (the model's vocabulary, mask token {item.mask_token})"
        self.input_kind_combo.setItemText(self.input_kind_combo.findData("words"), own
                                          if item.vocabulary is not None else "words (vocabulary from the text)")
        self.standardize_combo.setCurrentIndex(self.standardize_combo.findData(item.standardize))
        self.split_combo.setCurrentIndex(self.split_combo.findData(item.split))
        self.output_mode_combo.setCurrentIndex(self.output_mode_combo.findData(item.output_mode))
        tf_idf = self.output_mode_combo.model().item(self.output_mode_combo.findData("tf_idf"))
        tf_idf.setEnabled(item.idf_weights is not None)   # only a model's TextVectorization holds the weights
        self._show_ngrams(item.ngrams)
        self.vocab_spin.setValue(item.vocab_size or 1000)
        self.features_spin.setValue(item.features or 1)
        self.seed_spin.setValue(spec.seed)
        for widget in widgets:
            widget.blockSignals(False)
        self._show_kind_fields(item.kind)
        self._show_input_shape()

    def _show_kind_fields(self, kind: str) -> None:
        tokens = kind in ("tokens", "words")
        self.vocab_spin.setVisible(tokens)
        self.vocab_label.setVisible(tokens)
        self.features_spin.setVisible(not tokens)
        self.features_label.setVisible(not tokens)
        for widget in (self.standardize_combo, self.standardize_label, self.split_combo, self.split_label,
                       self.ngrams_edit, self.ngrams_label, self.output_mode_combo, self.output_mode_label):
            widget.setVisible(kind == "words")

    def _show_ngrams(self, ngrams: tuple[int, ...] | None, problem: str = "") -> None:
        """The ngram widths as typed ("1 2"), or the text kept as typed with what is wrong with it."""
        if not problem:
            self.ngrams_edit.setText(" ".join(map(str, ngrams or ())))
        self.ngrams_edit.setStyleSheet(f"border: 1px solid {ERROR_COLOUR};" if problem else "")
        self.ngrams_edit.setToolTip(f"ngrams {problem}" if problem else self.ngrams_tip)

    def _typed_ngrams(self) -> tuple[tuple[int, ...] | None, str]:
        """(the widths typed in the ngrams field, ""), or (None, what is wrong with them)."""
        typed = self.ngrams_edit.text().replace(",", " ").split()
        if not all(width.isdigit() for width in typed):
            return None, "must be whole numbers, e.g. 1 2"
        try:
            return (ngram_widths([int(width) for width in typed]) if typed else None), ""
        except ValueError as exc:
            return None, str(exc)

    def _ngrams_edited(self) -> None:
        ngrams, problem = self._typed_ngrams()
        self._show_ngrams(ngrams, problem)
        if not problem and ngrams != self.edited_input.ngrams:
            self._input_edited()

    def _show_input_shape(self) -> None:
        result = self.session.result
        gate = getattr(self, "_gate", None)
        ran = result is not None and gate is not None and gate.shown.current
        lines = []
        for item in self._spec.all_inputs():   # a model of several inputs: a line each, named by the input
            text = format_shape((None, *item.shape(item.length)[0]))
            batch = (result.inputs[item.name].batch if item.name in result.inputs else result.input) if ran else None
            if batch is not None:
                text += f"   this batch {format_shape(batch.shape)}"
            lines.append(f"{item.name} {text}" if self._spec.more_inputs else text)
        self.input_shape_label.setText("\n".join(lines))

    def _input_edited(self) -> None:
        old = self.edited_input
        kind = self.input_kind_combo.currentData()
        vocab = self.vocab_spin.value()
        vocabulary = old.vocabulary      # a model's own: kept while it still fits
        mode = self.output_mode_combo.currentData() if kind == "words" else "int"
        masked = old.mask_token is not None   # its mask token is id 0 of ids, not in a bag's vocabulary
        if vocabulary is not None and masked and (mode == "int") != (old.output_mode == "int"):
            vocabulary = [old.mask_token, *vocabulary] if mode == "int" else vocabulary[1:]
        if kind != "words" or vocabulary is None or len(vocabulary) > vocab:
            vocabulary = None
        ngrams, problem = self._typed_ngrams()
        if problem:             # shown in the field; the input keeps its widths
            ngrams = old.ngrams
        steps = kind != "vector" and mode == "int"
        new = InputSpec(kind, vocab, self.features_spin.value(), old.length if steps else None,
                        self.standardize_combo.currentData(), vocabulary, old.name, self.split_combo.currentData(),
                        ngrams if kind == "words" else None,
                        old.step_shape if (kind, self.features_spin.value()) == (old.kind, old.features) else None,
                        mode, old.idf_weights if mode == "tf_idf" and vocabulary == old.vocabulary else None,
                        old.mask_token if vocabulary is not None else PADDING_WORD)
        index = max(0, self.input_choice_combo.currentIndex())
        if index == 0:
            self._spec.input = new
        else:
            self._spec.more_inputs[index - 1] = new
        self._show_kind_fields(kind)
        self._show_input_shape()
        self._emit()

    def _seed_edited(self, value: int) -> None:
        self._spec.seed = value
        self._emit()

    # --- the document ---

    def spec(self) -> StackSpec:
        return self._spec.copy()

    def _stack_changed(self) -> None:
        """Another document, an undo, or an edit the session adjusted: show the session's stack."""
        if self.session.stack_differs(self._spec):
            self._spec = self.session.document.copy()
            self._show_input()
            self._rebuild_cards()

    def _emit(self) -> None:
        self.session.set_stack(self._spec)

    # --- layers ---

    def set_param_pairs(self, pairs: int) -> bool:
        """Parameters side by side (2) or one per row (1, for a narrow column at a large text scale); True when
        the cards were rebuilt."""
        if pairs == self.param_pairs:
            return False
        self.param_pairs = pairs
        self._rebuild_cards(fresh=True)
        return True

    def _rebuild_cards(self, fresh: bool = False) -> None:
        """One card per layer. A card whose layer (the same LayerSpec object, edited in place by the card) and
        name are unchanged is kept: a type change, a move or a removal rebuilds only the cards concerned
        (a card costs ~3 ms to build and paint; rebuilding all of them delayed every structural edit)."""
        names = self._spec.layer_names()
        old = {id(card.layer): card for card in self.cards}
        cards = []
        for layer, name in zip(self._spec.layers, names):
            card = None if fresh else self._kept_card(old, layer, name)
            if card is None:
                card = LayerCard(layer, name, pairs=self.param_pairs)
                card.paramChanged.connect(self._param_changed)
                card.typeChanged.connect(self._type_changed)
                card.moveRequested.connect(
                    lambda c, step: self.move_layer(self.cards.index(c), self.cards.index(c) + step))
                card.removeRequested.connect(lambda c: self.remove_layer(self.cards.index(c)))
                card.clicked.connect(lambda c: self._card_clicked(c))
            cards.append(card)
        for card in old.values():
            self._column.layout_.removeWidget(card)
            card.hide()
            card.deleteLater()
        for index, card in enumerate(cards):
            if self._column.layout_.indexOf(card) != index:
                self._column.layout_.removeWidget(card)
                self._column.layout_.insertWidget(index, card)
            card.up_button.setEnabled(index > 0)
            card.down_button.setEnabled(index < len(cards) - 1)
        self.cards = cards
        if self._selected not in names:
            self._selected = None
        for card in self.cards:
            card.set_selected(card.name == self._selected)
        self._show_badges()
        self.scroll.updateGeometry()

    @staticmethod
    def _kept_card(old: dict[int, LayerCard], layer: LayerSpec, name: str) -> LayerCard | None:
        """The card of `old` that shows `layer` under `name`: its own, or one of an equal layer (another
        document, an undo: new LayerSpec objects), which then edits `layer`; None: a new card is needed."""
        card = old.get(id(layer))
        if card is None or card.name != name:
            card = next((known for known in old.values() if known.name == name and known.layer == layer), None)
        if card is not None:
            del old[id(card.layer)]
            card.layer = layer
        return card

    def _structure_changed(self, select: str | None = None) -> None:
        if select is not None:
            self._selected = select
        self._rebuild_cards()
        self._emit()
        if select is not None:
            self.session.select_layer(select)

    def add_layer(self, layer_type: str, index: int | None = None) -> None:
        """Adds a layer of `layer_type` at `index` (default: after the selected layer, else at the end)."""
        if index is None:
            names = self._spec.layer_names()
            index = names.index(self._selected) + 1 if self._selected in names else len(names)
        self._spec.layers.insert(index, LayerSpec(layer_type))
        self._structure_changed(select=self._spec.layer_names()[index])

    def remove_layer(self, index: int) -> None:
        """Removes the layer, and its tensors from the model's outputs (all of them gone: the untaken layers)."""
        name = self._spec.layer_names()[index]
        del self._spec.layers[index]
        if self._spec.model_outputs:
            kept = [output for output in self._spec.model_outputs if output.split("/")[0] != name]
            self._spec.model_outputs = kept or None
        self._structure_changed()

    def move_layer(self, source: int, target: int) -> None:
        """Moves the layer at `source` so that it ends up at index `target`."""
        layers = self._spec.layers
        if not (0 <= source < len(layers)) or not (0 <= target < len(layers)) or source == target:
            return
        name = self._spec.layer_names()[source]
        layers.insert(target, layers.pop(source))
        names = self._spec.layer_names()
        self._structure_changed(select=name if name in names else names[target])

    def move_to_gap(self, source: int, gap: int) -> None:
        """Drag and drop: moves the layer at `source` into the gap before card `gap` (len = the end)."""
        self.move_layer(source, gap if gap <= source else gap - 1)

    def _param_changed(self, card: LayerCard, key: str, value: Any) -> None:
        index = self.cards.index(card)
        self._spec.layers[index].params[key] = value
        self._emit()          # the selection stays: the plots keep showing the layer the user was looking at

    def _type_changed(self, card: LayerCard, new_type: str) -> None:
        index = self.cards.index(card)
        self._spec.layers[index] = retyped(self._spec.layers[index], new_type)
        self._structure_changed(select=self._spec.layer_names()[index])

    # --- selection ---

    def _card_clicked(self, card: LayerCard) -> None:
        self._select(card.name, emit=True)

    def _select(self, name: str | None, emit: bool) -> None:
        changed = name != self._selected
        self._selected = name
        for card in self.cards:
            card.set_selected(card.name == name)
        if emit and changed and name is not None:
            self.session.select_layer(name)

    def _follow_selection(self) -> None:
        self.select_layer(self.session.selected_layer)

    def select_layer(self, name: str | None) -> None:
        """Highlights a layer's card (no signal); a shared layer's further call ("emb/call/1") highlights its card."""
        name = name.split("/")[0] if name else name
        self._select(name, emit=False)
        card = self.card(name) if name else None
        if card is not None:
            self.scroll.ensureWidgetVisible(card, 0, 20)

    @property
    def selected_layer(self) -> str | None:
        return self._selected

    def card(self, name: str) -> LayerCard | None:
        return next((card for card in self.cards if card.name == name), None)

    # --- results ---

    def _show_badges(self) -> None:
        if not hasattr(self, "_gate"):
            return                     # cards built before the session is watched
        self._show_input_shape()
        state = self._gate.shown
        session = self.session
        failed = state.kind == FAILED
        shown = session.partial if failed else session.result
        layers = {} if shown is None else {layer.name: layer for layer in shown.layers}
        names = [card.name for card in self.cards]
        failing = state.layer if state.layer in names else None
        first_missing = names.index(failing) if failing else (0 if failed else len(names))
        for index, card in enumerate(self.cards):
            found = layers.get(card.name)
            reached = index < first_missing or not failed
            if found is not None and found.type == card.layer.type and reached:
                card.show_shapes(found.symbolic_shape, found.shape, found.mask_role, stale=not failed and
                                 not state.current, reason=state.reason, states=found.states)
            else:
                unknown = "?" if failed or session.result is not None else "…"
                card.show_shapes(None, None, None, unknown=unknown, reason=state.reason)
            error = state.reason if failing == card.name else None
            note = ""
            if failed and index > first_missing:
                note = f"not built: {failing} fails" if failing else "not built: the run failed"
            warnings = [d.message for d in session.result.diagnostics if d.layer == card.name] \
                if state.current and session.result is not None else []
            card.show_messages(error, warnings, note)
