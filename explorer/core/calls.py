"""What a layer's call receives, read from the built model's graph: the tensor it is called on, the mask Keras gives
it and its initial states. Gates and gradients read them here, so that a branch, a merge or a decoder started from
an encoder's states is looked into with what Keras really gave it, not with "the layer before"."""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

from . import backend


@dataclass
class Received:
    """A layer's call, as symbolic tensors of the built model."""

    inputs: Any                 # the tensor the layer is called on
    mask: Any | None            # the mask Keras gives the call, None for none
    initial_state: list         # the initial states it starts from ([]: zeros)


def first_call(layer):
    """The graph node of a layer's first call (a shared layer's further calls come after it)."""
    return layer._inbound_nodes[0]


def call_node(built, key: str):
    """The graph node of the call a result names: "lstm" the layer's first call, "lstm/call/k" its call k (a shared
    layer's, spec.call_outputs); None for a name that is neither."""
    name, _, k = key.partition("/call/")
    layer = built.keras_layers.get(name)
    if layer is None or k and not k.isdigit() or int(k or 0) >= len(layer._inbound_nodes):
        return None
    return layer._inbound_nodes[int(k or 0)]


def received(layer, node=None) -> Received:
    """What the layer's first call receives, or the call of graph `node` (call_node)."""
    keras = backend.load()
    arguments = (node or first_call(layer)).arguments
    args, kwargs = arguments.args, arguments.kwargs
    called_on = args[0] if args else next(value for key, value in kwargs.items()
                                          if key not in ("mask", "initial_state", "training"))
    mask = kwargs.get("mask")
    given = [value for value in [*args, *kwargs.values()]
             if any(isinstance(t, keras.KerasTensor) for t in keras.tree.flatten(value))]
    if mask is None and len(given) == 1:
        # Keras passes the tensors' own masks on to a call of one tensor argument only (Layer.__call__): a call given
        # initial_state as well gets none
        mask = keras.tree.map_structure(lambda tensor: getattr(tensor, "_keras_mask", None), called_on)
    return Received(called_on, mask, list(kwargs.get("initial_state") or []))


_RECEIVING: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # a stack's model → {layers: traced call}


def receiving(built, names: list[str]):
    """A traced function: the model's input batch (a list with several inputs) → "<layer>" (what the layer is called
    on), "<layer>/mask", "<layer>/initial_state/<i>" for each of `names`, as Keras computes them in the model."""
    keras = backend.load()
    by_names = _RECEIVING.setdefault(built.model, {})
    key = tuple(names)
    if key not in by_names:
        outputs = {}
        for name in names:   # a layer ("lstm") or a shared layer's further call ("lstm/call/1")
            node = call_node(built, name)
            got = received(node.operation, node)
            outputs[name] = got.inputs
            if got.mask is not None:
                outputs[f"{name}/mask"] = got.mask
            outputs.update((f"{name}/initial_state/{i}", state) for i, state in enumerate(got.initial_state))
        inputs = built.model.inputs
        model = keras.Model(inputs, outputs)
        by_names[key] = (backend.traced_inputs(model, [(tuple(t.shape[1:]), t.dtype) for t in inputs])
                         if len(inputs) > 1 else backend.traced(model, tuple(inputs[0].shape[1:]), inputs[0].dtype))
    return by_names[key]


def replay(model, inputs: list, added: dict[int, Any]) -> list:
    """The model's outputs for `inputs`, its graph run node by node as Keras's functional model runs it
    (Functional._run_through_graph), with `added[id(node)]` added to the first output of that node (a layer's
    call_node): zeros there give the gradient at that tensor. The sum keeps the output's mask."""
    keras = backend.load()
    from keras.src.backend.common.masking import get_keras_mask, set_keras_mask
    values = {id(tensor): value for tensor, value in zip(model.inputs, inputs)}
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            if node.is_input or not node.operation or any(id(t) not in values for t in node.input_tensors):
                continue
            args, kwargs = node.arguments.fill_in(values)
            if "training" in getattr(node.operation, "_call_context_args", ()):
                kwargs["training"] = False
            outputs = keras.tree.flatten(node.operation(*args, **kwargs))
            if id(node) in added:
                shifted = outputs[0] + added[id(node)]
                set_keras_mask(shifted, get_keras_mask(outputs[0]))
                outputs[0] = shifted
            values.update(zip(map(id, node.outputs), outputs))
    return [values[id(tensor)] for tensor in model.outputs]


def probe_key(built, tensor) -> str | None:
    """The key under which the probe gives `tensor` ("<layer>", "<layer>/mask", "<layer>/state/h" …); "input/<i>" for
    the model's input i; None where the probe does not give it (a list of tensors, a mask of a tensor without steps)."""
    for i, given in enumerate(built.model.inputs):
        if given is tensor:
            return f"input/{i}"
    return next((key for key, given in built.probe.output.items() if given is tensor), None)
