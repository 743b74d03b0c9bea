"""The custom layer's expression: checked while typing, with its output shape and errors below it.

`check_expression(text)` is the core's rule (`explorer.core.expression`: only `ops`, `x` and `mask`;
no private attributes; no lambdas, comprehensions, walrus or generators), which needs no Keras and so
runs on the GUI thread while typing.

`ExpressionEdit` is the line edit (a QLineEdit, so callers set text and listen to editingFinished as
before); its `status_label` goes under it in the layer card and says, in this order of priority: the
error of the last run when it concerns this layer, the syntax problem while typing (the layer keeps
its last valid expression), or the layer's output shape after the last run.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QLineEdit, QWidget

from ..core.expression import expression_problem as check_expression
from .style import ERROR_COLOUR, escape, mono_font, muted_colour

OK_COLOUR = "#1b7f3b"


class ExpressionEdit(QLineEdit):
    """A line edit for a custom expression that checks it at every keystroke."""

    validityChanged = Signal(bool)

    def __init__(self, text: str = "", parent: QWidget | None = None):
        super().__init__(text, parent)
        self.setFont(mono_font())
        self.setPlaceholderText("ops.mean(x, axis=1)")
        self.setToolTip("A Python expression over x (the previous layer's output), mask (B × T booleans, or "
                        "None) and ops (keras.ops), e.g. ops.mean(x, axis=1)")
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.status_label.setTextFormat(Qt.TextFormat.RichText)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status_label.setObjectName("expressionStatus")
        self.problem: str | None = None          # the syntax problem of the text now typed
        self.run_error: str | None = None        # the last run's error on this layer
        self.applied = text                      # the expression the layer runs
        self._shapes: tuple[str, str] | None = None
        self._stale = False
        self.textChanged.connect(self._checked)
        self._checked(text)

    @property
    def valid(self) -> bool:
        return self.problem is None

    @property
    def status_text(self) -> str:
        """The status line as plain words (for callers and tests)."""
        return self._plain

    def _checked(self, text: str) -> None:
        was = self.valid
        self.problem = check_expression(text)
        if self.problem is None:
            self.setStyleSheet("")
        else:
            self.setStyleSheet(f"QLineEdit {{ border: 1px solid {ERROR_COLOUR}; border-radius: 3px; }}")
        if text != self.applied:
            self._stale = True
        self._show()
        if was != self.valid:
            self.validityChanged.emit(self.valid)

    def mark_applied(self, text: str) -> None:
        self.applied = text
        self._show()

    def show_shapes(self, symbolic: str | None, batch: str | None, stale: bool = False) -> None:
        """The layer's output shape after a run (None: not known)."""
        self._shapes = None if symbolic is None else (symbolic, batch or "")
        self._stale = stale
        self._show()

    def show_run_error(self, error: str | None) -> None:
        self.run_error = error
        self._show()

    def _show(self) -> None:
        if self.problem is not None:
            keeps = f" — not applied; the layer still runs {self.applied}" if self.applied.strip() \
                and self.applied != self.text() else " — not applied"
            plain = f"✖ {self.problem}{keeps}"
            html = f'<span style="color:{ERROR_COLOUR}">{escape(plain)}</span>'
        elif self.run_error:
            plain = f"✖ {self.run_error}"
            html = f'<span style="color:{ERROR_COLOUR}">{escape(plain)}</span>'
        elif self._shapes is not None and not (self._stale and self.text() != self.applied):
            symbolic, batch = self._shapes
            plain = f"✓ output {symbolic}" + (f" · this batch {batch}" if batch else "")
            colour = muted_colour() if self._stale else OK_COLOUR
            html = (f'<span style="color:{colour}">✓ output <b>{escape(symbolic)}</b>'
                    + (f" · this batch {escape(batch)}" if batch else "") + "</span>")
        else:
            plain = "✓ valid expression" + ("" if self.text() == self.applied else ": press Enter to apply")
            html = f'<span style="color:{OK_COLOUR}">{escape(plain)}</span>'
        self._plain = plain
        self.status_label.setText(html)
        self.status_label.setToolTip(plain)
