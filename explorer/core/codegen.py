"""Stack document → a self-contained, readable Keras script that builds the same stack."""

from __future__ import annotations

import inspect
import textwrap

from . import backend
from . import sequences as seqs
from .errors import StackError
from .expression import check_source, expression_problem
from .registry import (TYPES, AsWritten, custom_class_name, more_outputs, option_code, option_json, option_value,
                       python_name)
from .spec import INPUT_REF, StackSpec, argument_places, call_arguments, call_outputs

def _layer_source(class_name: str) -> str:
    backend.load()
    from . import layers
    source = inspect.getsource(getattr(layers, class_name))
    return "\n".join(line for line in source.splitlines() if not line.startswith("@keras.saving"))


SAVED_CUSTOM = "SavedCustomExpression"    # the script's loader of a saved model's custom expression layers


def _input_data(spec: StackSpec) -> dict[str, list]:
    """Each input's sequences as lists, by input name; none when a text does not parse."""
    try:
        return {name: [(item if item_spec.has_steps else item[0]).tolist()   # a vector input: the vectors
                       for item in seqs.parse(text or "", item_spec).items]
                for (name, text), item_spec in zip(spec.texts().items(), spec.all_inputs())}
    except Exception:  # the script still builds the stack; it just has no sample batch
        return {}


def _several_inputs(spec: StackSpec) -> list[str]:
    """The script's lines that pad each input's sequences alike and make its keras.Input, named by the input."""
    b = spec.batching
    lines, inputs = [], []
    for item in spec.all_inputs():
        shape, dtype = item.shape(item.length)
        inputs.append(f"keras.Input(shape={shape!r}, dtype={dtype!r}, name={item.name!r})")
        if not item.has_steps:   # one vector per example: nothing to pad
            lines.append(f"        ops.convert_to_numpy(ops.convert_to_tensor(SEQUENCES[{item.name!r}], dtype={dtype!r})),")
            continue
        lines.append(f"        keras.utils.pad_sequences(SEQUENCES[{item.name!r}], maxlen={item.length or b.maxlen!r}, "
                     f"dtype={dtype!r}, padding={b.padding!r}, truncating={b.truncating!r}, value={b.pad_value!r}),")
    return ["    batch = [  # one padded batch per input: line i of each is one example", *lines, "    ]", "",
            "inputs = [", *(f"    {item}," for item in inputs), "]", "x = inputs[0]"]


def _lookup(item, vocabulary: list[str]) -> list[str]:
    """The script's StringLookup that gives each word its id, or makes a bag of words of each text, as the words
    input does."""
    from .vocabulary import lookup_options, mask_token
    options = lookup_options(vocabulary, mask_token(item))
    given = len(vocabulary) - len(options["vocabulary"])
    extra = ""
    if not item.uses_ids:
        extra = f", output_mode={item.output_mode!r}"
        if item.vocab_size > len(vocabulary):
            extra += f", pad_to_max_tokens=True, max_tokens={item.vocab_size}"
        if item.idf_weights:
            extra += f", idf_weights={list(item.idf_weights[given:])!r}"
    what = "the mask token, then the unknown ids" if given > options["num_oov_indices"] else "the unknown ids first"
    return [f"VOCABULARY = {vocabulary!r}  # the word of each id: {what}",
            f"lookup = keras.layers.StringLookup(vocabulary=VOCABULARY[{given}:], "
            f"mask_token={options['mask_token']!r}, oov_token={options['oov_token']!r}, "
            f"num_oov_indices={options['num_oov_indices']}{extra})"]


def _holds_array(data) -> bool:
    """A call option as a stack file holds it has a NumPy constant ({"array": …}, registry.option_json)."""
    if isinstance(data, dict):
        return "array" in data or any(_holds_array(item) for item in data.get("tuple", []))
    return isinstance(data, list) and any(_holds_array(item) for item in data)


def own_objects(used: set[str]) -> str:
    """The explorer's own layer classes that a saved model names, mapped to the script's copies."""
    from .layers import PACKAGE
    pairs = [f"{f'{PACKAGE}>{kind.own_class}'!r}: {SAVED_CUSTOM if kind.key == 'custom' else kind.own_class}"
             for kind in TYPES.values() if kind.own_class and kind.key in used]
    return "{" + ", ".join(pairs) + "}"


def _saved_custom_source(classes: dict[str, str]) -> str:
    """A loader that builds each custom expression layer of the saved model as the script's class of that name."""
    return textwrap.dedent(f'''\
        class {SAVED_CUSTOM}:
            """The saved model's custom expression layers, built as this script's classes (by layer name)."""

            @classmethod
            def from_config(cls, config):
                classes = {{{", ".join(f"{name!r}: {class_name}" for name, class_name in classes.items())}}}
                return classes[config["name"]](name=config["name"])
        ''')


def export_code(spec: StackSpec, *, weights_from: str | None = None) -> str:
    """A script that pads the sequences as the explorer does, builds the stack and prints every layer's shapes;
    `weights_from`: the .keras file whose trained weights the script loads into the same layers."""
    names = spec.layer_names()
    used = {layer.type for layer in spec.layers}
    helpers = []
    if "masked_mean_pooling" in used:
        backend.load()
        from . import layers
        helpers.append(inspect.getsource(layers._float_mask))
    helpers += [_layer_source(kind.own_class) for kind in TYPES.values()
                if kind.own_class and kind.key != "custom" and kind.key in used]
    if "custom" in used:
        for layer, name in zip(spec.layers, names):
            problem = expression_problem(layer.params["expression"]) if layer.type == "custom" else None
            if problem:
                raise StackError(f"{name}: {problem}", layer=name)
        helpers.append(check_source())
    for layer, name in zip(spec.layers, names):
        if layer.type == "custom":
            class_name = custom_class_name(name)
            helpers.append(textwrap.dedent(f'''\
                class {class_name}(keras.layers.Layer):
                    """custom layer {name}: its expression, checked before it is compiled"""

                    CODE = compile(expression_tree({layer.params["expression"]!r}), "<expression>", "eval")

                    def __init__(self, **kwargs):
                        super().__init__(**kwargs)
                        self.supports_masking = True

                    def call(self, x, mask=None):
                        return eval(self.CODE, {{"__builtins__": {{}}}}, {{"ops": ops, "x": x, "mask": mask}})

                    def compute_mask(self, x, mask=None):
                        return None
                '''))
    custom = {name: custom_class_name(name) for layer, name in zip(spec.layers, names) if layer.type == "custom"}
    if weights_from and custom:
        helpers.append(_saved_custom_source(custom))
    text = spec.sequences or ""
    vocabulary = None
    try:
        parsed = seqs.parse(text, spec.input)
        data = [(item if spec.input.has_steps or spec.input.kind == "words" else item[0]).tolist()   # a vector
                for item in parsed.items]
        if spec.input.kind == "words":
            from .vocabulary import encode
            vocabulary = encode(parsed, spec.input)[1]
    except Exception:  # the script still builds the stack; it just has no sample batch
        data = []
    b = spec.batching
    fixed = spec.fixed_length()
    dtype = "int32" if spec.input.uses_ids else "float32"
    shape = str(spec.input.shape(fixed)[0])
    if spec.more_inputs:   # several inputs: a batch and a keras.Input each, named by the input
        data = _input_data(spec)
    lines = [
        repr(f"{spec.title or 'A stack from RNN Shape Explorer'}.\n\n"
             "Builds the same stack, pads the sequences the same way and prints every layer's shapes."),
        "",
        *(["import ast", "import math", ""] if "custom" in used else []),
        "import keras",
        *(["import numpy as np"] if any(_holds_array(value) for layer in spec.layers
                                        for value in (layer.options or {}).values()) else []),
        "from keras import ops",
        "",
    ]
    for helper in helpers:
        lines += ["", helper.rstrip(), "", ""]
    if vocabulary is None:
        lines.append(f"SEQUENCES = {data!r}")
    else:
        lines += [*_lookup(spec.input, vocabulary),
                  f"WORDS = {data!r}", "SEQUENCES = [ops.convert_to_numpy(lookup(words)).tolist() for words in WORDS]"]
    lines += [
        "",
        f"keras.utils.set_random_seed({spec.seed})",
        "if SEQUENCES:",
        *(_several_inputs(spec) if spec.more_inputs else [
            f"    batch = keras.utils.pad_sequences(SEQUENCES, maxlen={fixed or b.maxlen!r}, dtype={dtype!r}, "
            f"padding={b.padding!r}, truncating={b.truncating!r}, value={b.pad_value!r})" if spec.input.has_steps
            else f"    batch = ops.convert_to_numpy(ops.convert_to_tensor(SEQUENCES, dtype={dtype!r}))   # one vector "
                 "per example: nothing to pad",
            "",
            f"inputs = keras.Input(shape={shape}, dtype={dtype!r})",
            "x = inputs"]),
        "outputs = {}",
    ]
    input_names = [item.name for item in spec.more_inputs and spec.all_inputs()]

    def tensors(sources: list[str]) -> str:
        taken = ["inputs" if source == INPUT_REF and not input_names
                 else f"inputs[{input_names.index(source) if source in input_names else 0}]"
                 if source == INPUT_REF or source in input_names else f"outputs[{source!r}]"
                 for source in sources]
        return taken[0] if len(taken) == 1 else "[" + ", ".join(taken) + "]"

    def mask_code(mask) -> str:   # one tensor, or a list with None where a tensor has no mask
        return tensors([mask]) if isinstance(mask, str) else \
            "[" + ", ".join("None" if source is None else tensors([source]) for source in mask) + "]"

    calls_after = spec.calls_after()
    for layer, name in zip(spec.layers, names):
        call = TYPES[layer.type].code(layer, name, spec)
        variable = python_name(name)
        if layer.calls:   # a shared layer: made once, called on each call's tensors
            lines.append(f"{variable}_layer = {call}")
            call = f"{variable}_layer"
        if layer.inputs and not layer.arguments:   # a branch or a merge: the outputs of the layers it names
            lines.append(f"x = {tensors(layer.inputs)}")
        places = argument_places(layer.arguments)   # the lists its tensors fill
        keywords = "".join(f", {key}={option_code(value)}" for key, value in (layer.options or {}).items()
                           if key not in places)
        if layer.initial_state:   # an encoder's states start this layer
            keywords += f", initial_state=[{', '.join(tensors([source]) for source in layer.initial_state)}]"
        if layer.mask:            # a mask the model computes itself
            keywords += f", mask={mask_code(layer.mask)}"
        arguments = f"(x{keywords})"
        if layer.arguments:   # each tensor to its parameter of the call
            templates = {key: option_value(value) for key, value in (layer.options or {}).items() if key in places}
            spread, named = call_arguments(layer.arguments, [AsWritten(tensors([source])) for source in layer.inputs],
                                           templates)
            named = {key: option_code(option_json(value, arrays=True)) for key, value in named.items()}
            arguments = "(" + ", ".join([*spread, *(f"{key}={code}" for key, code in named.items())]) + f"{keywords})"
        more = more_outputs(layer)   # a merge_mode None's backward output, return_state's states
        if more:
            variables = [f"{variable}_{python_name(key.removeprefix('state/'))}" for key in more]
            lines.append(f"x, {', '.join(variables)} = {call}{arguments}")
            if layer.params.get("feeds", "output") != "output":
                lines.append(f"x = {variable}_{layer.params['feeds']}  # the next layer takes this state")
            lines.append(f"outputs[{name!r}] = x")
            lines += [f"outputs[{name + '/' + key!r}] = {more_variable}"
                      for key, more_variable in zip(more, variables)]
        else:
            if layer.type == "attention_pooling":
                lines.append(f"x, {variable}_weights = {call}(x)")
            else:
                lines.append(f"x = {call}{arguments}")
            if layer.type == "time_distributed_dense":
                lines[-1] += "  # on (batch, T, features) Dense acts per timestep, like TimeDistributed(Dense)"
            lines.append(f"outputs[{name!r}] = x")
        for j, k in calls_after.get(name, []):   # shared layers' further calls, once their tensors all exist
            given = ", ".join(f"outputs[{key!r}]" for key in call_outputs(spec.layers[j], names[j], k))
            started = spec.layers[j].call_state(k)   # a call started from states
            states = f", initial_state=[{', '.join(tensors([source]) for source in started)}]" if started else ""
            mask = spec.layers[j].call_mask(k)   # a mask the model computes for this call
            states += f", mask={mask_code(mask)}" if mask else ""
            lines.append(f"{given} = {python_name(names[j])}_layer({tensors(spec.layers[j].calls[k - 1])}{states})")
    lines += [
        (f"model = keras.Model(inputs, [{', '.join(f'outputs[{name!r}]' for name in spec.outputs())}])"
         if spec.is_graph() else "model = keras.Model(inputs, x)"),
        "probe = keras.Model(inputs, outputs)",
        *([f"trained = keras.saving.load_model({weights_from!r}, compile=False,  # the trained weights",
           f"                                   custom_objects={own_objects(used)})",
           "for layer in model.layers[1:]:" if not spec.more_inputs else
           "for layer in [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]:",
           "    layer.set_weights(trained.get_layer(layer.name).get_weights())"] if weights_from else []),
        "",
        "if SEQUENCES:",
        "    results = probe(batch)",
        "print(f\"{'layer':<28} {'symbolic shape':<20} batch shape\")",
        "for name, tensor in outputs.items():",
        "    symbolic = tuple(tensor.shape)",
        "    concrete = tuple(results[name].shape) if SEQUENCES else ''",
        "    print(f\"{name:<28} {str(symbolic):<20} {concrete}\")",
        "",
    ]
    return "\n".join(lines)
