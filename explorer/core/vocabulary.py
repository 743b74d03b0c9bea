"""Words → token ids with Keras's StringLookup: id 0 is the padding (the mask token), id 1 the unknown word; or, for
a bag of words, one vector per text over the vocabulary (StringLookup's multi_hot, count or tf_idf)."""

from __future__ import annotations

import numpy as np

from . import backend
from .errors import ExplorerError
from .sequences import Sequences
from .spec import PADDING_WORD, InputSpec

UNKNOWN = "[UNK]"
_VISIBLE = str.maketrans({" ": "␣", "\t": "⇥", "\n": "↵"})


def shown_word(word: str) -> str:
    """A token as the window shows it: its whitespace visible (a character-level model's space is "␣")."""
    return str(word).translate(_VISIBLE)


def mask_token(input_spec: InputSpec) -> str | None:
    """A words input's mask token: its model's, or for a vocabulary built from the text the padding "" (ids) or
    none (a bag of words)."""
    if input_spec.vocabulary is not None:
        return input_spec.mask_token
    return PADDING_WORD if input_spec.uses_ids else None


def unknown_ids(vocabulary: list[str], mask_token: str | None) -> range:
    """The ids of words outside `vocabulary`, as StringLookup lists them: after the mask token's id 0 when the
    vocabulary holds it, its unknown word's token repeated once per id (num_oov_indices: unknown words hashed
    among them)."""
    first = 1 if vocabulary and mask_token is not None and vocabulary[0] == mask_token else 0
    last = first + 1
    while last < len(vocabulary) and vocabulary[last] == vocabulary[first]:
        last += 1
    return range(first, last)


def lookup_options(vocabulary: list[str], mask_token: str | None) -> dict:
    """StringLookup's arguments that give `vocabulary` back, index for index (the words after the unknown ids)."""
    unknown = unknown_ids(vocabulary, mask_token)
    return {"vocabulary": vocabulary[unknown.stop:], "mask_token": mask_token,
            "oov_token": vocabulary[unknown.start], "num_oov_indices": len(unknown)}


def encode(words: Sequences, input_spec: InputSpec) -> tuple[Sequences, list[str]]:
    """The sequences as ids, with the vocabulary (index = id): the input's `vocabulary` when given (a model's own),
    else built from the text (most frequent words first, at most vocab_size ids in all). A bag of words: each text
    one (1, vocab_size) vector, as a vector input's."""
    backend.require_tensorflow("words input (StringLookup)")
    import keras
    vocab_size, vocabulary = input_spec.vocab_size, input_spec.vocabulary
    if input_spec.output_mode != "int":
        return _bags(words, input_spec)
    if vocabulary is not None:   # a model's own: id 0 the mask token or an unknown word, one or several unknown ids
        lookup = keras.layers.StringLookup(**lookup_options(vocabulary, mask_token(input_spec)))
    else:
        lookup = keras.layers.StringLookup(max_tokens=vocab_size, mask_token=PADDING_WORD, oov_token=UNKNOWN,
                                           num_oov_indices=1)
        lookup.adapt(np.concatenate(words.items).astype(str))
    vocabulary = [str(word) for word in lookup.get_vocabulary()]
    ids = [backend.to_numpy(lookup(item.astype(str))).astype(np.int32) for item in words.items]
    return Sequences(ids, words.lines, words.labels), vocabulary


def _bags(words: Sequences, input_spec: InputSpec) -> tuple[Sequences, list[str]]:
    import keras
    mode, width, vocabulary = input_spec.output_mode, input_spec.vocab_size, input_spec.vocabulary
    padded = {"pad_to_max_tokens": True, "max_tokens": width}
    if vocabulary is not None:
        options = lookup_options(vocabulary, mask_token(input_spec))   # the words' idf weights; Keras gives the unknown
        # ids their mean; the mask token is not in a bag's vocabulary, and its words are dropped
        idf = input_spec.idf_weights and input_spec.idf_weights[len(vocabulary) - len(options["vocabulary"]):]
        lookup = keras.layers.StringLookup(**options, output_mode=mode, idf_weights=idf,
                                           **(padded if width > len(vocabulary) else {}))
    elif mode == "tf_idf":
        raise ExplorerError("a tf_idf bag of words needs each word's idf weight: open the model whose "
                            "TextVectorization holds them, or choose multi_hot or count")
    else:
        lookup = keras.layers.StringLookup(mask_token=None, oov_token=UNKNOWN, num_oov_indices=1, output_mode=mode,
                                           **padded)
        lookup.adapt(np.concatenate(words.items).astype(str))
    bags = [backend.to_numpy(lookup(item.astype(str))).astype(np.float32).reshape(1, -1) for item in words.items]
    return Sequences(bags, words.lines, words.labels), [str(word) for word in lookup.get_vocabulary()]
