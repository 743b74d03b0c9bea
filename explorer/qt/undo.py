"""Undo and redo of the explorer's document with a QUndoStack.

Every edit (a layer added, removed, moved or retyped, a parameter, the input, the seed, a batching
setting, the sequence text) is one `DocumentEdit` holding the document before and after it as plain
dicts (`spec.to_dict`): undoing puts the whole document back, which rebuilds the widgets from it and
re-runs. Typing is merged: consecutive text edits less than `MERGE_SECONDS` apart are one step.
The trained weights of a `.keras` stack are not part of a snapshot; the window keeps them across undo.

`DocumentHistory(session)` subscribes to the session: each edit is recorded, another document empties
the history, and undo / redo put a snapshot back with `Session.restore`. `clock` (seconds; injected in
tests) decides which keystrokes merge. Its `stack` (a QUndoStack) gives the Edit menu's actions
(`undo_action`, `redo_action`), its `cleanChanged` and `indexChanged` signals.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable

import shiboken6
from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QKeySequence, QUndoCommand, QUndoStack

if TYPE_CHECKING:
    from ..session import Session

MERGE_SECONDS = 1.5          # keystrokes closer than this are one undo step
UNDO_LIMIT = 200
TEXT_EDIT_ID = 1              # QUndoCommand.id() of text edits: only these merge


# --- what an edit did, in words (pure) ---

def _names(layers: list[dict]) -> list[str]:
    from ..core.spec import LayerSpec, StackSpec
    spec = StackSpec(layers=[LayerSpec(layer.get("type", "?"), {}, layer.get("name")) for layer in layers])
    return spec.layer_names()


def _value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _param_change(name: str, key: str, old: Any, new: Any) -> str:
    if isinstance(new, bool) and isinstance(old, bool):
        return f"Turn {'on' if new else 'off'} {key} of {name}"
    return f"Set {key} of {name} to {_value(new)}"


def describe(kind: str, before: dict, after: dict) -> str:
    """One short phrase for the Edit menu ("Undo Set units of lstm_1 to 48")."""
    if kind == "text":
        typed = _typed_in(before, after)
        return f"Typing in the sequences of {typed}" if typed else "Typing in the sequences"
    old_input, new_input = before.get("input", {}), after.get("input", {})
    if old_input != new_input:
        if old_input.get("kind") != new_input.get("kind"):
            return f"Set the input to {new_input.get('kind')}"
        changed = [key for key in new_input if old_input.get(key) != new_input.get(key)]
        return f"Set {changed[0]} to {_value(new_input[changed[0]])}" if changed else "Change the input"
    if before.get("seed") != after.get("seed"):
        return f"Set seed to {after.get('seed')}"
    old_layers, new_layers = before.get("layers", []), after.get("layers", [])
    old_names, new_names = _names(old_layers), _names(new_layers)
    if len(new_layers) == len(old_layers) + 1:
        index = next((i for i, (a, b) in enumerate(zip(old_layers, new_layers)) if a != b), len(old_layers))
        return f"Add {new_names[index]}"
    if len(new_layers) + 1 == len(old_layers):
        index = next((i for i, (a, b) in enumerate(zip(old_layers, new_layers)) if a != b), len(new_layers))
        return f"Remove {old_names[index]}"
    if len(new_layers) == len(old_layers):
        differing = [i for i, (a, b) in enumerate(zip(old_layers, new_layers)) if a != b]
        if len(differing) == 1:
            i = differing[0]
            a, b = old_layers[i], new_layers[i]
            if a.get("type") != b.get("type"):
                return f"Change {old_names[i]} to {b.get('type')}"
            keys = [key for key in b if key != "type" and a.get(key) != b.get(key)]
            if len(keys) == 1:
                return _param_change(old_names[i], keys[0], a.get(keys[0]), b.get(keys[0]))
        if len(differing) >= 2:
            for i, layer in enumerate(old_layers):
                rest = old_layers[:i] + old_layers[i + 1:]
                for j, placed in enumerate(new_layers):
                    if placed == layer and new_layers[:j] + new_layers[j + 1:] == rest:
                        return f"Move {old_names[i]} {'up' if j < i else 'down'}"
    old_batching, new_batching = before.get("batching", {}), after.get("batching", {})
    if old_batching != new_batching:
        changed = [key for key in new_batching if old_batching.get(key) != new_batching.get(key)]
        if len(changed) == 1:
            key = changed[0]
            return f"Set {'batching mode' if key == 'mode' else key} to {_value(new_batching[key])}"
        return "Change the batching"
    if old_layers != new_layers:
        return "Edit the stack"
    return "Edit the stack" if kind == "stack" else "Edit"


def _typed_in(before: dict, after: dict) -> str | None:
    """The input whose text an edit changed, in a stack of several inputs (None: the only input, or the first
    input of a stack whose other inputs kept their texts)."""
    for old, new in zip(before.get("more_inputs", []), after.get("more_inputs", [])):
        if old.get("sequences") != new.get("sequences"):
            return new.get("name")
    return after.get("input", {}).get("name")


# --- the commands ---

class DocumentEdit(QUndoCommand):
    """One edit: the document before and after it. Pushed after the widgets already show `after`."""

    def __init__(self, history: DocumentHistory, kind: str, before: dict, after: dict):
        super().__init__(describe(kind, before, after))
        self._history = history
        self.kind = kind
        self.before = before
        self.after = after
        self._pushed = False
        self._stamp = history.clock()

    def id(self) -> int:
        return TEXT_EDIT_ID if self.kind == "text" else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, DocumentEdit) or other.kind != "text" or self.kind != "text":
            return False
        if other._stamp - self._stamp > MERGE_SECONDS:
            return False
        if _typed_in(self.before, self.after) != _typed_in(other.before, other.after):
            return False          # typing in another input's tab is a step of its own
        self.after = other.after
        self._stamp = other._stamp
        if self.after == self.before:
            self.setObsolete(True)    # typed and deleted again: no step at all
        return True

    def redo(self) -> None:
        if not self._pushed:          # QUndoStack.push calls redo(): the edit is already on screen
            self._pushed = True
            return
        self._history._apply(self.after)

    def undo(self) -> None:
        self._history._apply(self.before)


class DocumentHistory(QObject):
    """The session's QUndoStack of document snapshots, with its Undo/Redo actions."""

    def __init__(self, session: Session, parent: QObject | None = None,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__(parent)
        self.session = session
        self.clock = clock
        self.stack = QUndoStack(self)
        self.stack.setUndoLimit(UNDO_LIMIT)
        self.current: dict | None = None     # the document on screen, as a dict
        self.undo_action = self.stack.createUndoAction(self, "Undo")
        self.undo_action.setShortcuts([QKeySequence(QKeySequence.StandardKey.Undo)])
        self.undo_action.setIconText("Undo")
        self.redo_action = self.stack.createRedoAction(self, "Redo")
        self.redo_action.setShortcuts(_unique([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y"),
                                               QKeySequence(QKeySequence.StandardKey.Redo)]))
        self.redo_action.setIconText("Redo")
        self.stack.undoTextChanged.connect(self._undo_text)
        self.stack.redoTextChanged.connect(self._redo_text)
        self._undo_text("")
        self._redo_text("")
        self.current = session.snapshot()
        session.events.document.connect(lambda: self.reset(session.snapshot()))
        session.events.edited.connect(self._edited)

    def _edited(self, kind: str) -> None:
        if kind == "restore":
            self.current = self.session.snapshot()
        else:
            self.record(kind, self.session.snapshot())

    def _undo_text(self, text: str) -> None:
        if shiboken6.isValid(self.undo_action):          # not while the window is being destroyed
            self.undo_action.setToolTip(f"Undo: {text} (Ctrl+Z)" if text else "Nothing to undo")

    def _redo_text(self, text: str) -> None:
        if shiboken6.isValid(self.redo_action):
            self.redo_action.setToolTip(f"Redo: {text} (Ctrl+Shift+Z)" if text else "Nothing to redo")

    def reset(self, snapshot: dict) -> None:
        """A new document (a preset, a file): nothing to undo."""
        self.stack.clear()
        self.stack.setClean()
        self.current = snapshot

    def record(self, kind: str, snapshot: dict) -> None:
        """The widgets changed the document to `snapshot` (kind: "stack", "batching" or "text")."""
        before = self.current
        self.current = snapshot
        if before is None or before == snapshot:
            return
        self.stack.push(DocumentEdit(self, kind, before, snapshot))

    def _apply(self, snapshot: dict) -> None:
        self.current = snapshot
        self.session.restore(snapshot)

    def undo(self) -> None:
        self.stack.undo()

    def redo(self) -> None:
        self.stack.redo()


def _unique(sequences: list[QKeySequence]) -> list[QKeySequence]:
    seen, unique = set(), []
    for sequence in sequences:
        text = sequence.toString()
        if text and text not in seen:
            seen.add(text)
            unique.append(sequence)
    return unique


class UndoKeys(QObject):
    """Routes Ctrl+Z / Ctrl+Shift+Z / Ctrl+Y pressed inside a text widget to the document's history
    (text widgets otherwise take these keys for their own, separate undo)."""

    def __init__(self, history: DocumentHistory, parent: QObject | None = None):
        super().__init__(parent or history)
        self._history = history

    def _which(self, event) -> str | None:
        combo = event.keyCombination()
        sequence = QKeySequence(combo)
        if any(sequence.matches(s) == QKeySequence.SequenceMatch.ExactMatch
               for s in self._history.undo_action.shortcuts()):
            return "undo"
        if any(sequence.matches(s) == QKeySequence.SequenceMatch.ExactMatch
               for s in self._history.redo_action.shortcuts()):
            return "redo"
        return None

    def eventFilter(self, watched, event) -> bool:
        kind = event.type()
        if kind == QEvent.Type.ShortcutOverride and self._which(event):
            event.accept()            # delivered to us as a key press, not to the window's shortcuts twice
            return True
        if kind == QEvent.Type.KeyPress:
            which = self._which(event)
            if which == "undo":
                self._history.undo()
                return True
            if which == "redo":
                self._history.redo()
                return True
        return False
