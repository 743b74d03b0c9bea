"""The lessons as a course: the built-in presets in teaching order, each with where to look.

The path goes padding → masks → pooling → stacking → bidirectional → batching modes, then inside
the cell (gates and gradients), then the check-up (the model doctor), then training. Each lesson names the
editor line (1-based, as in the sequence editor) and the layer that show its point, the plot tab to open when
it is not the first, and one sentence that says where to look once they are on screen.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import presets
from . import steps as lesson_steps
from .errors import SpecError
from .spec import StackSpec, from_dict, to_dict

SECTIONS = ("Padding", "Masks", "Pooling", "Stacking", "Bidirectional", "Batching modes", "Inside the cell",
            "Check-up", "Training")
CELL_TAB = "Inside the cell"


@dataclass(frozen=True)
class Lesson:
    preset: str
    section: str
    line: int          # the editor line opened first
    layer: str         # the layer the plots open on
    look: str          # where to look, in one sentence
    tab: str | None = None   # the plot tab that shows it, when not the first ("Outputs")


COURSE = (
    Lesson("forgotten_mask_post", "Padding", 3, "lstm_1",
           "Line 3 (8 4 19) is padded with four zeros at the end: they are hatched in the batch mask, and the "
           "LSTM's last state, plotted as bars, comes after them. Tick mask_zero on the embedding and watch "
           "the bars change."),
    Lesson("forgotten_mask_pre", "Padding", 3, "lstm_1",
           "Line 3 is padded at the front: in the heatmap every step after the four zeros differs from what "
           "the line gives alone; the leak check (Shapes panel) measures it."),
    Lesson("flatten_fixed_maxlen", "Padding", 3, "lstm_1",
           "Every line is padded or cut to maxlen 8: the heatmap has 8 steps, and the FC input plot shows the "
           "8 × 16 = 128 features that Flatten makes."),
    Lesson("last_state", "Masks", 3, "lstm_1",
           "Line 3 ends at step 2: the bars are the LSTM state at token 19, because the mask skips the hatched "
           "padded steps."),
    Lesson("sensor_features", "Masks", 3, "gru_1",
           "Line 3 has two timesteps: the Masking layer marks the all-zero padded ones, hatched in the batch "
           "mask, and the GRU's last state comes from step 1."),
    Lesson("average_pooling", "Pooling", 3, "lstm_1",
           "On line 3 the heatmap's hatched padded steps repeat the last output; the FC input plot shows the "
           "average over the three valid steps only."),
    Lesson("max_pooling", "Pooling", 3, "lstm_1",
           "On line 3 the hatched padded steps repeat the last output, so here the maximum in the FC input "
           "plot is unchanged; set padding to pre and the padding's outputs compete with the real ones."),
    Lesson("masked_mean", "Pooling", 3, "lstm_1",
           "The FC input plot is the mean of line 3's three valid steps: change padding to pre and it stays "
           "the same."),
    Lesson("time_average_custom", "Pooling", 3, "lstm_1",
           "The custom layer averages all 7 steps of line 3, hatched padding included: its FC input differs "
           "from masked mean's."),
    Lesson("attention_pooling", "Pooling", 3, "lstm_1",
           "The attention weights plot of line 3 is exactly 0 on the hatched padded steps and sums to 1 over "
           "the valid ones."),
    Lesson("stacked_lstm", "Stacking", 3, "lstm_1",
           "lstm_1 returns sequences: its heatmap keeps the time axis that lstm_2 needs; untick its "
           "return_sequences to see the explanation."),
    Lesson("time_distributed", "Stacking", 3, "time_distributed_dense_1",
           "The output has a time axis: 5 values at every step of line 3, and its padded steps are marked "
           "too."),
    Lesson("bidirectional_gru", "Bidirectional", 3, "gru_1",
           "The bars of line 3 are 48 values: 24 from the forward GRU, then 24 from the backward one, which "
           "starts at token 19 thanks to the mask."),
    Lesson("chunked_stateful", "Batching modes", 1, "lstm_1",
           "Line 1 runs in windows of 4 steps, the state carried across: switch the mode to pad and the "
           "heatmap's valid steps stay the same."),
    Lesson("forgetting_simple_rnn", "Inside the cell", 2, "simple_rnn_1",
           "The Inside the cell tab, log scale on: the gradient curve of line 2 falls by orders of magnitude "
           "from the last step back to the first; switch the layer to LSTM and it falls far more slowly.",
           CELL_TAB),
    Lesson("mask_stops_gradient", "Inside the cell", 3, "lstm_1",
           "Line 3 (8 4 19 23) is padded with eight zeros: in the Inside the cell tab its gradient is exactly 0 on "
           "the hatched steps; untick mask_zero and the padding gets a gradient.", CELL_TAB),
    Lesson("forget_gate_saturation", "Inside the cell", 2, "lstm_1",
           "The Inside the cell tab, forget gate: the saturation bars beside the heatmap are near 100 %; divide "
           "the readings by 100 and run again to see the gates leave saturation.", CELL_TAB),
    Lesson("checkup_truncation", "Check-up", 3, "lstm_1",
           "Press Check-up on the toolbar: the Check-up panel lists truncation for lines 3, 4 and 6 (14, 18 and 24 "
           "tokens cut to 10); click it to see the batch mask, then press Fix: Set maxlen to 24 and Check-up "
           "again."),
    Lesson("train_attention_on_7", "Training", 7, "lstm_1",
           "Line 7 holds a 7 at step 2: press Train in the Training panel and its attention weights (under the "
           "heatmap) leave the uniform spread for the 7 and the steps after it within about 30 steps."),
    Lesson("train_forgotten_mask", "Training", 2, "lstm_1",
           "The accuracy of this run, above the accuracy curve in the Training panel."),
)


def names() -> list[str]:
    """The presets in course order."""
    return [lesson.preset for lesson in COURSE]


def lesson(preset: str) -> Lesson | None:
    return next((item for item in COURSE if item.preset == preset), None)


def position(preset: str) -> int | None:
    """0-based place of `preset` in the course, or None."""
    order = names()
    return order.index(preset) if preset in order else None


def neighbour(preset: str, step: int) -> str | None:
    """The lesson `step` places after (or before) `preset`; None past either end."""
    index = position(preset)
    if index is None or not 0 <= index + step < len(COURSE):
        return None
    return COURSE[index + step].preset


def uncovered() -> list[str]:
    """Presets that the course leaves out (a new preset must be placed in it)."""
    return sorted(set(presets.names()) - set(names()))


_BATCHING_WORDS = {"mode": "mode", "padding": "padding", "truncating": "truncating", "maxlen": "maxlen",
                   "pad_value": "pad value", "bucket_width": "bucket width", "chunk": "chunk"}


def changes(original: StackSpec, current: StackSpec) -> list[str]:
    """What differs between two stacks, in the words on screen ('mask_zero on embedding_1', 'padding',
    'the sequences'). Empty when `current` is still the lesson."""
    found: list[str] = []
    if original.input != current.input:
        found.append("the input")
    if [layer.type for layer in original.layers] != [layer.type for layer in current.layers]:
        found.append("the layers")
    else:
        for name, old, new in zip(current.layer_names(), original.layers, current.layers):
            found.extend(f"{key} on {name}" for key in sorted(set(old.params) | set(new.params))
                         if old.params.get(key) != new.params.get(key))
    for key, words in _BATCHING_WORDS.items():
        if getattr(original.batching, key) != getattr(current.batching, key):
            found.append(words)
    if original.seed != current.seed:
        found.append("the seed")
    if (original.sequences or "").strip() != (current.sequences or "").strip():
        found.append("the sequences")
    return found


def steps(spec: StackSpec) -> tuple[lesson_steps.Step, ...]:
    """The lesson's declared steps (explorer/core/steps.py); empty for a stack without any."""
    return lesson_steps.parse(spec.steps) if spec.steps else ()


def reached(original: StackSpec, current: StackSpec) -> int | None:
    """The index of the last step whose edits, made in order from the lesson as it opened, give the stack on
    screen (None when the edits match no step; steps that do not edit the stack count as done)."""
    if not changes(original, current):
        return None
    document = to_dict(original)
    found = None
    for index, step in enumerate(steps(original)):
        if step.do not in ("param", "type", "batching"):
            continue
        document = _apply(step, document)
        if not changes(from_dict(document), current):
            found = index
    return found


def _apply(step: lesson_steps.Step, document: dict) -> dict:
    """The stack document (as in a file) after an edit step; steps that do not edit the stack leave it as it is."""
    if step.do == "param":
        layer = _layer(document, step.args["layer"])
        layer[step.args["param"]] = step.args["value"]
    elif step.do == "type":
        _layer(document, step.args["layer"])["type"] = step.args["to"]
    elif step.do == "batching":
        document.setdefault("batching", {}).update(step.args)
    return document


def _layer(document: dict, name: str) -> dict:
    names = from_dict({key: value for key, value in document.items() if key != "steps"}).layer_names()
    if name not in names:
        raise SpecError("steps", f'no layer "{name}"; layers: {", ".join(names)}')
    return document["layers"][names.index(name)]
