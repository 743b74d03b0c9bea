"""Labels after `|` in the sequence text: parsed with the sequences, checked against the head, every problem at
its line and column; `run` ignores them; the built-in tasks label by their rules."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explorer.core import sequences as seqs
from explorer.core import tasks
from explorer.core.errors import SequenceError
from explorer.core.spec import InputSpec
from explorer.core.train import Objective, targets

TOKENS = InputSpec("tokens", 100)
FEATURES = InputSpec("features", None, 2)


def error_of(call) -> SequenceError:
    with pytest.raises(SequenceError) as caught:
        call()
    return caught.value


def test_class_ids_regression_values_and_labels_per_step():
    text = "# comment | not a label\n3 14 15 | 1\n\n4, 5 |0.5 -1e-3\n7 8 9 | 0 1 1  # trailing\n2\n"
    parsed = seqs.parse(text, TOKENS)
    assert [item.tolist() for item in parsed.items] == [[3, 14, 15], [4, 5], [7, 8, 9], [2]]
    assert parsed.lines == [2, 4, 5, 6]
    assert [None if labels is None else labels.values.tolist() for labels in parsed.labels] == \
        [[1.0], [0.5, -1e-3], [0.0, 1.0, 1.0], None]
    assert parsed.labels[2].columns == [9, 11, 13]


def test_features_and_words_take_labels_too():
    parsed = seqs.parse("0.1 0.2; 0.3 0.4 | 1\n", FEATURES)
    assert parsed.items[0].shape == (2, 2) and parsed.labels[0].values.tolist() == [1.0]
    words = seqs.parse("the cat sat | 0\n", InputSpec("words", 50))
    assert words.items[0].tolist() == ["the", "cat", "sat"] and words.labels[0].values.tolist() == [0.0]


def test_bad_label_text_at_line_and_column():
    cases = {
        "1 2\n3 4 | x\n": (2, 7, 'label "x" is not a number'),
        "1 2 |\n": (1, 5, 'nothing after "|"'),
        "1 2 | 1 | 0\n": (1, 9, 'a second "|"'),
        "  | 1\n": (1, 1, 'there is no sequence before "|"'),
        "5 | 1 nan\n": (1, 7, 'label "nan" is not a finite float32 number'),
        "5 | 1e39\n": (1, 5, 'label "1e39" is not a finite float32 number'),
    }
    for text, (line, column, start) in cases.items():
        error = error_of(lambda: seqs.parse(text, TOKENS))
        assert (error.line, error.column) == (line, column), text
        assert error.problem.startswith(start), error.problem


LABEL_WORD = st.one_of(st.integers(-5, 5).map(str), st.floats(allow_nan=False, width=32).map(repr),
                       st.text("abx.-+e|,;éπ ", min_size=1, max_size=4))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.tuples(st.lists(st.integers(0, 99), min_size=1, max_size=5),
                               st.lists(LABEL_WORD, max_size=4), st.sampled_from([" ", ", ", "  "])),
                     min_size=1, max_size=4))
def test_fuzzed_label_text_parses_or_names_the_bad_label(rows):
    """Reference: a label is good when Python's float() reads it and it is finite; the first bad one (or the
    empty label part) is where the error must point."""
    lines = [" ".join(map(str, ids)) + " |" + separator.join(words) for ids, words, separator in rows]
    text = "\n".join(lines) + "\n"
    expected = None
    for number, line in enumerate(lines, start=1):
        at = line.index("|")
        if "|" in line[at + 1:]:
            expected = (number, line.index("|", at + 1) + 1)
            break
        words = [(m.group(), m.start() + 1) for m in re.finditer(r"[^\s,;]+", line[at + 1:])]
        bad = next(((number, at + 1 + column) for word, column in words if not _finite_float32(word)), None)
        if bad or not words:
            expected = bad or (number, at + 1)
            break
    if expected is None:
        parsed = seqs.parse(text, TOKENS)
        for (ids, words, separator), labels in zip(rows, parsed.labels):
            values = [float(w) for w in re.findall(r"[^\s,;]+", separator.join(words))]
            assert labels.values.tolist() == values
        return
    error = error_of(lambda: seqs.parse(text, TOKENS))
    assert (error.line, error.column) == expected
    assert str(error).startswith(f"line {expected[0]}, column {expected[1]}: ")


def _finite_float32(word: str) -> bool:
    try:
        value = float(word)
    except ValueError:
        return False
    return np.isfinite(value) and abs(value) <= np.finfo(np.float32).max


def test_labels_are_checked_against_the_head_at_their_column():
    softmax = Objective("class", False, 5, "dense_1")
    binary = Objective("binary", False, 1, "dense_1")
    regression = Objective("values", False, 2, "dense_1")
    per_step = Objective("class", True, 3, "td_1")
    cases = [
        (softmax, "1 2 | 4\n3 | 5\n", (2, 5, "label 5 is not a class id of dense_1: expected a whole number from 0 to 4")),
        (softmax, "1 2 | 1.5\n", (1, 7, "label 1.5 is not a class id")),
        (softmax, "1 2 | 1 2\n", (1, 9, "2 labels for dense_1: expected one class id from 0 to 4")),
        (softmax, "1 2 | 1\n3\n", (2, 1, "this line has no labels")),
        (binary, "1 | 1.5\n", (1, 5, "label 1.5 is outside 0 to 1")),
        (regression, "1 | 0.5\n", (1, 5, "1 label for dense_1: expected 2 numbers")),
        (per_step, "1 2 3 | 0 1\n", (1, 11, "2 labels for 3 steps: expected one class id from 0 to 2 per step")),
        (per_step, "1 2 | 0 1 2\n", (1, 11, "3 labels for 2 steps")),
    ]
    for objective, text, (line, column, start) in cases:
        parsed = seqs.parse(text, TOKENS)
        error = error_of(lambda: targets(parsed, objective))
        assert (error.line, error.column) == (line, column), text
        assert error.problem.startswith(start), error.problem
    good = targets(seqs.parse("1 2 | 0 1\n3 | 2\n", TOKENS), per_step)
    assert [t.tolist() for t in good] == [[0, 1], [2]] and good[0].dtype == np.int32


def test_run_ignores_the_labels(engine):
    from explorer.core.presets import load_preset
    spec = load_preset("average_pooling")
    plain = engine.run(spec, "5 12 7\n8 4\n")
    labelled = engine.run(spec, "5 12 7 | 1\n8 4 | 0.5 -2 3\n")
    for a, b in zip(plain.layers, labelled.layers):
        np.testing.assert_array_equal(a.output, b.output)


TOKEN_TASKS = {"contains_7": lambda ids: int(7 in ids), "first_token": lambda ids: ids[0] % 3,
               "count_mod_3": lambda ids: len(ids) % 3,
               "is_sorted": lambda ids: int(all(a <= b for a, b in zip(ids, ids[1:])))}


@pytest.mark.parametrize("name", sorted(TOKEN_TASKS))
def test_token_tasks_follow_their_rules_and_the_seed(name):
    text = tasks.generate(name, 200, TOKENS, seed=4, classes=3)
    assert text == tasks.generate(name, 200, TOKENS, seed=4, classes=3)
    assert text != tasks.generate(name, 200, TOKENS, seed=5, classes=3)
    rows = [line.split("|") for line in text.splitlines() if not line.startswith("#")]
    labels = [int(label) for _, label in rows]
    for (ids, _), label in zip(rows, labels):
        assert TOKEN_TASKS[name]([int(v) for v in ids.split()]) == label
    assert len(set(labels)) > 1 and len({len(ids.split()) for ids, _ in rows}) > 3


def test_seen_7_sum_sign_and_sentiment_follow_their_rules():
    for line in tasks.generate("seen_7", 50, TOKENS, seed=1).splitlines()[1:]:
        ids, labels = ([int(v) for v in part.split()] for part in line.split("|"))
        assert labels == [int(7 in ids[:i + 1]) for i in range(len(ids))]
    for line in tasks.generate("sum_sign", 50, FEATURES, seed=1).splitlines()[1:]:
        steps, label = line.split("|")
        assert int(label) == int(sum(float(step.split()[0]) for step in steps.split(";")) > 0)
    for line in tasks.generate("sentiment", 50, InputSpec("words", 100), seed=1).splitlines()[1:]:
        words, label = line.split("|")
        assert int(label) == int(any(w in tasks.POSITIVE for w in words.split()))
        assert any(w in tasks.POSITIVE + tasks.NEGATIVE for w in words.split())


def test_a_task_that_does_not_fit_the_input_is_refused():
    with pytest.raises(tasks.TaskError, match="needs features input"):
        tasks.generate("sum_sign", 5, TOKENS)
    with pytest.raises(tasks.TaskError, match="vocab_size must be at least 9"):
        tasks.generate("contains_7", 5, InputSpec("tokens", 5))
    with pytest.raises(tasks.TaskError, match='unknown task "nope"'):
        tasks.generate("nope", 5, TOKENS)
