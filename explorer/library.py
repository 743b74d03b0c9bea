"""The explorer as a library: `inspect` runs a model on sequences in this process and returns a Report;
`explore` opens the window on them. Nothing heavy is imported until a function is called.

`prepare` is the one place that turns (model, sequences, batching keywords) into the explorer's stack, its
sequence text and notes; `inspect`, `explore` and the command line all go through it."""

from __future__ import annotations

import atexit
import base64
import dataclasses
import html
import io
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from .core.errors import ExplorerError

if TYPE_CHECKING:
    from PySide6.QtWidgets import QMainWindow

    from .core.run import RunResult
    from .core.doctor import DoctorReport
    from .core.spec import StackSpec

# What `model` may be: a Keras model object, a `.keras` (or `.h5`) path, a stack file path, a stack dict or "preset:NAME"
ModelLike = Union[Any, str, os.PathLike, dict]
# What `sequences` may be: the sequence text, one string per sequence (ids or words), lists of ids, ragged
# feature arrays (T_i × F each) or a NumPy array (B × T ids, B × T × F features)
SequencesLike = Union[str, list, np.ndarray, None]

BATCHING_KEYS = ("mode", "padding", "truncating", "maxlen", "pad_value")
HEATMAP_ROWS = 4             # sequences drawn in each layer's heatmap
HEATMAP_UNITS = 32           # units drawn per sequence (the first ones)
HEATMAP_CELL = (24, 3)       # pixels per (timestep, unit) at most
HEATMAP_MAX_WIDTH = 720      # the time axis is squeezed to at most this many pixels
TICK_SPACING = 6             # pixels at least between two ticks of the time axis


@dataclass
class Prepared:
    """A request of the library or the command line: the stack (batching overrides applied), the sequence
    text to run (None: none given and none in the stack), whether its custom expressions may run, and notes
    about the import and the batching."""

    spec: StackSpec
    text: str | dict[str, str | None] | None   # several inputs: each input's text by name
    trust: bool
    notes: list[str] = field(default_factory=list)


def prepare(model: ModelLike, sequences: SequencesLike = None, *, padding: str | None = None,
            truncating: str | None = None, maxlen: int | None = None, pad_value: float | None = None,
            mode: str | None = None, trust: bool = False) -> Prepared:
    """(model, sequences, batching overrides) → Prepared. User errors raise ExplorerError."""
    spec, notes, trust, imported = _load_model(model, trust)
    return complete(spec, sequences, notes=notes, trust=trust, imported=imported, padding=padding,
                    truncating=truncating, maxlen=maxlen, pad_value=pad_value, mode=mode)


def complete(spec: StackSpec, sequences: SequencesLike = None, *, notes: list[str] | None = None,
             trust: bool = False, imported: bool = False, **batching: Any) -> Prepared:
    """A loaded stack (changed in place) with the batching overrides and the sequences → Prepared; `imported`:
    it comes from a Keras model, whose padding is noted when its first layer has no mask."""
    notes = list(notes or [])
    apply_batching(spec, **batching)
    if spec.more_inputs:
        return Prepared(spec, _input_texts(spec, sequences), trust, notes)
    text = spec.sequences if sequences is None else sequence_text(sequences, spec)
    if imported and spec.input.has_steps and not _first_layer_masks(spec):
        notes.append(padding_note(spec))
    spec.sequences = text
    return Prepared(spec, text, trust, notes)


def _input_texts(spec: StackSpec, sequences: SequencesLike | dict) -> dict[str, str | None]:
    """A several-input stack's texts by input name, kept in `spec`: `sequences` maps input names to each input's
    sequences; the stack's own texts stay for the inputs it does not name."""
    names = [item.name for item in spec.all_inputs()]
    given = {} if sequences is None else sequences
    if not isinstance(given, dict):
        raise ExplorerError(f"this model takes {len(names)} inputs ({', '.join(names)}): give the sequences as a "
                            "dict of input name → sequences")
    unknown = [name for name in given if name not in names]
    if unknown:
        raise ExplorerError(f"the model has no input {unknown[0]!r}; its inputs: {', '.join(names)}")
    for item in spec.all_inputs():
        if item.name in given:   # each input's own kind decides how its sequences read
            text = sequence_text(given[item.name], dataclasses.replace(spec, input=item))
            if item is spec.input:
                spec.sequences = text
            else:
                spec.more_sequences[item.name] = text
    return spec.texts()


def _load_model(model: ModelLike, trust: bool) -> tuple[StackSpec, list[str], bool, bool]:
    """(stack, notes, trusted, imported from a Keras model) for every kind of `model`."""
    from .core import presets
    from .core.spec import StackSpec, from_dict
    if isinstance(model, (str, os.PathLike)):
        reference = os.fspath(model)
        spec, notes = presets.load_any(reference, trust=trust)
        return spec, list(notes), trust or presets.is_preset(reference), presets.is_keras_model(reference)
    if isinstance(model, dict):
        return from_dict(model), [], trust, False
    if isinstance(model, StackSpec):
        return model.copy(), [], trust, False
    if hasattr(model, "layers") and hasattr(model, "inputs"):
        from .core.keras_io import from_keras_model
        spec, _weights, notes = from_keras_model(model)
        return spec, notes, True, True      # the caller's own model: its code is the caller's
    raise ExplorerError(f"model must be a Keras model, a .keras or .h5 path, a stack file path or dict, or "
                        f"preset:NAME, got {type(model).__name__}")


def apply_batching(spec: StackSpec, **overrides: Any) -> None:
    """Sets the given batching fields (None: keep the stack's), validated as a stack file's batching."""
    from .core.spec import _parse_batching
    given = {key: value for key, value in overrides.items() if value is not None}
    unknown = set(given) - set(BATCHING_KEYS)
    if unknown:
        raise ExplorerError(f"unknown batching option {', '.join(sorted(unknown))}; known: {', '.join(BATCHING_KEYS)}")
    if given:
        spec.batching = _parse_batching({**dataclasses.asdict(spec.batching), **given}, spec.input)


def _first_layer_masks(spec: StackSpec) -> bool:
    first = spec.layers[0]
    return first.type == "masking" or (first.type == "embedding" and bool(first.params.get("mask_zero")))


def padding_note(spec: StackSpec) -> str:
    """What padding a model without a mask on its first layer runs with: the padded steps reach it."""
    b = spec.batching
    length = f"maxlen {b.maxlen}" if b.maxlen else "the longest sequence"
    ran = (f"the model's first layer has no mask, so the padding is part of its input: the sequences are padded "
           f"{b.padding} to {length} (truncating {b.truncating}, pad value {b.pad_value})")
    if b.padding == "pre":
        return ran + ", as keras.utils.pad_sequences pads by default"
    return (ran + "; keras.utils.pad_sequences pads pre by default: pass padding pre (--padding pre on the "
                  "command line) to run them as it does")


def sequence_text(sequences: SequencesLike, spec: StackSpec) -> str:
    """The sequence text (explorer/CONTRACT.md §2) for any accepted kind of `sequences`. Strings that are not token ids
    make a token stack read words (ids from a vocabulary of the text, as its `words` input does)."""
    if isinstance(sequences, str):
        return sequences
    if isinstance(sequences, np.ndarray):
        if sequences.ndim < 2 or sequences.ndim > 2 + len(spec.input.step_shape or (1,)):
            raise ExplorerError(f"a NumPy array of sequences must be batch × steps (ids) or batch × steps × "
                                f"{' × '.join(map(str, spec.input.step_shape or ['features']))}, got shape "
                                f"{sequences.shape}")
        sequences = list(sequences)
    if not isinstance(sequences, (list, tuple)) or not len(sequences):
        raise ExplorerError("sequences must be the sequence text, or a non-empty list of sequences (strings, lists "
                            f"of ids, or arrays of feature vectors), got {type(sequences).__name__}")
    lines = [_line(item, index, spec.input.kind) for index, item in enumerate(sequences)]
    if spec.input.kind == "tokens" and any(isinstance(item, str) or _is_words(item) for item in sequences):
        if not all(_plain_ids(line) for line in lines):
            spec.input.kind = "words"
    return "\n".join(lines) + "\n"


def _is_words(item: Any) -> bool:
    return isinstance(item, (list, tuple)) and bool(item) and all(isinstance(word, str) for word in item)


def _plain_ids(line: str) -> bool:
    return all(value.lstrip("+-").isdigit() for value in line.split())


def _line(item: Any, index: int, kind: str) -> str:
    """One sequence as a line of sequence text for an input of `kind` (line N of the text is sequence N - 1)."""
    if isinstance(item, str) or _is_words(item):
        line = item if isinstance(item, str) else " ".join(item)
        bad = next((c for c in ("\n", "\r", "#", "|") if c in line), None)
        if bad is not None:
            raise ExplorerError(f"sequence {index}: {bad!r} cannot be part of a sequence (it separates lines, "
                                "comments or labels in the sequence text)")
        return line
    values = np.asarray(item)
    if kind == "features" and values.ndim > 2:   # steps of several axes (an image's columns): typed flat
        values = values.reshape(len(values), -1)
    wanted = 2 if kind == "features" else 1
    if values.ndim in (1, 2) and values.ndim != wanted:
        raise ExplorerError(f"sequence {index}: the model takes "
                            + ("feature vectors (steps × features)" if wanted == 2 else "one vector (features,)"
                               if kind == "vector" else "token ids (one per step)")
                            + f", got an array of shape {values.shape}")
    if values.ndim == 1 and kind == "vector" and values.dtype.kind in "iuf":
        return " ".join(repr(float(v)) for v in values)
    if values.ndim == 1 and (values.dtype.kind in "iu" or (values.dtype.kind == "f"
                                                           and np.all(np.mod(values, 1) == 0))):
        return " ".join(str(int(v)) for v in values)
    if values.ndim == 2 and values.dtype.kind in "iuf":
        return "; ".join(" ".join(repr(float(v)) for v in step) for step in values)
    raise ExplorerError(f"sequence {index}: expected token ids (a list of integers) or feature vectors (steps × "
                        f"features), got an array of shape {values.shape} and type {values.dtype}")


def use_backend(backend: str | None) -> None:
    """Keras's backend for this process: set before Keras loads, or the one already loaded."""
    if not backend:
        return
    from .core.backend import check_backend
    check_backend(backend)
    if "keras" in sys.modules:
        loaded = sys.modules["keras"].backend.backend()
        if loaded != backend:
            raise ExplorerError(f"Keras already runs on {loaded} in this process: the {backend} backend must be "
                                "chosen before Keras is imported (set KERAS_BACKEND)")
        return
    os.environ["KERAS_BACKEND"] = backend


# --- inspect ---

@dataclass
class Layer:
    """One layer of a Report: Keras's first output, its states (return_state), mask and weights."""

    name: str
    type: str
    symbolic_shape: tuple
    shape: tuple
    mask_role: str
    params: int
    output: np.ndarray
    mask: np.ndarray | None
    states: dict[str, np.ndarray]
    weights: list[np.ndarray]

    @property
    def time_major(self) -> bool:
        return len(self.symbolic_shape) >= 3


@dataclass
class Report:
    """What `run --json/--npz` writes, as Python objects. `gates` ("<layer>/<gate>" → B × T × units) and
    `gradients` ("input" / layer name → B × T norms) are filled when asked for."""

    result: RunResult
    layers: list[Layer]
    notes: list[str]
    gates: dict[str, np.ndarray] = field(default_factory=dict)
    gradients: dict[str, np.ndarray] = field(default_factory=dict)
    gradient_target: np.ndarray | None = None
    leak_check: dict | None = None

    @property
    def input(self) -> np.ndarray:
        """The padded batch as pad mode runs it."""
        return self.result.input

    @property
    def mask(self) -> np.ndarray:
        """(B, T) bool, True = a valid step."""
        return self.result.mask

    @property
    def lengths(self) -> np.ndarray:
        return self.result.lengths

    @property
    def fc_input(self):
        """The first dense layer's input after the recurrent layers (layer, shapes, explanation), or None."""
        return self.result.fc_input

    @property
    def fc_inputs(self) -> list:
        """Every head's FC input, in the order of the model's outputs (two heads on one GRU: two)."""
        return self.result.fc_inputs

    @property
    def warnings(self) -> list[str]:
        return self.result.warnings

    @property
    def output(self) -> np.ndarray:
        """The model's output."""
        return self.layers[-1].output

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        """The document `run --json` writes."""
        document = self.result.to_json()
        if self.leak_check is not None:
            document["leak_check"] = self.leak_check
        return document

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays `run --npz` writes (with --gates and --gradients when they were asked for)."""
        arrays = self.result.arrays()
        for layer in self.layers:
            arrays.update({f"weights/{layer.name}/{i}": weight for i, weight in enumerate(layer.weights)})
        arrays.update({f"gates/{key}": value for key, value in self.gates.items()})
        arrays.update({f"grad/{key}": value for key, value in self.gradients.items()})
        if self.gradient_target is not None:
            arrays["gradient_target"] = self.gradient_target
        return arrays

    def to_npz(self, path: str | os.PathLike) -> None:
        """Writes the `run --npz` file (atomically)."""
        from .core.spec import write_bytes_atomic
        buffer = io.BytesIO()
        np.savez(buffer, **self.arrays())
        write_bytes_atomic(Path(path), buffer.getvalue())

    def _rows(self) -> list[tuple[str, str, str, str, str, str]]:
        from .core.diagnose import format_shape
        rows = []
        for layer in self.result.layers:
            rows.append((layer.name, layer.type, format_shape(layer.symbolic_shape), format_shape(layer.shape),
                         layer.mask_role, str(layer.params)))
            rows += [(f"state {state.name}", "", format_shape(state.symbolic_shape), format_shape(state.shape), "", "")
                     for state in layer.states]
        return rows

    def _fc_sentence(self) -> str | None:
        from .core.diagnose import format_shape
        return " ".join(f"FC input of {fc.layer}: {format_shape(fc.symbolic_shape)}, this batch "
                        f"{format_shape(fc.shape or ())}. {fc.explanation}" for fc in self.fc_inputs) or None

    def to_markdown(self) -> str:
        """The shapes table, the FC input, the notes and the warnings, as Markdown."""
        from .core.diagnose import format_shape

        def cells(row) -> str:
            return "| " + " | ".join(value.replace("|", "\\|") for value in row) + " |"

        lines = [f"Batch {format_shape(self.input.shape)} on {self.result.device}, mode {self.result.mode}, "
                 f"lengths {self.lengths.tolist()}", "",
                 cells(("layer", "type", "symbolic shape", "this batch", "mask", "params")), cells(("---",) * 6)]
        lines += [cells(row) for row in self._rows()]
        sentence = self._fc_sentence()
        if sentence:
            lines += ["", sentence]
        lines += [""] + [f"- note: {note}" for note in self.notes] + [f"- warning: {w}" for w in self.warnings]
        return "\n".join(lines).rstrip() + "\n"

    def _repr_html_(self) -> str:
        """The shapes table with the FC input, the notes and warnings, and a heatmap per layer with a time axis
        (the first sequences, padded steps hatched): images inline, no script."""
        from .core.diagnose import format_shape
        e = html.escape
        head = "".join(f"<th>{e(name)}</th>" for name in ("layer", "type", "symbolic shape", "this batch", "mask",
                                                           "params"))
        body = "".join("<tr>" + "".join(f"<td>{e(value)}</td>" for value in row) + "</tr>" for row in self._rows())
        parts = [f'<div class="rnn-explorer-report"><p>Batch {e(format_shape(self.input.shape))} on '
                 f"{e(self.result.device)}, mode {e(self.result.mode)}, lengths {e(str(self.lengths.tolist()))}</p>",
                 f'<table class="rnn-explorer-shapes"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>']
        sentence = self._fc_sentence()
        if sentence:
            parts.append(f'<p class="rnn-explorer-fc"><b>{e(sentence)}</b></p>')
        items = [f"<li>note: {e(note)}</li>" for note in self.notes]
        items += [f'<li style="color:#a05a00">warning: {e(warning)}</li>' for warning in self.warnings]
        if items:
            parts.append(f"<ul>{''.join(items)}</ul>")
        shown = min(HEATMAP_ROWS, len(self.lengths))
        for layer in self.layers:
            if not layer.time_major:
                continue
            png = heatmap_png(layer.output[:shown], self.mask[:shown])
            parts.append(f'<figure class="rnn-explorer-heatmap"><figcaption>{e(layer.name)}: output of the first '
                         f"{shown} sequence{'s' if shown != 1 else ''}, time → (steps 0 to {self.mask.shape[1] - 1}), "
                         "units ↓, padded steps hatched"
                         f'</figcaption><img alt="{e(layer.name)} over time" style="image-rendering:pixelated" '
                         f'src="data:image/png;base64,{base64.b64encode(png).decode()}"></figure>')
        parts.append("</div>")
        return "".join(parts)


def inspect(model: ModelLike, sequences: SequencesLike = None, *, padding: str | None = None,
            truncating: str | None = None, maxlen: int | None = None, pad_value: float | None = None,
            mode: str | None = None, device: str | None = None, backend: str | None = None, gates: bool = False,
            gradients: bool = False, target: int | None = None, trust: bool = False) -> Report:
    """Runs `model` on `sequences` in this process and returns every layer's shapes, outputs, states and
    weights, the padded batch and its mask, the FC input and the warnings (explorer/CONTRACT.md §3, `run`).

    `model`: a Keras model, a `.keras` (or `.h5`) path, a stack file path or dict, or "preset:NAME". `sequences`: the
    sequence text, a list of strings (ids or words), lists of ids, ragged feature arrays, or a NumPy array;
    None runs the stack's own. `padding`, `truncating`, `maxlen`, `pad_value`, `mode` override the batching.
    `gates` / `gradients` (`target`: the output unit) add the gates and gradient norms. `trust` lets a stack's
    custom expressions run."""
    use_backend(backend)
    prepared = prepare(model, sequences, padding=padding, truncating=truncating, maxlen=maxlen,
                       pad_value=pad_value, mode=mode, trust=trust)
    if prepared.text is None:
        raise ExplorerError("the model holds no sequences: pass sequences")
    return run_prepared(prepared, device=device, gates=gates, gradients=gradients, target=target)


def doctor(model: ModelLike, sequences: SequencesLike = None, *, padding: str | None = None,
           truncating: str | None = None, maxlen: int | None = None, pad_value: float | None = None,
           mode: str | None = None, device: str | None = None, backend: str | None = None,
           trust: bool = False) -> DoctorReport:
    """The check-up of `model` on `sequences` (the arguments of `inspect`): a DoctorReport with `findings`,
    `checked`, `to_json()`, `to_html()` and `to_markdown(folder)` (explorer/CONTRACT.md §5, `doctor`)."""
    from .core.doctor import examine
    from .core.run import Engine
    use_backend(backend)
    prepared = prepare(model, sequences, padding=padding, truncating=truncating, maxlen=maxlen,
                       pad_value=pad_value, mode=mode, trust=trust)
    if prepared.text is None:
        raise ExplorerError("the model holds no sequences: pass sequences")
    return examine(Engine(), prepared.spec, prepared.text, device=device, trust=prepared.trust)


def run_prepared(prepared: Prepared, *, device: str | None = None, gates: bool = False, gradients: bool = False,
                 target: int | None = None, leak_check: bool = False, gradient_input: str | None = None) -> Report:
    """Runs a Prepared request through a fresh engine → Report."""
    from .core.run import Engine
    engine = Engine()
    spec, text = prepared.spec, prepared.text
    result = engine.run(spec, text, device=device, trust=prepared.trust)
    weights = engine.weights()
    layers = [Layer(layer.name, layer.type, layer.symbolic_shape, layer.shape, layer.mask_role, layer.params,
                    layer.output, layer.mask,
                    {key.rsplit("/", 1)[1]: value for key, value in layer.extras.items()
                     if key.startswith(f"{layer.name}/state/")},   # its first call's, not a further call's
                    [weights[key] for key in sorted((k for k in weights if k.startswith(f"weights/{layer.name}/")),
                                                    key=lambda k: int(k.rsplit("/", 1)[1]))])
              for layer in result.layers]
    report = Report(result, layers, list(prepared.notes))
    if leak_check:
        from .core.leaks import leak_check as check
        report.leak_check = check(engine, spec, text, device=device, trust=prepared.trust, padded=result).to_json()
    if gates or gradients:
        from .core.batches import batch_of
        built, layout = batch_of(engine, spec, text)
        if gates:
            from .core.gates import gates as gates_of
            report.gates = gates_of(built, layout)
        if gradients:
            from .core.gradients import gradients as gradients_of
            found = gradients_of(built, layout, target=target, source=gradient_input)
            report.gradients, report.gradient_target = dict(found.norms), found.target
    return report


# --- the heatmap images: NumPy → PNG, no imaging library ---

def heatmap_png(outputs: np.ndarray, mask: np.ndarray) -> bytes:
    """A PNG of time-major `outputs` (rows × T × …): one strip per sequence, time across, the first
    HEATMAP_UNITS units down, blue (negative) – white – red (positive), padded steps hatched grey, and a time
    axis below with a tick at every step (every 5th longer; fewer ticks when the steps are narrow)."""
    rows, steps = outputs.shape[:2]
    values = np.nan_to_num(outputs.reshape(rows, steps, -1)[:, :, :HEATMAP_UNITS].astype(np.float64))
    valid = values[mask[:rows].astype(bool)]
    scale = float(np.abs(valid).max()) if valid.size else 0.0
    scaled = values / scale if scale > 0 else np.zeros_like(values)
    cell_w = max(1, min(HEATMAP_CELL[0], HEATMAP_MAX_WIDTH // max(steps, 1)))
    cell_h = HEATMAP_CELL[1]
    red, blue, white = np.array([178, 24, 43.0]), np.array([33, 102, 172.0]), np.array([247, 247, 247.0])
    strips = []
    for row in range(rows):
        s = np.clip(scaled[row].T, -1, 1)[..., None]          # units × T × 1
        colour = np.where(s >= 0, white + s * (red - white), white - s * (blue - white))
        image = np.repeat(np.repeat(colour, cell_h, axis=0), cell_w, axis=1)
        padded = np.repeat(~mask[row].astype(bool), cell_w)
        ys, xs = np.indices(image.shape[:2])
        image[padded[None, :] & ((xs + ys) % 4 < 2)] = (150, 150, 150)
        strips += [image, np.full((4, image.shape[1], 3), 255.0)]   # a white gap between sequences
    strips.append(_time_axis(steps, cell_w))
    from .core.pictures import encode
    return encode(np.concatenate(strips, axis=0).astype(np.uint8))


def _time_axis(steps: int, cell_w: int) -> np.ndarray:
    axis = np.full((6, steps * cell_w, 3), 255.0)
    axis[0] = 90
    every = max(1, -(-TICK_SPACING // cell_w))
    for step in range(0, steps, every):
        axis[: 6 if step % 5 == 0 else 3, step * cell_w] = 90
    return axis


# --- explore ---

def explore(model: ModelLike = None, sequences: SequencesLike = None, *, padding: str | None = None,
            truncating: str | None = None, maxlen: int | None = None, pad_value: float | None = None,
            mode: str | None = None, backend: str | None = None, trust: bool = False,
            block: bool | None = None) -> QMainWindow | None:
    """Opens the explorer window on `model` and `sequences` (default: the default preset and its sequences),
    with the batching overrides. A Keras model in memory crosses to the engine as a temporary `.keras` file;
    a `.keras` model is read in the engine, as File > Open does.

    From a script it blocks until the window closes and returns None. In IPython/Jupyter with `%gui qt`
    (or with `block=False`) it returns the window at once, and the window stays live."""
    from .core import presets
    batching = dict(padding=padding, truncating=truncating, maxlen=maxlen, pad_value=pad_value, mode=mode)
    model = presets.PREFIX + presets.DEFAULT if model is None else model
    if not isinstance(model, (str, os.PathLike, dict)) and hasattr(model, "save"):
        folder = tempfile.mkdtemp(prefix="rnn-explorer-")
        atexit.register(shutil.rmtree, folder, True)
        path = os.path.join(folder, "model.keras")
        model.save(path)
        model, trust = path, True      # the caller's own model
    if backend:
        from .core.backend import check_backend
        check_backend(backend)
    from .engine.client import shared_client
    client = shared_client(backend)   # the engine loads Keras in its own process while the window is built
    if client.failure is not None:    # an engine an earlier window gave up on: a new window tries again
        client.restart(backend or client.backend)
    from .qt.explore import open_explorer
    if isinstance(model, (str, os.PathLike)) and presets.is_keras_model(os.fspath(model)):
        def arrived(spec: StackSpec) -> Prepared:
            return complete(spec, sequences, trust=trust, imported=True, **batching)
        window, app = open_explorer(None, keras_path=os.fspath(model), arrived=arrived, trust=trust)
    else:
        window, app = open_explorer(prepare(model, sequences, trust=trust, **batching))
    if block is None:
        block = not _event_loop_integrated()
    if block:
        app.exec()
        return None
    return window


def _event_loop_integrated() -> bool:
    """IPython runs Qt's event loop for us (`%gui qt`)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    loop = getattr(shell, "active_eventloop", None)
    return bool(loop) and str(loop).startswith("qt")
