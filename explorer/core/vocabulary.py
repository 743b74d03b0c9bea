"""Words → token ids with Keras's StringLookup: id 0 is the padding, id 1 the unknown word."""

from __future__ import annotations

import numpy as np

from . import backend
from .sequences import Sequences

PADDING = ""
UNKNOWN = "[UNK]"
UNKNOWN_ID = 1   # the id of every word outside the vocabulary
_VISIBLE = str.maketrans({" ": "␣", "\t": "⇥", "\n": "↵"})


def shown_word(word: str) -> str:
    """A token as the window shows it: its whitespace visible (a character-level model's space is "␣")."""
    return str(word).translate(_VISIBLE)


def encode(words: Sequences, vocab_size: int, vocabulary: list[str] | None = None) -> tuple[Sequences, list[str]]:
    """The sequences as ids, with the vocabulary (index = id): `vocabulary` when given (a model's own), else
    built from the text (most frequent words first, at most vocab_size ids in all)."""
    backend.require_tensorflow("words input (StringLookup)")
    import keras
    if vocabulary is not None:
        lookup = keras.layers.StringLookup(vocabulary=vocabulary[2:], mask_token=vocabulary[0],
                                           oov_token=vocabulary[1], num_oov_indices=1)
    else:
        lookup = keras.layers.StringLookup(max_tokens=vocab_size, mask_token=PADDING, oov_token=UNKNOWN,
                                           num_oov_indices=1)
        lookup.adapt(np.concatenate(words.items).astype(str))
    vocabulary = [str(word) for word in lookup.get_vocabulary()]
    ids = [backend.to_numpy(lookup(item.astype(str))).astype(np.int32) for item in words.items]
    return Sequences(ids, words.lines, words.labels), vocabulary
