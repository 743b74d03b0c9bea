"""Input guards that act before TensorFlow: each refusal names the problem and the place."""

import pytest

from explorer.core.errors import SequenceError, StackError
from explorer.core.run import Engine
from explorer.core.spec import from_dict

TOKENS = from_dict({"input": {"kind": "tokens", "vocab_size": 10},
                    "layers": [{"type": "embedding", "output_dim": 3, "mask_zero": True},
                               {"type": "lstm", "units": 4, "return_sequences": True},
                               {"type": "global_average_pooling"}]})
FEATURES = from_dict({"input": {"kind": "features", "features": 2},
                      "layers": [{"type": "masking"}, {"type": "gru", "units": 3}]})


@pytest.mark.parametrize("text, line, column, words", [
    ("1 2\n3 10\n", 2, 3, "token id 10 is outside the vocabulary"),
    ("1 -2\n", 1, 3, "token id -2 is negative"),
    ("1 2.5\n", 1, 3, '"2.5" is not a token id'),
    ("", 1, 1, "there are no sequences"),
    ("# only a comment\n\n", 1, 1, "there are no sequences"),
    ("1 2\n , ,\n", 2, 1, "holds separators but no token ids"),
])
def test_bad_token_text_is_refused_before_running(engine, text, line, column, words):
    with pytest.raises(SequenceError) as caught:
        engine.run(TOKENS, text)
    assert (caught.value.line, caught.value.column) == (line, column)
    assert words in caught.value.message


@pytest.mark.parametrize("text, column, words", [
    ("0.1 nan; 1 2\n", 5, '"nan" is not a finite number'),
    ("0.1 0.2; inf 2\n", 10, '"inf" is not a finite number'),
    ("0.1 0.2; 1\n", 10, "timestep 2 has 1 values; input.features is 2"),
    ("0.1 0.2;; 1 2\n", 9, "timestep 2 is empty"),
])
def test_bad_features_are_refused_before_running(engine, text, column, words):
    with pytest.raises(SequenceError) as caught:
        engine.run(FEATURES, text)
    assert caught.value.line == 1 and caught.value.column == column
    assert words in caught.value.message


def test_an_all_padding_row_is_reported_not_hidden(engine):
    result = engine.run(TOKENS, "1 2 3\n0 0 0\n")
    assert any("line 2 is fully masked" in message for message in result.warnings)


def test_a_batch_over_the_memory_limit_is_refused_with_the_estimate_and_the_limit():
    small = Engine(memory_limit_mb=1)
    text = "\n".join(" ".join("1" for _ in range(400)) for _ in range(200))
    with pytest.raises(StackError) as caught:
        small.run(TOKENS, text)
    message = caught.value.message
    assert "200 sequences × 400 steps" in message and "over the limit of 1 MB" in message
    estimate = float(message.split("about ")[1].split(" MB")[0].replace(",", ""))
    assert estimate > 1
    # the same batch under a generous limit runs
    assert Engine(memory_limit_mb=10_000).run(TOKENS, text).layers[1].shape == (200, 400, 4)


def test_maxlen_truncation_keeps_every_sequence_nonempty(engine):
    spec = TOKENS.copy()
    spec.batching.maxlen, spec.batching.truncating = 1, "pre"
    result = engine.run(spec, "1 2 3\n4\n")
    assert result.input.tolist() == [[3], [4]] and result.lengths.tolist() == [1, 1]
