"""A lesson's steps and claims, declared once in its preset: the banner's words and the course test's checks.

A preset's `"steps"` is a list; each step is one thing the lesson asks for and what the screen must then show:

    {"do": "param", "layer": "embedding_1", "param": "mask_zero", "value": true, "plot": "heatmap",
     "claims": [{"changes": "heatmap"}, {"leak": false}]}

`do` is one of `look` (nothing: the lesson as it opens), `param` (`layer`, `param`, `value`), `type` (`layer`,
`to`), `batching` (one batching key and its value, e.g. `"mode": "one_by_one"`), `fix` (click the Fix button),
`train` (`steps`), `reset_weights`, `checkup` (press Check-up) and `checkup_fix` (click the Check-up panel's
Fix on its first finding that has one). `plot` (optional) names the plot that shows the point, brought
into view when the step is reached. Claims, each an object with one key:

- `{"leak": true|false}`: Leak check (Shapes panel) finds a leak, or none;
- `{"changes": PLOT}` / `{"same": PLOT}`: the plot's data for the selected line changes with this step (more
  than `CHANGE`), or stays the same;
- `{"accuracy": [LO, HI]}`: this run's accuracy (training panel) lies in [LO, HI];
- `{"values": PLOT, "count": N}`: the plot shows N values (bars) for the selected line;
- `{"zero_on_padding": PLOT}`: the plot is exactly 0 on the selected line's padded steps;
- `{"finding": KIND}`: the Check-up lists a finding of that kind (explorer/core/findings.py);
- `{"clean": true}`: a new Check-up finds nothing above info.

`words()` gives the sentence each step and claim has in the banner, so the text and the checks cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import SpecError
from .findings import KINDS
from .registry import TYPES

ACTIONS = ("look", "param", "type", "batching", "fix", "train", "reset_weights", "checkup", "checkup_fix")
CLAIMS = ("leak", "changes", "same", "accuracy", "values", "zero_on_padding", "finding", "clean")
PLOTS = {"heatmap": "the layer's output plot", "units": "the unit lines", "mask": "the batch mask",
         "fc_input": "the FC input plot", "output": "the output bars", "attention": "the attention weights",
         "gradient": "the gradient curve", "gates": "the gate heatmap", "accuracy": "the accuracy curve"}
_PLURAL = {"units", "output", "attention"}
CHANGE = 1e-3                  # a change smaller than this is "the same"
_BATCHING_WORDS = {"mode": "the batching mode", "padding": "padding", "truncating": "truncating", "maxlen": "maxlen",
                   "pad_value": "pad value", "chunk": "chunk", "bucket_width": "bucket width"}
_VALUE_WORDS = {"one_by_one": "one by one", "pad": "pad", "bucket": "bucket", "chunked": "chunked"}


@dataclass(frozen=True)
class Claim:
    kind: str
    value: Any                   # the claim's argument: a bool, a plot name or [lo, hi]
    count: int | None = None

    def words(self) -> str:
        if self.kind == "leak":
            return f"Leak check (Shapes panel) finds {'a' if self.value else 'no'} leak"
        if self.kind == "finding":
            return f"the Check-up lists {self.value}"
        if self.kind == "clean":
            return "a new Check-up finds nothing above info"
        if self.kind == "accuracy":
            lo, hi = self.value
            return (f"this run's accuracy is {lo:g}" if lo == hi else f"this run's accuracy is about "
                    f"{(lo + hi) / 2:g}" if hi - lo <= 0.4 and hi < 1 else f"this run's accuracy is {lo:g} or more"
                    if hi >= 1 else f"this run's accuracy is between {lo:g} and {hi:g}")
        plot, plural = PLOTS[self.value], self.value in _PLURAL
        if self.kind == "changes":
            return f"{plot} {'change' if plural else 'changes'}"
        if self.kind == "same":
            return f"{plot} {'stay' if plural else 'stays'} the same"
        if self.kind == "values":
            return f"{plot} {'show' if plural else 'shows'} {self.count} values"
        return f"{plot} {'are' if plural else 'is'} exactly 0 on the padded steps"


@dataclass(frozen=True)
class Step:
    do: str
    args: dict = field(default_factory=dict)
    plot: str | None = None
    claims: tuple[Claim, ...] = ()

    def action_words(self) -> str:
        """What the step asks for ('' for look)."""
        a = self.args
        if self.do == "param":
            if isinstance(a["value"], bool):
                return f"{'tick' if a['value'] else 'untick'} {a['param']} on {a['layer']}"
            return f"set {a['param']} on {a['layer']} to {a['value']}"
        if self.do == "type":
            return f"switch {a['layer']} to {TYPES[a['to']].display if a['to'] in TYPES else a['to']}"
        if self.do == "batching":
            key, value = next(iter(a.items()))
            return f"set {_BATCHING_WORDS[key]} to {_VALUE_WORDS.get(value, value)}"
        if self.do == "fix":
            return "click the Fix button in the status line"
        if self.do == "train":
            return f"press Train for {a['steps']} steps (Training panel)"
        if self.do == "reset_weights":
            return "press Reset weights (Training panel)"
        if self.do == "checkup":
            return "press Check-up on the toolbar"
        if self.do == "checkup_fix":
            return "click Fix in the Check-up panel"
        return ""

    def words(self) -> str:
        """The step and what it shows, as one sentence."""
        claims = "; ".join(claim.words() for claim in self.claims)
        action = self.action_words()
        if not action:
            return claims[:1].upper() + claims[1:] + "." if claims else ""
        action = action[:1].upper() + action[1:]
        return f"{action}: {claims}." if claims else f"{action}."


def _fail(where: str, message: str):
    raise SpecError(where, message)


def _claim(data: Any, where: str) -> Claim:
    if not isinstance(data, dict):
        _fail(where, f"a claim must be an object, got {data!r}")
    kinds = [key for key in data if key in CLAIMS]
    if len(kinds) != 1:
        _fail(where, f"a claim has exactly one of {', '.join(CLAIMS)}; got {sorted(data)}")
    kind = kinds[0]
    value = data[kind]
    extra = set(data) - {kind, "count"}
    if extra or ("count" in data) != (kind == "values"):
        _fail(where, f"unexpected keys {sorted(extra | ({'count'} & set(data)))}" if extra or kind != "values"
              else '"values" needs "count"')
    if kind == "leak" and not isinstance(value, bool):
        _fail(where, f'"leak" must be true or false, got {value!r}')
    if kind == "clean" and value is not True:
        _fail(where, f'"clean" must be true, got {value!r}')
    if kind == "finding":
        if value not in KINDS:
            _fail(where, f'unknown finding {value!r}; kinds: {", ".join(KINDS)}')
    if kind == "accuracy" and not (isinstance(value, list) and len(value) == 2
                                   and all(isinstance(v, (int, float)) for v in value) and 0 <= value[0] <= value[1] <= 1):
        _fail(where, f'"accuracy" must be [lo, hi] within [0, 1], got {value!r}')
    if kind in ("changes", "same", "values", "zero_on_padding") and value not in PLOTS:
        _fail(where, f'unknown plot {value!r}; plots: {", ".join(PLOTS)}')
    count = data.get("count")
    if count is not None and not (isinstance(count, int) and count > 0):
        _fail(where, f'"count" must be a positive integer, got {count!r}')
    return Claim(kind, tuple(value) if isinstance(value, list) else value, count)


_ARGS = {"look": (), "param": ("layer", "param", "value"), "type": ("layer", "to"), "fix": (), "train": ("steps",),
         "reset_weights": (), "checkup": (), "checkup_fix": ()}


def parse(data: Any, where: str = "steps") -> tuple[Step, ...]:
    """The steps of a preset's `"steps"`; raises SpecError naming the place of a bad one."""
    if not isinstance(data, list):
        _fail(where, f"must be a list of steps, got {data!r}")
    steps = []
    for index, item in enumerate(data):
        here = f"{where}[{index}]"
        if not isinstance(item, dict) or item.get("do") not in ACTIONS:
            _fail(here, f'a step is an object whose "do" is one of {", ".join(ACTIONS)}')
        do = item["do"]
        args = {key: value for key, value in item.items() if key not in ("do", "plot", "claims")}
        if do == "batching":
            if len(args) != 1 or next(iter(args)) not in _BATCHING_WORDS:
                _fail(here, f'a batching step sets one of {", ".join(_BATCHING_WORDS)}')
        elif set(args) != set(_ARGS[do]):
            _fail(here, f'a {do} step takes {", ".join(_ARGS[do]) or "no arguments"}; got {sorted(args)}')
        if do == "train" and not (isinstance(args["steps"], int) and args["steps"] > 0):
            _fail(here, f'"steps" must be a positive integer, got {args["steps"]!r}')
        plot = item.get("plot")
        if plot is not None and plot not in PLOTS:
            _fail(here, f'unknown plot {plot!r}; plots: {", ".join(PLOTS)}')
        claims = item.get("claims", [])
        if not isinstance(claims, list):
            _fail(here, f'"claims" must be a list, got {claims!r}')
        steps.append(Step(do, args, plot, tuple(_claim(claim, f"{here}.claims[{i}]") for i, claim in
                                                enumerate(claims))))
    return tuple(steps)
