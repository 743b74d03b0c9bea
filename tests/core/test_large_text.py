"""A large text is checked in steps, one per turn of the host's loop (counted here: a list of queued calls),
and ends with the check a small text gets: the padded batch equal to Keras's pad_sequences; an edit during
the check drops it and checks the new text; meanwhile the state says "checking the sequences…"."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.core import sequences
from explorer.core.presets import load_preset
from explorer.session import CHECK_CHUNK_CHARS, CHECKING, NONE, STALE, Session

VOCAB = 1000      # the average_pooling preset's vocabulary


class Turns:
    """The host's loop: call_soon queues, `run_one` runs the next queued call (one turn)."""

    def __init__(self):
        self.queued: list = []
        self.count = 0

    def call_soon(self, function) -> None:
        self.queued.append(function)

    def run_one(self) -> None:
        self.count += 1
        self.queued.pop(0)()

    def run_all(self) -> None:
        while self.queued:
            self.run_one()


def large_rows(seed: int, count: int = 256) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [rng.integers(1, VOCAB, size=int(rng.integers(1, 1000))).tolist() for _ in range(count)]


def text_of(rows: list[list[int]]) -> str:
    return "# one sequence per line\n" + "\n".join(" ".join(map(str, row)) for row in rows) + "\n"


def loaded(text: str, turns: Turns) -> Session:
    """A session (of a small document) that then loads `text`, as a window opens a file."""
    spec = load_preset("average_pooling")
    s = Session(spec, trusted=True, source=None, call_soon=turns.call_soon)
    spec.sequences = text
    s.load(spec, trusted=True, source=None)
    return s


def test_a_large_text_is_checked_over_turns_and_ends_as_keras_pads_it():
    from keras.utils import pad_sequences
    rows = large_rows(0)
    text = text_of(rows)
    assert len(text) > 4 * CHECK_CHUNK_CHARS
    turns = Turns()
    s = loaded(text, turns)
    assert s.checking and s.text_check.batch is None and s.selected_line is None
    assert s.state.kind == STALE and s.state.reason == CHECKING and s.problem() == (CHECKING, None)
    checked = []
    s.events.checked.connect(lambda: checked.append(s.text_check))
    while turns.queued:
        assert s.checking and not checked
        turns.run_one()
    assert turns.count >= len(text) // CHECK_CHUNK_CHARS
    assert checked == [s.text_check] and s.text_check.ok
    np.testing.assert_array_equal(s.text_check.batch, pad_sequences(rows, padding="post"))
    np.testing.assert_array_equal(s.text_check.mask, pad_sequences([[1] * len(r) for r in rows], padding="post") == 1)
    assert s.text_check.lines == list(range(2, len(rows) + 2)) and s.selected_line == 2
    assert s.problem() is None and s.state.reason == "not run yet"


def test_each_turn_checks_about_one_chunk_of_lines(monkeypatch):
    """Counts the lines each turn parses: never more than a chunk's worth of characters (and one line)."""
    rows = large_rows(1)
    text = text_of(rows)
    parsed_per_turn = [0]
    parse_tokens = sequences._parse_tokens

    def counted(content, *args):
        parsed_per_turn[-1] += len(content) + 1
        return parse_tokens(content, *args)

    turns = Turns()
    s = Session(load_preset("average_pooling"), trusted=True, source=None, call_soon=turns.call_soon)
    monkeypatch.setattr(sequences, "_parse_tokens", counted)
    spec = load_preset("average_pooling")
    spec.sequences = text
    s.load(spec, trusted=True, source=None)
    longest_line = max(len(line) + 1 for line in text.splitlines())
    while turns.queued:
        parsed_per_turn.append(0)
        turns.run_one()
    assert sum(parsed_per_turn) == len(text) - len(text.splitlines()[0]) - 1
    assert max(parsed_per_turn) <= CHECK_CHUNK_CHARS + longest_line
    assert parsed_per_turn[0] == 0           # the load itself parses nothing


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 30), st.integers(2, 256), st.booleans())
def test_an_edit_during_the_check_drops_it_and_checks_the_new_text(after_turns, bad_line, small_edit):
    """The edit's check wins whatever the turn it comes at: its error (or its small text's batch) is what stays."""
    rows = large_rows(2)
    turns = Turns()
    s = loaded(text_of(rows), turns)
    for _ in range(min(after_turns, len(turns.queued))):
        turns.run_one()
    if small_edit:
        s.set_text("5 12 7\n8 4\n")
        assert not s.checking and s.text_check.batch.tolist() == [[5, 12, 7], [8, 4, 0]]
    else:
        lines = text_of(rows).splitlines()
        lines[bad_line] += " x"                        # line bad_line + 1 of the editor
        s.set_text("\n".join(lines) + "\n")
        assert s.checking and s.state.reason == CHECKING
    turns.run_all()
    assert not s.checking
    if small_edit:
        assert s.text_check.batch.tolist() == [[5, 12, 7], [8, 4, 0]] and s.state.reason != CHECKING
    else:
        assert [(e.line, e.problem) for e in s.text_check.errors] == [(bad_line + 1, s.text_check.errors[0].problem)]
        assert '"x"' in s.text_check.errors[0].problem and s.text_check.batch is None
        assert s.state.kind == STALE and '"x"' in s.state.reason


def test_without_call_soon_a_large_text_is_checked_at_once():
    spec = load_preset("average_pooling")
    spec.sequences = text_of(large_rows(3))
    s = Session(spec, trusted=True, source=None)
    s.load(spec, trusted=True, source=None)
    assert not s.checking and s.text_check.ok and s.state.kind == NONE


def test_the_document_a_session_is_made_with_is_checked_at_once():
    """Nothing shows it yet (a window is built around the session), so nothing waits on its check."""
    spec = load_preset("average_pooling")
    spec.sequences = text_of(large_rows(4))
    turns = Turns()
    s = Session(spec, trusted=True, source=None, call_soon=turns.call_soon)
    assert not s.checking and s.text_check.ok and s.state.kind == NONE and not turns.queued
