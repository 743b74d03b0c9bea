"""The explorer's state in one place, without Qt: a model whose views subscribe to its events.

A `Session` holds the document (the stack, the sequence text and the batching), where it came from,
the selection (layer, sequence line, units), what may run (trust), the run settings (Live, device),
and the latest result with its state: *current*, *running*, *stale (why)* or *failed (why)*. Widgets
take the session, edit it through its methods and redraw from its events; undo, autosave, the window
title, run scheduling, recent files and exports are subscribers like any view.

Events are plain callbacks (`session.events.result.connect(callback)`), called in the order they were
connected; a callback that raises is reported and the others still run. A bound method is held weakly, so a
view that is closed and collected stops receiving events without disconnecting.
"""

from __future__ import annotations

import inspect
import re
import sys
import weakref
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from .core import sequences
from .core.errors import SequenceError, SpecError
from .core.spec import RECURRENT_TYPES, Batching, InputSpec, StackSpec, from_dict, to_dict

_LAYER_PATH = re.compile(r"^layers\[(\d+)\]")
STACK_KEYS = ("input", "layers", "seed", "outputs")     # the stack file's keys that the stack editor edits (and
                                                        # the inputs in more_inputs, without their texts)


class Event:
    """A list of callbacks called in order with the emitted arguments. A bound method is held weakly (as
    psygnal does): a view that is garbage-collected drops out by itself, and the session never keeps a closed
    view alive. Plain functions and lambdas are held strongly."""

    def __init__(self, name: str):
        self.name = name
        self._callbacks: list[Callable[..., Any] | weakref.WeakMethod] = []

    def connect(self, callback: Callable[..., Any]) -> Callable[..., Any]:
        self._callbacks.append(weakref.WeakMethod(callback) if inspect.ismethod(callback) else callback)
        return callback

    def disconnect(self, callback: Callable[..., Any]) -> None:
        self._callbacks = [known for known in self._callbacks if _alive(known) not in (None, callback)]

    def emit(self, *args: Any) -> None:
        """Calls every callback; one that raises is reported (sys.excepthook: the window's error reporter) and
        the others still run, as with a Qt signal's slots."""
        for known in list(self._callbacks):
            callback = _alive(known)
            if callback is None:
                self._callbacks = [other for other in self._callbacks if other is not known]
                continue
            try:
                callback(*args)
            except Exception:
                sys.excepthook(*sys.exc_info())


def _alive(known: Callable[..., Any] | weakref.WeakMethod) -> Callable[..., Any] | None:
    return known() if isinstance(known, weakref.WeakMethod) else known


class Events:
    """The session's events. `document`: another document is shown (nothing edited yet); `edited(kind)`:
    the document changed by an edit ("stack", "text", "batching") or by undo ("restore"); `stack`, `text`,
    `batching`: that part changed (any cause); `selection`; `result`: the result or its state changed;
    `status(text, error)`; `modified(bool)`; `run_settings`: Live or the device changed; `devices`;
    `checked`: a large text's check, spread over turns of the host's loop, is done (`text` came just before)."""

    def __init__(self):
        for name in ("document", "edited", "stack", "text", "batching", "selection", "result", "status",
                     "modified", "run_settings", "devices", "checked"):
            setattr(self, name, Event(name))


# --- the state of the result on screen ---

CURRENT, RUNNING, STALE, FAILED, NONE = "current", "running", "stale", "failed", "none"


@dataclass(frozen=True)
class ResultState:
    kind: str = NONE
    reason: str = ""
    layer: str | None = None       # the layer the error concerns, if any
    pending: bool = False          # STALE: a run follows by itself (Live is on and nothing stops it)

    @property
    def current(self) -> bool:
        return self.kind == CURRENT


@dataclass
class TextCheck:
    """The sequence text checked on every keystroke: every bad token at once, and the padded batch as
    `pad` mode lays it out (NumPy, no TensorFlow), so the grid follows the text whatever the engine does."""

    errors: list[SequenceError] = field(default_factory=list)
    parsed: sequences.Sequences | None = None
    batch: np.ndarray | None = None      # (B, T) ids / words or (B, T, F) features
    mask: np.ndarray | None = None       # (B, T) bool, True = valid
    lines: list[int] = field(default_factory=list)
    checking: bool = False               # a large text's check is under way: nothing is known of it yet

    @property
    def ok(self) -> bool:
        return not self.errors and self.parsed is not None


CHECKING = "checking the sequences…"
# A text longer than this is checked in steps of about this many characters, one per turn of the host's loop
# (when the host gives `call_soon`): 1 MB of token ids in 32 turns of a few milliseconds instead of one long one
CHECK_CHUNK_CHARS = 32_768


def check_text(text: str, input_spec: InputSpec, batching: Batching) -> TextCheck:
    return _checked_text(*sequences.parse_all(text, input_spec), batching, input_spec)


def check_steps(text: str, input_spec: InputSpec, batching: Batching, chunk_chars: int = CHECK_CHUNK_CHARS):
    """check_text in steps: a generator that yields between chunks of lines and returns the TextCheck."""
    parsed, errors = yield from sequences.parse_steps(text, input_spec, chunk_chars)
    return _checked_text(parsed, errors, batching, input_spec)


def _checked_text(parsed: sequences.Sequences | None, errors: list[SequenceError], batching: Batching,
                  input_spec: InputSpec) -> TextCheck:
    if errors or parsed is None or not len(parsed):
        return TextCheck(errors=errors)
    if input_spec.has_steps:
        batch, mask = sequences.pad_preview(parsed, batching)
    elif input_spec.kind == "words":   # a bag of words: the words of each text, none cut (each text one vector)
        batch, mask = sequences.pad_preview(parsed, Batching())
    else:   # one vector per example: a single step each, nothing padded
        batch, mask = np.stack(parsed.items), np.ones((len(parsed), 1), dtype=bool)
    return TextCheck(errors=[], parsed=parsed, batch=batch, mask=mask, lines=list(parsed.lines))


def sample_text(spec: StackSpec) -> str:
    """Sequences to start with when a stack comes without its own."""
    if spec.input.kind == "words":
        return ("# one sentence per line: the vocabulary is built from these words\n"
                "the cat sat on the mat\nthe dog barked\na cat and a dog sat down\n")
    if spec.input.kind == "tokens":
        top = max(2, (spec.input.vocab_size or 2) - 1)
        rows = [[1 + (i * 7 + j * 3) % top for j in range(n)] for i, n in enumerate((7, 3, 5))]
        body = "\n".join(" ".join(map(str, row)) for row in rows)
        return f"# one sequence per line: token ids (0 is padding)\n{body}\n"
    features = spec.input.features or 1
    if not spec.input.has_steps:
        rows = [" ".join(f"{((i + 1) * (f + 2)) % 10 / 10:.1f}" for f in range(features)) for i in range(3)]
        return "# one vector per line: its values separated by spaces\n" + "\n".join(rows) + "\n"
    rows = []
    for i, steps in enumerate((5, 3, 4)):
        rows.append("; ".join(" ".join(f"{((i + 1) * (t + 1) * (f + 2)) % 10 / 10:.1f}" for f in range(features))
                              for t in range(steps)))
    return "# one sequence per line: timesteps separated by ;\n" + "\n".join(rows) + "\n"


def fitted_pad_value(value: float | int, input_spec: InputSpec) -> float | int:
    """The pad value made to fit the input: words pad with id 0, token ids stay inside the vocabulary."""
    if input_spec.kind == "words":
        return 0
    if input_spec.kind == "tokens":
        return min(max(0, int(round(value))), max(0, (input_spec.vocab_size or 1) - 1))
    return float(value)


def custom_expressions(spec: StackSpec) -> set[str]:
    return {layer.params["expression"] for layer in spec.layers if layer.type == "custom"}


class Trust:
    """Which custom expressions may run. Expressions from a file are asked about once (`confirm`); after
    the user agreed once, expressions they type themselves run without asking; a refusal is remembered so
    that live edits do not ask again (the Run button does)."""

    def __init__(self, confirm: Callable[[list[str]], bool]):
        self.confirm = confirm
        self.trusted: set[str] = set()
        self.from_file: set[str] = set()
        self.declined: set[str] = set()
        self.typed_trusted = False
        self.asking = False

    def document_loaded(self, spec: StackSpec, trusted: bool) -> None:
        if trusted:
            self.trusted |= custom_expressions(spec)
        else:
            self.from_file = custom_expressions(spec)
        self.declined = set()

    def ensure(self, spec: StackSpec, ask_again: bool = True) -> bool:
        missing = custom_expressions(spec) - self.trusted
        if not missing:
            return True
        if self.typed_trusted and not missing & self.from_file:
            self.trusted |= missing
            return True
        if not ask_again and missing <= self.declined:
            return False
        self.asking = True
        try:
            agreed = bool(self.confirm(sorted(missing)))
        finally:
            self.asking = False
        if agreed:
            self.trusted |= missing
            self.typed_trusted = True
            self.declined -= missing
        else:
            self.declined |= missing
        return agreed


class Session:
    """The document, the selection, trust, run settings and the latest result with its state. `call_soon(f)`:
    calls f on a later turn of the host's loop (a window's); with it, a text longer than CHECK_CHUNK_CHARS is
    checked in steps, one per turn (`text_check.checking` and the state "checking the sequences…" meanwhile);
    without it, and for the document it is made with, every check is done at once."""

    def __init__(self, spec: StackSpec, *, trusted: bool = False, source: str | None = None,
                 confirm_trust: Callable[[list[str]], bool] | None = None,
                 call_soon: Callable[[Callable[[], None]], None] | None = None):
        self.events = Events()
        self._call_soon = None                    # the first document is checked at once: nothing shows it yet
        self._check_id = 0                        # the check under way; an edit starts another
        self._check_why = "not run yet"           # the state's reason once that check is done
        self.trust = Trust(confirm_trust or (lambda expressions: False))
        self.document = StackSpec()
        self.source: str | None = None
        self.selected_layer: str | None = None
        self.selected_line: int | None = None
        self.units: list[int] | None = None       # typed units; None: the most varying ones
        self.live = True
        self.device: str | None = None
        self.devices: list = []
        self.result = None                        # the latest RunResult (possibly not current)
        self.result_spec: StackSpec | None = None  # the document that result was run from
        self.partial = None                       # FAILED: a RunResult of the layers before the failing one
        self.state = ResultState()
        self.text_check = TextCheck()
        self.input_checks: dict[str, TextCheck] = {}   # several inputs: each one's check by name
        self.spec_error: SpecError | None = None
        self.status_text = ""
        self._clean: tuple[dict, str | None] | None = None     # the saved document and its weights' id
        self._modified = False
        self._load(spec, trusted=trusted, source=source)
        self._call_soon = call_soon

    # --- the document ---

    def snapshot(self) -> dict:
        """The document as a stack file holds it (the trained weights excluded)."""
        return to_dict(self.document)

    @property
    def text(self) -> str:
        return self.document.sequences or ""

    def text_of(self, name: str | None) -> str:
        """The sequence text of the input `name` (None or the first input's name: `text`)."""
        if name is None or name == self.document.input.name:
            return self.text
        return self.document.more_sequences.get(name, "")

    @property
    def checking(self) -> bool:
        """The text is being checked in steps: no run until it is done."""
        return self.text_check.checking

    def check_of(self, name: str | None) -> TextCheck:
        """The check of the input `name`'s text (None: the first input's, `text_check`)."""
        return self.input_checks.get(name, self.text_check) if name is not None else self.text_check

    def spec(self) -> StackSpec:
        """A copy of the document, for a run or a save."""
        return self.document.copy()

    def load(self, spec: StackSpec, *, trusted: bool, source: str | None) -> None:
        """Shows another document (a preset, a file, New): selection reset, nothing to undo, not modified."""
        self._load(spec, trusted=trusted, source=source)

    def _load(self, spec: StackSpec, *, trusted: bool, source: str | None) -> None:
        self.document = spec.copy()
        if self.document.sequences is None:
            self.document.sequences = sample_text(self.document)
        for item in self.document.more_inputs:
            self.document.more_sequences.setdefault(item.name, sample_text(replace(self.document, input=item)))
        self.source = source
        self.trust.document_loaded(spec, trusted)
        self.result = None
        self.result_spec = None
        self.partial = None
        names = self.document.layer_names()
        recurrent = [n for n, layer in zip(names, self.document.layers) if layer.is_recurrent]
        self.selected_layer = recurrent[0] if recurrent else (names[0] if names else None)
        self._check_why = "not run yet"
        self._validate()
        self.selected_line = self.text_check.lines[0] if self.text_check.lines else None
        self._clean = self._saved_form()
        problem = self.problem()
        self.state = ResultState(STALE, problem[0], problem[1]) if problem else ResultState(NONE, "not run yet")
        self.events.document.emit()
        self.events.result.emit()
        self.events.stack.emit()
        self.events.batching.emit()
        self.events.text.emit()
        self.events.selection.emit()
        self._refresh_modified()

    def set_stack(self, spec: StackSpec) -> None:
        """The stack editor's edit: the inputs, the layers, the seed and the model's outputs of `spec` (not the
        texts of its inputs: the Sequences panel's)."""
        if not self.stack_differs(spec):
            return
        spec = spec.copy()
        self.document.input, self.document.layers, self.document.seed = spec.input, spec.layers, spec.seed
        self.document.more_inputs, self.document.model_outputs = spec.more_inputs, spec.model_outputs
        fitted = fitted_pad_value(self.document.batching.pad_value, spec.input)
        if fitted != self.document.batching.pad_value:
            self.document.batching.pad_value = fitted
        self._edited("stack")

    def stack_differs(self, spec: StackSpec) -> bool:
        """`spec`'s stack (what set_stack takes from it) is not the document's."""
        new, old = to_dict(spec), self.snapshot()
        return (any(new.get(key) != old.get(key) for key in STACK_KEYS)
                or spec.more_inputs != self.document.more_inputs)

    def set_text(self, text: str, input_name: str | None = None) -> None:
        """The text of the input `input_name` (None: the first input's)."""
        self.set_texts({input_name: text})

    def set_texts(self, texts: dict[str | None, str]) -> None:
        """The texts of some inputs by name (None: the first input's), as one edit."""
        changed = {name: text for name, text in texts.items() if text != self.text_of(name)}
        for input_name, text in changed.items():
            if input_name is None or input_name == self.document.input.name:
                self.document.sequences = text
            else:
                self.document.more_sequences[input_name] = text
        if changed:
            self._edited("text")

    def set_batching(self, batching: Batching) -> None:
        if batching == self.document.batching:
            return
        self.document.batching = batching
        self._edited("batching")

    def restore(self, snapshot: dict) -> None:
        """Undo / redo: shows a snapshot of the document; the trained weights stay."""
        weights, weights_id = self.document.weights, self.document.weights_id
        self.document = from_dict(snapshot)
        self.document.weights, self.document.weights_id = weights, weights_id
        self._edited("restore")

    def _edited(self, kind: str) -> None:
        self._validate()
        if kind in ("stack", "restore"):
            self.events.stack.emit()
        if kind in ("batching", "restore", "stack"):
            self.events.batching.emit()
        if kind in ("text", "restore", "stack", "batching"):
            self.events.text.emit()
        names = self.document.layer_names()
        if self.selected_layer not in self.document.selectable():
            recurrent = [n for n, layer in zip(names, self.document.layers) if layer.is_recurrent]
            self.selected_layer = recurrent[0] if recurrent else (names[0] if names else None)
            self.events.selection.emit()
        if self.result is not None or self.state.kind != NONE and self.state.reason != CHECKING:
            self._check_why = "the stack changed since this run" if kind != "text" \
                else "the sequences changed since this run"
        else:
            self._check_why = "not run yet"
        self._set_state(self._idle_state(self._check_why))
        self.events.edited.emit(kind)
        self._refresh_modified()

    def _validate(self) -> None:
        """Checks the document and the text at once (no TensorFlow): the views show every problem."""
        try:
            from_dict(to_dict(self.document))
            self.spec_error = None
        except SpecError as error:
            self.spec_error = error
        self._check_id += 1                  # a check still under way is dropped
        if self._call_soon is not None and len(self.text) > CHECK_CHUNK_CHARS:
            self.text_check = TextCheck(checking=True)
            self._call_soon(lambda check_id=self._check_id, steps=check_steps(
                self.text, self.document.input, self.document.batching): self._check_step(check_id, steps))
        else:
            self.text_check = check_text(self.text, self.document.input, self.document.batching)
        self.input_checks = {item.name: self.text_check if item is self.document.input
                             else check_text(self.text_of(item.name), item, self.document.batching)
                             for item in self.document.all_inputs()} if self.document.more_inputs else {}

    def _check_step(self, check_id: int, steps) -> None:
        """One chunk of a large text's check; the next one on the next turn, until it is done."""
        if check_id != self._check_id:
            return
        try:
            next(steps)
        except StopIteration as done:
            self._text_checked(done.value)
            return
        self._call_soon(lambda: self._check_step(check_id, steps))

    def _text_checked(self, check: TextCheck) -> None:
        self.text_check = check
        if self.input_checks:
            self.input_checks[self.document.input.name] = check
        if self.selected_line is None and check.lines:      # a document loaded: its first sequence
            self.selected_line = check.lines[0]
            self.events.selection.emit()
        self.events.text.emit()
        self.events.checked.emit()       # the run that waited starts: its state is the next one the views draw
        if self.state.kind == STALE and self.state.reason == CHECKING:
            self._set_state(self._idle_state(self._check_why))

    # --- what stops a run ---

    def problem(self) -> tuple[str, str | None] | None:
        """Why the document cannot run as it is: (message, layer or None), or None."""
        if self.spec_error is not None:
            match = _LAYER_PATH.match(self.spec_error.path)
            names = self.document.layer_names()
            index = int(match.group(1)) if match else -1
            return self.spec_error.message, names[index] if 0 <= index < len(names) else None
        if self.checking:
            return CHECKING, None
        for name, check in (self.input_checks or {None: self.text_check}).items():
            errors = check.errors
            if errors:
                more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
                whose = f" of {name}" if name is not None else ""
                return f"the sequences{whose} have errors: {errors[0].message}{more}", None
        counts = {name: len(check.lines) for name, check in self.input_checks.items()}
        if len(set(counts.values())) > 1:
            return ("the inputs' lines go together by their order, but "
                    + ", ".join(f"{name} has {count}" for name, count in counts.items())
                    + ": give every input as many sequences"), None
        return None

    def _idle_state(self, why: str) -> ResultState:
        problem = self.problem()
        if problem is not None:
            return ResultState(STALE, problem[0], problem[1])
        if self.result is None and self.state.kind == NONE:
            return ResultState(NONE, why)
        if not self.live:
            return ResultState(STALE, f"{why}: press Run (F5) to see the new shapes")
        return ResultState(STALE, why, pending=True)

    # --- the run's life ---

    def _set_state(self, state: ResultState) -> None:
        self.state = state
        self.events.result.emit()

    def run_started(self, reason: str = "running…") -> None:
        self._set_state(ResultState(RUNNING, reason))

    def run_finished(self, result, spec: StackSpec | None = None) -> None:
        self.result = result
        self.result_spec = spec
        self.partial = None
        names = [layer.name for layer in result.shown()]
        if self.selected_layer not in names and names:
            recurrent = [layer.name for layer in result.layers if layer.type in RECURRENT_TYPES]
            self.selected_layer = recurrent[0] if recurrent else names[0]
            self.events.selection.emit()
        self._set_state(ResultState(CURRENT))

    def run_failed(self, message: str, layer: str | None = None, partial=None) -> None:
        """A run that failed or was refused; `partial`: a run of the layers before `layer`."""
        self.partial = partial
        self._set_state(ResultState(FAILED, message, layer))

    def run_cancelled(self) -> None:
        self._set_state(ResultState(STALE, "cancelled: the results shown are from an earlier run; "
                                           "press Run (F5) to run again"))

    def run_idle(self, why: str) -> None:
        """A scheduled run did not start (Live off, waiting for TensorFlow)."""
        self._set_state(self._idle_state(why))

    # --- selection ---

    def select_layer(self, name: str | None) -> None:
        """Selects a layer, or a shared layer's further call ("emb/call/1"); other names change nothing."""
        if name != self.selected_layer and (name is None or name in self.document.selectable()):
            self.selected_layer = name
            self.events.selection.emit()

    def select_line(self, line: int | None) -> None:
        if line != self.selected_line:
            self.selected_line = line
            self.events.selection.emit()

    def set_units(self, units: list[int] | None) -> None:
        if units != self.units:
            self.units = None if units is None else list(units)
            self.events.selection.emit()

    def selected_row(self, result=None) -> int | None:
        """The row of the selected line in `result` (default: the latest result)."""
        result = result if result is not None else self.result
        if result is None or self.selected_line not in list(result.lines):
            return None
        return list(result.lines).index(self.selected_line)

    # --- run settings ---

    def set_live(self, live: bool) -> None:
        if live != self.live:
            self.live = live
            self.events.run_settings.emit()

    def set_device(self, device: str | None) -> None:
        if device != self.device:
            self.device = device
            self.events.run_settings.emit()

    def set_devices(self, devices: list) -> None:
        """The devices TensorFlow sees; the device becomes the first GPU, else the first device (a subscriber
        may pick the one remembered from last time). No run of its own: the run in flight used this default."""
        self.devices = list(devices)
        gpus = [device.name for device in self.devices if device.kind == "GPU"]
        self.device = gpus[0] if gpus else (self.devices[0].name if self.devices else None)
        self.events.devices.emit()

    # --- the status line ---

    def say(self, text: str, error: bool = False) -> None:
        self.status_text = text
        self.events.status.emit(text, error)

    # --- saved or not ---

    @property
    def modified(self) -> bool:
        return self._modified

    def mark_clean(self) -> None:
        self._clean = self._saved_form()
        self._refresh_modified()

    def set_weights(self, weights: dict | None, weights_id: str | None) -> None:
        """Trained weights (training, its undo and redo, a reset); modified unless they are the saved ones."""
        self.document.weights, self.document.weights_id = weights, weights_id
        self._refresh_modified()

    def mark_modified(self) -> None:
        """Not what any file holds (e.g. a restored autosave) until it is saved."""
        self._clean = None
        self._refresh_modified()

    def saved_as(self, source: str) -> None:
        self.source = source
        self.mark_clean()

    def _saved_form(self) -> tuple[dict, str | None]:
        return self.snapshot(), self.document.weights_id

    def _refresh_modified(self) -> None:
        modified = self._clean is None or self._saved_form() != self._clean
        self._modified = modified
        self.events.modified.emit(modified)     # also when unchanged: the title shows the source too
