"""The Fix button: when the message on screen has a one-setting fix (tick mask_zero, turn on
return_sequences, set maxlen …), a button in the status bar says it and applies it as an ordinary,
undoable edit."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QPushButton

from ..core.diagnose import Fix, structure_fix

if TYPE_CHECKING:
    from ..service import Reply
    from .main_window import MainWindow


def fix_for(window: MainWindow, reply: Reply) -> Fix | None:
    """The fix of the first message of a run that has one (its warnings, or its structural error)."""
    if reply.ok:
        return next((item.fix for item in reply.value.diagnostics if item.fix is not None), None)
    return structure_fix(window.document)


class FixButton(QObject):
    def __init__(self, window: MainWindow):
        super().__init__(window)
        self.window = window
        self.fix: Fix | None = None
        self.button = QPushButton("")
        self.button.setToolTip("Apply the one setting that answers the message (Ctrl+Z undoes it)")
        self.button.hide()
        self.button.clicked.connect(self.apply)
        window.statusBar().addPermanentWidget(self.button)
        window.runFinished.connect(self._run_finished)

    def _run_finished(self, reply: Reply) -> None:
        self.show(fix_for(self.window, reply))

    def show(self, fix: Fix | None) -> None:
        self.fix = fix
        self.button.setVisible(fix is not None)
        if fix is not None:
            self.button.setText(f"Fix: {fix.label}")

    def apply(self) -> None:
        """Edits the document as the user would, through the editors (one undo step)."""
        fix, window = self.fix, self.window
        if fix is None:
            return
        parsed = window.sequence_editor.parsed
        longest = int(parsed.lengths.max()) if parsed is not None and len(parsed) else None
        fixed = fix.apply(window.document, longest)
        self.show(None)
        if fix.layer is None:
            editor = window.sequence_editor
            editor.set_state(editor.text(), fixed.batching, fixed.input)
            editor.batchingChanged.emit(copy.deepcopy(fixed.batching))
        else:
            window.stack_editor.set_spec(fixed)
            window.stack_editor.changed.emit(window.stack_editor.spec())
        window.set_status(f"{fix.label}: done (Ctrl+Z undoes it)")
