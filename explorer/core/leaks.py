"""The padding leak check: each sequence alone and unpadded, against the padded run."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from . import sequences
from .errors import StackError
from .run import Engine, RunResult
from .spec import StackSpec, layer_label

TOLERANCE = 1e-5


@dataclass
class LeakReport:
    differences: dict[str, float]   # layer → max |Δ| on valid timesteps
    leaking_layer: str | None
    verdict: str

    def to_json(self) -> dict:
        return {"max_abs_difference": {k: float(v) for k, v in self.differences.items()},
                "leaking_layer": self.leaking_layer, "verdict": self.verdict}


def compare(padded: RunResult, alone: RunResult) -> dict[str, float]:
    """Largest difference per layer, over valid timesteps for time-major outputs, whole rows otherwise."""
    valid = padded.mask
    differences = {}
    for layer, reference in zip(padded.layers, alone.layers):
        a, b = layer.output.astype(np.float64), reference.output.astype(np.float64)
        if layer.time_major:
            a, b = a[valid], b[valid]
        with np.errstate(invalid="ignore"):
            delta = np.abs(a - b)
        differences[layer.name] = float(np.nanmax(delta)) if delta.size and not np.isnan(delta).all() else 0.0
    return differences


def alone_deltas(engine: Engine, spec: StackSpec, padded: RunResult, device: str | None = None
                 ) -> dict[str, np.ndarray]:
    """Layer → each example's largest difference between the padded run and the example run alone through the model:
    every sequence input unpadded (its valid steps), every vector input as it is. Time-major outputs are compared on
    the valid steps of the input whose steps they have (RunResult.seen_by), the others whole; an output with steps
    of its own that differ alone (Conv1D "valid", pooling) is left out (0)."""
    from . import backend
    fixed = [item.name or "the input" for item in spec.all_inputs() if item.has_steps and item.length is not None]
    if fixed:
        raise StackError(f"{', '.join(fixed)} takes a fixed number of timesteps (input.length), so an example cannot "
                         "run unpadded")
    built = engine.built_for(spec)
    layouts = ([padded.inputs[item.name] for item in spec.all_inputs()] if padded.inputs
               else [sequences.Layout(padded.input, padded.mask, padded.lengths, [])])
    deltas = {layer.name: np.zeros(len(padded.lengths)) for layer in padded.layers}
    with backend.device_scope(backend.resolve_device(device)), warnings.catch_warnings():
        warnings.simplefilter("ignore")     # Keras's mask warnings: the run has reported them already
        for row in range(len(padded.lengths)):
            alone = [layout.batch[row][layout.mask[row]][None] if item.has_steps else layout.batch[row][None]
                     for item, layout in zip(spec.all_inputs(), layouts)]
            outputs = built.forward(alone if len(alone) > 1 else alone[0])
            for layer in padded.layers:
                shown, own = layer.output[row].astype(np.float64), backend.to_numpy(outputs[layer.name])[0]
                if layer.time_major and not layer.own_steps:
                    shown = shown[padded.seen_by(layer).mask[row]]
                if shown.shape != own.shape:
                    continue
                with np.errstate(invalid="ignore"):
                    delta = np.abs(shown - own.astype(np.float64))
                if delta.size and not np.isnan(delta).all():
                    deltas[layer.name][row] = float(np.nanmax(delta))
    return deltas


def leak_check(engine: Engine, spec: StackSpec, text: str | dict[str, str] | None = None, *,
               device: str | None = None, trust: bool = False, padded: RunResult | None = None) -> LeakReport:
    """Each example alone and unpadded against the padded batch: one input's sequences in one_by_one mode; a model of
    several inputs or of a vector input example by example through the model (alone_deltas)."""
    pad_spec = spec.copy()
    pad_spec.batching.mode = "pad"
    if padded is None or padded.mode != "pad":
        padded = engine.run(pad_spec, text, device=device, trust=trust)
    try:
        if spec.more_inputs or not spec.input.has_steps:
            differences = {name: float(values.max(initial=0.0))
                           for name, values in alone_deltas(engine, pad_spec, padded, device).items()}
        else:
            alone_spec = pad_spec.copy()
            alone_spec.batching.mode = "one_by_one"
            differences = compare(padded, engine.run(alone_spec, text, device=device, trust=trust))
    except StackError as error:
        return LeakReport({}, None, f"cannot run the sequences one by one: {error.message}")
    leaking = next((name for name, value in differences.items() if value > TOLERANCE), None)
    if leaking is None:
        worst = max(differences.values(), default=0.0)
        return LeakReport(differences, None, f"no leak: every layer equals the unpadded run on valid steps "
                                             f"(max |Δ| {worst:.1e})")
    return LeakReport(differences, leaking, f"padding leaks into {leaking}: max |Δ| {differences[leaking]:.3g}"
                                            f" — {_fix(padded, spec, leaking)}")


def _fix(padded: RunResult, spec: StackSpec, leaking: str) -> str:
    roles = {layer.name: layer.mask_role for layer in padded.layers}
    names = list(roles)
    started = spec.layers[names.index(leaking)]
    if started.is_recurrent and started.initial_state and not started.mask:
        return (f"{leaking} starts from initial states, and Keras gives a call with initial_state no mask: pad post "
                "(its valid steps come first), or give its call the mask yourself (mask=…)")
    for layer, name in zip(spec.layers, names[: names.index(leaking) + 1]):
        p = layer.params
        if layer.is_recurrent and p["go_backwards"] and p["return_sequences"] and not p["bidirectional"]:
            return (f"{name} returns its outputs in reverse time order (go_backwards), so padded and valid "
                    "steps trade places: compare them reversed, or use bidirectional")
    if not any(role == "creates" for role in roles.values()):
        first = padded.layers[0]
        return (f"tick mask_zero on {first.name}" if first.type == "embedding"
                else f"add a {layer_label('masking')} layer first")
    if roles.get(leaking) == "drops":
        return (f"{leaking} ignores the mask: use {layer_label('masked_mean_pooling')} or "
                f"{layer_label('global_average_pooling')}")
    taken = (started.inputs or [None])[0]   # in a graph, the layer it takes; in a chain, the one before it
    source = taken.partition("/")[0] if taken else names[names.index(leaking) - 1] if names.index(leaking) else None
    if roles.get(source) == "drops":
        return f"{source} drops the mask before it: use a mask-aware layer there"
    return "a layer before it loses the mask"


MODES = ("pad", "bucket", "one_by_one", "chunked")


@dataclass
class ModeReport:
    mode: str
    max_abs_difference: float | None   # against pad mode, over valid steps of every layer
    padded_share: float | None         # share of the cells this mode computed that are padding
    time_ms: float | None
    refused: str | None = None
    buckets: list[list[int]] = field(default_factory=list)   # bucket mode: the editor lines of each bucket

    @property
    def agrees(self) -> bool | None:
        return None if self.max_abs_difference is None else self.max_abs_difference <= TOLERANCE


def compare_modes(engine: Engine, spec: StackSpec, text: str | None = None, *, device: str | None = None,
                  trust: bool = False, check_cancel=None) -> list[ModeReport]:
    """The same batch in all four modes: equal on valid steps or not, padding computed, time per mode."""
    reports = []
    reference: RunResult | None = None
    for mode in MODES:
        variant = spec.copy()
        variant.batching.mode = mode
        try:
            result = engine.run(variant, text, device=device, trust=trust, check_cancel=check_cancel)
        except StackError as error:
            reports.append(ModeReport(mode, None, None, None, error.message))
            continue
        if reference is None and mode == "pad":
            reference = result
        difference = None
        if reference is not None:
            difference = max(compare(reference, result).values(), default=0.0)
        reports.append(ModeReport(mode, difference, result.computed_padding, result.timing_ms["run"],
                                  buckets=result.buckets))
    return reports
