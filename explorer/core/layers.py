"""The explorer's own Keras layers (pooling heads and the custom expression).

Imported lazily by `build`: importing this module imports Keras.
"""

from __future__ import annotations

import keras
from keras import ops

from .expression import check_expression
from .places import placed

PACKAGE = "rnn_explorer"


def _float_mask(mask, like):
    return ops.cast(ops.expand_dims(mask, -1), like.dtype)


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaskedMeanPooling(keras.layers.Layer):
    """Mean over the valid timesteps only; a row with no valid step gives 0."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, x, mask=None):
        if mask is None:
            return ops.mean(x, axis=1)
        weights = _float_mask(mask, x)
        total = ops.sum(x * weights, axis=1)
        count = ops.sum(weights, axis=1)
        return ops.divide_no_nan(total, count)

    def compute_mask(self, x, mask=None):
        return None


@keras.saving.register_keras_serializable(package=PACKAGE)
class TimeAverage(keras.layers.Layer):
    """Plain mean over axis 1: padded steps count like any other (the mask is ignored)."""

    def call(self, x):
        return ops.mean(x, axis=1)


@keras.saving.register_keras_serializable(package=PACKAGE)
class LastTimestep(keras.layers.Layer):
    """The output at each sequence's last valid step (the last step when there is no mask)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, x, mask=None):
        if mask is None:
            return x[:, -1]
        steps = ops.shape(x)[1]
        positions = ops.arange(steps, dtype="int32")[None, :]
        last = ops.max(ops.where(mask, positions, -1), axis=1)
        last = ops.maximum(last, 0)
        return ops.take_along_axis(x, last[:, None, None], axis=1)[:, 0]

    def compute_mask(self, x, mask=None):
        return None


@keras.saving.register_keras_serializable(package=PACKAGE)
class AttentionPooling(keras.layers.Layer):
    """A learned score per step, softmax over the valid steps, weighted sum; also returns the weights."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        self.score = keras.layers.Dense(1, name="score")

    def build(self, input_shape):
        self.score.build(input_shape)

    def call(self, x, mask=None):
        scores = ops.squeeze(self.score(x), -1)
        if mask is not None:
            scores = ops.where(mask, scores, ops.full_like(scores, -1e9))
        weights = ops.softmax(scores, axis=-1)
        if mask is not None:
            weights = weights * ops.cast(mask, weights.dtype)
        pooled = ops.sum(x * ops.expand_dims(weights, -1), axis=1)
        return pooled, weights

    def compute_mask(self, x, mask=None):
        return None if mask is None else [None, None]


@keras.saving.register_keras_serializable(package=PACKAGE)
class CustomExpression(keras.layers.Layer):
    """Evaluates a user expression over `x`, `mask` and `ops`; the mask does not leave it."""

    def __init__(self, expression: str, **kwargs):
        super().__init__(**kwargs)
        self.expression = expression
        self._code = compile(check_expression(expression), "<expression>", "eval")
        self.supports_masking = True

    def call(self, x, mask=None):
        return eval(self._code, {"__builtins__": {}}, {"ops": ops, "x": x, "mask": mask})

    def compute_mask(self, x, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "expression": self.expression}


def custom_output_shape(layer, shape: tuple) -> tuple | None:
    """A custom layer's output shape for one sequence of `shape` (no batch axis), by a dry run of its expression
    on a symbolic batch of one: nothing is computed or allocated. None when it returns no single tensor."""
    try:
        output = CustomExpression(layer.params["expression"]).compute_output_spec(keras.KerasTensor((1, *shape)))
    except Exception:   # the run itself reports what is wrong with the expression
        return None
    return tuple(output.shape[1:]) if isinstance(output, keras.KerasTensor) else None


@keras.saving.register_keras_serializable(package=PACKAGE)
class KerasOperation(keras.layers.Layer):
    """A keras.ops operation of a model's graph (`keras.ops.mean(x, axis=1)`) as a layer: it computes what the
    operation does, with its arguments as the model passed them; a mask stops at it, as in a Keras graph."""

    def __init__(self, operation, options=None, places=None, **kwargs):
        super().__init__(**kwargs)
        self.operation = (operation if isinstance(operation, keras.Operation)
                          else keras.saving.deserialize_keras_object(operation, safe_mode=True))
        if isinstance(self.operation, keras.layers.Layer) or not type(self.operation).__module__.startswith(
                "keras.src.ops."):   # a file names only an operation of keras.ops here, never a layer
            raise ValueError(f"{type(self.operation).__name__} is not an operation of keras.ops")
        self.options = options or {}   # the call's arguments that are not tensors (a Layer's call takes only tensors)
        # a list of tensors and values (`ops.concatenate([x, constant])`): the places of the tensors it is given,
        # in order, in the list its option holds
        self.places = {key: [tuple(place) for place in each] for key, each in (places or {}).items()
                       if key in self.options}

    def call(self, *args, **kwargs):
        for key, places in self.places.items():
            kwargs[key] = placed(self.options[key], dict(zip(places, kwargs[key])))
        return self.operation(*args, **kwargs, **{key: value for key, value in self.options.items()
                                                   if key not in self.places})

    def get_config(self):
        return {**super().get_config(), "operation": keras.saving.serialize_keras_object(self.operation),
                "options": keras.saving.serialize_keras_object(self.options), "places": self.places}
