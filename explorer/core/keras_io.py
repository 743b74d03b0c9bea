"""Trained `.keras` models ↔ editable stacks that keep their weights."""

from __future__ import annotations

import dataclasses
import math
import re
import uuid
from pathlib import Path

import numpy as np

from . import backend, keras_archive, keras_cards, output_file
from .errors import SpecError, StackError, strip_ansi
from .registry import TYPES, ByKeras, more_outputs
from .spec import (INPUT_REF, MAX_VOCAB, OUTPUT_MODES, PADDING_WORD, SPLITS, STANDARDIZE, Batching, InputSpec,
                   LayerSpec, StackSpec, _layer_name, call_outputs, ngram_widths, option_json)




# Keras class → layer type, from the registry (a Bidirectional layer is the type of the layer it wraps)
_TYPE_OF = {cls: key for key, kind in TYPES.items() for cls in kind.keras_classes}


def import_model(path: str | Path, *, trust: bool = False) -> tuple[StackSpec, dict[str, list[np.ndarray]], list[str]]:
    """Loads a `.keras` model (or an HDF5 `.h5` one, Keras 2's format) with safe_mode=True and turns it into a
    stack, its weights and notes.

    Refused: classes that neither Keras, the explorer nor the user's `--custom-objects` define (named, with the
    layers using them), and custom expressions unless `trust`.
    """
    path = Path(path)
    hdf5 = keras_archive.is_hdf5(path)
    if hdf5:   # its layers are named by their bare class, which Keras looks up itself
        found = keras_archive.classes(keras_archive.read_hdf5_config(path),
                                      known=lambda name: _loaded_here(name) or _keras_own(name))
    else:
        found = keras_archive.classes(keras_archive.read_config(path), known=_loaded_here)
    keras_archive.check_classes(path, found, trust=trust, hdf5=hdf5)
    backend.load()
    import keras

    from . import layers  # noqa: F401  (registers the explorer's own layers for loading)
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True,
                                        custom_objects=keras_cards.custom_objects())
    except Exception as error:
        lines = [line.strip() for line in strip_ansi(str(error)).splitlines() if line.strip()]
        if len(lines) > 1 and lines[0].endswith(":"):   # "… could not be loaded. Example error message for …:"
            lines = [f"{lines[0][:-1]}: {lines[1]}"]   # and its reason, on the next line
        raise SpecError("", f"cannot load {path.name}: {lines[0] if lines else type(error).__name__}") from None
    return _to_stack(model)


def _loaded_here(name) -> bool:
    """Whether a class the file names is already code of this process: the user's --custom-objects, or one their
    own program registered with Keras (a notebook's `register_keras_serializable`)."""
    import sys
    keras = sys.modules.get("keras")
    return isinstance(name, str) and (keras_cards.is_custom(name) or (keras is not None and
                                                                    keras.saving.get_registered_object(name) is not None))


def _keras_own(name) -> bool:
    """A class Keras's HDF5 loader finds by its bare name: a model, or a layer, initializer, regularizer or
    constraint of Keras."""
    keras = backend.load()
    return isinstance(name, str) and (name in ("Sequential", "Functional", "Model") or any(
        isinstance(getattr(module, name, None), type)
        for module in (keras.layers, keras.initializers, keras.regularizers, keras.constraints)))


def from_keras_model(model) -> tuple[StackSpec, dict[str, list[np.ndarray]], list[str]]:
    """A Keras model in memory → its stack, weights and notes, as `import_model` reads a file."""
    return _to_stack(model)


def _to_stack(model) -> tuple[StackSpec, dict[str, list[np.ndarray]], list[str]]:
    import keras
    sequential = isinstance(model, keras.Sequential)
    model, notes = _flattened(model)
    # id(Keras layer) → in a model that branches: the tensors it takes, its initial states, its further calls'
    sources: dict[int, list[Tensor]] = {}
    states: dict[int, list[Tensor]] = {}
    calls: dict[int, list[list[Tensor]]] = {}
    masks: dict[int, Tensor] = {}   # a mask the model computes and passes to a layer itself
    started: dict[int, list[list[Tensor] | None]] = {}   # the initial states of a shared layer's further calls
    call_masks: dict[int, list[Tensor | None]] = {}       # … and the masks the model computes for them
    graph = False
    try:
        chain = _chain(model)
    except StackError:
        if not getattr(model, "inputs", None):
            raise
        chain, sources, states, calls, masks, started, call_masks = _graph(model)
        graph = True
    by_name: dict[str, LayerSpec] = {}
    renamed: dict[str, str] = {}
    several = len(model.inputs) > 1
    input_names = [renamed.setdefault(name, _usable_name(name, [], notes))
                   for name in (tensor._keras_history.operation.name for tensor in model.inputs)] if several else []
    texts: dict[str, tuple[InputSpec, int | None]] = {}   # several inputs: what each raw text input reads
    if several:
        chain, texts = _text_inputs(model, chain, sources, states, calls)
    text = _text_input(chain[0][0]) if chain[0][0] is not None and not several else None
    if text is not None:   # raw text: the explorer's words input does what the layer does
        chain = chain[1:]
    layers: list[LayerSpec] = []
    read: dict[str, object] = {}   # card name → the Keras layer it was read from
    weights: dict[str, list[np.ndarray]] = {}
    refused: list[str] = []
    previous: LayerSpec | None = None
    chain_output = None   # a chain that ends in a further output of its last layer (attention scores)
    for layer, taken in chain:
        passed = None   # a further output the layer takes in a chain, not a state that `feeds` passes on
        if taken and previous is not None and not _feed(previous, taken):
            more = more_outputs(previous)
            if taken > len(more):
                refused.append(f"{previous.name} passes on its output {taken}, which a stack cannot show")
            elif layer is None:
                chain_output = f"{previous.name}/{more[taken - 1]}"
            else:   # the backward output of a Bidirectional with merge_mode None
                passed = f"{previous.name}/{more[taken - 1]}"
        if layer is None:   # the model's output
            break
        kind = type(layer).__name__
        try:
            spec = _layer_spec(layer, kind)
        except ByKeras as reason:
            notes.append(f"{layer.name}: {reason}; Keras computes it as it is (a Keras layer card)")
            spec = None
        if _stateful(layer):
            notes.append(f"{layer.name} is stateful: the explorer runs every batch from zero states, as the "
                         "model's first predict after loading does")
        arguments, options = _call_form(model, layer)[1:]
        if spec is not None and (arguments or options):
            notes.append(f"{layer.name}: its call takes {', '.join([*(arguments or []), *options])}; Keras computes "
                         "it as it is (a Keras layer card)")
            spec = None
        if spec is None:   # computed by Keras itself, from its saved config
            returned = len(layer._inbound_nodes[_calls(model, layer)[0]].outputs)
            spec = LayerSpec("keras", TYPES["keras"].read(layer), arguments=arguments, options=options or None,
                             returns=returned if returned > 1 else None)
        spec.name = renamed[layer.name] = _usable_name(layer.name, [known.name for known in layers], notes)
        try:
            taken_from = [_tensor_name(tensor, renamed, by_name) for tensor in sources.get(id(layer), [])]
            if id(layer) in states:           # an encoder's states (or any tensor before it) start it
                spec.initial_state = [_tensor_name(tensor, renamed, by_name) for tensor in states[id(layer)]]
            if id(layer) in masks:
                spec.mask = _mask_name(masks[id(layer)], renamed, by_name)
        except StackError as error:
            refused.append(f"{layer.name} ({kind}) {error.message}")
            continue
        if spec.arguments and not taken_from:   # in a chain, the one tensor its parameter takes: the layer before's
            taken_from = [previous.name if previous is not None else INPUT_REF]
        if passed is not None:
            spec.inputs = [passed]
        elif spec.arguments or taken_from and taken_from != [previous.name if previous is not None else INPUT_REF]:
            spec.inputs = taken_from      # a branch or a merge; else the layer before, as in a chain
        by_name[spec.name] = spec
        read[spec.name] = layer
        layers.append(spec)
        weights[spec.name] = layer.get_weights() if isinstance(layer, keras.layers.Layer) else []   # or an op
        previous = spec
    for layer, _ in chain[:-1]:   # a shared layer: one card, called again on other tensors (any layer's, named
        if id(layer) in calls and renamed.get(layer.name) in by_name:   # once every card is; StackSpec.call_order runs them)
            try:
                by_name[renamed[layer.name]].calls = [[_tensor_name(tensor, renamed, by_name) for tensor in call]
                                                      for call in calls[id(layer)]]
                if id(layer) in started:
                    by_name[renamed[layer.name]].call_states = [
                        [_tensor_name(tensor, renamed, by_name) for tensor in each] if each else None
                        for each in started[id(layer)]]
                if id(layer) in call_masks:
                    by_name[renamed[layer.name]].call_masks = [
                        _mask_name(mask, renamed, by_name) if mask else None for mask in call_masks[id(layer)]]
            except StackError as error:
                refused.append(f"{layer.name} ({type(layer).__name__}) {error.message}")
    if refused:
        raise StackError("; ".join(refused))
    if not layers:
        raise StackError("the model has no layers the explorer can show")
    if several:
        every_call = {key: sources.get(key, []) + sum(calls.get(key, []), []) for key in {*sources, *calls}}
        stack = _several_inputs(model, chain, every_call, input_names, layers, weights, notes, texts)
        _model_outputs(model, stack, renamed, by_name)
        _fit_embeddings(stack, weights, read, notes)
        return stack, weights, notes
    shape = tuple(model.inputs[0].shape)
    if text is not None:
        input_spec, length = text
        stack = StackSpec(input_spec, Batching(maxlen=length), layers, model_outputs=chain_output and [chain_output])
        stack.weights, stack.weights_id = weights, uuid.uuid4().hex
        _fit_embeddings(stack, weights, read, notes)
        if graph:
            _model_outputs(model, stack, renamed, by_name)
        return stack, weights, notes
    first = _input_spec(model.inputs[0], [chain[0][0]], notes)
    stack = StackSpec(first, Batching(), layers, model_outputs=chain_output and [chain_output])
    if graph:
        _model_outputs(model, stack, renamed, by_name)
    steps = shape[1] if len(shape) > 1 and first.has_steps else None
    # Keras's Sequential runs at any length (it falls back to calling its layers one by one); a functional
    # model takes only the length of its Input, and a flatten needs it fixed anyway.
    if steps is not None and (not sequential or stack.needs_fixed_length() or not _any_length(stack)):
        stack.input.length = stack.batching.maxlen = int(steps)
        notes.append(f"the model takes exactly {steps} timesteps: maxlen is set to {steps}")
    stack.weights = weights
    stack.weights_id = uuid.uuid4().hex
    _fit_embeddings(stack, weights, read, notes)
    return stack, weights, notes


def _any_length(stack: StackSpec) -> bool:
    """Whether Keras builds the stack at any number of timesteps: a Keras layer card may need them fixed (a Dense
    after Permute reads the time axis as features), as it did in the model."""
    if not any(layer.type == "keras" for layer in stack.layers):
        return True
    from .build import build
    try:
        build(stack)
    except StackError:
        return False
    return True


def _flattened(model) -> tuple[object, list[str]]:
    """The model with each model inside it (an encoder Sequential called as a layer) replaced by that model's
    layers, so that every layer is a card, and a note for each. The layers are the model's own (their weights
    too), but for a copy, named "<inner model>_<layer>", of an inner layer named like another layer."""
    import keras
    if not getattr(model, "inputs", None) or not any(isinstance(layer, keras.Model) for layer in model.layers):
        return model, []
    notes: list[str] = []
    names = [layer.name for layer in _operations(model) if not isinstance(layer, keras.Model)]
    copies: list[tuple[object, object]] = []
    inner: dict[int, object] = {}   # id(inner layer) → its copy under another name
    seen: set[int] = set()          # the inner models met (one called twice shares its layers, as in Keras)

    def unnested(operation):
        if not isinstance(operation, keras.Model):
            return inner.get(id(operation), operation)
        graph = getattr(operation, "_functional", None) or operation
        if id(operation) not in seen:
            seen.add(id(operation))
            notes.append(f"{operation.name} is a model inside the model: its layers are shown one by one")
            for layer in _operations(graph):
                if isinstance(layer, (keras.layers.InputLayer, keras.Model)):
                    continue
                if layer.name in names:   # Keras wants one name per layer in a model
                    copy = type(layer).from_config({**layer.get_config(), "name": f"{operation.name}_{layer.name}"})
                    copies.append((copy, layer))
                    inner[id(layer)] = copy
                names.append(inner[id(layer)].name if id(layer) in inner else layer.name)
        return lambda tensors, *_, **__: graph._run_through_graph(tensors, operation_fn=unnested)

    inputs = [keras.Input(batch_shape=tensor.shape, dtype=tensor.dtype, name=tensor._keras_history.operation.name)
              for tensor in model.inputs]
    graph = getattr(model, "_functional", None) or model
    outputs = graph._run_through_graph(inputs, operation_fn=unnested)
    flat = keras.Model(inputs if len(inputs) > 1 else inputs[0], outputs, name=model.name)
    for copy, layer in copies:
        copy.set_weights(layer.get_weights())
    return flat, notes


def _fit_embeddings(stack: StackSpec, weights: dict[str, list[np.ndarray]], read: dict[str, object],
                    notes: list[str]) -> None:
    """Each Embedding as wide as Keras's: a words input takes the rows of the Embedding that reads it (a Keras
    Embedding may have more than its lookup layer has words: max_tokens above the words adapted, rows no id
    reaches); an Embedding whose rows are not its input's vocab_size (one after an IntegerLookup) is a Keras layer
    card."""
    for index, layer in enumerate(stack.layers):
        if layer.type != "embedding" or not weights.get(layer.name):
            continue
        rows = int(weights[layer.name][0].shape[0])
        taken = {*(layer.inputs or [INPUT_REF]), *sum(layer.calls or [], [])}
        for item in stack.all_inputs():
            if item.kind == "words" and (item.name in taken or item is stack.input and INPUT_REF in taken):
                item.vocab_size = max(item.vocab_size, rows)
        if stack.input_for(layer).vocab_size != rows:
            notes.append(f"{layer.name} has {rows} rows, not the {stack.input_for(layer).vocab_size} ids of its "
                         "input; Keras computes it as it is (a Keras layer card)")
            stack.layers[index] = dataclasses.replace(layer, type="keras", params=TYPES["keras"].read(read[layer.name]))


def _input_spec(tensor, takers: list, notes: list[str]) -> InputSpec:
    """A model input as the explorer's input: token ids when an Embedding takes it (or integers any other layer
    reads: an IntegerLookup, keras.ops.one_hot), else feature vectors."""
    embedding = next((layer for layer in takers if type(layer).__name__ == "Embedding"), None)
    if embedding is not None:
        return InputSpec("tokens", embedding.input_dim, None)
    shape, dtype = tuple(tensor.shape), str(tensor.dtype)
    name = tensor._keras_history.operation.name
    if "int" in dtype and len(shape) == 2 and takers:
        notes.append(f"the model's input {name} takes integers that {', '.join(layer.name for layer in takers)} "
                     f"reads (not an Embedding): any id from 0 to {MAX_VOCAB - 1} is accepted")
        return InputSpec("tokens", MAX_VOCAB, None)
    if "int" in dtype or not 2 <= len(shape) <= 6 or None in shape[2:] or shape[-1] is None:
        raise StackError(f"the model's input {tensor._keras_history.operation.name} {shape} ({dtype}) is neither "
                         "token ids with an Embedding first, nor (batch, T, features …) vectors, nor one (batch, "
                         "features) vector per example")
    if len(shape) == 2:
        return InputSpec("vector", None, int(shape[-1]))
    step = tuple(int(size) for size in shape[2:])   # an image (batch, width, height, channels): a column a step
    return InputSpec("features", None, math.prod(step), step_shape=step if len(step) > 1 else None)


def _several_inputs(model, chain, sources, names: list[str], layers: list[LayerSpec], weights, notes: list[str],
                    texts: dict[str, tuple[InputSpec, int | None]]) -> StackSpec:
    """The stack of a model that takes several inputs (an encoder-decoder): one named input each, in Keras's order;
    a layer that takes an input names it. `texts`: the words input of each raw text input, by Keras's name."""
    inputs = []
    for tensor, name in zip(model.inputs, names):
        own = tensor._keras_history.operation.name
        if own in texts:   # one lookup layer may read several inputs: each input its own copy
            item = dataclasses.replace(texts[own][0], length=texts[own][1])
        else:
            item = _input_spec(tensor, [layer for layer, _ in chain if (own, 0, 0) in sources.get(id(layer), [])],
                               notes)
            if item.has_steps and tensor.shape[1] is not None:
                item.length = int(tensor.shape[1])
        item.name = name
        inputs.append(item)
    first = next((item for item in inputs if item.has_steps), None)
    if not inputs[0].has_steps and first is not None:   # the explorer shows its first input's steps: a sequence
        inputs.remove(first)
        inputs.insert(0, first)
        notes.append(f"the explorer takes the sequence input {first.name} first (the model lists "
                     f"{', '.join(names)}); its inputs keep their names")
    lengths = {item.length for item in inputs if item.has_steps}
    if len(lengths) > 1:
        raise StackError("the model's inputs take different fixed numbers of timesteps ("
                         + ", ".join(f"{item.name} {item.length or 'any'}" for item in inputs if item.has_steps)
                         + "); the explorer pads every input to one maxlen")
    stack = StackSpec(inputs[0], Batching(maxlen=inputs[0].length), layers, more_inputs=inputs[1:])
    if inputs[0].length is not None:
        notes.append(f"the model takes exactly {inputs[0].length} timesteps: maxlen is set to {inputs[0].length}")
    stack.weights, stack.weights_id = weights, uuid.uuid4().hex
    return stack


def _text_inputs(model, chain, sources, states, calls) -> tuple[list, dict[str, tuple[InputSpec, int | None]]]:
    """A model of several inputs that takes raw text: the TextVectorization (or StringLookup) layers that read its
    text inputs leave the chain, the layers after them take the input instead (as the words input does what the
    lookup does), and each text input's words input by Keras's name. Refuses a text input read otherwise."""
    strings = {tensor._keras_history.operation.name for tensor in model.inputs if "string" in str(tensor.dtype)}
    if not strings:
        return chain, {}
    found, replaced, dropped = {}, {}, set()
    for layer, _ in chain:
        given = [sources.get(id(layer), []), *calls.get(id(layer), [])] if layer is not None else []
        reads = [call for call in given if any(owner in strings for owner, _, _ in call)]
        if not reads:
            continue
        text = _text_input(layer) if len(reads) == len(given) and all(len(call) == 1 for call in given) else None
        if text is None:
            raise StackError(f"the model's input {reads[0][0][0]} takes raw text, which {layer.name} "
                             f"({type(layer).__name__}) reads; the explorer reads raw text through a TextVectorization "
                             "or StringLookup layer that takes only that input")
        for k, (tensor,) in enumerate(given):
            replaced[(layer.name, k, 0)] = (tensor[0], 0, 0)
            found[tensor[0]] = text
        dropped.add(id(layer))
    unread = sorted(strings - set(found))
    if unread:
        raise StackError(f"the model's input {unread[0]} takes raw text that no TextVectorization or StringLookup "
                         "layer reads")
    for table in (sources, states):
        table.update((key, [replaced.get(tensor, tensor) for tensor in tensors]) for key, tensors in table.items())
    calls.update((key, [[replaced.get(tensor, tensor) for tensor in call] for call in each])
                 for key, each in calls.items())
    return [(layer, taken) for layer, taken in chain if id(layer) not in dropped], found


def _text_input(layer) -> tuple[InputSpec, int | None] | None:
    """A first TextVectorization or StringLookup layer as words input: (its vocabulary and standardisation, its
    output_sequence_length); None for any other layer. Refuses settings the words input cannot reproduce."""
    kind = type(layer).__name__
    if kind not in ("TextVectorization", "StringLookup"):
        return None
    config = layer.get_config()
    vocabulary = [str(word) for word in layer.get_vocabulary()]
    problems = []
    mode = config.get("output_mode", "int")
    if mode not in OUTPUT_MODES:
        problems.append(f"output_mode {mode!r} (the explorer reads {', '.join(OUTPUT_MODES)})")
    if kind == "TextVectorization":
        if config.get("split") not in SPLITS:
            problems.append(f"split {config.get('split')!r} (the explorer splits at whitespace or into characters)")
        try:
            ngrams = None if config.get("ngrams") is None else ngram_widths(config["ngrams"])
        except ValueError as exc:
            problems.append(f"ngrams {config['ngrams']!r} ({exc})")
        if config.get("standardize") not in (None, *STANDARDIZE):
            problems.append(f"standardize {config.get('standardize')!r}")
    if len(vocabulary) < 2:
        problems.append("an empty vocabulary")
    if problems:
        raise StackError(f"{layer.name} ({kind}) has {', '.join(problems)}, which the explorer's words input "
                         "cannot reproduce")
    width, bag = len(vocabulary), {}
    if mode != "int":   # one vector per text: as wide as the vocabulary, or max_tokens when padded to it
        if config.get("pad_to_max_tokens") and config.get("max_tokens"):
            width = config["max_tokens"]
        idf = getattr(layer, "_lookup_layer", layer).idf_weights_const if mode == "tf_idf" else None
        bag = {"output_mode": mode, "idf_weights": None if idf is None else
               tuple(float(v) for v in backend.to_numpy(idf)[:len(vocabulary)])}
    # TextVectorization's mask token is "" (a bag drops it); a StringLookup's its own
    mask = config["mask_token"] if kind == "StringLookup" else PADDING_WORD
    item = InputSpec("words", width, None, None, None, vocabulary, **bag, mask_token=mask)
    if kind == "StringLookup":
        return item, None
    return (dataclasses.replace(item, standardize=config.get("standardize"), split=config["split"], ngrams=ngrams),
            config.get("output_sequence_length"))


def _stateful(layer) -> bool:
    return bool(getattr(layer, "stateful", False) or getattr(getattr(layer, "forward_layer", None), "stateful", False))


def _usable_name(name: str, taken: list[str], notes: list[str]) -> str:
    """The layer's own name when a stack can hold it; else the closest one it can, with a note."""
    try:
        return _layer_name(name)
    except ValueError:
        pass
    usable = re.sub(r"[^A-Za-z0-9_.>-]", "_", name)[:100] or "layer"
    while usable in taken:
        usable += "_"
    notes.append(f"{usable}: the layer {name!r} is called {usable} here (its weights stay with it)")
    return usable


def _chain(model) -> list[tuple[object, int]]:
    """The model's layers from its input to its output, each with the index of the output it takes from the
    layer before (0: the output; 1…: a return_state state). Refuses what is not one chain."""
    import keras

    def names(tensors) -> str:
        histories = [t._keras_history for t in tensors]
        operations = [history.operation for history in histories]
        return ", ".join(history.operation.name if operations.count(history.operation) == 1
                         else f"{history.operation.name} output {history.tensor_index}" for history in histories)

    if not model.built or not getattr(model, "inputs", None):
        raise StackError("the model was saved before it was built, so it holds no weights yet: give it an Input, "
                         "or call it on data, before saving")
    if len(model.inputs) != 1:
        raise StackError(f"this model has {len(model.inputs)} inputs ({names(model.inputs)}); the explorer shows "
                         "one chain of layers from one input")
    if len(model.outputs) != 1:
        raise StackError(f"this model has {len(model.outputs)} outputs ({names(model.outputs)}); the explorer "
                         "shows one chain of layers with one output")
    chain = []
    tensor = model.outputs[0]
    while True:
        operation, node_index, tensor_index = tensor._keras_history
        if isinstance(operation, keras.layers.InputLayer):
            break
        node = operation._inbound_nodes[node_index]
        # the tensors it is called on, and any other tensor argument (initial_state …); masks travel by themselves
        inputs = [t for t in keras.tree.flatten(node.arguments.args) if isinstance(t, keras.KerasTensor)]
        inputs += [t for key, value in node.arguments.kwargs.items() if key != "mask"
                   for t in keras.tree.flatten(value) if isinstance(t, keras.KerasTensor)]
        if len(inputs) != 1:
            raise StackError(f"{operation.name} ({type(operation).__name__}) joins {len(inputs)} branches "
                             f"({names(inputs)}); the explorer shows one chain of layers")
        if _explicit_mask(node) is not None:
            raise StackError(f"{operation.name} ({type(operation).__name__}) takes a mask the model computes")
        if len(_calls(model, operation)) > 1:
            raise StackError(f"{operation.name} ({type(operation).__name__}) is called "
                             f"{len(_calls(model, operation))} times (a shared layer)")
        chain.append((operation, tensor_index))
        tensor = inputs[0]
    chain.reverse()
    # the index of the output each layer takes from the one before; the model's output takes the last index
    takes = [0] + [index for _, index in chain]
    return [(layer, takes[i]) for i, (layer, _) in enumerate(chain)] + [(None, takes[-1])]


Tensor = tuple[str, int, int]   # a Keras tensor as (layer, call, output index)


def _graph(model) -> tuple[list[tuple[object, int]], dict[int, list[Tensor]], dict[int, list[Tensor]],
                           dict[int, list[list[Tensor]]], dict[int, Tensor], dict[int, list[list[Tensor] | None]],
                           dict[int, list[Tensor | None]]]:
    """The layers of a model that branches, merges or has several inputs or outputs, in Keras's topological order
    (as _chain gives them), the tensors each takes, the initial states a recurrent layer takes, the tensors
    of each further call of a shared layer, the mask a layer is given by the model itself, and the initial states
    of each further call (a decoding loop) and the mask the model gives it."""
    import keras

    def taken(tensors) -> list[Tensor]:
        found = []
        for tensor in (t for t in keras.tree.flatten(tensors) if isinstance(t, keras.KerasTensor)):
            operation, node, index = tensor._keras_history
            given = isinstance(operation, keras.layers.InputLayer)
            found.append((INPUT_REF if given and len(model.inputs) == 1 else operation.name,
                          0 if given else _calls(model, operation).index(node), index))
        return found

    def mask_taken(mask) -> Tensor | list[Tensor | None] | None:
        return mask if mask is None else taken([mask])[0] if isinstance(mask, keras.KerasTensor) else \
            [None if each is None else taken([each])[0] for each in mask]

    order, sources, states, calls, masks, started, call_masks = [], {}, {}, {}, {}, {}, {}
    for layer in _computing(model):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        for call, node in enumerate(layer._inbound_nodes[at] for at in _calls(model, layer)):
            given = [t for t in keras.tree.flatten(node.arguments.kwargs.get("initial_state"))
                     if isinstance(t, keras.KerasTensor)]
            if given and not call:   # an encoder's states, or the model's vector inputs
                states[id(layer)] = taken(given)
            if call:   # a shared layer: the same weights called again (started from states: a decoding loop)
                calls.setdefault(id(layer), []).append(taken(node.arguments.args))
                started.setdefault(id(layer), []).append(taken(given) if given else None)
                computed = _explicit_mask(node)   # a mask the model computes for this call
                call_masks.setdefault(id(layer), []).append(mask_taken(computed))
            else:
                sources[id(layer)] = taken(_call_form(model, layer)[0])
                if _explicit_mask(node) is not None:
                    masks[id(layer)] = mask_taken(_explicit_mask(node))
        order.append((layer, 0))
    started = {key: each for key, each in started.items() if any(each)}
    call_masks = {key: each for key, each in call_masks.items() if any(each)}
    return order + [(None, 0)], sources, states, calls, masks, started, call_masks


def _call_form(model, layer) -> tuple[list, list[str] | None, dict]:
    """How the model calls the layer (its first call): the tensors it takes, in order; the call's parameter that
    takes each when they are not one tensor or one list (`mha(q, v)`, `mha(query=q, value=v)`: ["query",
    "value"]; "*" for each tensor a call(*operands) takes in turn); the further keyword arguments that are not tensors (`use_causal_mask=True`). Masks, initial states
    and `training` are not among them."""
    import inspect

    import keras
    node = layer._inbound_nodes[_calls(model, layer)[0]]
    args, kwargs = list(node.arguments.args), dict(node.arguments.kwargs)
    first = next(iter(inspect.signature(layer.call).parameters), None)
    if not args and isinstance(kwargs.get(first), (list, tuple)):   # `Concatenate()(inputs=[a, b])`: as [a, b]
        args = [kwargs.pop(first)]
    parameters = inspect.signature(layer.call).parameters.values()
    spread: list = []   # the tensors a call(*operands) takes one after the other (ops.einsum)
    if len(args) > 1 and any(parameter.kind == parameter.VAR_POSITIONAL for parameter in parameters):
        spread, args = args, []
        if not all(isinstance(value, keras.KerasTensor) for value in spread):
            raise StackError(f"{layer.name} ({type(layer).__name__}) is called with values among its tensors; a "
                             "card's call takes its values by keyword")
        keywords = dict(kwargs)
    elif len(args) > 1 or any(isinstance(item, keras.KerasTensor) for key, value in kwargs.items()
                              if key not in ("mask", "initial_state") for item in keras.tree.flatten(value)) or (
            args and not all(isinstance(item, keras.KerasTensor) for item in keras.tree.flatten(args))
            or any(isinstance(value, dict) for value in args)
            or any(isinstance(item, (list, tuple, dict)) for value in args if isinstance(value, (list, tuple))
                   for item in value)):   # one list mixing tensors with values, nesting them, a dict: by its name
        keywords = {**dict(zip((parameter.name for parameter in parameters), args)), **kwargs}   # each by its name
        args = []
    else:
        keywords = dict(kwargs)
    keywords = {key: value for key, value in keywords.items() if key not in ("mask", "training", "initial_state")}
    tensors, options, placed = {}, {}, set()   # placed: lists the tensors are placed in
    for key, value in keywords.items():
        if isinstance(value, keras.KerasTensor):
            tensors[key] = value
        elif isinstance(value, (list, tuple)) and value and all(isinstance(item, keras.KerasTensor) for item in value):
            tensors.update((f"{key}[{index}]", item) for index, item in enumerate(value))   # spec.argument_parameter
        elif any(isinstance(item, keras.KerasTensor) for item in keras.tree.flatten(value)):
            places = _tensor_places(value)   # each tensor at its place in the list, the values around it kept
            if places is None:
                raise StackError(f"{layer.name} ({type(layer).__name__}) takes {key} that holds tensors more than "
                                 "4 lists deep, among more than 100 items, or under a dict key that is no name; a "
                                 "card places tensors in lists, tuples and dicts")
            tensors.update((key + "".join(f"[{index}]" for index in place), item) for place, item in places)
            options[key] = keras.tree.map_structure(
                lambda item: None if isinstance(item, keras.KerasTensor) else item, value)
            placed.add(key)
        else:
            options[key] = value
    for key, value in options.items():
        try:
            options[key] = option_json(value, arrays=key in placed)
        except ValueError as error:
            raise StackError(f"{layer.name} ({type(layer).__name__}) is called with {key} that {error}") from None
    if args:
        return keras.tree.flatten(args), None, options
    return [*spread, *tensors.values()], ["*"] * len(spread) + list(tensors) or None, options


def _tensor_places(value, here: tuple = ()) -> list | None:
    """Each tensor in lists and dicts of tensors and values, with its place ((1, 0): item 1's item 0; ("gate",):
    the dict's "gate"); None when one is deeper or further than an `arguments` entry names
    (spec.argument_parameter), or under a dict key that is no name."""
    import keras
    if isinstance(value, keras.KerasTensor):
        return [(here, value)]
    if not any(isinstance(item, keras.KerasTensor) for item in keras.tree.flatten(value)):
        return []
    if not isinstance(value, (list, tuple, dict)) or len(here) == 4 or len(value) > 100:
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value)
    if isinstance(value, dict) and not all(isinstance(key, str) and re.fullmatch(r"[A-Za-z_]\w{0,63}", key)
                                           for key in value):
        return None
    places = [_tensor_places(item, (*here, key)) for key, item in items]
    return None if None in places else [place for each in places for place in each]


def _explicit_mask(node):
    """The mask a model computes and passes to a call itself (`lstm(x, mask=ops.not_equal(ids, 0))`); None for the
    mask Keras passes on from the layer before (which it records in the call too)."""
    import keras
    mask = node.arguments.kwargs.get("mask")
    given = [t for t in keras.tree.flatten(node.arguments.args) if isinstance(t, keras.KerasTensor)]
    if isinstance(mask, (list, tuple)):   # one per tensor (`Attention()([q, v], mask=[None, m])`)
        passed_on = [getattr(t, "_keras_mask", None) for t in given]
        if not any(isinstance(each, keras.KerasTensor) for each in mask) or (
                len(mask) == len(given) and all(each is other for each, other in zip(mask, passed_on))):
            return None
        return list(mask)
    if not isinstance(mask, keras.KerasTensor):
        return None
    return None if any(getattr(t, "_keras_mask", None) is not None for t in given) else mask


def _operations(model) -> list:
    """The model's layers and keras.ops operations (`keras.ops.mean(x, axis=1)`), in Keras's order."""
    return (getattr(model, "_functional", None) or model).operations


def _computing(model) -> list:
    """_operations that compute the model's outputs: not those that only compute a mask (Keras records an
    Embedding's not_equal as an operation when a layer takes its mask)."""
    import keras
    used, seen, waiting = set(), set(), list(model.outputs)
    while waiting:
        operation, node_index, _ = waiting.pop()._keras_history
        if (id(operation), node_index) in seen:
            continue
        seen.add((id(operation), node_index))
        used.add(id(operation))
        node = operation._inbound_nodes[node_index]
        arguments = [node.arguments.args, *(value for key, value in node.arguments.kwargs.items() if key != "mask"),
                     _explicit_mask(node)]
        waiting += [t for t in keras.tree.flatten(arguments) if isinstance(t, keras.KerasTensor)]
    return [operation for operation in _operations(model) if id(operation) in used]


def _model_outputs(model, stack: StackSpec, renamed: dict[str, str], by_name: dict[str, LayerSpec]) -> None:
    """Sets the stack's `model_outputs` when the model's outputs are not simply the layers nobody takes (a state,
    a backward output, a shared layer's call, or another order)."""
    outputs = []
    for tensor in model.outputs:
        operation, node, index = tensor._keras_history
        outputs.append(_tensor_name((operation.name, _calls(model, operation).index(node), index), renamed, by_name))
    if outputs != stack.untaken():
        stack.model_outputs = outputs


def _calls(model, layer) -> list[int]:
    """The indices of the layer's calls (Keras's inbound nodes) in the model's own graph, in call order; a
    layer may also have been called outside it (a TextVectorization tried on a sentence)."""
    from keras.src.ops.function import make_node_key
    nodes = getattr(getattr(model, "_functional", None) or model, "_nodes", None)
    return [at for at in range(len(layer._inbound_nodes)) if nodes is None or make_node_key(layer, at) in nodes]


def _tensor_name(tensor: Tensor, renamed: dict[str, str], by_name: dict[str, LayerSpec]) -> str:
    """A Keras tensor as a stack names it: "encoder" (a layer's output), "encoder/state/h", "bi/backward"
    (registry.more_outputs), "shared/call/1", "shared/call/1/state/h" (a shared layer's further call,
    spec.call_outputs); the model's inputs keep their names."""
    owner, call, index = tensor
    name = renamed.get(owner, owner)
    if name not in by_name:   # the model's input
        return name
    given = call_outputs(by_name[name], name, call)
    if index >= len(given):
        raise StackError(f"takes output {index} of {owner}, which the explorer does not show")
    return given[index]


def _mask_name(mask, renamed: dict[str, str], by_name: dict[str, LayerSpec]):
    """A mask the model computes as a stack names it: a tensor's name, or a list of them with None (spec.Mask)."""
    if isinstance(mask, tuple):
        return _tensor_name(mask, renamed, by_name)
    return [None if tensor is None else _tensor_name(tensor, renamed, by_name) for tensor in mask]


def _feed(previous: LayerSpec, taken: int) -> bool:
    """Sets `previous` to pass on output `taken` (a return_state state); False when it cannot."""
    if not previous.is_recurrent:
        return False
    more = more_outputs(previous)
    if taken > len(more) or not more[taken - 1].startswith("state/"):
        return False
    previous.params["feeds"] = more[taken - 1].removeprefix("state/")
    return True


def _layer_spec(layer, kind: str) -> LayerSpec | None:
    """The layer as its registry type reads it; None for a Keras layer card (or a keras.ops operation's)."""
    import keras
    if not isinstance(layer, keras.layers.Layer):
        return None
    if kind == "Bidirectional":
        kind = type(layer.forward_layer).__name__
        if kind not in _TYPE_OF or not TYPES[_TYPE_OF[kind]].recurrent:
            return None
    if kind not in _TYPE_OF:
        return None
    params = TYPES[_TYPE_OF[kind]].read(layer)
    return None if params is None else LayerSpec(_TYPE_OF[kind], params, layer.name)


def export_model(built, path: str | Path) -> None:
    """Saves the stack, with its current weights, as a `.keras` file (atomically, see output_file)."""
    path = Path(path)
    if path.suffix != ".keras":
        raise SpecError("", f"a Keras model file must end in .keras, got {path.name}")
    output_file.write_file(path, built.model.save)
