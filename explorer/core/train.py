"""Training a stack on labelled sequences, batched and masked exactly as a run batches them.

The loss follows from the head: softmax → sparse categorical cross-entropy, sigmoid → binary
cross-entropy, anything else → mean squared error (per timestep when the head keeps the time axis).
Training runs in chunks of steps (`train_steps`), so a window stays live between them and resumes
where it stopped: the trainer (model, optimizer state, curves) is kept per engine until the stack,
the text, the batching or the optimizer changes. After each chunk the trained weights go back with
the stack (`StackSpec.weights`), so runs, saving, `.keras` export and undo keep them.

A step is one optimizer update (Keras's `train_on_batch`) on one batch as the mode runs it: the
whole padded batch in `pad` mode, the next bucket or sequence in turn in `bucket` and `one_by_one`
mode. `chunked` mode trains on the whole padded sequences: carrying the state from window to window
gives the same numbers. The mask in effect masks the loss and the accuracy, as in Keras.
"""

from __future__ import annotations

import dataclasses
import math
import time
import uuid
import warnings
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from . import backend, sequences
from .errors import ExplorerError, SequenceError, StackError, TrustError, strip_ansi
from .memory import estimate_mb
from .run import Cancelled, Engine
from .spec import StackSpec

OPTIMIZERS = {"adam": "Adam", "sgd": "SGD", "rmsprop": "RMSprop"}
DEFAULT_OPTIMIZER = "adam"
DEFAULT_LEARNING_RATE = 0.01
MAX_STEPS = 1_000_000
MAX_LEARNING_RATE = 100.0

# engine → its trainer (kept between chunks; an engine process holds one)
_TRAINERS: weakref.WeakKeyDictionary[Engine, Trainer] = weakref.WeakKeyDictionary()


class TrainingError(ExplorerError):
    """Settings or a stack that cannot be trained."""


@dataclass(frozen=True)
class TrainSettings:
    optimizer: str = DEFAULT_OPTIMIZER
    learning_rate: float = DEFAULT_LEARNING_RATE

    def check(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise TrainingError(f'unknown optimizer "{self.optimizer}"; optimizers: {", ".join(OPTIMIZERS)}')
        rate = self.learning_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate) \
                or not 0 < rate <= MAX_LEARNING_RATE:
            raise TrainingError(f"the learning rate must be a number above 0 and at most {MAX_LEARNING_RATE:g}, "
                                f"got {rate}")


@dataclass(frozen=True)
class Objective:
    """What the head is trained for, and the loss that follows."""

    kind: str        # "class" (softmax), "binary" (sigmoid) or "values" (regression)
    per_step: bool   # the head keeps the time axis: one label per step
    width: int       # classes, or numbers per label
    head: str        # the last layer's name

    @property
    def loss(self) -> str:
        return {"class": "sparse_categorical_crossentropy", "binary": "binary_crossentropy",
                "values": "mean_squared_error"}[self.kind]

    @property
    def metric(self) -> str | None:
        return {"class": "sparse_categorical_accuracy", "binary": "binary_accuracy"}.get(self.kind)

    @property
    def description(self) -> str:
        step = " at every step" if self.per_step else ""
        if self.kind == "class":
            return f"sparse categorical cross-entropy: {self.head} ends in softmax over {self.width} classes{step}"
        if self.kind == "binary":
            return f"binary cross-entropy: {self.head} ends in sigmoid ({self.width} unit{'s' * (self.width > 1)}){step}"
        return f"mean squared error: {self.head} gives {self.width} number{'s' * (self.width > 1)}{step} (regression)"

    @property
    def expected(self) -> str:
        """The labels a line needs, in words."""
        if self.per_step:
            return {"class": f"one class id from 0 to {self.width - 1} per step",
                    "binary": "one label from 0 to 1 per step", "values": "one number per step"}[self.kind]
        if self.kind == "class":
            return f"one class id from 0 to {self.width - 1}"
        noun = "label from 0 to 1" if self.kind == "binary" else "number"
        return f"{self.width} {noun}{'s' * (self.width > 1)}"


def objective_for(built) -> Objective:
    """The objective of a built stack's head (its last layer)."""
    info = built.layers[-1]
    shape = info.symbolic_shape
    if len(shape) not in (2, 3) or shape[-1] is None:
        raise TrainingError(f"{info.name} gives {_shape(shape)}: training needs one vector per sequence "
                            "(batch, units) or per step (batch, T, units) at the end of the stack")
    activation = info.spec.params.get("activation") if info.spec.type in ("dense", "time_distributed_dense") else None
    kind = {"softmax": "class", "sigmoid": "binary"}.get(activation, "values")
    width = int(shape[-1])
    per_step = len(shape) == 3
    if per_step and kind != "class" and width != 1:
        raise TrainingError(f"{info.name} gives {width} numbers at every step, but labels give one per step: "
                            "set its units to 1, or use softmax for classes")
    if kind == "class" and width < 2:
        raise TrainingError(f"{info.name} is a softmax over 1 unit, which is always 1: use 2 or more units, "
                            "or sigmoid with 1 unit for two classes")
    return Objective(kind, per_step, width, info.name)


def _shape(shape) -> str:
    return "(" + ", ".join("None" if s is None else str(s) for s in shape) + ")"


def targets(parsed: sequences.Sequences, objective: Objective) -> list[np.ndarray]:
    """Each line's labels checked against the head: int32 class ids or float32 numbers (per step: one per
    token, before truncation). Problems raise SequenceError at the label's line and column."""
    found = []
    for item, line, labels in zip(parsed.items, parsed.lines, parsed.labels):
        if labels is None:
            raise SequenceError(line, 1, f"this line has no labels: add | and {objective.expected} "
                                         f"after the sequence ({objective.description})")
        values, columns = labels.values, labels.columns
        count = len(item) if objective.per_step else (1 if objective.kind == "class" else objective.width)
        if len(values) != count:
            column = columns[count] if len(values) > count else columns[-1]
            what = f"{len(item)} steps" if objective.per_step else objective.head
            raise SequenceError(line, column, f"{len(values)} label{'s' * (len(values) != 1)} for {what}: "
                                              f"expected {objective.expected}")
        for value, column in zip(values, columns):
            if objective.kind == "class" and not (value.is_integer() and 0 <= value < objective.width):
                raise SequenceError(line, column, f"label {value:g} is not a class id of {objective.head}: "
                                                  f"expected a whole number from 0 to {objective.width - 1}")
            if objective.kind == "binary" and not 0 <= value <= 1:
                raise SequenceError(line, column, f"label {value:g} is outside 0 to 1: {objective.head} ends in "
                                                  "sigmoid, whose labels are probabilities (0 or 1 for classes)")
        found.append(values.astype(np.int32 if objective.kind == "class" else np.float32))
    return found


def _labelled(spec: StackSpec, text) -> tuple[str | None, sequences.Sequences]:
    """The input whose lines carry the labels and its sequences: the only input, or with several inputs the first
    whose text has labels (`3 14 15 | 1`; per step, on the input whose steps the head has)."""
    if not spec.more_inputs:
        parsed = sequences.parse(text or "", spec.input)
        if spec.input.kind == "words":
            from .vocabulary import encode
            parsed, _ = encode(parsed, spec.input)
        return spec.input.name, parsed
    from .run import parse_inputs
    parsed, _ = parse_inputs(spec, text)
    name = next((name for name, items in parsed.items() if any(labels is not None for labels in items.labels)),
                spec.input.name)
    return name, parsed[name]


def _piece_targets(labels: list[np.ndarray], rows: np.ndarray, steps: int, batching, objective: Objective):
    """The labels of a piece's rows, laid out like its batch (per step: truncated and padded the same way)."""
    chosen = [labels[r] for r in rows]
    if not objective.per_step:
        stacked = np.stack(chosen)
        return stacked[:, 0] if objective.kind == "class" else stacked
    dtype = "int32" if objective.kind == "class" else "float32"
    padded = sequences.pad([sequences.truncate(y, batching.maxlen, batching.truncating) for y in chosen],
                           dataclasses.replace(batching, pad_value=0), steps, dtype)
    return padded if objective.kind == "class" else padded[..., None]


@dataclass
class TrainProgress:
    """Where training stands after a chunk: the stack with its trained weights and the curves so far."""

    spec: StackSpec                  # the stack with the trained weights
    objective: Objective
    loss: list[float]                # one value per step since the trainer started
    accuracy: list[float] | None     # classification heads only
    steps: int                       # steps done this chunk
    seconds: float                   # training time since the trainer started
    settings: TrainSettings = field(default_factory=TrainSettings)

    @property
    def total_steps(self) -> int:
        return len(self.loss)


class Trainer:
    """One training session: the stack's built model compiled with a fresh optimizer, the batches as the
    mode runs them, and the curves."""

    def __init__(self, engine: Engine, spec: StackSpec, text: str, settings: TrainSettings, device: str | None):
        settings.check()
        from .batches import batch_of, model_batch
        self.device = backend.resolve_device(device)
        name, parsed = _labelled(spec, text)
        if spec.more_inputs:
            built, layout = batch_of(engine, spec, text)
        else:
            built = engine.built_for(spec)
            layout = sequences.input_layout(parsed, spec.input, spec.batching, fixed_length=built.time_fixed is not None)
        self.objective = objective_for(built)
        item = spec.input_named(name)
        if self.objective.per_step and not item.has_steps:
            raise TrainingError(f"{self.objective.head} gives a label per step, but the labelled input {name} is one "
                                "vector per example: put the labels on the lines of a sequence input")
        labels = targets(parsed, self.objective)
        needed = estimate_mb(spec, *layout.batch.shape[:2], training=True)
        if needed > engine.memory_limit_mb:
            raise StackError(f"training on this batch needs about {needed:,.0f} MB ({layout.batch.shape[0]} sequences "
                             f"× {layout.batch.shape[1]} steps), over the limit of {engine.memory_limit_mb:,.0f} MB: "
                             "use fewer or shorter sequences, or lower the units")
        steps = getattr(layout, "inputs", {}).get(name, layout).batch.shape[1]   # the labelled input's
        self.batches = [(model_batch(layout, piece, np.arange(len(piece.rows))),
                         _piece_targets(labels, piece.rows, piece.batch.shape[1] if name == spec.input.name else steps,
                                        spec.batching, self.objective)) for piece in layout.pieces]
        import keras
        optimizer = getattr(keras.optimizers, OPTIMIZERS[settings.optimizer])(learning_rate=settings.learning_rate)
        metrics = [self.objective.metric] if self.objective.metric else None
        built.model.compile(optimizer=optimizer, loss=self.objective.loss, metrics=metrics)
        self.built = built
        self.engine = engine
        self.settings = settings
        self.text = text
        self.spec = spec
        self.key = self._key(spec, text, settings, device)
        self.loss: list[float] = []
        self.accuracy: list[float] | None = [] if self.objective.metric else None
        self.seconds = 0.0

    @staticmethod
    def _key(spec: StackSpec, text: str, settings: TrainSettings, device: str | None) -> tuple:
        return spec.architecture_key(), repr(spec.batching), text, settings, device

    def run(self, steps: int, seconds: float | None, check_cancel: Callable[[], None]) -> TrainProgress:
        """Up to `steps` steps, stopping early once `seconds` have passed; then the stack gets the weights."""
        started = time.perf_counter()
        done = 0
        model = self.built.model
        try:
            with backend.device_scope(self.device), backend.graph_rewrites(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                while done < steps:
                    check_cancel()
                    x, y = self.batches[len(self.loss) % len(self.batches)]
                    logs = model.train_on_batch(x, y, return_dict=True)
                    loss = float(logs["loss"])
                    if not math.isfinite(loss):
                        raise TrainingError(f"the loss became {loss} at step {len(self.loss) + 1}: lower the "
                                            "learning rate (or reset the weights)")
                    self.loss.append(loss)
                    if self.accuracy is not None:
                        self.accuracy.append(float(logs[self.objective.metric]))
                    done += 1
                    if seconds is not None and time.perf_counter() - started >= seconds:
                        break
        except (ExplorerError, Cancelled):
            raise
        except Exception as error:  # TensorFlow's runtime errors
            message = strip_ansi(str(error)).strip().splitlines()
            raise StackError(f"training failed: {message[0] if message else type(error).__name__}") from None
        finally:
            self.seconds += time.perf_counter() - started
            if done:
                self._hand_back_weights()
        return TrainProgress(self.spec, self.objective, list(self.loss),
                             None if self.accuracy is None else list(self.accuracy), done, self.seconds,
                             self.settings)

    def _hand_back_weights(self) -> None:
        trained = self.spec.copy()
        trained.weights = {name: layer.get_weights() for name, layer in self.built.keras_layers.items()}
        trained.weights_id = f"trained-{uuid.uuid4().hex}"
        self.engine.adopt(self.built, trained)
        self.spec = trained
        self.key = self._key(trained, self.text, self.settings, self.key[-1])


def train_steps(engine: Engine, spec: StackSpec, text: str | None = None, settings: TrainSettings | None = None, *,
                steps: int, seconds: float | None = None, device: str | None = None, trust: bool = False,
                check_cancel: Callable[[], None] | None = None) -> TrainProgress:
    """A chunk of training: resumes the engine's trainer when `spec` is the stack it handed back last (same
    text, batching, optimizer and device), else starts a new one from `spec`'s weights."""
    check_cancel = check_cancel or (lambda: None)
    _check_steps(steps)
    if spec.has_custom() and not trust:
        raise TrustError("this stack has a custom expression, which runs as code: train it only if you trust "
                         "its source (--trust on the command line)")
    settings = settings or TrainSettings()
    text = spec.sequences if text is None else text
    trainer = _TRAINERS.get(engine)
    if trainer is None or trainer.key != Trainer._key(spec, text, settings, device):
        _TRAINERS.pop(engine, None)
        trainer = Trainer(engine, spec, text, settings, device)
        _TRAINERS[engine] = trainer
    return trainer.run(steps, seconds, check_cancel)


def forget(engine: Engine) -> None:
    """Drops the engine's trainer: the next chunk starts afresh (new optimizer state, new curves)."""
    _TRAINERS.pop(engine, None)


def _check_steps(steps: Any) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise TrainingError(f"the number of steps must be a whole number from 1 to {MAX_STEPS}, got {steps}")


def train(engine: Engine, spec: StackSpec, text: str | None = None, settings: TrainSettings | None = None, *,
          steps: int, device: str | None = None, trust: bool = False,
          check_cancel: Callable[[], None] | None = None) -> tuple[TrainProgress, Any]:
    """Headless training from `spec`'s weights: `steps` steps, then one run of the trained stack.
    Returns the progress and that run's RunResult."""
    forget(engine)
    progress = train_steps(engine, spec, text, settings, steps=steps, device=device, trust=trust,
                           check_cancel=check_cancel)
    forget(engine)
    result = engine.run(progress.spec, text, device=device, trust=trust, check_cancel=check_cancel)
    return progress, result


def report(progress: TrainProgress, result) -> dict:
    """The `train --json` document."""
    document = {"objective": progress.objective.description, "loss_function": progress.objective.loss,
                "optimizer": progress.settings.optimizer, "learning_rate": progress.settings.learning_rate,
                "steps": progress.total_steps, "seconds": round(progress.seconds, 4), "loss": progress.loss}
    if progress.accuracy is not None:
        document["accuracy"] = progress.accuracy
    document["run"] = result.to_json()
    return document


def run_accuracy(result, parsed: sequences.Sequences, objective: Objective, batching) -> float | None:
    """The share of right answers of a run's final output on the text's labels, on the sequences' own (valid)
    steps for a per-step head; None where it does not apply (regression, missing or unfitting labels)."""
    if objective.metric is None or len(parsed) != len(result.lengths) or result.layers[-1].name != objective.head:
        return None
    try:
        labels = targets(parsed, objective)
    except SequenceError:
        return None
    output = result.layers[-1].passed
    right = total = 0
    for row, label in enumerate(labels):
        predicted = output[row]
        if objective.per_step:
            label = sequences.truncate(label, batching.maxlen, batching.truncating)
            predicted = predicted[result.mask[row]]
            if len(predicted) != len(label):
                return None
        if objective.kind == "class":
            hits = predicted.argmax(-1) == label
        else:
            hits = (predicted.reshape(np.shape(label)) > 0.5) == (label > 0.5)
        right += int(np.count_nonzero(hits))
        total += int(np.size(hits))
    return right / total if total else None
