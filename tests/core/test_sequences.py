"""Sequence text (explorer/CONTRACT.md §2): values, comments, blank lines, commas, and `line L, column C` errors."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.core import sequences as seqs
from explorer.core.errors import SequenceError
from explorer.core.spec import InputSpec

TOKENS = InputSpec("tokens", 100)
FEATURES = InputSpec("features", None, 2)


def error(text: str, input_spec: InputSpec = TOKENS) -> tuple[int, int, str]:
    with pytest.raises(SequenceError) as caught:
        seqs.parse(text, input_spec)
    e = caught.value
    assert str(e) == f"line {e.line}, column {e.column}: {e.problem}"
    return e.line, e.column, e.problem


def test_tokens_spaces_commas_comments_blank_lines():
    text = "# a comment line\n3 14 15, 9\n\n   \n2,7 # trailing comment 99 x\n\t1\t2\r\n+5\n"
    parsed = seqs.parse(text, TOKENS)
    assert [item.tolist() for item in parsed.items] == [[3, 14, 15, 9], [2, 7], [1, 2], [5]]
    assert parsed.lines == [2, 5, 6, 7]
    assert all(item.dtype == np.int32 for item in parsed.items)
    np.testing.assert_array_equal(parsed.lengths, [4, 2, 2, 1])
    assert len(parsed) == 4


def test_windows_line_endings_keep_line_numbers():
    parsed = seqs.parse("1\r\n\r\n2\r\n", TOKENS)
    assert parsed.lines == [1, 3]


def test_only_newlines_count_as_line_breaks():
    """Form feeds, vertical tabs and Unicode separators are whitespace inside a line, as in an editor."""
    parsed = seqs.parse("1\x0c2\x0b3\u2028 4\x85\n5\n", TOKENS)
    assert [item.tolist() for item in parsed.items] == [[1, 2, 3, 4], [5]]
    assert parsed.lines == [1, 2]
    assert error("1\x0c2\n3 x\n") == (2, 3, '"x" is not a token id: expected a whole number from 0 to 99')


def test_features_semicolons_spaces_commas():
    text = "0.1 0.2; 0.3,0.4 ;0.5, 0.6\n# skip\n1e-3 -2;\n"
    parsed = seqs.parse(text, FEATURES)
    assert [item.shape for item in parsed.items] == [(3, 2), (1, 2)]
    np.testing.assert_allclose(parsed.items[0], [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])
    np.testing.assert_allclose(parsed.items[1], [[1e-3, -2]])
    assert parsed.items[0].dtype == np.float32
    assert parsed.lines == [1, 3]


def test_a_single_feature_per_step():
    parsed = seqs.parse("1; 2; 3\n4\n", InputSpec("features", None, 1))
    assert [item.ravel().tolist() for item in parsed.items] == [[1, 2, 3], [4]]


# --- token errors: line and column ---

@pytest.mark.parametrize("text, line, column, problem", [
    ("1 2 x3", 1, 5, '"x3" is not a token id: expected a whole number from 0 to 99'),
    ("1 2\n\n# c\n  7, 2.5", 4, 6, '"2.5" is not a token id: expected a whole number from 0 to 99'),
    ("4 -1", 1, 3, "token id -1 is negative: ids run from 0 to 99"),
    ("1 100", 1, 3, "token id 100 is outside the vocabulary (vocab_size 100: ids 0 to 99)"),
    ("1,,  12345678901234567890", 1, 6, "token id 12345678901234567890 is outside the vocabulary "
                                        "(vocab_size 100: ids 0 to 99)"),
    ("1 2; 3", 1, 4, '";" separates timesteps of feature vectors; token ids are separated by spaces or commas'),
    ("  , ,", 1, 1, "this line holds separators but no token ids"),
    ("5 # fine\n6 x # not fine", 2, 3, '"x" is not a token id: expected a whole number from 0 to 99'),
    ("1\r\n2\r\n3 y\r\n", 3, 3, '"y" is not a token id: expected a whole number from 0 to 99'),
])
def test_token_errors(text, line, column, problem):
    assert error(text) == (line, column, problem)


def test_a_number_too_long_to_convert_is_out_of_vocabulary():
    line, column, problem = error("1 " + "9" * 5000)
    assert (line, column) == (1, 3)
    assert "outside the vocabulary" in problem and len(problem) < 200


def test_no_sequences():
    assert error("") == (1, 1, "there are no sequences: type one per line, e.g. `1 2 3`")
    assert error("# only\n\n   # comments\n") == (1, 1, "there are no sequences: type one per line, e.g. `1 2 3`")


def test_too_many_sequences(monkeypatch):
    monkeypatch.setattr(seqs, "MAX_SEQUENCES", 3)
    assert seqs.parse("1\n2\n3\n", TOKENS).lines == [1, 2, 3]
    line, column, problem = error("1\n2\n\n3\n4\n")
    assert (line, column) == (5, 1) and problem.startswith("more than 3 sequences")


def test_text_must_be_a_string():
    assert error(None) == (1, 1, "the sequence text must be a string")   # type: ignore[arg-type]


# --- feature errors: line and column ---

@pytest.mark.parametrize("text, line, column, problem", [
    ("0.1 0.2; 0.3 abc", 1, 14, '"abc" is not a number: expected 2 numbers per timestep'),
    ("1 2\n\n1 2;  3 4 5", 3, 7, "timestep 2 has 3 values; input.features is 2"),
    ("1 2; 3", 1, 6, "timestep 2 has 1 values; input.features is 2"),
    ("1 2;; 3 4", 1, 5, "timestep 2 is empty: expected 2 numbers between the ;"),
    (";1 2", 1, 1, "timestep 1 is empty: expected 2 numbers between the ;"),
    ("1 nan", 1, 3, '"nan" is not a finite number'),
    ("1 2; inf 3", 1, 6, '"inf" is not a finite number'),
    ("1 2; 1e999 3", 1, 6, '"1e999" is not a finite number'),
    ("1 2; 3 -3.5e38", 1, 8, '"-3.5e38" is too large: values are float32, at most ±3.4e38'),
    ("# x\n1 2 # c\n 1,2;3,4;5", 3, 10, "timestep 3 has 1 values; input.features is 2"),
])
def test_feature_errors(text, line, column, problem):
    assert error(text, FEATURES) == (line, column, problem)


def test_error_column_points_at_the_value():
    text = "1 2 3\n10 20 30 40 5x 60\n"
    line, column, _ = error(text)
    assert text.splitlines()[line - 1][column - 1:].startswith("5x")
    ftext = "0 0; 1 1\n2 2;3 3; 4 four; 5 5\n"
    line, column, _ = error(ftext, FEATURES)
    assert ftext.splitlines()[line - 1][column - 1:].startswith("four")


def test_trailing_semicolon_is_allowed_but_only_one_step_is_kept():
    parsed = seqs.parse("1 2; 3 4;\n", FEATURES)
    assert parsed.items[0].shape == (2, 2)


# --- truncate ---

def test_truncate():
    item = np.arange(1, 6)
    assert seqs.truncate(item, None, "post").tolist() == [1, 2, 3, 4, 5]
    assert seqs.truncate(item, 9, "pre").tolist() == [1, 2, 3, 4, 5]
    assert seqs.truncate(item, 2, "post").tolist() == [1, 2]
    assert seqs.truncate(item, 2, "pre").tolist() == [4, 5]
