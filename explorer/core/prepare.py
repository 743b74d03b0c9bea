"""Models prepared while the engine is idle: the one-click neighbours of the stack on screen.

Most edits in the window are one action on a control away from what is on screen: a units spin box's step, a
recurrent type chosen in a drop-down, a toggle, another pooling. `neighbours(spec)` lists those stacks, one of
each control first. The engine builds, traces and calls each once while no request waits (Engine.prepare_next),
so that the edit, when it comes, runs a model that is ready. A prepared model is exactly the model a fresh build
gives: the same `build` with the same seed, nothing shared between them.

Preparation never holds up a real request: it runs under `preemptible(should_stop)`, which raises Preempted
at the next Keras layer's call or build once `should_stop()` is true (a request arrived), within milliseconds;
the half-built model is dropped and built again at the next idle moment.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import replace
from typing import Callable, Iterator

from .registry import TYPES
from .spec import LAYER_PARAMS, MAX_UNITS, LayerSpec, StackSpec

PREPARED_MAX = 16            # neighbours prepared for one stack on screen
RECURRENT = tuple(key for key, kind in TYPES.items() if kind.recurrent)
# the poolings over time that a drop-down offers in place of one another (flatten needs a fixed length)
POOLINGS = tuple(key for key, kind in TYPES.items() if kind.group == "Over time" and key != "flatten")
HEADS = tuple(key for key, kind in TYPES.items() if kind.group == "Head")


class Preempted(BaseException):
    """A real request arrived while a model was being prepared (a BaseException: no library code catches it)."""


# Where a preparation may be stopped: the entry of a Keras layer's call or build. Anywhere else, an exception
# can land inside TensorFlow's own bookkeeping (between taking a graph's lock and releasing it, say) and leave
# it broken for good: the next op on that graph then waits for ever.
SAFE_NAMES = frozenset({"__call__", "call", "build"})
SAFE_FOLDER = os.path.join("keras", "src", "layers", "")


@contextlib.contextmanager
def preemptible(should_stop: Callable[[], bool]) -> Iterator[None]:
    """Runs the block until `should_stop()` turns true, then raises Preempted when the block next enters a Keras
    layer's call or build (SAFE_NAMES in SAFE_FOLDER), which the code around it unwinds from as from the layer's
    own error.

    A trace function (this thread only) sees every Python call; Python unsets it once it raises. Between two
    layer calls lie TensorFlow's loop construction and, at the end, a graph's instantiation in C: a request
    waited 10 ms at the median and 73 ms at most on the models prepared here (README, Performance)."""
    if should_stop():
        raise Preempted()

    def trace(frame, event, arg):
        code = frame.f_code
        if code.co_name in SAFE_NAMES and SAFE_FOLDER in code.co_filename and should_stop():
            raise Preempted()
        return None                  # calls only, no line events

    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        yield
    finally:
        sys.settrace(previous)


def retyped(layer: LayerSpec, new_type: str) -> LayerSpec:
    """`layer` as another type (the card's type drop-down): it keeps the parameters both types share."""
    def accepts(key, value) -> bool:
        try:
            LAYER_PARAMS[new_type][key][1](value)
        except ValueError:
            return False
        return True

    kept = {key: value for key, value in layer.params.items() if key in LAYER_PARAMS[new_type] and accepts(key, value)}
    card = new_type == "keras"   # a Keras layer card's call: its arguments, options and tensors returned
    return replace(layer, type=new_type, params=kept,
                   initial_state=layer.initial_state if TYPES[new_type].recurrent else None,
                   arguments=layer.arguments if card else None, options=layer.options if card else None,
                   returns=layer.returns if card else None)


def _with_param(layer: LayerSpec, key: str, value) -> LayerSpec:
    return replace(layer, params={**layer.params, key: value})


def _steps(layer: LayerSpec, key: str) -> list[LayerSpec]:
    """A spin box's step up and down."""
    value = layer.params[key]
    return [_with_param(layer, key, value + step) for step in (1, -1) if 1 <= value + step <= MAX_UNITS]


def neighbours(spec: StackSpec) -> list[StackSpec]:
    """The stacks one action on a layer card away from `spec`, at most PREPARED_MAX. Each kind of action gets its
    likeliest first (a recurrent layer's units step up, its type, its bidirectional check box, the pooling, the
    head's and the embedding's steps, mask_zero), then each its second, and so on: an idle moment too short for
    all of them still covers every control. Typed values are not guessed."""
    kinds: list[list[tuple[int, LayerSpec]]] = [[] for _ in range(7)]
    for index, layer in enumerate(spec.layers):
        if layer.type in RECURRENT:
            kinds[0] += [(index, changed) for changed in _steps(layer, "units")]
            kinds[1] += [(index, retyped(layer, other)) for other in RECURRENT if other != layer.type]
            kinds[2] += [(index, _with_param(layer, flag, not layer.params[flag]))
                         for flag in ("bidirectional", "go_backwards")]
        elif layer.type in POOLINGS:
            kinds[3] += [(index, retyped(layer, other)) for other in POOLINGS if other != layer.type]
        elif layer.type in HEADS:
            kinds[4] += [(index, changed) for changed in _steps(layer, "units")]
        elif layer.type == "embedding":
            kinds[5] += [(index, changed) for changed in _steps(layer, "output_dim")]
            kinds[6].append((index, _with_param(layer, "mask_zero", not layer.params["mask_zero"])))
    found = []
    for rank in range(max(map(len, kinds))):
        for index, changed in (kind[rank] for kind in kinds if rank < len(kind)):
            variant = spec.copy()
            variant.layers[index] = changed
            found.append(variant)
    return found[:PREPARED_MAX]
