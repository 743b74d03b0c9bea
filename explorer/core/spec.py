"""The stack document (explorer/CONTRACT.md §1): dataclasses, validation, JSON, versions."""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from . import output_file
from .errors import SpecError
from .registry import ACTIVATIONS, MAX_UNITS, MERGE_MODES  # noqa: F401  (re-exported: callers read them here)
from .registry import TYPES, choice as _choice, number as _number, positive_int as _positive_int, show as _show
from .registry import array_json, array_value
from .places import argument_parameter, argument_places, placed  # noqa: F401  (re-exported)
from .registry import AsWritten, more_outputs, option_value
from .registry import option_json, option_text  # noqa: F401  (re-exported: callers read them here)

FORMAT = "rnn-shape-explorer/stack"
VERSION = 1

MAX_VOCAB = 10_000_000
MAX_FEATURES = 4096
MAX_MAXLEN = 1_000_000
MAX_LAYERS = 64
MAX_SEED = 2**31 - 1
MAX_NAME = 128

# How words are standardised before they are split, as keras.layers.TextVectorization's `standardize`
STANDARDIZE = ("lower_and_strip_punctuation", "lower", "strip_punctuation")
DEFAULT_STANDARDIZE = STANDARDIZE[0]
# Where words are split once standardised, as TextVectorization's `split`: at whitespace, into characters, or
# None: the text comes split (tokens typed apart by whitespace, each standardised alone)
SPLITS = ("whitespace", "character", None)
MAX_NGRAM = 32       # the widest ngram a words input makes (TextVectorization's `ngrams`)
# What a words input gives the model, as TextVectorization's `output_mode`: token ids (a sequence), or one vector
# per text over the vocabulary, a bag of words (whether each word is there, how often, or that count × its idf)
OUTPUT_MODES = ("int", "multi_hot", "count", "tf_idf")
PADDING_WORD = ""    # the word of id 0 that pads a words input's ids, as StringLookup's default mask_token
RECURRENT_TYPES = tuple(key for key, kind in TYPES.items() if kind.recurrent)
# "tokens": ids typed as integers; "features": a vector per timestep; "words" (an extension): ids looked up from
# words; "vector" (an extension): one vector per example, no time axis (a state, side data, a generator's seed)
INPUT_KINDS = ("tokens", "features", "words", "vector")
INPUT_NAME = "sequences"   # the model input's name when no layer takes it
INPUT_REF = "<input>"      # a layer's `inputs` entry for the model's input
MAX_INPUTS = 16
Mask = str | list[str | None]   # a mask a call is given: a tensor's name, or a list of names and Nones
_NAME = re.compile(rf"[A-Za-z0-9_.>-]{{1,{MAX_NAME}}}")


def _layer_name(value: Any) -> str:
    """The names Keras layers can take on TensorFlow (a name scope without "/"): "word-embedding", "2nd_head"."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValueError(f"must be 1 to {MAX_NAME} letters, digits and _ . - > (no spaces), got {_show(value)}")
    return value


# type -> {parameter: (default, checker)}; parameter names and defaults are Keras's own (core.registry).
LAYER_PARAMS: dict[str, dict[str, tuple[Any, Callable[[Any], Any]]]] = {
    key: {name: (param.default, param.check) for name, param in kind.params.items()} for key, kind in TYPES.items()}
LAYER_TYPES = tuple(LAYER_PARAMS)

# The name of each layer type on screen (the add-layer menu, the cards, the messages).
LAYER_LABELS = {key: kind.display for key, kind in TYPES.items()}


def layer_label(layer_type: str) -> str:
    return LAYER_LABELS.get(layer_type, layer_type.replace("_", " ").capitalize())


# One sentence per parameter, for tooltips and `--help`-like listings.
PARAM_HELP: dict[str, str] = {}
for _kind in TYPES.values():
    for _key, _param in _kind.params.items():
        PARAM_HELP.setdefault(_key, _param.help)


@dataclass
class InputSpec:
    kind: str = "tokens"              # one of INPUT_KINDS
    vocab_size: int | None = 1000
    features: int | None = None
    length: int | None = None         # a fixed number of timesteps, as keras.Input(shape=(length, …)); None: any
    standardize: str | None = DEFAULT_STANDARDIZE   # words: TextVectorization's standardize (None: as typed)
    vocabulary: list[str] | None = field(default=None, repr=False)   # words: a model's own (index = id)
    name: str | None = None           # the model input's name, required when the stack has several inputs
    split: str | None = SPLITS[0]     # words: TextVectorization's split, one of SPLITS
    ngrams: tuple[int, ...] | None = None   # words: the ngram widths made after splitting, in order (None: the tokens)
    # features, vector: the shape of one step (of the vector) when it is not flat, as the model's Input has it (an
    # image's column (16, 1) when its width is the time axis); its `features` values are typed flat, in C order
    step_shape: tuple[int, ...] | None = None
    # words: what reaches the model, one of OUTPUT_MODES; a bag of words has one vector of vocab_size values per text
    # and its vocabulary no padding (id 0 is the unknown word, as Keras lists it)
    output_mode: str = OUTPUT_MODES[0]
    idf_weights: tuple[float, ...] | None = field(default=None, repr=False)   # tf_idf: each word's, by id
    # words: the model's mask token (StringLookup's mask_token; None: it has none): the word of id 0 in a
    # vocabulary of ids, dropped from a bag of words' texts
    mask_token: str | None = PADDING_WORD

    @property
    def uses_ids(self) -> bool:
        """Token ids reach the model (typed as ids, or looked up from words)."""
        return self.kind == "tokens" or self.kind == "words" and self.output_mode == "int"

    @property
    def has_steps(self) -> bool:
        """The input has a time axis: every kind but "vector" (one vector per example) and a bag of words."""
        return self.kind != "vector" and self.output_mode == "int"

    def shape(self, length: int | None) -> tuple[tuple, str]:
        """(shape without the batch axis, dtype), as keras.Input takes them: ids (T,) int32, features (T, F) or a
        vector (F,) float32."""
        if self.uses_ids:
            return (length,), "int32"
        if self.kind == "words":   # a bag of words
            return (self.vocab_size,), "float32"
        step = self.step_shape or (self.features,)
        return ((length, *step) if self.has_steps else step), "float32"


@dataclass
class Batching:
    mode: str = "pad"
    padding: str = "post"
    truncating: str = "post"
    maxlen: int | None = None
    pad_value: float | int = 0
    bucket_width: int = 8
    chunk: int = 16


@dataclass
class LayerSpec:
    type: str
    params: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    # the layers whose outputs it takes (INPUT_REF: the model's input; "encoder/state/h", "bi/backward": a
    # further output, registry.more_outputs); None: the layer before it
    inputs: list[str] | None = None
    # a recurrent layer's initial states: tensors of layers before it, named as in `inputs` ("encoder/state/h")
    initial_state: list[str] | None = None
    # a shared layer's further calls, each the tensors it takes (named as in `inputs`); call k's output is
    # "<name>/call/<k>", its further outputs "<name>/call/<k>/state/h" …, with the same weights (call_outputs)
    calls: list[list[str]] | None = None
    # the call's parameter that takes each of `inputs` (`mha(query=a, value=b)`: ["query", "value"]; "*": the
    # next of the tensors a call(*operands) takes in turn); None: one tensor, or one list of several (`Add()([a, b])`)
    arguments: list[str] | None = None
    # the call's further keyword arguments that are not tensors (`use_causal_mask=True`), as Keras recorded them
    options: dict[str, Any] | None = None
    # the initial states of each further call of a recurrent layer (None for a call without): a decoding loop
    # unrolled in the graph, `out, h, c = lstm(x_t, initial_state=[h, c])` step after step
    call_states: list[list[str] | None] | None = None
    # the mask the model computes and gives each further call (None for a call given the mask Keras passes on)
    call_masks: list[Mask | None] | None = None
    # a tensor named as in `inputs` that the layer's call takes as its mask (`lstm(x, mask=ops.not_equal(ids, 0))`),
    # or a list of them, None for no mask (`Attention()([q, v], mask=[None, value_mask])`); None: the mask Keras
    # passes on from the layers before, if any
    mask: Mask | None = None
    # how many tensors a Keras layer card's call returns when it returns several (`mha(q, v,
    # return_attention_scores=True)`: 2); those after the first are "<name>/output/1" … (registry.more_outputs)
    returns: int | None = None

    def call_state(self, k: int) -> list[str] | None:
        """The initial states further call k starts from (None: zero states)."""
        return (self.call_states or [None] * k)[k - 1]

    def call_mask(self, k: int) -> Mask | None:
        """The mask the model computes for further call k (None: the one Keras passes on)."""
        return (self.call_masks or [None] * k)[k - 1]

    def call_tensors(self, k: int) -> list[str]:
        """Every tensor further call k takes: the ones it is called on, its initial states, its mask."""
        mask = self.call_mask(k)
        return [*self.calls[k - 1], *(self.call_state(k) or []), *mask_tensors(mask)]

    def __post_init__(self) -> None:
        defaults = {key: copy.deepcopy(default) for key, (default, _) in LAYER_PARAMS.get(self.type, {}).items()}
        self.params = {**defaults, **self.params}

    @property
    def is_recurrent(self) -> bool:
        return self.type in RECURRENT_TYPES


@dataclass
class StackSpec:
    input: InputSpec = field(default_factory=InputSpec)
    batching: Batching = field(default_factory=Batching)
    layers: list[LayerSpec] = field(default_factory=list)
    seed: int = 0
    sequences: str | None = None
    title: str | None = None     # extension: a preset's title
    lesson: str | None = None    # extension: what to look at in this stack
    steps: list | None = None    # extension: the lesson's steps and claims (explorer/core/steps.py), as in the file
    # Trained weights (layer name → arrays), from a .keras file, training or a stack file's "weights"
    weights: dict[str, list] | None = field(default=None, repr=False, compare=False)
    weights_id: str | None = field(default=None, compare=False)
    # extension: a model's further inputs after `input` (encoder-decoder), and the sequence text of each by name
    more_inputs: list[InputSpec] = field(default_factory=list)
    more_sequences: dict[str, str] = field(default_factory=dict)
    # extension: the model's outputs when they are not simply the layers nobody takes (a layer's state,
    # "encoder/state/h", a backward output or a further call); None: those layers
    model_outputs: list[str] | None = None

    def all_inputs(self) -> list[InputSpec]:
        """The model's inputs in Keras's order: `input`, then `more_inputs`."""
        return [self.input, *self.more_inputs]

    def texts(self, given: dict[str, str] | None = None) -> dict[str, str | None]:
        """Each input's sequence text by name (several inputs): `given`'s, else the stack's own (None: none)."""
        own = {self.input.name: self.sequences, **self.more_sequences}
        return {item.name: (given or {}).get(item.name, own.get(item.name)) for item in self.all_inputs()}

    def input_named(self, name: str | None) -> InputSpec:
        """The input called `name` (None, or a name no input has: the first)."""
        return next((item for item in self.more_inputs if item.name == name), self.input)

    def input_for(self, layer: LayerSpec) -> InputSpec:
        """The input a layer reads (an embedding's ids): the one its `inputs` names, else the first."""
        named = {item.name: item for item in self.more_inputs}
        return next((named[source] for source in layer.inputs or [] if source in named), self.input)

    def layer_names(self) -> list[str]:
        """Each layer's name: its own `name`, else its type plus a per-type index."""
        taken = {layer.name for layer in self.layers if layer.name}
        counters: dict[str, int] = {}
        names = []
        for layer in self.layers:
            if layer.name:
                names.append(layer.name)
                continue
            index = counters.get(layer.type, 0)
            while True:
                index += 1
                candidate = f"{layer.type}_{index}"
                if candidate not in taken:
                    break
            counters[layer.type] = index
            taken.add(candidate)
            names.append(candidate)
        return names

    def selectable(self) -> list[str]:
        """What the window can select and show: each layer, then each further call of a shared layer by the name
        of its output ("emb/call/1")."""
        return [shown for layer, name in zip(self.layers, self.layer_names())
                for shown in (name, *(call_outputs(layer, name, k)[0]
                                      for k in range(1, len(layer.calls or []) + 1)))]

    def fixed_length(self) -> int | None:
        """The model input's number of timesteps when it is fixed: input.length, else maxlen for a flatten."""
        return self.input.length or (self.batching.maxlen if self.needs_fixed_length() else None)

    def needs_fixed_length(self) -> bool:
        """A flatten while the time axis is still there: T × features must be fixed."""
        for layer in self.layers:   # a custom expression decides its own shape: it may keep the time axis
            if layer.type == "flatten":
                return True
            if layer.type != "custom" and TYPES[layer.type].cuts_time(layer.params):
                return False
        return False

    def is_graph(self) -> bool:
        """Some layer takes another tensor than the layer before it's (branches, merges, several outputs)."""
        return bool(self.model_outputs) or any(layer.inputs or layer.initial_state or layer.calls or layer.mask
                                               for layer in self.layers)

    def outputs(self) -> list[str]:
        """The model's outputs: `model_outputs`, else the layers whose outputs no other layer takes, in layer
        order."""
        return list(self.model_outputs) if self.model_outputs else self.untaken()

    def untaken(self) -> list[str]:
        """The layers whose outputs no other layer takes."""
        names = self.layer_names()
        taken = {source.partition("/")[0] for layer in self.layers for source in layer.inputs or []}
        taken |= {names[i - 1] for i, layer in enumerate(self.layers) if i and not layer.inputs}
        taken |= {source.partition("/")[0] for layer in self.layers for source in layer.initial_state or []}
        taken |= {source.partition("/")[0] for layer in self.layers for source in mask_tensors(layer.mask)}
        taken |= {source.partition("/")[0] for layer in self.layers for k in range(1, len(layer.calls or []) + 1)
                  for source in layer.call_tensors(k)}
        return [name for name in names if name not in taken]

    def call_order(self) -> list[tuple[int, int]]:
        """(layer index, call) in the order the model makes its calls: each layer's first call (0) in layer order,
        and right after it every further call whose tensors then all exist (a shared layer may be called again on
        what a layer below it gives). A further call whose tensors never all exist is left out."""
        names = self.layer_names()
        known = {INPUT_REF, *(item.name for item in self.more_inputs and self.all_inputs())}
        order: list[tuple[int, int]] = []
        waiting: list[tuple[int, int]] = []
        for i, layer in enumerate(self.layers):
            order.append((i, 0))
            known.update(call_outputs(layer, names[i], 0))
            waiting += [(i, k) for k in range(1, len(layer.calls or []) + 1)]
            while ready := [(j, k) for j, k in waiting if set(self.layers[j].call_tensors(k)) <= known]:
                for j, k in ready:
                    waiting.remove((j, k))
                    order.append((j, k))
                    known.update(call_outputs(self.layers[j], names[j], k))
        return order

    def calls_after(self) -> dict[str, list[tuple[int, int]]]:
        """Each layer's name → the further calls (layer index, call) made right after its first call."""
        names = self.layer_names()
        after: dict[str, list[tuple[int, int]]] = {}
        last = None
        for i, k in self.call_order():
            if k:
                after.setdefault(last, []).append((i, k))
            else:
                last = names[i]
        return after

    def has_custom(self) -> bool:
        return any(layer.type == "custom" for layer in self.layers)

    def architecture_key(self) -> str:
        """Everything that decides the built model; equal keys share one model."""
        document = to_dict(self)
        key = {"input": document["input"], "layers": document["layers"], "seed": self.seed,
               "more_inputs": [_input_dict(item) for item in self.more_inputs],
               "fixed_length": self.fixed_length(),
               **({"outputs": self.model_outputs} if self.model_outputs else {}),
               "weights": self.weights_id if self.weights else None}
        return json.dumps(key, sort_keys=True)

    def copy(self) -> StackSpec:
        """A deep copy that shares the (read-only) trained weights."""
        clone = copy.deepcopy(replace(self, weights=None))
        clone.weights = self.weights
        return clone


# --- dict <-> spec ---

def _expect_object(value: Any, path: str) -> dict:
    if not isinstance(value, dict):
        raise SpecError(path, f"must be an object, got {_show(value)}")
    return value


def _reject_unknown(data: dict, known: set[str] | tuple[str, ...], path: str) -> None:
    for key in data:
        if key not in known:
            where = f"{path}.{key}" if path else str(key)
            raise SpecError(where, f"unknown key; known keys: {', '.join(sorted(known))}")


def _field(data: dict, key: str, check: Callable[[Any], Any], default: Any, path: str) -> Any:
    if key not in data:
        return default
    try:
        return check(data[key])
    except ValueError as error:
        raise SpecError(f"{path}.{key}" if path else key, str(error)) from None


def _optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def inner(value: Any) -> Any:
        return None if value is None else check(value)
    return inner


def _seed(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise ValueError(f"must be an integer from 0 to {MAX_SEED}, got {_show(value)}")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {_show(value)}")
    return value


def _parse_input(data: Any, path: str = "input", extra: tuple[str, ...] = ()) -> InputSpec:
    data = _expect_object(data, path)
    _reject_unknown(data, {"kind", "vocab_size", "features", "length", "standardize", "vocabulary", "name",
                           "split", "ngrams", "step_shape", "output_mode", "idf_weights", "mask_token", *extra},
                   path)
    kind = _field(data, "kind", _choice(INPUT_KINDS), "tokens", path)
    vocab = _field(data, "vocab_size", _optional(_positive_int(MAX_VOCAB)), None, path)
    features = _field(data, "features", _optional(_positive_int(MAX_FEATURES)), None, path)
    if kind in ("tokens", "words") and vocab is None:
        raise SpecError(f"{path}.vocab_size", f'is required when input.kind is "{kind}"')
    if kind == "words" and vocab < 3:
        raise SpecError(f"{path}.vocab_size", f"must be at least 3 for words (padding, unknown word and one word), "
                                            f"got {vocab}")
    if kind in ("features", "vector") and features is None:
        raise SpecError(f"{path}.features", f'is required when input.kind is "{kind}"')
    length = _field(data, "length", _optional(_positive_int(MAX_MAXLEN)), None, path)
    if kind == "vector" and length is not None:
        raise SpecError(f"{path}.length", 'is for sequences: a "vector" input has no timesteps')
    standardize = _field(data, "standardize", _choice(STANDARDIZE, nullable=True), DEFAULT_STANDARDIZE, path)
    vocabulary = _field(data, "vocabulary", _optional(_words), None, path)
    if vocabulary is not None:
        if kind != "words":
            raise SpecError(f"{path}.vocabulary", 'is for words input only (input.kind "words")')
        if len(vocabulary) > vocab:   # fewer: ids the Embedding has rows for but no word reaches
            raise SpecError(f"{path}.vocabulary", f"holds {len(vocabulary)} words, more than vocab_size {vocab}")
    split = _field(data, "split", _choice(SPLITS[:2], nullable=True), SPLITS[0], path)
    ngrams = _field(data, "ngrams", _optional(ngram_widths), None, path)
    for key, value, default in (("split", split, SPLITS[0]), ("ngrams", ngrams, None)):
        if value != default and kind != "words":
            raise SpecError(f"{path}.{key}", 'is for words input only (input.kind "words")')
    step_shape = _field(data, "step_shape", _optional(_step_shape), None, path)
    if step_shape is not None and (kind not in ("features", "vector") or math.prod(step_shape) != features):
        raise SpecError(f"{path}.step_shape", f"is the shape of a step's {features} features (their product), for "
                                              'input.kind "features" or "vector"')
    output_mode = _field(data, "output_mode", _choice(OUTPUT_MODES), OUTPUT_MODES[0], path)
    idf_weights = _field(data, "idf_weights", _optional(_idf_weights), None, path)
    if output_mode != OUTPUT_MODES[0]:
        if kind != "words":
            raise SpecError(f"{path}.output_mode", 'is for words input only (input.kind "words")')
        if length is not None:
            raise SpecError(f"{path}.length", f"is for sequences: a bag of words ({output_mode}) has no timesteps")
    if (idf_weights is not None) != (output_mode == "tf_idf") or idf_weights is not None and (
            vocabulary is None or len(idf_weights) != len(vocabulary)):
        raise SpecError(f"{path}.idf_weights", 'gives each word of the vocabulary its weight, for output_mode '
                                               '"tf_idf" only: as many as the vocabulary has words')
    mask_token = _field(data, "mask_token", _optional(_text), _mask_token(vocabulary), path)
    if "mask_token" in data and (vocabulary is None or output_mode == OUTPUT_MODES[0] and mask_token is not None
                                 and vocabulary[0] != mask_token):
        raise SpecError(f"{path}.mask_token", "is a model vocabulary's mask token: the word of id 0 when the "
                                              "vocabulary gives ids, dropped from the texts of a bag of words")
    name = _field(data, "name", _optional(_layer_name), None, path)
    return InputSpec(kind, vocab, features, length, standardize, vocabulary, name, split, ngrams, step_shape,
                     output_mode, idf_weights, mask_token)


def _mask_token(vocabulary: list[str] | None) -> str | None:
    """The mask token a stack file without one means: the padding "" when id 0 is "" (or the vocabulary is the
    text's own), else none."""
    return PADDING_WORD if vocabulary is None or vocabulary[0] == PADDING_WORD else None


def _idf_weights(value: Any) -> tuple[float, ...]:
    if (not isinstance(value, list) or len(value) > MAX_VOCAB
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)):
        raise ValueError(f"must be a list of finite numbers, one per word, got {_show(value)}")
    return tuple(float(v) for v in value)


def _step_shape(value: Any) -> tuple[int, ...]:
    if (not isinstance(value, list) or not 2 <= len(value) <= 4
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in value)):
        raise ValueError(f"must be a list of 2 to 4 positive sizes (an image column's [16, 1]), got {_show(value)}")
    return tuple(value)


def ngram_widths(value: Any) -> tuple[int, ...]:
    """TextVectorization's `ngrams`: n (every width from 1 to n) or a list of widths, made in its order."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = list(range(1, value + 1))
    if (not isinstance(value, (list, tuple)) or not 1 <= len(value) <= MAX_NGRAM
            or not all(isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= MAX_NGRAM for n in value)):
        raise ValueError(f"must be a width from 1 to {MAX_NGRAM}, or a list of such widths, got {_show(value)}")
    return tuple(value)


def _words(value: Any) -> list[str]:
    """A vocabulary: the word of each id, id 0 the padding and id 1 the unknown word (as Keras lists them; a bag of
    words has no padding, id 0 its unknown word)."""
    if (not isinstance(value, list) or len(value) < 3 or len(value) > MAX_VOCAB
            or not all(isinstance(word, str) for word in value)):
        raise ValueError(f"must be a list of 3 to {MAX_VOCAB} words (padding, unknown word, words …), "
                         f"got {_show(value)}")
    return value


def _parse_batching(data: Any, input_spec: InputSpec) -> Batching:
    data = _expect_object(data, "batching")
    known = {"mode", "padding", "truncating", "maxlen", "pad_value", "bucket_width", "chunk"}
    _reject_unknown(data, known, "batching")
    side = _choice(("pre", "post"))
    batching = Batching(
        mode=_field(data, "mode", _choice(("pad", "bucket", "one_by_one", "chunked")), "pad", "batching"),
        padding=_field(data, "padding", side, "post", "batching"),
        truncating=_field(data, "truncating", side, "post", "batching"),
        maxlen=_field(data, "maxlen", _optional(_positive_int(MAX_MAXLEN)), None, "batching"),
        pad_value=_field(data, "pad_value", _number, 0, "batching"),
        bucket_width=_field(data, "bucket_width", _positive_int(MAX_MAXLEN), 8, "batching"),
        chunk=_field(data, "chunk", _positive_int(MAX_MAXLEN), 16, "batching"),
    )
    _check_pad_value(batching, input_spec)
    return batching


def _check_pad_value(batching: Batching, input_spec: InputSpec) -> None:
    """The pad value must be an id of every ids input (an integer then); 0 for words."""
    if input_spec.kind == "words" and batching.pad_value != 0:
        raise SpecError("batching.pad_value", f"must be 0 for words (id 0 is the padding), got {_show(batching.pad_value)}")
    if input_spec.uses_ids:
        pad = batching.pad_value
        if isinstance(pad, float) and not pad.is_integer():
            raise SpecError("batching.pad_value", f"must be a token id (an integer) for token input, got {pad}")
        if not 0 <= pad < (input_spec.vocab_size or 0):
            raise SpecError("batching.pad_value",
                            f"must be a token id from 0 to {input_spec.vocab_size - 1}, got {_show(pad)}")
        batching.pad_value = int(pad)


def _parse_layer(data: Any, index: int) -> LayerSpec:
    path = f"layers[{index}]"
    data = _expect_object(data, path)
    layer_type = data.get("type")
    if not isinstance(layer_type, str) or layer_type not in LAYER_PARAMS:
        if "type" not in data:
            raise SpecError(f"{path}.type", "is missing")
        raise SpecError(f"{path}.type", f"unknown layer type {_show(layer_type)}; known types: "
                                        + ", ".join(LAYER_TYPES))
    schema = LAYER_PARAMS[layer_type]
    card = ("arguments", "options", "returns") if layer_type == "keras" else ()   # a Keras layer card's call
    _reject_unknown(data, {"type", "name", "inputs", "initial_state", "calls", "mask", *card, *schema}, path)
    name = None
    if "name" in data:
        name = _field(data, "name", _layer_name, None, path)
    params = {key: _field(data, key, check, default, path) for key, (default, check) in schema.items()}
    calls, call_states, call_masks = _field(data, "calls", _optional(_calls), None, path) or (None, None, None)
    layer = LayerSpec(layer_type, params, name, _field(data, "inputs", _optional(_sources), None, path),
                      _field(data, "initial_state", _optional(_sources), None, path), calls,
                      call_states=call_states, call_masks=call_masks,
                      arguments=_field(data, "arguments", _optional(_argument_names), None, path),
                      options=_field(data, "options", _optional(_options), None, path),
                      returns=_field(data, "returns", _optional(_returns), None, path),
                      mask=_field(data, "mask", _optional(_mask), None, path))
    if layer.arguments and len(layer.arguments) != len(layer.inputs or []):
        raise SpecError(f"{path}.arguments", f"names {len(layer.arguments)} parameters, but the layer takes "
                                             f"{len(layer.inputs or [])} tensors (its inputs): one each")
    problem = _argument_items_problem(layer.arguments or [], layer.options or {})
    if problem:
        raise SpecError(f"{path}.{problem[0]}", problem[1])
    return layer


def _argument_items_problem(arguments: list[str], options: dict) -> tuple[str, str] | None:
    """Where a card's `arguments` and `options` disagree: a parameter given a tensor whole is no option; one given
    tensors item by item takes them as its items 0, 1 … in order, or at their places in the list its option holds
    (the values around them: `[null, 0.5]` with "xs[0]")."""
    whole = {name for name, items in map(argument_parameter, arguments) if not items} - {"*"}
    if whole & set(options):
        return "options", f"names {sorted(whole & set(options))[0]}, a parameter that arguments gives a tensor"
    for name, items in argument_places(arguments).items():
        if name not in options:
            if any(len(each) != 1 for each in items) or [each[0] for each in items] != list(range(len(items))):
                given = ", ".join(name + "".join(f"[{index}]" for index in each) for each in items)
                return "arguments", (f"gives {given}: without a list or dict in options.{name} to place them in, "
                                     f"the tensors are the items 0, 1 … of {name}, in order")
        elif not all(_holds_item(options[name], each) for each in items):
            return f"options.{name}", "has no item at each place arguments gives a tensor"
    return None


def _holds_item(data: Any, items: tuple[int | str, ...]) -> bool:
    """The list, tuple or dict a stack file holds has an item at `items` ((1, 0): its item 1's item 0; ("gate",):
    its dict's key "gate")."""
    for index in items:
        if isinstance(data, dict) and list(data) in (["tuple"], ["dict"]):
            data = data["tuple"] if "tuple" in data else data["dict"]
        if isinstance(index, str) != isinstance(data, dict) or not isinstance(data, (list, dict)) or (
                index not in data if isinstance(data, dict) else index >= len(data)):
            return False
        data = data[index]
    return True


_ARGUMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_NOT_OPTIONS = ("mask", "training", "initial_state")   # masks travel by themselves; the explorer runs inference


def _returns(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 2 <= value <= MAX_INPUTS:
        raise ValueError(f"must be the number of tensors the layer returns, 2 to {MAX_INPUTS}, got {_show(value)}")
    return value


def _argument_names(value: Any) -> list[str]:
    parameters = [argument_parameter(item) for item in value if isinstance(item, str) and item != "*"] \
        if isinstance(value, list) else []
    named = {name for name, items in parameters if not items}
    if (not isinstance(value, list) or not 1 <= len(value) <= MAX_INPUTS
            or not all(isinstance(item, str) and (item == "*" or _ARGUMENT.fullmatch(argument_parameter(item)[0]))
                       for item in value)
            or len(set(parameters)) != len(parameters) or named & {name for name, items in parameters if items}
            or "*" in value[len(value) - len(parameters):]):
        raise ValueError(f"must be a list of 1 to {MAX_INPUTS} distinct parameter names of the layer's call "
                         f'("query", "value"; "mask[0]", "mask[1]" for the items of a list, "xs[1][0]" for an item '
                         f'of an item, "inputs[gate]" for a key of a dict), after any "*" (the tensors a '
                         f"call(*operands) takes in turn), got "
                         f"{_show(value)}")
    return value


def call_arguments(arguments: list[str], given: list, templates: dict | None = None) -> tuple[list, dict[str, Any]]:
    """How a call takes `given` (tensors, or their code), one per `arguments` entry: (those a call(*operands)
    takes in turn, the rest by parameter). A parameter given tensors item by item is a list of them in order, or
    its `templates` value (the list its option holds) with each at its place."""
    spread, named = [], {}
    for argument, item in zip(arguments, given):
        name, items = argument_parameter(argument)
        if argument == "*":
            spread.append(item)
        elif not items:
            named[name] = item
        else:
            named.setdefault(name, {})[items] = item
    for name, at in argument_places(arguments).items():
        items = named[name]
        named[name] = placed(templates[name], items) if templates and name in templates else list(items.values())
    return spread, named


def shown_options(layer: LayerSpec) -> dict[str, Any]:
    """A card's call options as it shows them: a list its tensors fill with each tensor's layer in its place."""
    sources = ["input" if source == INPUT_REF else source for source in layer.inputs or []]
    places = argument_places(layer.arguments)
    shown = dict(layer.options or {})
    for key, value in shown.items():
        if key in places:
            at = {place: AsWritten(source) for place, source in zip(places[key], (
                source for argument, source in zip(layer.arguments, sources) if argument_parameter(argument)[0] == key))}
            shown[key] = option_json(placed(option_value(value, objects=False), at), arrays=True)
    return shown


def _options(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or len(value) > MAX_INPUTS:
        raise ValueError(f"must be an object of at most {MAX_INPUTS} keyword arguments of the layer's call, "
                         f"got {_show(value)}")
    for key, item in value.items():
        if not _ARGUMENT.fullmatch(key) or key in _NOT_OPTIONS:
            raise ValueError(f"{_show(key)} is not a keyword argument a card's call may take"
                             + (" (the explorer handles it)" if key in _NOT_OPTIONS else ""))
        try:
            option_value(item, objects=False)   # a Keras object is made when the engine builds
        except ValueError as error:
            raise ValueError(f"{key} {error}") from None
    return value




def _parse_more_inputs(data: Any, first: InputSpec) -> tuple[list[InputSpec], dict[str, str]]:
    """The model's further inputs (several-input models), each named, with its own sequence text."""
    if data is None:
        return [], {}
    if not isinstance(data, list) or not 1 <= len(data) < MAX_INPUTS:
        raise SpecError("more_inputs", f"must be a list of 1 to {MAX_INPUTS - 1} inputs, got {_show(data)}")
    if first.name is None:
        raise SpecError("input.name", "is required when the stack has more_inputs: each input is named")
    inputs, texts = [], {}
    for i, item in enumerate(data):
        path = f"more_inputs[{i}]"
        parsed = _parse_input(item, path, extra=("sequences",))
        if parsed.name is None:
            raise SpecError(f"{path}.name", "is missing: each input is named")
        if parsed.name in [first.name, *(known.name for known in inputs)]:
            raise SpecError(f"{path}.name", f"{_show(parsed.name)} names another input too")
        text = _field(item, "sequences", _optional(_text), None, path)
        if text is not None:
            texts[parsed.name] = text
        inputs.append(parsed)
    return inputs, texts


def _parse_outputs(data: Any, layers: dict[str, LayerSpec]) -> list[str]:
    """The stack's "outputs": tensors named as in `inputs` ("encoder", "encoder/state/h"), each once."""
    if not isinstance(data, list) or not data or not all(isinstance(item, str) for item in data):
        raise SpecError("outputs", f"must be a list of tensor names, got {_show(data)}")
    for item in data:
        if not _output_of(item, layers):
            raise SpecError("outputs", f'{_show(item)} is not a layer\'s output nor a further output such as '
                                       '"encoder/state/h"')
        if data.count(item) > 1:
            raise SpecError("outputs", f"{_show(item)} is listed more than once")
    return list(data)


def call_outputs(layer: LayerSpec, name: str, call: int) -> list[str]:
    """The tensors one call of a layer gives, as `inputs` names them: its first call (0) "lstm", then what it
    returns after that ("lstm/state/h", "bi/backward": registry.more_outputs); a further call k "lstm/call/k",
    "lstm/call/k/state/h" …"""
    output = f"{name}/call/{call}" if call else name
    return [output, *(f"{output}/{key}" for key in more_outputs(layer))]


def _output_of(source: str, before: dict[str, LayerSpec]) -> bool:
    """Whether `source` names a tensor of a layer before: its output ("encoder"), one it returns after it
    ("encoder/state/h", "bi/backward": registry.more_outputs), or one of its further calls' ("shared/call/1")."""
    owner = source.partition("/")[0]
    return owner in before and any(source in call_outputs(before[owner], owner, k)
                                   for k in range(len(before[owner].calls or []) + 1))


def mask_tensors(mask: Mask | None) -> list[str]:
    """The tensors a layer's (or a call's) `mask` names: the one, or those of a list (its Nones left out)."""
    return [] if mask is None else [mask] if isinstance(mask, str) else [name for name in mask if name is not None]


def mask_text(mask: Mask) -> str:
    """A mask as a card names it: "not_equal", "the input", or "[None, not_equal]" for a list."""
    if isinstance(mask, str):
        return "the input" if mask == INPUT_REF else mask
    return "[" + ", ".join("None" if source is None else mask_text(source) for source in mask) + "]"


def _mask(value: Any) -> Mask:
    """A mask a call is given: a tensor's name, or a list of names and nulls (one per tensor the call takes)."""
    if isinstance(value, str):
        return value
    if (not isinstance(value, list) or not 1 <= len(value) <= MAX_INPUTS
            or not all(item is None or isinstance(item, str) for item in value) or not any(value)):
        raise ValueError(f"must be a tensor's name, or a list of up to {MAX_INPUTS} names and nulls (no mask), "
                         f"got {_show(value)}")
    return list(value)


def _calls(value: Any) -> tuple[list[list[str]], list[list[str] | None] | None, list[str | None] | None]:
    """A shared layer's further calls: each the list of tensors it takes, or {"inputs": [...], "initial_state":
    [...], "mask": "..."} for a recurrent layer's call started from states or a call given a mask the model
    computes; (their tensors, their initial states or None, their masks or None)."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_INPUTS:
        raise ValueError(f"must be a list of 1 to {MAX_INPUTS} calls, each a list of the tensors it takes, "
                         f"got {_show(value)}")
    calls, states, masks = [], [], []
    for call in value:
        if isinstance(call, dict):
            if set(call) - {"inputs", "initial_state", "mask"} or "inputs" not in call:
                raise ValueError('a call given as an object has "inputs", and "initial_state" or "mask", got '
                                 f"{_show(call)}")
            calls.append(_sources(call["inputs"]))
            states.append(_sources(call["initial_state"]) if call.get("initial_state") is not None else None)
            masks.append(_mask(call["mask"]) if call.get("mask") is not None else None)
        else:
            calls.append(_sources(call))
            states.append(None)
            masks.append(None)
    return calls, states if any(states) else None, masks if any(masks) else None


def _sources(value: Any) -> list[str]:
    if (not isinstance(value, list) or not 1 <= len(value) <= MAX_INPUTS
            or not all(isinstance(item, str) for item in value)):
        raise ValueError(f'must be a list of 1 to {MAX_INPUTS} layer names (or "{INPUT_REF}"), got {_show(value)}')
    return value


def from_dict(data: Any) -> StackSpec:
    """Validates a stack document and returns it; raises SpecError naming the place."""
    data = _expect_object(data, "")
    data = migrate(data)
    _reject_unknown(data, {"format", "version", "input", "batching", "layers", "seed", "sequences", "title",
                          "lesson", "steps", "weights", "more_inputs", "outputs"}, "")
    input_spec = _parse_input(data.get("input", {"kind": "tokens", "vocab_size": 1000}))
    more_inputs, more_sequences = _parse_more_inputs(data.get("more_inputs"), input_spec)
    batching = _parse_batching(data.get("batching", {}), input_spec)
    for item in more_inputs:
        _check_pad_value(batching, item)
    layers_data = data.get("layers")
    if not isinstance(layers_data, list):
        raise SpecError("layers", f"must be a list of layers, got {_show(layers_data)}")
    if len(layers_data) > MAX_LAYERS:
        raise SpecError("layers", f"holds {len(layers_data)} layers; at most {MAX_LAYERS} are allowed")
    layers = [_parse_layer(item, i) for i, item in enumerate(layers_data)]
    spec = StackSpec(input_spec, batching, layers,
                     _field(data, "seed", _seed, 0, ""),
                     _field(data, "sequences", _optional(_text), None, ""),
                     _field(data, "title", _optional(_text), None, ""),
                     _field(data, "lesson", _optional(_text), None, ""),
                     more_inputs=more_inputs, more_sequences=more_sequences)
    if data.get("steps") is not None:
        from .steps import parse
        parse(data["steps"])
        spec.steps = copy.deepcopy(data["steps"])
    names = [layer.name for layer in layers if layer.name]
    for i, layer in enumerate(layers):
        if layer.name and names.count(layer.name) > 1:
            raise SpecError(f"layers[{i}].name", f'"{layer.name}" is used by more than one layer')
    every = spec.layer_names()
    input_names = [item.name for item in more_inputs and spec.all_inputs()]
    for name in input_names:
        if name in every:
            raise SpecError("more_inputs", f"the input name {_show(name)} is also a layer's name")
    by_name = dict(zip(every, layers))
    for i, layer in enumerate(layers):
        before = dict(zip(every[:i], layers[:i]))
        for source in layer.inputs or []:
            if source != INPUT_REF and not _output_of(source, before) and source not in input_names:
                raise SpecError(f"layers[{i}].inputs", f"{_show(source)} is not a layer before this one "
                                                       f'(nor "{INPUT_REF}", the model\'s input'
                                                       + "".join(f", nor the input {_show(n)}" for n in input_names)
                                                       + ', nor a further output such as "encoder/state/h")')
        for k in range(1, len(layer.calls or []) + 1):   # any layer's tensors: _check_call_order checks when
            for source in layer.call_tensors(k):          # they exist
                if source != INPUT_REF and not _output_of(source, by_name) and source not in input_names:
                    raise SpecError(f"layers[{i}].calls", f"{_show(source)} is not a tensor any layer gives")
        for source in mask_tensors(layer.mask):
            if source != INPUT_REF and not _output_of(source, before) and source not in input_names:
                raise SpecError(f"layers[{i}].mask", f"{_show(source)} is not a tensor of a layer before this one")
        if (layer.initial_state or layer.call_states) and not layer.is_recurrent:
            raise SpecError(f"layers[{i}].initial_state", "only a recurrent layer takes initial states")
        for source in layer.initial_state or []:
            if not _output_of(source, before) and source not in input_names:
                raise SpecError(f"layers[{i}].initial_state", f"{_show(source)} is not a state or an output of a "
                                                              'layer before this one: write "encoder/state/h" for '
                                                              "the state h that return_state adds to the layer "
                                                              'encoder, "encoder" for its output, or an input\'s '
                                                              "name")
    _check_call_order(spec, every, input_names)
    if data.get("outputs") is not None:
        spec.model_outputs = _parse_outputs(data["outputs"], dict(zip(every, layers)))
    if data.get("weights") is not None:
        spec.weights = _parse_weights(data["weights"], spec.layer_names())
        spec.weights_id = "file-" + hashlib.sha256(json.dumps(data["weights"], sort_keys=True).encode()).hexdigest()
    return spec


def _check_call_order(spec: StackSpec, names: list[str], input_names: list[str]) -> None:
    """A further call runs once every tensor it takes exists (StackSpec.call_order); a layer takes a further call's
    tensors only when that call runs before the layer's own first call."""
    order = spec.call_order()
    known = {INPUT_REF, *input_names}
    for i, k in order:
        layer = spec.layers[i]
        late = [] if k else [source for source in [*(layer.inputs or []), *(layer.initial_state or [])]
                             if source not in known]
        if late:
            raise SpecError(f"layers[{i}].inputs", f"{', '.join(map(_show, late))} is given by a further call that "
                                                   "runs only after this layer, once every tensor it takes exists")
        known.update(call_outputs(layer, names[i], k))
    for i, layer in enumerate(spec.layers):
        for k in range(1, len(layer.calls or []) + 1):
            if (i, k) not in order:
                waiting = [source for source in layer.call_tensors(k) if source not in known]
                raise SpecError(f"layers[{i}].calls", f"call {k} takes {', '.join(map(_show, waiting))}, which "
                                                      "exists only after this call (a loop of calls)")


# --- trained weights in a stack file: {"layer": [{"shape": [...], "dtype": "float32", "data": base64}, ...]} ---

WEIGHTS_DTYPE = "float32"


def _parse_weights(data: Any, names: list[str]) -> dict[str, list]:
    import numpy as np
    data = _expect_object(data, "weights")
    weights = {}
    for name, arrays in data.items():
        path = f"weights.{name}"
        if name not in names:
            raise SpecError(path, f"there is no layer {_show(name)}; layers: {', '.join(names)}")
        if not isinstance(arrays, list):
            raise SpecError(path, f"must be a list of arrays, got {_show(arrays)}")
        values = []
        for i, item in enumerate(arrays):
            try:
                values.append(array_value(item, (WEIGHTS_DTYPE,), most=None))
            except ValueError as error:
                raise SpecError(f"{path}[{i}]", str(error)) from None
        weights[name] = values
    return weights


def _weights_to_dict(weights: dict[str, list]) -> dict:
    import numpy as np
    return {name: [array_json(np.asarray(array, dtype=WEIGHTS_DTYPE)) for array in arrays]
            for name, arrays in weights.items()}


def migrate(data: dict) -> dict:
    """Brings an older document up to VERSION; refuses foreign and newer ones."""
    fmt = data.get("format", FORMAT)
    if fmt != FORMAT:
        raise SpecError("format", f'must be "{FORMAT}", got {_show(fmt)}')
    version = data.get("version", VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise SpecError("version", f"must be a positive integer, got {_show(version)}")
    if version > VERSION:
        raise SpecError("version", f"this file was written by a newer explorer (version {version}); "
                                   f"this one reads versions up to {VERSION}")
    return data


def _input_dict(item: InputSpec) -> dict[str, Any]:
    data = ({"kind": item.kind, "vocab_size": item.vocab_size} if item.kind in ("tokens", "words")
            else {"kind": item.kind, "features": item.features})
    if item.name is not None:
        data["name"] = item.name
    if item.length is not None:
        data["length"] = item.length
    if item.kind == "words" and item.standardize != DEFAULT_STANDARDIZE:
        data["standardize"] = item.standardize
    if item.step_shape is not None:
        data["step_shape"] = list(item.step_shape)
    if item.output_mode != OUTPUT_MODES[0]:
        data["output_mode"] = item.output_mode
    if item.idf_weights is not None:
        data["idf_weights"] = list(item.idf_weights)
    if item.kind == "words" and item.split != SPLITS[0]:
        data["split"] = item.split
    if item.kind == "words" and item.ngrams is not None:
        data["ngrams"] = list(item.ngrams)
    if item.kind == "words" and item.vocabulary is not None:
        data["vocabulary"] = item.vocabulary
        if item.mask_token != _mask_token(item.vocabulary):
            data["mask_token"] = item.mask_token
    return data


def to_dict(spec: StackSpec, *, weights: bool = False) -> dict:
    """The stack document; `weights`: with the trained weights when the stack has them (stack files)."""
    data: dict[str, Any] = {"format": FORMAT, "version": VERSION}
    data["input"] = _input_dict(spec.input)
    if spec.more_inputs:
        data["more_inputs"] = [{**_input_dict(item), **({"sequences": spec.more_sequences[item.name]}
                                                         if item.name in spec.more_sequences else {})}
                               for item in spec.more_inputs]
    b = spec.batching
    data["batching"] = {"mode": b.mode, "padding": b.padding, "truncating": b.truncating, "maxlen": b.maxlen,
                        "pad_value": b.pad_value, "bucket_width": b.bucket_width, "chunk": b.chunk}
    layers = []
    for layer in spec.layers:
        item: dict[str, Any] = {"type": layer.type}
        if layer.name:
            item["name"] = layer.name
        if layer.inputs:
            item["inputs"] = list(layer.inputs)
        if layer.initial_state:
            item["initial_state"] = list(layer.initial_state)
        if layer.calls:
            item["calls"] = []
            for k, call in enumerate(layer.calls, start=1):
                started, mask = layer.call_state(k), layer.call_mask(k)
                keywords = {**({"initial_state": list(started)} if started else {}), **({"mask": mask} if mask else {})}
                item["calls"].append({"inputs": list(call), **keywords} if keywords else list(call))
        if layer.arguments:
            item["arguments"] = list(layer.arguments)
        if layer.options:
            item["options"] = dict(layer.options)
        if layer.returns:
            item["returns"] = layer.returns
        if layer.mask:
            item["mask"] = layer.mask
        kind = TYPES[layer.type]
        item.update((key, value) for key, value in layer.params.items()
                    if not (kind.params[key].omit_default and value == kind.params[key].default))
        layers.append(item)
    data["layers"] = layers
    data["seed"] = spec.seed
    for key in ("sequences", "title", "lesson", "steps"):
        if getattr(spec, key) is not None:
            data[key] = getattr(spec, key)
    if spec.model_outputs:
        data["outputs"] = list(spec.model_outputs)
    if weights and spec.weights:
        data["weights"] = _weights_to_dict(spec.weights)
    return data


def dumps(spec: StackSpec) -> str:
    """A stack file's text, trained weights included."""
    return json.dumps(to_dict(spec, weights=True), indent=2) + "\n"


MAX_JSON_DEPTH = 100    # a stack nests 5 levels, a Keras model's config about 30


def check_depth(data, limit: int = MAX_JSON_DEPTH) -> bool:
    """False when parsed JSON nests deeper than `limit` (checked without recursion, so nothing later recurses
    deeper than Python allows)."""
    pending = [(data, 0)]
    while pending:
        node, depth = pending.pop()
        if depth > limit:
            return False
        if isinstance(node, (dict, list)):
            pending += [(value, depth + 1) for value in (node.values() if isinstance(node, dict) else node)]
    return True


def loads(text: str, source: str = "stack") -> StackSpec:
    too_deep = SpecError("", f"{source} is nested deeper than {MAX_JSON_DEPTH} levels, which no stack document is")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise SpecError("", f"{source} is not valid JSON: {error.msg} at line {error.lineno}, "
                            f"column {error.colno}") from None
    except RecursionError:
        raise too_deep from None
    except ValueError as error:  # e.g. an integer with more digits than Python converts
        raise SpecError("", f"{source} is not valid JSON: {error}") from None
    if not check_depth(data):
        raise too_deep
    return from_dict(data)


_RESAVE = "save it as .keras with the Keras that reads it, where you trust it: model.save(\"model.keras\")"


def load(path: str | os.PathLike) -> StackSpec:
    path = Path(path)
    if path.is_dir() and (path / "saved_model.pb").is_file():
        raise SpecError("", f"{path} is a TensorFlow SavedModel, which Keras 3 does not load as a model: {_RESAVE}")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise SpecError("", f"cannot read {path}: {error.strerror or error}") from None
    try:
        text = raw.decode("utf-8-sig")   # a byte-order mark, as some editors write, is dropped
    except UnicodeDecodeError:
        if raw.startswith(b"\x89HDF\r\n\x1a\n"):   # an HDF5 model whose name does not say so
            raise SpecError("", f"{path.name} is an HDF5 model, not a stack file: a Keras model in HDF5 opens when "
                                "its name ends in .h5") from None
        if raw.startswith(b"PK\x03\x04"):
            raise SpecError("", f"{path.name} is a zip archive, not a stack file: a Keras model opens when its name "
                                "ends in .keras") from None
        raise SpecError("", f"{path} is not a UTF-8 text file") from None
    return loads(text, str(path))


def save(spec: StackSpec, path: str | os.PathLike) -> None:
    """Writes atomically (see output_file)."""
    write_text_atomic(Path(path), dumps(spec))


write_bytes_atomic = output_file.write_bytes


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))
