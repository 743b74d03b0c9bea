"""Plain-word explanations: stacks that cannot work, stacks that surprise, where sizes come from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import StackError
from .registry import TYPES, layer_width, state_names
from .spec import INPUT_REF, LayerSpec, StackSpec, call_outputs, layer_label

if TYPE_CHECKING:
    from .build import BuiltStack, LayerInfo

TIME_HEADS = tuple(key for key, kind in TYPES.items() if kind.group == "Over time")
MASK_CREATORS = ("embedding", "masking")
POOLING_CHOICES = ("global_average_pooling", "masked_mean_pooling", "last_timestep")


def _labels(layer_types) -> str:
    """Layer types as the add-layer menu names them."""
    return ", ".join(layer_label(kind) for kind in layer_types)


@dataclass(frozen=True)
class Fix:
    """The one setting that answers a message, as a button offers it: `label` says what it does; `setting` is a
    parameter of layer number `layer`, or a batching field when `layer` is None. For maxlen, `value` None means
    the longest sequence."""

    label: str
    setting: str
    value: Any
    layer: int | None = None

    def apply(self, spec: StackSpec, longest: int | None = None) -> StackSpec:
        fixed = spec.copy()
        if self.layer is None:
            value = longest if self.setting == "maxlen" and self.value is None else self.value
            setattr(fixed.batching, self.setting, value)
        else:
            fixed.layers[self.layer].params[self.setting] = self.value
        return fixed


@dataclass
class Diagnostic:
    """One finding, attached to a layer (or to the batch when `layer` is None), with its fix when it has one."""

    message: str
    layer: str | None = None
    severity: str = "warning"   # "warning" or "info"
    fix: Fix | None = None

    def __str__(self) -> str:
        return self.message


def check_structure(spec: StackSpec) -> None:
    """Refuses, with the reason and the fix, the stacks Keras would reject with a cryptic error."""
    names = spec.layer_names()
    if not spec.layers:
        raise StackError("the stack has no layers: add an embedding (or use features input) and a recurrent layer")
    length = spec.input.length
    if length is not None and spec.batching.maxlen != length:
        raise StackError(f"the model's input takes exactly {length} timesteps (input.length), as Keras's Input "
                         f"does, but maxlen is {spec.batching.maxlen}: set maxlen to {length}")
    if length is not None and spec.batching.mode in ("bucket", "one_by_one"):
        raise StackError(f"the model's input takes exactly {length} timesteps (input.length), but batching mode "
                         f'"{spec.batching.mode}" gives each piece its own length: use pad or chunked mode')
    if not spec.input.has_steps and spec.batching.mode != "pad":
        raise StackError(f'batching mode "{spec.batching.mode}" splits sequences by their steps, but the input is one '
                         "vector per example: use pad mode")
    if spec.more_inputs and spec.batching.mode != "pad":
        raise StackError(f'batching mode "{spec.batching.mode}" splits one input\'s sequences, but this model takes '
                         f"{len(spec.all_inputs())} inputs whose lines go together: use pad mode")
    for item in spec.more_inputs:
        if item.length is not None and spec.batching.maxlen != item.length:
            raise StackError(f"the input {item.name} takes exactly {item.length} timesteps (its length), as Keras's "
                             f"Input does, but maxlen is {spec.batching.maxlen}: set maxlen to {item.length}")
    _check_initial_states(spec, names)
    _check_calls(spec, names)
    if spec.is_graph() and spec.batching.mode == "chunked":
        raise StackError("chunked mode runs one chain of layers window by window, but this model branches or "
                         "merges: use pad, bucket or one_by_one mode")
    has_time = spec.input.has_steps   # does the tensor still have a time axis?
    is_ids = spec.input.uses_ids
    last_cut = None       # the layer that removed the time axis
    for index, (layer, name) in enumerate(zip(spec.layers, names)):
        kind = layer.type
        if layer.inputs or layer.initial_state or layer.mask:
            return  # a branch, a merge, an encoder's states, a mask: Keras checks the shapes from here on
        if kind == "embedding":
            if not spec.input.uses_ids:
                given = (f"feature vectors ({spec.input.features} per step)" if spec.input.has_steps
                         else f"one vector per example ({spec.input.features} values)")
                raise StackError(f"{name} maps token ids to vectors, but the input is {given}: remove {name} or "
                                 "switch the input to tokens", layer=name)
            if index:
                raise StackError(f"{name} must be the first layer: it takes token ids, which only the input "
                                 "holds", layer=name)
            is_ids = False
            continue
        if kind in ("custom", "keras"):
            return  # the expression (or the Keras layer: an IntegerLookup, one_hot) decides its own shape: Keras
                    # checks the rest
        if is_ids:
            raise StackError(f"{name} receives raw token ids (batch, T); put an embedding first to turn each id "
                             "into a vector (or switch the input to features)", layer=name)
        if TYPES[kind].needs_sequence and not has_time and last_cut is None:
            raise StackError(f"{name} needs a sequence (batch, T, features), but the input is one vector per example "
                             f"({spec.input.features} values): repeat it over time first (a Keras layer card "
                             "RepeatVector), or switch the input to features", layer=name)
        if TYPES[kind].needs_sequence and not has_time:
            cause = _cut_reason(spec.layers[last_cut], names[last_cut])
            cut = spec.layers[last_cut]
            fix = (f"turn on return_sequences in {names[last_cut]}" if _takes_output(cut)
                   else f"set feeds to output and turn on return_sequences in {names[last_cut]}" if cut.is_recurrent
                   else f"move {name} before {names[last_cut]}")
            raise StackError(f"{name} needs a sequence (batch, T, features), but {cause}: {fix}", layer=name,
                             fix=Fix(f"Turn on return_sequences in {names[last_cut]}", "return_sequences", True,
                                     last_cut) if _takes_output(cut) else None)
        if kind == "flatten" and has_time and spec.batching.maxlen is None:
            raise StackError(f"{name} turns (batch, T, features) into (batch, T × features), so T must be fixed, "
                             "but the number of timesteps varies with the batch: set maxlen (beside the sequences) "
                             f"to a number, or pool over time instead ({_labels(POOLING_CHOICES)})",
                             layer=name, fix=Fix("Set maxlen to the longest sequence", "maxlen", None))
        if layer.is_recurrent:
            _check_recurrent(layer, name, index, spec)
        if has_time and TYPES[kind].cuts_time(layer.params):
            has_time = False
            last_cut = index


def _takes_output(layer: LayerSpec) -> bool:
    return layer.is_recurrent and layer.params["feeds"] == "output"


def _check_recurrent(layer: LayerSpec, name: str, index: int, spec: StackSpec) -> None:
    p = layer.params
    if p["bidirectional"] and p["go_backwards"]:
        raise StackError(f"{name}: Keras refuses go_backwards inside bidirectional (the backward copy must read "
                         "the other way than the forward one, and bidirectional already adds the backward pass): "
                         "turn off go_backwards or bidirectional", layer=name,
                         fix=Fix(f"Turn off go_backwards in {name}", "go_backwards", False, index))
    feeds = p["feeds"]
    if feeds != "output":
        states = state_names(layer)
        if not p["return_state"]:
            raise StackError(f'{name} feeds its state "{feeds}" to the next layer, but return_state is off, so it '
                             "returns no states: turn on return_state, or set feeds to output", layer=name,
                             fix=Fix(f"Turn on return_state in {name}", "return_state", True, index))
        if feeds not in states:
            raise StackError(f'{name} has no state "{feeds}": its states are {", ".join(states)}', layer=name,
                             fix=Fix(f"Pass {name}'s output on", "feeds", "output", index))
    if spec.batching.mode == "chunked" and (p["bidirectional"] or p["go_backwards"]):
        raise StackError(f"{name} reads the sequence backwards, so it needs the whole sequence at once; chunked "
                         "mode carries state forward from window to window: use pad mode, or make "
                         f"{name} unidirectional", layer=name)


def structure_fix(spec: StackSpec) -> Fix | None:
    """The one-setting fix of the stack's structural error, if it has one."""
    try:
        check_structure(spec)
    except StackError as error:
        return error.fix
    return None


def _cut_reason(layer: LayerSpec, name: str) -> str:
    if layer.is_recurrent and layer.params["feeds"] != "output":
        return f'{name} passes on its state "{layer.params["feeds"]}", which has no time axis'
    if layer.is_recurrent:
        return (f"{name} returns only its last state (batch, {layer_width(layer)}) because return_sequences "
                "is off")
    return f"{name} has already removed the time axis"


def translate_build_error(name: str, layer: LayerSpec, message: str) -> str:
    """Keras's message, shortened, with the layer it concerns."""
    if "Error encountered:" in message:  # Keras wraps an error raised inside call(): keep the error itself
        message = message.split("Error encountered:", 1)[1]
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    # Keras names the call an error came from, then says what happened: keep what happened
    first = next((line for line in lines if not line.startswith("Exception encountered when calling")),
                 lines[0] if lines else "unknown error")
    if layer.type == "custom":
        return f'{name}: the expression "{layer.params["expression"]}" failed: {first}'
    return f"{name} cannot be built: {first}"


def _check_initial_states(spec: StackSpec, names: list[str]) -> None:
    """A recurrent layer started from another's states takes as many as it has (LSTM h and c, GRU h), each as wide
    as its own units; Keras would only fail inside the run, in a matrix product."""
    by_name = dict(zip(names, spec.layers))
    vectors = {item.name: item.features for item in spec.more_inputs if not item.has_steps}
    for index, (layer, name) in enumerate(zip(spec.layers, names)):
        if not layer.initial_state:
            continue
        wanted = state_names(layer)
        if len(layer.initial_state) != len(wanted):
            raise StackError(f"{name} starts from {len(wanted)} states ({', '.join(wanted)}), but it is given "
                             f"{len(layer.initial_state)}: {', '.join(layer.initial_state)}", layer=name)
        units = layer.params["units"]
        for source in layer.initial_state:
            origin = by_name.get(source.split("/state/")[0])   # a layer's state or its output (further outputs
            width = origin.params.get("units") if origin is not None else vectors.get(source)   # are left to Keras)
            if width is not None and width != units:
                raise StackError(f"{name} starts from {source}, which holds {width} values per sequence, but {name} "
                                 f"has {units} units: a state is as wide as the units; set {name}'s units to "
                                 f"{width}", layer=name, fix=Fix(f"Set {name}'s units to {width}", "units", width, index))


def _check_calls(spec: StackSpec, names: list[str]) -> None:
    """A shared layer's further call runs once every tensor it takes exists (StackSpec.call_order); one that never
    could is refused, naming what it waits for."""
    made = set(spec.call_order())
    given = {INPUT_REF, *(item.name for item in spec.more_inputs and spec.all_inputs()),
             *(tensor for i, (layer, name) in enumerate(zip(spec.layers, names))
               for k in range(len(layer.calls or []) + 1) for tensor in call_outputs(layer, name, k))}
    for i, (layer, name) in enumerate(zip(spec.layers, names)):
        for k in range(1, len(layer.calls or []) + 1):
            if (i, k) in made:
                continue
            call = layer.call_tensors(k)
            missing = [source for source in call if source not in given]
            raise StackError(f"{name}'s call {k} takes {', '.join(missing)}, which no layer gives: name another "
                             "tensor, or restore the layer or setting that gave it" if missing else
                             f"{name}'s call {k} takes {', '.join(call)}, which exist only after this call: a call "
                             "cannot take what it gives itself", layer=name)


def translate_run_error(message: str, spec: StackSpec) -> tuple[str, str | None]:
    """TensorFlow's runtime message → its one meaningful line and the layer it happened in."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    node = next((line for line in lines if line.startswith("Detected at node")), "")
    reason = next((line for line in reversed(lines) if not line.startswith(("[[", "File ", "Detected at node", "•"))
                   and not line.endswith(":")), lines[0] if lines else "unknown error")
    reason = reason.split("\t [[")[0].strip()
    names = spec.layer_names()
    layer = None
    for part in node.replace("Detected at node", "").split("/"):
        part = part.strip().split(" ")[0]
        for name in names:
            if part == name or (part.startswith(name + "_") and part[len(name) + 1:].isdigit()):
                layer = name
    if layer is None:
        return f"the run failed: {reason}", None
    index = names.index(layer)
    if spec.layers[index].type == "custom":
        return f'{layer}: the expression "{spec.layers[index].params["expression"]}" failed: {reason}', layer
    return f"{layer} failed while running: {reason}", layer


# --- the FC input ---

@dataclass
class FcInput:
    layer: str                 # the dense layer that receives it
    symbolic_shape: tuple
    shape: tuple | None
    explanation: str
    source: str | None = None  # the layer whose output it is (None: the layer before the dense one)
    output: str | None = None  # the model output its head ends in


DENSE_TYPES = ("dense", "time_distributed_dense")


def fc_inputs(spec: StackSpec, built: BuiltStack) -> list[FcInput]:
    """The FC input of every head, in the order of the model's outputs: on the path from the input to an output
    (each layer's first input), the input of the first dense layer after the path's last recurrent layer, and
    where its size comes from. Heads that share their first dense layer are listed once."""
    layers = built.layers
    index = {info.name: i for i, info in enumerate(layers)}
    found: dict[str, FcInput] = {}
    for output in spec.outputs():
        path = _path_to(layers, index[output.partition("/")[0]])   # a state's head starts at its layer
        last_rnn = max((at for at, i in enumerate(path) if layers[i].spec.is_recurrent), default=-1)
        target = next((at for at in range(max(last_rnn + 1, 1), len(path))   # a dense layer on the input: none
                       if layers[path[at]].spec.type in DENSE_TYPES), None)
        if target is None or layers[path[target]].name in found:
            continue
        dense, before = layers[path[target]], [layers[i] for i in path[:target]]
        found[dense.name] = FcInput(dense.name, before[-1].symbolic_shape, None, explain_size(before, dense),
                                    before[-1].name, output)
    return list(found.values())


def _path_to(layers: list[LayerInfo], end: int) -> list[int]:
    """The indices of the layers from the input to layer `end`, each the first input of the next."""
    path = [end]
    while path[-1] > 0:
        source = source_of(layers, path[-1])
        if source < 0:
            break
        path.append(source)
    return path[::-1]


def source_of(layers: list[LayerInfo], index: int) -> int:
    """The index of the layer whose output layer `index` takes (its first input in a graph); -1: the model's
    input."""
    inputs = layers[index].spec.inputs
    if not inputs:
        return index - 1
    return next((i for i, info in enumerate(layers) if info.name == inputs[0]), -1)


def explain_size(before: list[LayerInfo], dense: LayerInfo) -> str:
    shape = before[-1].symbolic_shape
    origin = _origin(before)
    size = shape[-1]
    if len(shape) >= 3:
        return (f"{dense.name} receives a sequence {_fmt(shape)}: Dense works on the last axis, so it runs at every "
                f"timestep separately ({size} = {origin}); for one vector per sequence, pool over time "
                f"({_labels(POOLING_CHOICES)}) first")
    head = before[-1]
    if head.spec.is_recurrent and head.spec.params["feeds"] != "output":
        state = head.spec.params["feeds"]
        return (f"{size} = {head.name}'s {head.spec.params['units']} units: its final state {state}, which "
                f"return_state adds to its outputs (x, {', '.join(state_names(head.spec))}), feeds {dense.name} "
                "instead of its output; independent of the number of timesteps")
    if head.spec.type == "flatten":
        previous = before[-2].symbolic_shape if len(before) > 1 else shape
        return (f"{size} = {previous[1]} timesteps × {previous[-1]} ({origin}) flattened by {head.name}: it "
                "depends on maxlen, so a different maxlen needs a new Dense")
    how = ""
    if head.spec.type in TIME_HEADS:
        how = f", {head.spec.type.replace('_', ' ')} over time by {head.name}"
    elif head.spec.is_recurrent:
        how = " (last state, return_sequences off)"
    return f"{size} = {origin}{how}; independent of the number of timesteps"


def _origin(before: list[LayerInfo]) -> str:
    for position in range(len(before) - 1, -1, -1):
        info = before[position]
        layer = info.spec
        size = info.symbolic_shape[-1] if info.symbolic_shape else None
        if len(layer.inputs or []) > 1:   # a merge: its size is its own (Add keeps it, Concatenate sums)
            return f"{info.name}'s {size} features, merged from {', '.join(layer.inputs)}"
        if layer.type == "keras" and (position == 0 or before[position - 1].symbolic_shape[-1:] != (size,)):
            return f"{info.name}'s {size} features ({layer.params['class_name']})"
        width = layer_width(layer)
        if width is None:
            continue
        if layer.is_recurrent:
            units = layer.params["units"]
            if layer.params["bidirectional"]:
                mode = layer.params["merge_mode"]
                return (f"2 × {units} units of bidirectional {info.name} (merge_mode concat)" if mode == "concat"
                        else f"{units} units of bidirectional {info.name} (merge_mode {mode})")
            return f"{info.name}'s {units} units"
        if layer.type == "embedding":
            return f"{info.name}'s output_dim"
        return f"{info.name}'s {width} units"
    if before and before[-1].symbolic_shape:
        return "the input's features"
    return "the input"


def _fmt(shape: tuple) -> str:
    return "(" + ", ".join("None" if s is None else str(s) for s in shape) + ")"


format_shape = _fmt


# --- warnings about a run ---

def warnings_for(spec: StackSpec, built: BuiltStack, mask: np.ndarray, lengths: np.ndarray,
                 sequence_items: list[np.ndarray], lines: list[int], layer_masks: dict[str, np.ndarray | None],
                 outputs: dict[str, np.ndarray], device_kind: str, *,
                 value_ranges: dict[str, tuple[float, float] | None] | None = None,
                 vocabulary: list[str] | None = None) -> list[Diagnostic]:
    """`value_ranges`: each output's (min, max) (run.value_range), NaN when it holds a NaN: spares a pass
    over every output to look for NaN. `vocabulary`: a words input's, to name the word of id 0."""
    found: list[Diagnostic] = []
    infos = built.layers
    names = [info.name for info in infos]
    creators = [info for info in infos if info.spec.type in MASK_CREATORS and info.mask_out]
    recurrent = [info for info in infos if info.spec.is_recurrent]
    padded = bool((~mask).any()) and spec.batching.mode != "one_by_one"
    if padded and recurrent and not creators and not recurrent[0].mask_in:   # (a mask the model computes)
        first = recurrent[0]
        effect = ("the final state is computed after the padding" if spec.batching.padding == "post"
                  else "every step is computed after the leading padding")
        embedded = spec.layers[0].type == "embedding"
        advice = f"tick mask_zero on {names[0]}" if embedded else f"add a {layer_label('masking')} layer before " \
                                                                    f"{first.name}"
        found.append(Diagnostic(f"padding without a mask: {int((~mask).sum())} padded steps go through "
                                f"{first.name} as if they were data, so {effect}; {advice}", first.name,
                                fix=Fix(f"Tick mask_zero on {names[0]}", "mask_zero", True, 0) if embedded else None))
    for info in infos:
        p = info.spec.params
        if info.spec.is_recurrent and p["go_backwards"] and p["return_sequences"] and not p["bidirectional"]:
            found.append(Diagnostic(f"{info.name} reads each sequence backwards (go_backwards) and Keras returns its "
                                    "outputs in that reversed order: output step t belongs to input step T−1−t, "
                                    "so they do not line up with the timesteps and the mask shown here; use "
                                    "bidirectional for a backward pass in time order", info.name, "info"))
        if info.mask_role == "drops":
            found.append(Diagnostic(f"{info.name} ignores the mask: padded steps count like real ones from here on"
                                    f"{_drop_fix(info)}", info.name))
        if info.spec.type in ("dense",) and len(info.symbolic_shape) >= 3:
            source = source_of(infos, names.index(info.name))
            taken = infos[source].symbolic_shape if source >= 0 else (None, *built.input_shape)
            found.append(Diagnostic(f"{info.name} is applied at every timestep separately (its input is a sequence "
                                    f"{_fmt(taken)}); for one vector "
                                    f"per sequence, pool over time ({_labels(POOLING_CHOICES)}) first", info.name))
    for position, info in enumerate(infos):
        source = source_of(infos, position)   # the layer whose output it takes (a graph: its first input)
        previous = infos[source].symbolic_shape if source >= 0 else None
        flat = previous is not None and len(previous) == 2
        if info.spec.type == "masking" and flat:
            found.append(Diagnostic(f"{info.name} receives {_fmt(previous)}, which has no time axis any more: Keras "
                                    "runs it, but there are no timesteps left to mask; put it before the layer "
                                    "that removes the time axis", info.name))
        if info.spec.type == "flatten" and flat:
            found.append(Diagnostic(f"{info.name} receives {_fmt(previous)}, which is already flat: Keras runs it, "
                                    "but it changes nothing; remove it", info.name))
        if (info.spec.type == "last_timestep" and not info.mask_in and padded
                and spec.batching.padding == "post"):
            found.append(Diagnostic(f"{info.name} gets no mask, so it takes the last step of the padded batch: for "
                                    "the shorter sequences that is a padded step, not their last token; tick "
                                    f"mask_zero (or add a {layer_label('masking')} layer), or set padding to pre",
                                    info.name))
    embedding = spec.layers[0] if spec.layers and spec.layers[0].type == "embedding" else None
    if embedding is not None and embedding.params["mask_zero"]:
        if padded and spec.batching.pad_value != 0:
            found.append(Diagnostic(f"{names[0]} masks id 0, but the pad value is {spec.batching.pad_value}: "
                                    "the padded steps are not masked; set pad value to 0", names[0],
                                    fix=Fix("Set pad value to 0", "pad_value", 0)))
        for item, line in zip(sequence_items, lines):
            if (item == 0).any():
                word = "token id 0" if vocabulary is None else f"the word {vocabulary[0]!r} (id 0)"
                found.append(Diagnostic(f"line {line} contains {word}, which mask_zero=True treats as "
                                        "padding: those steps are skipped", names[0]))
    for info in infos:
        row_mask = layer_masks.get(info.name)
        if row_mask is None:
            continue
        empty = np.flatnonzero(~row_mask.any(axis=1)) if row_mask.ndim == 2 and row_mask.shape[1] else []
        for row in empty:
            found.append(Diagnostic(f"line {lines[row]} is fully masked after {info.name}: averages over its "
                                    "valid steps divide by zero (NaN)", info.name))
        if len(empty):
            break
    for info in infos:
        value = outputs.get(info.name)
        if value is None or value.dtype.kind != "f":
            continue
        known = (value_ranges or {}).get(info.name)
        if known is not None:
            has_nan = bool(np.isnan(known[0]))
        else:
            has_nan = bool(np.isnan(np.min(value))) if value.size else False  # np.min propagates NaN
        if has_nan:
            rows = sorted({lines[r] for r in np.argwhere(np.isnan(value))[:, 0]})
            found.append(Diagnostic(f"{info.name} gives NaN for line(s) {', '.join(map(str, rows))}", info.name))
            break
    if device_kind == "GPU" and creators and spec.batching.padding == "pre" and recurrent:
        found.append(Diagnostic("pre-padding with a mask on GPU: cuDNN needs right-padded (post) masks, so the "
                                "recurrent layers fall back to a slower kernel or fail; set padding to post",
                                recurrent[0].name, fix=Fix("Set padding to post", "padding", "post")))
    return found


def _drop_fix(info: LayerInfo) -> str:
    advice = TYPES[info.spec.type].mask_advice
    return f"; {advice}" if advice else ""
