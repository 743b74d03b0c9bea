"""The Fix button: when the message on screen has a one-setting fix (tick mask_zero, turn on
return_sequences, set maxlen …), a button in the status bar says it and applies it as an ordinary,
undoable edit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QPushButton

from ..core.diagnose import Fix, structure_fix
from ..session import Session

if TYPE_CHECKING:
    from ..requests import Reply
    from .runs import RunScheduler


def fix_for(session: Session, reply: Reply) -> Fix | None:
    """The fix of the first message of a run that has one (its warnings, or its structural error)."""
    if reply.ok:
        return next((item.fix for item in reply.value.diagnostics if item.fix is not None), None)
    return structure_fix(session.document)


class FixButton(QObject):
    """`button` (the window places it in its status bar) appears after a run whose message has a fix."""

    def __init__(self, session: Session, runs: RunScheduler, parent: QObject | None = None):
        super().__init__(parent)
        self.session = session
        self.fix: Fix | None = None
        self.button = QPushButton("")
        self.button.setToolTip("Apply the one setting that answers the message (Ctrl+Z undoes it)")
        self.button.hide()
        self.button.clicked.connect(self.apply)
        runs.runFinished.connect(self._run_finished)

    def _run_finished(self, reply: Reply) -> None:
        self.show(fix_for(self.session, reply))

    def show(self, fix: Fix | None) -> None:
        self.fix = fix
        self.button.setVisible(fix is not None)
        if fix is not None:
            self.button.setText(f"Fix: {fix.label}")

    def apply(self) -> None:
        if self.fix is None:
            return
        fix = self.fix
        self.show(None)
        apply_fix(self.session, fix)


def apply_fix(session: Session, fix: Fix) -> None:
    """Edits the session as the user would (one undo step); the editors follow it."""
    parsed = session.text_check.parsed
    longest = int(parsed.lengths.max()) if parsed is not None and len(parsed) else None
    fixed = fix.apply(session.document, longest)
    if fix.layer is None:
        session.set_batching(fixed.batching)
    else:
        session.set_stack(fixed)
    session.say(f"{fix.label}: done (Ctrl+Z undoes it)")
