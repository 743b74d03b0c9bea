"""Every bad value of the text at once, and the padded batch laid out in NumPy alone (what the window's grid
shows at every keystroke) equal to Keras's own pad_sequences."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.core import sequences as seqs
from explorer.core.spec import Batching, InputSpec

VOCAB = 50
TOKENS = InputSpec("tokens", VOCAB)
FEATURES = InputSpec("features", None, 2)

good = st.integers(0, VOCAB - 1).map(str)
bad = st.sampled_from(["x", "1.5", "-3", str(VOCAB), "9" * 30, "a7", "--"])
lines = st.lists(st.lists(st.tuples(st.booleans(), good, bad), min_size=1, max_size=6), min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(lines)
def test_every_bad_token_is_reported_at_its_place(rows):
    text_lines, expected = [], []
    for number, row in enumerate(rows, start=1):
        words, column = [], 1
        for is_bad, ok_word, bad_word in row:
            word = bad_word if is_bad else ok_word
            if is_bad:
                expected.append((number, column, word))
            words.append(word)
            column += len(word) + 1
        text_lines.append(" ".join(words))
    parsed, errors = seqs.parse_all("\n".join(text_lines), TOKENS)
    assert [(e.line, e.column) for e in errors] == [(line, column) for line, column, _ in expected]
    for error, (_, _, word) in zip(errors, expected):
        assert word[:20] in error.problem
    assert (parsed is None) == bool(expected)
    if expected:                                    # parse() still raises the first one
        try:
            seqs.parse("\n".join(text_lines), TOKENS)
        except seqs.SequenceError as first:
            assert (first.line, first.column) == (errors[0].line, errors[0].column)


def test_feature_errors_of_several_lines_and_timesteps_come_together():
    text = "0.1 x; 0.3 0.4\n0.1 0.2; 0.3\nnan 1; 2 3\n"
    _, errors = seqs.parse_all(text, FEATURES)
    assert [(e.line, e.column) for e in errors] == [(1, 5), (2, 10), (3, 1)]
    assert "timestep 2 has 1 values" in errors[1].problem and "not a finite number" in errors[2].problem


batchings = st.builds(Batching, padding=st.sampled_from(["pre", "post"]), truncating=st.sampled_from(["pre", "post"]),
                      maxlen=st.one_of(st.none(), st.integers(1, 9)), pad_value=st.integers(0, VOCAB - 1))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(1, VOCAB - 1), min_size=1, max_size=12), min_size=1, max_size=6), batchings)
def test_the_numpy_preview_equals_keras_pad_sequences(rows, batching):
    from keras.utils import pad_sequences
    parsed = seqs.parse("\n".join(" ".join(map(str, row)) for row in rows), TOKENS)
    batch, mask = seqs.pad_preview(parsed, batching)
    kept = [len(row) if batching.maxlen is None else min(len(row), batching.maxlen) for row in rows]
    length = batching.maxlen or max(kept)
    expected = pad_sequences(rows, maxlen=batching.maxlen, padding=batching.padding, truncating=batching.truncating,
                             value=batching.pad_value)
    np.testing.assert_array_equal(batch, expected)
    marker = pad_sequences([[1] * n for n in kept], maxlen=length, padding=batching.padding, value=0)
    np.testing.assert_array_equal(mask, marker == 1)


def test_features_and_words_are_laid_out_the_same_way():
    from keras.utils import pad_sequences
    parsed = seqs.parse("1 2; 3 4; 5 6\n7 8\n", FEATURES)
    batch, mask = seqs.pad_preview(parsed, Batching(padding="pre", pad_value=-1.0))
    expected = pad_sequences([item for item in parsed.items], padding="pre", dtype="float32", value=-1.0)
    np.testing.assert_array_equal(batch, expected)
    words = seqs.parse("the cat sat\nthe dog\n", InputSpec("words", 100))
    batch, mask = seqs.pad_preview(words, Batching())
    assert batch.tolist() == [["the", "cat", "sat"], ["the", "dog", ""]]
    assert mask.tolist() == [[True, True, True], [True, True, False]]
