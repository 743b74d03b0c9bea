"""Words as input: a vocabulary from the text (StringLookup), 0 kept for padding, 1 for unknown words."""

import pytest

from explorer.core.errors import SpecError
from explorer.core.spec import from_dict

TEXT = "the cat sat on the mat\nthe dog\n"


def words_stack(vocab_size=50, **batching):
    return from_dict({"input": {"kind": "words", "vocab_size": vocab_size}, "batching": batching,
                      "layers": [{"type": "embedding", "output_dim": 3, "mask_zero": True},
                                 {"type": "gru", "units": 2, "return_sequences": True}]})


def test_each_word_gets_an_id_and_padding_keeps_zero(engine):
    result = engine.run(words_stack(), TEXT)
    vocabulary = result.vocabulary
    assert vocabulary[:2] == ["", "[UNK]"]
    assert vocabulary[2] == "the"  # the most frequent word comes first
    words = [line.split() for line in TEXT.splitlines()]
    for row, line in enumerate(words):
        ids = result.input[row][result.mask[row]]
        assert [vocabulary[i] for i in ids] == line
    assert (result.input[1][~result.mask[1]] == 0).all()
    assert result.layer("embedding_1").mask.tolist() == result.mask.tolist()


def test_words_beyond_the_vocabulary_size_become_unknown(engine):
    result = engine.run(words_stack(vocab_size=4), TEXT)
    assert len(result.vocabulary) == 4
    assert result.vocabulary[2] == "the"
    known = result.vocabulary[2:]
    all_words = TEXT.split()
    assert (result.input[result.mask] == 1).sum() == sum(word not in known for word in all_words) == 4


def test_words_input_refuses_a_nonzero_pad_value_and_a_tiny_vocabulary():
    with pytest.raises(SpecError, match="batching.pad_value: must be 0 for words"):
        words_stack(pad_value=3)
    with pytest.raises(SpecError, match="input.vocab_size: must be at least 3"):
        words_stack(vocab_size=2)


def test_the_report_lists_the_vocabulary(engine):
    report = engine.run(words_stack(), TEXT).to_json()
    assert report["vocabulary"][2] == "the" and report["batch"]["lengths"] == [6, 2]
