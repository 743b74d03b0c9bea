"""Keras layer cards: any layer of keras.layers, held as the config Keras saves and built by Keras itself.

A card's layer is made with `keras.saving.deserialize_keras_object` in safe mode (no Python lambdas), and only
from keras.layers (or a class the user loaded with --custom-objects): anything else is refused with a sentence.
Importing this module does not import Keras.
"""

from __future__ import annotations

import copy
import types
from typing import Any

from .errors import ExplorerError, StackError, strip_ansi

# Layers that take part in model plumbing rather than computing: never a card
_NOT_CARDS = ("InputLayer", "Layer")
CUSTOM_MODULE = "custom_objects"   # the module name the user's file of custom classes runs as
_custom: dict[str, type] = {}      # class name and registered name → the user's class (--custom-objects)


def load_custom_objects(path) -> list[str]:
    """Runs the user's Python file (they agreed: --trust, or the window's question) and keeps the Keras layer
    classes it defines, under their class names and registered names; returns their class names."""
    import runpy
    from pathlib import Path

    from . import backend
    keras = backend.load()
    if not Path(path).is_file():
        raise ExplorerError(f"cannot read {path}: no such file")
    try:
        namespace = runpy.run_path(str(path), run_name=CUSTOM_MODULE)
    except Exception as error:  # the user's code may raise anything
        raise ExplorerError(f"{path} failed while it ran: {type(error).__name__}: {error}") from None
    found = [value for value in namespace.values() if isinstance(value, type) and issubclass(value, keras.layers.Layer)
             and value.__module__ == CUSTOM_MODULE]
    if not found:
        raise ExplorerError(f"{path} defines no Keras layer class (a subclass of keras.layers.Layer)")
    for cls in found:
        _custom[cls.__name__] = _custom[keras.saving.get_registered_name(cls)] = cls
    return sorted(cls.__name__ for cls in found)


def custom_objects() -> dict[str, type]:
    """The user's loaded classes, for keras.saving.load_model."""
    return dict(_custom)


def is_custom(class_name: str) -> bool:
    return class_name in _custom


def is_operation(class_name: str) -> bool:
    """A card of a keras.ops operation ("ops.numpy.Mean"), not of a layer."""
    return class_name.startswith("ops.")


def keras_layer(class_name: str, config: dict, name: str, options: dict | None = None,
                places: dict[str, list] | None = None):
    """The Keras layer `class_name` (of keras.layers, or a registered custom class) built from `config`; an
    operation's card takes its call's `options` here (a layer's call takes them when it is called), and the
    `places` of the tensors it puts in those options' lists (spec.argument_places)."""
    from . import backend
    keras = backend.load()
    if is_operation(class_name):
        return _operation_layer(class_name, config, name, options, places)
    cls = layer_class(class_name)
    saved = {"class_name": cls.__name__, "config": {**copy.deepcopy(config), "name": name}}
    try:
        layer = keras.saving.deserialize_keras_object(saved, custom_objects={cls.__name__: cls},
                                                        safe_mode=True)
    except Exception as error:  # Keras reports a bad config as several exception types
        lines = strip_ansi(str(error)).strip().splitlines()
        raise StackError(f"Keras cannot build {class_name} from this config: "
                         f"{lines[0] if lines else type(error).__name__}", layer=name) from None
    if not isinstance(layer, keras.layers.Layer):
        raise StackError(f"{class_name} does not make a Keras layer", layer=name)
    _map_over_steps(layer)
    return layer


def _map_over_steps(layer) -> None:
    """Makes each TimeDistributed in `layer` map over the steps when their count is unknown (the explorer's traced
    runs): Keras's call then maps over ops.shape(inputs)[0], read before it swaps batch and steps, so over the
    batch size; called on the tensor itself (the steps known), it loops over the steps, as here."""
    import keras
    from keras import ops

    def call(self, inputs, training=None, mask=None):
        steps_first = ops.swapaxes(inputs, 0, 1)
        masks = None if mask is None else ops.swapaxes(mask, 0, 1)

        def step(i):
            keywords = {"mask": masks[i]} if self.layer._call_has_mask_arg and masks is not None else {}
            if self.layer._call_has_training_arg:
                keywords["training"] = training
            return self.layer.call(steps_first[i], **keywords)

        if steps_first.shape[0] is not None:
            return ops.swapaxes(ops.stack([step(i) for i in range(steps_first.shape[0])]), 0, 1)
        return ops.swapaxes(ops.vectorized_map(step, ops.arange(ops.shape(steps_first)[0])), 0, 1)

    while isinstance(layer, keras.layers.Wrapper):   # TimeDistributed, also inside another wrapper
        if isinstance(layer, keras.layers.TimeDistributed):
            layer.call = types.MethodType(call, layer)
        layer = layer.layer


def _operation_layer(class_name: str, config: dict, name: str, options: dict | None, places: dict | None):
    """A card of a keras.ops operation ("ops.numpy.Mean"): the operation, built by Keras in safe mode from its
    config, as a layer (layers.KerasOperation)."""
    import importlib

    import keras

    from .layers import KerasOperation
    module, _, operation = class_name.rpartition(".")
    try:
        cls = getattr(importlib.import_module(f"keras.src.{module}"), operation)
    except (ImportError, AttributeError):
        cls = None
    if not (isinstance(cls, type) and issubclass(cls, keras.Operation)) or issubclass(cls, keras.layers.Layer):
        raise StackError(f"{class_name} is not an operation of keras.ops", layer=name)
    saved = {"module": f"keras.src.{module}", "class_name": operation, "config": {**copy.deepcopy(config), "name": name}}
    try:
        return KerasOperation(keras.saving.deserialize_keras_object(saved, safe_mode=True), options, places,
                              name=name)
    except Exception as error:  # Keras reports a bad config as several exception types
        lines = strip_ansi(str(error)).strip().splitlines()
        raise StackError(f"Keras cannot build {class_name} from this config: "
                         f"{lines[0] if lines else type(error).__name__}", layer=name) from None


def layer_class(class_name: str):
    """The class a card names: one of keras.layers, or a registered custom class ("package>Class")."""
    from . import backend
    keras = backend.load()
    if class_name in _custom:
        return _custom[class_name]
    if ">" in class_name or class_name not in dir(keras.layers):
        found = keras.saving.get_registered_object(class_name)
        if isinstance(found, type) and issubclass(found, keras.layers.Layer):
            return found
        raise StackError(f"{class_name} is not a layer of keras.layers"
                         + (" nor a custom layer loaded with --custom-objects" if ">" in class_name else ""))
    cls = getattr(keras.layers, class_name)
    if not (isinstance(cls, type) and issubclass(cls, keras.layers.Layer)) or class_name in _NOT_CARDS:
        raise StackError(f"{class_name} is not a layer a card can hold (it is not a computing layer of "
                         "keras.layers)")
    return cls


def mask_role(layer, mask_in: bool, mask_out: bool) -> str:
    """What a Keras layer does to the mask that reaches it, from supports_masking and compute_mask."""
    if mask_out:
        return "carries" if mask_in else "creates"
    if not mask_in:
        return "none"
    return "consumes" if layer.supports_masking else "drops"


def card_class(layer) -> str:
    """The class name a card holds for a Keras layer: keras.layers' own name, else the custom class's registered
    one."""
    from . import backend
    keras = backend.load()
    cls = type(layer)
    if getattr(keras.layers, cls.__name__, None) is cls:
        return cls.__name__
    if not isinstance(layer, keras.layers.Layer) and cls.__module__.startswith("keras.src.ops."):
        return f"{cls.__module__.removeprefix('keras.src.')}.{cls.__name__}"   # a keras.ops operation
    return keras.saving.get_registered_name(cls)


def saved_config(layer) -> dict[str, Any]:
    """A layer's config as Keras saves it, without its name (the card holds that), as plain JSON values."""
    import json
    from . import backend
    keras = backend.load()
    config = keras.saving.serialize_keras_object(layer)["config"]
    config.pop("name", None)
    if "vocabulary" in config and config["vocabulary"] is None and hasattr(layer, "get_vocabulary"):
        # a lookup layer's adapted vocabulary, which Keras saves beside its config (as an asset), in it
        config["vocabulary"] = [term.item() if hasattr(term, "item") else term
                                for term in layer.get_vocabulary(include_special_tokens=False)]
    return json.loads(json.dumps(config))


def estimate(class_name: str, config: dict, shape: tuple) -> tuple[tuple, int]:
    """(output shape without the batch axis, number of weights) of a card on input `shape` (no batch axis),
    from Keras's compute_output_shape and its built weights; the input's shape and no weights when Keras is not
    loaded (the window, which never imports it: the engine checks again before it builds)."""
    import sys
    if "keras" not in sys.modules:
        return shape, 0
    try:
        layer = keras_layer(class_name, config, "estimate")
        full = (1, *shape)
        layer.build(full)
        out = layer.compute_output_shape(full)
    except Exception:  # noqa: BLE001  (a config Keras refuses: the build reports it)
        return shape, 0
    if out and isinstance(out[0], (list, tuple)):   # several outputs: the card passes on the first
        out = out[0]
    return tuple(int(d or 1) for d in out[1:]), int(layer.count_params())
