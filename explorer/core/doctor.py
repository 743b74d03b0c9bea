"""The model doctor: what is wrong with a stack (or a trained model) on its sequences, and the fix.

`examine(engine, spec, text)` runs the explorer's own measurements (the run, the leak check, the batching
modes, the gates, the gradients) and turns them into findings, each with the numbers that prove it, one
sentence, the fix where there is one, and a plot (`Plot`) that the report draws. `checked` lists the kinds
that were run, so that no finding is a statement; a kind that could not run is in `skipped` with the reason.
"""

from __future__ import annotations

import html
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import sequences
from .diagnose import Fix
from .errors import ExplorerError, StackError
from .findings import KINDS, SEVERITIES
from .registry import SIGMOID_GATES
from .spec import StackSpec

LEAK_TOLERANCE = 1e-5          # |Δ| against each line alone above this is a leak
WASTE_SHARE = 0.5              # padded cells at least this share of what is computed
VANISHING_RATIO = 1e-3         # a gradient below this share of its peak no longer reaches the output
SATURATION_SHARE = 0.5         # over this share of a gate's values below LOW or above HIGH
LOW, HIGH = 0.1, 0.9
TIMING_REPEATS = 3             # the batching modes are timed this many times each, the best kept


@dataclass
class Plot:
    """What proves a finding, drawn by `pictures.png`: "bars" (one value per item), "curve" (one value per
    step) or "heatmap" (rows × columns). `highlight`: the bars or steps drawn in red; `threshold`: a
    horizontal line; `log`: a log scale. `caption` says what the axes are."""

    kind: str
    values: np.ndarray
    caption: str
    highlight: np.ndarray | None = None
    threshold: float | None = None
    log: bool = False


@dataclass
class Finding:
    kind: str
    severity: str
    layer: str | None
    lines: list[int]
    evidence: dict[str, Any]
    message: str
    fix: str | None = None
    action: Fix | None = None         # the one-setting fix a button can apply (explorer.core.diagnose.Fix)
    view: str = "outputs"             # where the window shows it: outputs, mask, leaks, gradients, gates
    plot: Plot | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "severity": self.severity, "layer": self.layer, "lines": list(self.lines),
                "evidence": self.evidence, "message": self.message, "fix": self.fix}


@dataclass
class DoctorReport:
    findings: list[Finding]
    checked: list[str]
    skipped: dict[str, str]           # kind → why it could not run
    title: str = "model"

    def to_json(self) -> dict[str, Any]:
        return {"findings": [finding.to_json() for finding in self.findings], "checked": list(self.checked),
                "skipped": dict(self.skipped)}

    def at_least(self, severity: str) -> list[Finding]:
        level = SEVERITIES.index(severity)
        return [finding for finding in self.findings if SEVERITIES.index(finding.severity) >= level]

    def to_html(self) -> str:
        """One self-contained page: every plot an inline PNG (data: URI), no outside reference."""
        from .pictures import data_uri
        rows = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Check-up of "
                f"{html.escape(self.title)}</title><style>{_CSS}</style></head><body>",
                f"<h1>Check-up of {html.escape(self.title)}</h1>", f"<p>{html.escape(self._summary())}</p>"]
        for finding in self.findings:
            rows.append(f'<section class="{finding.severity}"><h2>{html.escape(finding.severity)}: '
                        f'{html.escape(finding.kind)}{_on(finding.layer, html.escape)}</h2>'
                        f"<p>{html.escape(finding.message)}</p>")
            if finding.fix:
                rows.append(f"<p><b>Fix:</b> <code>{html.escape(finding.fix)}</code></p>")
            if finding.plot is not None:
                rows.append(f'<figure><img alt="{html.escape(finding.plot.caption)}" '
                            f'src="{data_uri(finding.plot)}"><figcaption>{html.escape(finding.plot.caption)}'
                            "</figcaption></figure>")
            rows.append(f"<details><summary>evidence</summary><pre>{html.escape(_evidence(finding))}</pre>"
                        "</details></section>")
        rows.append(f"<p class=\"checked\">Checked: {html.escape(', '.join(self.checked))}."
                    + "".join(f" Not checked: {html.escape(kind)} ({html.escape(why)})."
                              for kind, why in self.skipped.items()) + "</p></body></html>\n")
        return "\n".join(rows)

    def to_markdown(self, images: Path | None = None, prefix: str = "") -> str:
        """Markdown; with `images`, each plot is written there as `<prefix>finding-N.png` and linked."""
        from .pictures import png
        rows = [f"# Check-up of {self.title}", "", self._summary(), ""]
        for number, finding in enumerate(self.findings, 1):
            rows += [f"## {finding.severity}: {finding.kind}{_on(finding.layer, lambda name: f'`{name}`')}", "",
                     finding.message, ""]
            if finding.fix:
                rows += [f"**Fix:** `{finding.fix}`", ""]
            if finding.plot is not None and images is not None:
                name = f"{prefix}finding-{number}.png"
                (images / name).write_bytes(png(finding.plot))
                rows += [f"![{finding.plot.caption}]({name})", "", f"*{finding.plot.caption}*", ""]
            rows += ["```json", _evidence(finding), "```", ""]
        rows.append(f"Checked: {', '.join(self.checked)}."
                    + "".join(f" Not checked: {kind} ({why})." for kind, why in self.skipped.items()))
        return "\n".join(rows) + "\n"

    def _summary(self) -> str:
        if not self.findings:
            return f"No findings: {len(self.checked)} kinds checked."
        counts = [sum(f.severity == s for f in self.findings) for s in SEVERITIES]
        counts = [f"{n} {s}{'s' if n != 1 and s != 'info' else ''}" for n, s in zip(counts, SEVERITIES) if n][::-1]
        return f"{len(self.findings)} finding{'s' if len(self.findings) != 1 else ''} ({', '.join(counts)})."


_CSS = ("body{font-family:sans-serif;max-width:60em;margin:1em auto;padding:0 1em;color:#222}"
        "section{border-left:6px solid #888;padding:.2em 1em;margin:1em 0;background:#f7f7f7}"
        "section.error{border-color:#c0392b}section.warning{border-color:#d68910}section.info{border-color:#2e86c1}"
        "h2{font-size:1.1em;margin:.4em 0}img{max-width:100%;border:1px solid #ccc}figcaption{font-size:.9em;"
        "color:#555}pre{white-space:pre-wrap}.checked{color:#555}")


def _on(layer: str | None, quote: Callable[[str], str]) -> str:
    return f" on {quote(layer)}" if layer else " on the input"


def _evidence(finding: Finding) -> str:
    import json
    return json.dumps(finding.evidence, indent=1)


# --- the examination ---

def examine(engine, spec: StackSpec, text: str | None = None, *, device: str | None = None, trust: bool = False,
            check_cancel: Callable[[], None] | None = None) -> DoctorReport:
    """Every kind of finding for `spec` on `text` (default: its own sequences), batched as `spec.batching`
    says. User errors (bad text, a stack that cannot run) raise ExplorerError."""
    check_cancel = check_cancel or (lambda: None)
    options = dict(device=device, trust=trust, check_cancel=check_cancel)
    text = spec.sequences if text is None else text
    result = engine.run(spec, text, **options)
    findings: list[Finding] = []
    skipped: dict[str, str] = {}
    built = engine.built_for(spec)
    arriving = _arriving(built, result)
    findings += _nan_or_inf(result)
    findings += _truncation(spec, text, result)
    check_cancel()
    findings += _padding_leak(engine, spec, text, result, options, skipped)
    findings += _mask_ignored(result, arriving)
    check_cancel()
    findings += _padding_waste(engine, spec, text, result, options, skipped)
    findings += _dead_units(result)
    findings += _cudnn_fallback(spec, result, arriving)
    from .batches import batch_of
    _, layout = batch_of(engine, spec, text)
    check_cancel()
    findings += _saturated_gates(built, layout, result, arriving, spec, skipped)
    check_cancel()
    findings += _vanishing_gradient(built, layout, result, skipped)
    findings.sort(key=lambda f: (-SEVERITIES.index(f.severity), KINDS.index(f.kind)))
    return DoctorReport(findings, [kind for kind in KINDS if kind not in skipped], skipped,
                        spec.title or "model")


def _arriving(built, result) -> dict[str, np.ndarray | None]:
    """The mask each layer's call receives (calls.received), as the run gave it; None for none, or for a mask the
    run does not show (of a tensor without steps, a list of masks)."""
    from .calls import probe_key, received
    found = {}
    for layer in result.layers:
        key = probe_key(built, received(built.keras_layers[layer.name]).mask)
        owner, _, part = (key or "").partition("/")
        if key is None or part not in ("", "mask") or owner not in built.keras_layers:
            found[layer.name] = None
        else:
            given = result.layer(owner)
            found[layer.name] = given.mask if part == "mask" else given.output.astype(bool)
    return found


def _rows_lines(result, rows) -> list[int]:
    return [int(result.lines[row]) for row in rows]


def _valid_values(layer, mask: np.ndarray | None) -> np.ndarray:
    """A layer's output cells on valid steps, (cells, units): time-major outputs at the batch's valid steps (every
    step with `mask` None), others one row per sequence."""
    output = layer.output
    if layer.time_major:
        output = output[mask] if mask is not None else output.reshape(-1, *output.shape[2:])
    return output.reshape(output.shape[0], -1)


def _nan_or_inf(result) -> list[Finding]:
    for layer in result.layers:
        output = layer.output
        if output.dtype.kind != "f" or np.isfinite(output).all():
            continue
        bad = ~np.isfinite(output.reshape(*output.shape[:2 if layer.time_major else 1], -1)).all(axis=-1)
        if layer.time_major and not layer.own_steps:
            bad &= result.seen_by(layer).mask
            if not bad.any():
                continue
        rows = np.flatnonzero(bad.reshape(bad.shape[0], -1).any(axis=1))
        lines = _rows_lines(result, rows)
        steps = {str(result.lines[r]): np.flatnonzero(bad[r]).tolist() for r in rows} if layer.time_major else {}
        nan = bool(np.isnan(output).any())
        picture = bad.astype(float) if layer.time_major else bad[:, None].astype(float)
        return [Finding("nan_or_inf", "error", layer.name, lines,
                        {"nan": nan, "inf": bool(np.isinf(output).any()), "steps": steps},
                        f"{layer.name} gives {'NaN' if nan else 'an infinity'} for line{_s(lines)} "
                        f"{_join(lines)}: everything after it is meaningless",
                        None, None, "outputs",
                        Plot("heatmap", picture, f"{layer.name}: lines (rows) × steps (columns), the cells that are "
                                                 "NaN or infinite in red", highlight=picture > 0))]
    return []


def _truncation(spec: StackSpec, text, result) -> list[Finding]:
    """A finding for each sequence input whose lines maxlen or a fixed input length cuts."""
    if not spec.more_inputs:
        if not spec.input.has_steps:
            return []
        return _cut(spec, spec.input, sequences.parse(text or "", spec.input).lengths,
                    spec.fixed_length() or spec.batching.maxlen, result, "")
    from .run import parse_inputs
    parsed, _ = parse_inputs(spec, text)
    return [finding for item in spec.all_inputs() if item.has_steps
            for finding in _cut(spec, item, parsed[item.name].lengths, item.length or spec.batching.maxlen, result,
                                f"input {item.name}: ")]


def _cut(spec: StackSpec, item, raw: np.ndarray, limit: int | None, result, named: str) -> list[Finding]:
    if limit is None:
        return []
    cut = np.flatnonzero(raw > limit)
    if not len(cut):
        return []
    lost = int((raw[cut] - limit).sum())
    share = lost / max(1, int(raw.sum()))
    lines = _rows_lines(result, cut)
    fixed = item.length is not None
    source = named + (f"the model's input takes exactly {limit} steps" if fixed else f"maxlen is {limit}")
    side = "first" if spec.batching.truncating == "pre" else "last"
    longest = int(raw.max())
    fix = (f"keras.Input(shape=(None,{'' if item.uses_ids else f' {item.features}'}))" if fixed
           else f"maxlen {longest}")
    action = None if fixed or spec.needs_fixed_length() else Fix(f"Set maxlen to {longest}", "maxlen", longest)
    highlight = raw > limit
    return [Finding("truncation", "warning", None, lines,
                    {"limit": int(limit), "lines_cut": len(cut), "lines": len(raw), "tokens_lost": lost,
                     "share_lost": round(share, 6), "longest": longest},
                    f"{source}, so {len(cut)} of {len(raw)} lines {'loses its' if len(cut) == 1 else 'lose their'} {side} "
                    f"tokens: {lost} tokens, "
                    f"{share:.0%} of the data, never reach the model", fix, action, "mask",
                    Plot("bars", raw.astype(float), f"length of each line (bars, lines in order); the line is the "
                                                    f"limit of {limit} steps, lines cut in red",
                         highlight=highlight, threshold=float(limit)))]


def _per_line(padded, alone) -> dict[str, np.ndarray]:
    """Layer → each line's largest |Δ| against the line run alone (valid steps of time-major outputs)."""
    found = {}
    for layer, reference in zip(padded.layers, alone.layers):
        a, b = layer.output.astype(np.float64), reference.output.astype(np.float64)
        with np.errstate(invalid="ignore"):
            delta = np.abs(a - b).reshape(*a.shape[:2 if layer.time_major else 1], -1).max(axis=-1)
        if layer.time_major:
            delta = np.where(padded.mask, delta, 0.0).max(axis=1, initial=0.0)
        found[layer.name] = np.nan_to_num(delta, nan=0.0)
    return found


def _padding_leak(engine, spec, text, result, options, skipped) -> list[Finding]:
    if spec.batching.mode == "one_by_one":
        return []          # nothing is padded
    try:
        if spec.more_inputs or not spec.input.has_steps:   # each example alone through the model
            from .leaks import alone_deltas
            per_line = alone_deltas(engine, spec, result, options["device"])
        else:
            alone_spec = spec.copy()
            alone_spec.batching.mode = "one_by_one"
            per_line = _per_line(result, engine.run(alone_spec, text, **options))
    except StackError as error:
        skipped["padding_leak"] = f"the lines cannot run one by one: {error.message}"
        return []
    leaking = next((name for name, deltas in per_line.items() if deltas.max(initial=0.0) > LEAK_TOLERANCE), None)
    if leaking is None:
        return []
    deltas = per_line[leaking]
    rows = np.flatnonzero(deltas > LEAK_TOLERANCE)
    lines = _rows_lines(result, rows)
    fix, action = _leak_fix(spec, result, leaking)
    return [Finding("padding_leak", "error", leaking, lines,
                    {"max_abs_difference": {name: float(v.max(initial=0.0)) for name, v in per_line.items()},
                     "per_line": [{"line": int(result.lines[r]), "max_abs_difference": float(deltas[r])}
                                  for r in range(len(deltas))]},
                    f"padding changes what {leaking} gives: on line{_s(lines)} {_join(lines)} its valid outputs "
                    f"differ from running the line alone by up to {deltas.max():.3g}", fix, action, "leaks",
                    Plot("bars", deltas, f"{leaking}: largest |Δ| of each line (bars, lines in order) against the "
                                         f"line run alone; the line is the tolerance {LEAK_TOLERANCE:g}, "
                                         "leaking lines in red", highlight=deltas > LEAK_TOLERANCE,
                         threshold=LEAK_TOLERANCE))]


def _leak_fix(spec: StackSpec, result, leaking: str) -> tuple[str, Fix | None]:
    """The fix of a leak in words, and the one setting that makes it where there is one."""
    masking = next((layer for layer in spec.layers if layer.type == "masking"), None)
    if masking is not None and spec.batching.pad_value != masking.params["mask_value"]:
        value = masking.params["mask_value"]
        return f"pad value {value:g}", Fix(f"Set pad value to {value:g}", "pad_value", value)
    action = next((d.fix for d in result.diagnostics
                   if d.fix is not None and d.fix.setting in ("mask_zero", "pad_value")), None)
    if action is not None:
        return action.label[0].lower() + action.label[1:], action
    from .leaks import _fix
    return _fix(result, spec, leaking), None


def _mask_ignored(result, arriving) -> list[Finding]:
    found = []
    for layer in result.layers:
        mask = arriving[layer.name]
        if layer.mask_role != "drops" or mask is None or mask.all():
            continue
        share = float(1.0 - mask.mean())
        rows = np.flatnonzero(~mask.all(axis=1))
        lines = _rows_lines(result, rows)
        from .registry import TYPES
        advice = TYPES[layer.type].mask_advice if layer.type in TYPES else ""
        found.append(Finding("mask_ignored", "warning", layer.name, lines,
                             {"padded_share": round(share, 6), "padded_steps": int((~mask).sum())},
                             f"{layer.name} receives a mask that marks {share:.0%} of the steps as padding and does "
                             f"not use it: padded steps count like real ones from there on", advice or None, None,
                             "mask",
                             Plot("heatmap", mask.astype(float), f"the mask reaching {layer.name}: lines (rows) × "
                                                                 "steps (columns), padded steps in red",
                                  highlight=~mask)))
    return found


def _padding_waste(engine, spec, text, result, options, skipped) -> list[Finding]:
    share = float(result.computed_padding)
    if share < WASTE_SHARE:
        return []
    own = spec.batching.mode
    times = {}
    for mode in dict.fromkeys((own, "bucket", "one_by_one")):
        variant = spec.copy()
        variant.batching.mode = mode
        try:
            times[mode] = min(engine.run(variant, text, **options).timing_ms["run"] for _ in range(TIMING_REPEATS))
        except StackError:
            continue
    others = {mode: ms for mode, ms in times.items() if mode != own}
    if own not in times or not others:
        skipped["padding_waste"] = "no other batching mode can run this stack"
        return []
    best = min(others, key=others.get)
    speedup = times[own] / others[best] if others[best] > 0 else float("inf")
    faster = speedup > 1.0
    mask = result.mask
    rows = np.flatnonzero(~mask.all(axis=1))
    lines = _rows_lines(result, rows)
    label = best.replace("_", " ")
    return [Finding("padding_waste", "warning" if faster else "info", None, lines,
                    {"padded_share": round(share, 6), "mode": own, "suggested_mode": best,
                     "speedup": round(speedup, 3), "time_ms": {m: round(t, 3) for m, t in times.items()}},
                    f"{share:.0%} of the cells computed in {own.replace('_', ' ')} mode are padding; "
                    + (f"{label} mode ran the same lines {speedup:.1f} × faster here" if faster else
                       f"{label}, the fastest other mode, was not faster here ({speedup:.2f} ×)"),
                    f"batching mode {best}" if faster else None,
                    Fix(f"Set the batching mode to {label}", "mode", best) if faster else None, "mask",
                    Plot("heatmap", mask.astype(float), "the padded batch: lines (rows) × steps (columns), padded "
                                                        "cells in red", highlight=~mask))]


def _dead_units(result) -> list[Finding]:
    found = []
    for layer in result.layers:
        if not (layer.params and layer.output.dtype.kind == "f"):
            continue           # a layer without weights passes on what it gets
        if layer.type in ("embedding",):
            continue
        values = _valid_values(layer, result.seen_by(layer).mask if not layer.own_steps else None)
        if values.shape[0] < 2 or not np.isfinite(values).all():
            continue
        spread = values.max(axis=0) - values.min(axis=0)
        dead = np.flatnonzero(spread == 0)
        if not len(dead):
            continue
        units = values.shape[1]
        found.append(Finding("dead_units", "warning", layer.name, [int(line) for line in result.lines],
                             {"units": dead.tolist(), "of": units, "values": [float(values[0, u]) for u in dead]},
                             f"{len(dead)} of {units} units of {layer.name} give the same value on every valid step "
                             "of every line: they carry no information", _dead_fix(layer), None, "outputs",
                             Plot("bars", spread, f"{layer.name}: the spread (max − min) of each unit over all valid "
                                                  "steps of all lines (bars, units in order), dead units in red",
                                  highlight=spread == 0)))
    return found


def _dead_fix(layer) -> str | None:
    if layer.type in ("dense", "time_distributed_dense"):
        return "activation leaky_relu (or retrain with a smaller learning rate)"
    return None


CUDNN_DEFAULTS = {"activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": True, "reset_after": True}


def _cudnn_fallback(spec: StackSpec, result, arriving) -> list[Finding]:
    found = []
    for layer_spec, layer in zip(spec.layers, result.layers):
        if layer_spec.type not in ("lstm", "gru"):
            continue
        reasons = [f"{key} is {layer_spec.params[key]!r}, not {default!r}" for key, default in CUDNN_DEFAULTS.items()
                   if key in layer_spec.params and layer_spec.params[key] != default]
        mask = arriving[layer.name]
        action = None
        if mask is not None:
            right_padded = (np.diff(mask.astype(np.int8), axis=1) <= 0).all(axis=1) & mask[:, 0]
            if not right_padded.all():
                reasons.append("the mask it receives is not right-padded (pre-padding, or id 0 inside a line)")
                if spec.batching.padding == "pre":
                    action = Fix("Set padding to post", "padding", "post")
        if not reasons:
            continue
        picture = mask if mask is not None else result.mask
        found.append(Finding("cudnn_fallback", "info", layer.name, [int(line) for line in result.lines],
                             {"reasons": reasons},
                             f"on a GPU {layer.name} cannot use the fused cuDNN kernel: {'; '.join(reasons)}",
                             "padding post" if action else None, action, "mask",
                             Plot("heatmap", picture.astype(float), f"the mask reaching {layer.name}: lines (rows) × "
                                                                    "steps (columns), padded steps in red",
                                  highlight=~picture)))
    return found


def _saturated_gates(built, layout, result, arriving, spec, skipped) -> list[Finding]:
    from .gates import gated_layers, gates
    names = gated_layers(built, further_calls=False)
    if not names:
        return []
    try:
        values = gates(built, layout, layers=names)
    except Exception as error:      # one measurement that cannot be made leaves the rest of the check-up
        skipped["saturated_gates"] = _why(error)
        return []
    found = []
    for name in names:
        steps = values[next(key for key in values if key.startswith(f"{name}/"))].shape[:2]
        valid = np.ones(steps, bool)
        for mask in (result.seen_by(result.layer(name)).mask, arriving[name]):   # its input's padding, its mask
            if mask is not None and mask.shape == steps:
                valid &= mask
        shares = {}
        for key, gate in values.items():
            prefix, gate_name = key.rsplit("/", 1)
            if not key.startswith(f"{name}/") or gate_name not in SIGMOID_GATES:
                continue
            cells = gate[valid]
            shares[key[len(name) + 1:]] = float(((cells < LOW) | (cells > HIGH)).mean()) if cells.size else 0.0
        saturated = {gate: share for gate, share in shares.items() if share > SATURATION_SHARE}
        if not saturated:
            continue
        worst = max(saturated, key=saturated.get)
        row = int(np.argmax(valid.sum(axis=1)))
        picture = values[f"{name}/{worst}"][row][valid[row]].T
        features = spec.input.kind == "features"
        found.append(Finding("saturated_gates", "warning", name, [int(line) for line in result.lines],
                             {"share": {gate: round(share, 6) for gate, share in shares.items()},
                              "saturated": sorted(saturated), "low": LOW, "high": HIGH},
                             f"the {', '.join(g.replace('/', ' ') for g in sorted(saturated))} gate"
                             f"{_s(saturated)} of {name} sit below {LOW} or above {HIGH} on "
                             f"{max(saturated.values()):.0%} of the valid steps: the unit{'s'} switch instead of "
                             "weighing their input",
                             "keras.layers.Normalization() before the recurrent layer (scale the features to about ±1)"
                             if features else None, None, "gates",
                             Plot("heatmap", picture, f"{worst} gate of {name}, line {result.lines[row]}: units (rows) "
                                                      f"× valid steps (columns), 0 dark to 1 bright; cells below {LOW} "
                                                      f"or above {HIGH} in red",
                                  highlight=(picture < LOW) | (picture > HIGH))))
    return found


def _vanishing_gradient(built, layout, result, skipped) -> list[Finding]:
    from .gradients import INPUT, gradients
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found_norms = gradients(built, layout)
    except Exception as error:      # one measurement that cannot be made leaves the rest of the check-up
        skipped["vanishing_gradient"] = _why(error)
        return []
    from .calls import probe_key, received
    from .gradients import sequence_input
    found = []
    chosen = f"input/{sequence_input(built)}"
    for info in built.layers:
        if not info.spec.is_recurrent:
            continue
        source = probe_key(built, received(built.keras_layers[info.name]).inputs)   # the tensor it is called on
        source = INPUT if source == chosen else source
        norms = found_norms.norms.get(source)
        if norms is None:
            continue
        steps = (layout.inputs[built.input_names[int(chosen.split("/")[1])]] if source == INPUT and built.input_names
                 else layout if source == INPUT else None)
        padding = steps.mask if steps is not None else result.seen_by(result.layer(source)).mask
        if padding.shape != norms.shape:
            continue
        spans = [reach(norms[row][padding[row]]) for row in range(len(norms))]
        lengths = padding.sum(axis=1)
        short = [row for row, k in enumerate(spans) if k is not None and lengths[row] > k + 1]
        if not short:
            continue
        lines = _rows_lines(result, short)
        worst = min(short, key=lambda row: spans[row] / lengths[row])
        curve = norms[worst][padding[worst]].astype(np.float64)
        peak = curve.max(initial=0.0)
        simple = info.spec.type == "simple_rnn"
        units = info.spec.params.get("units")
        found.append(Finding("vanishing_gradient", "warning", info.name, lines,
                             {"ratio": VANISHING_RATIO, "gradient_at": source,
                              "per_line": [{"line": int(result.lines[row]), "length": int(lengths[row]),
                                            "k": spans[row]} for row in range(len(spans))]},
                             f"the output of line{_s(lines)} {_join(lines)} no longer depends on what {info.name} "
                             f"read more than {spans[worst]} steps back (line {result.lines[worst]} has "
                             f"{int(lengths[worst])}): its gradient falls below {VANISHING_RATIO:g} of its peak",
                             f"keras.layers.LSTM({units})" if simple else None, None, "gradients",
                             Plot("curve", curve, f"line {result.lines[worst]}: the norm of the output's gradient at "
                                                  f"each valid step of {source} (log scale, time left to right); the "
                                                  f"line is {VANISHING_RATIO:g} of the peak, steps below it in red",
                                  highlight=curve < VANISHING_RATIO * peak, threshold=VANISHING_RATIO * peak,
                                  log=True)))
    return found


def _why(error: Exception) -> str:
    if isinstance(error, ExplorerError):
        return error.message
    from .errors import strip_ansi
    return f"it could not be computed ({type(error).__name__}: {strip_ansi(str(error))[:200]})"


def reach(norms: np.ndarray) -> int | None:
    """k: how many steps back from the last one the gradient still reaches VANISHING_RATIO of its peak (the
    steps further back are all below it); None without any gradient."""
    peak = float(norms.max(initial=0.0))
    if not peak > 0:
        return None
    above = np.flatnonzero(norms >= VANISHING_RATIO * peak)
    return int(len(norms) - 1 - above[0])


def _s(items) -> str:
    return "s" if len(items) != 1 else ""


def _join(lines: list[int], most: int = 8) -> str:
    shown = ", ".join(map(str, lines[:most]))
    return shown + (f" and {len(lines) - most} more" if len(lines) > most else "")
