"""The padding leak check and the batching comparison."""

import numpy as np
import pytest

from explorer.core.leaks import TOLERANCE, compare_modes, leak_check
from explorer.core.spec import from_dict

TEXT = "1 2 3 4 5 6\n7 8\n9 10 11\n"


def stack(mask_zero, *, padding="post", head=None, rnn="lstm"):
    layers = [{"type": "embedding", "output_dim": 4, "mask_zero": mask_zero},
              {"type": rnn, "units": 3, "return_sequences": True}]
    if head:
        layers.append({"type": head})
    return from_dict({"input": {"kind": "tokens", "vocab_size": 20}, "batching": {"padding": padding},
                      "layers": layers})


@pytest.mark.parametrize("padding", ["pre", "post"])
def test_a_masked_stack_does_not_leak(engine, padding):
    report = leak_check(engine, stack(True, padding=padding, head="masked_mean_pooling"), TEXT)
    assert report.leaking_layer is None
    assert max(report.differences.values()) <= TOLERANCE
    assert report.verdict.startswith("no leak")


def test_pre_padding_without_a_mask_leaks_into_the_recurrent_layer(engine):
    report = leak_check(engine, stack(False, padding="pre"), TEXT)
    assert report.leaking_layer == "lstm_1"
    assert report.differences["embedding_1"] <= TOLERANCE      # embeddings of valid tokens are untouched
    assert report.differences["lstm_1"] > 1e-3
    assert report.verdict.startswith("padding leaks into lstm_1: max |Δ|")
    assert report.verdict.endswith("tick mask_zero on embedding_1")            # the words on screen


def test_post_padding_without_a_mask_leaves_valid_steps_but_not_the_average(engine):
    report = leak_check(engine, stack(False, padding="post", head="time_average"), TEXT)
    # Post-padding only follows the valid steps, so the recurrent outputs there are unchanged …
    assert report.differences["lstm_1"] <= TOLERANCE
    # … but a time average counts the padded steps.
    assert report.leaking_layer == "time_average_1"


def test_a_layer_that_drops_the_mask_is_blamed(engine):
    report = leak_check(engine, stack(True, head="time_average"), TEXT)
    assert report.leaking_layer == "time_average_1"
    assert "ignores the mask" in report.verdict


def test_leak_differences_are_measured_against_the_unpadded_run(engine):
    spec = stack(False, padding="pre")
    padded = engine.run(spec, TEXT)
    alone = [engine.run(spec, line).layer("lstm_1").output[0] for line in TEXT.splitlines()]
    report = leak_check(engine, spec, TEXT)
    expected = max(np.abs(padded.layer("lstm_1").output[row][padded.mask[row]] - out).max()
                   for row, out in enumerate(alone))
    assert report.differences["lstm_1"] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("rnn", ["simple_rnn", "gru", "lstm"])
def test_all_modes_agree_for_a_masked_stack(engine, rnn):
    reports = compare_modes(engine, stack(True, head="masked_mean_pooling", rnn=rnn), TEXT)
    assert [r.mode for r in reports] == ["pad", "bucket", "one_by_one", "chunked"]
    assert all(r.agrees for r in reports), reports
    by_mode = {r.mode: r for r in reports}
    assert by_mode["pad"].padded_share == pytest.approx(1 - 11 / 18)
    assert by_mode["one_by_one"].padded_share == 0.0
    assert all(r.time_ms >= 0 for r in reports)


def test_modes_disagree_without_a_mask(engine):
    reports = compare_modes(engine, stack(False, padding="pre"), TEXT)
    by_mode = {r.mode: r for r in reports}
    assert by_mode["one_by_one"].agrees is False
    assert by_mode["chunked"].agrees is True   # chunking the padded batch computes the same thing


def test_a_mode_that_cannot_run_is_reported_with_its_reason(engine):
    spec = from_dict({"input": {"kind": "tokens", "vocab_size": 20}, "batching": {"maxlen": 6},
                      "layers": [{"type": "embedding", "output_dim": 4}, {"type": "lstm", "units": 3,
                                                                          "return_sequences": True},
                                 {"type": "flatten"}, {"type": "dense", "units": 2}]})
    by_mode = {r.mode: r for r in compare_modes(engine, spec, TEXT)}
    assert by_mode["bucket"].refused and "flatten needs every batch padded to maxlen" in by_mode["bucket"].refused
    assert by_mode["pad"].refused is None


def test_go_backwards_is_explained_not_blamed_on_the_mask(engine):
    spec = from_dict({"input": {"kind": "tokens", "vocab_size": 20},
                      "layers": [{"type": "embedding", "output_dim": 4, "mask_zero": True},
                                 {"type": "gru", "units": 3, "return_sequences": True, "go_backwards": True}]})
    report = leak_check(engine, spec, TEXT)
    assert report.leaking_layer == "gru_1"
    assert "reverse time order (go_backwards)" in report.verdict
    [note] = [d for d in engine.run(spec, TEXT).diagnostics if d.layer == "gru_1"]
    assert note.severity == "info" and "output step t belongs to input step T−1−t" in note.message


def test_the_fix_blames_the_layer_a_leaking_branch_takes_not_the_one_listed_before_it(engine):
    """The LSTM takes the convolution, which drops the mask; a Dense branch listed between them keeps it."""
    spec = from_dict({"input": {"kind": "tokens", "vocab_size": 20}, "layers": [
        {"type": "embedding", "output_dim": 4, "mask_zero": True, "name": "emb"},
        {"type": "keras", "class_name": "Conv1D", "config": {"filters": 4, "kernel_size": 1}, "name": "conv"},
        {"type": "dense", "units": 2, "inputs": ["emb"], "name": "side"},
        {"type": "lstm", "units": 3, "inputs": ["conv"], "name": "lstm"}]})
    report = leak_check(engine, spec, TEXT)
    assert report.leaking_layer == "lstm"
    assert report.verdict.endswith("conv drops the mask before it: use a mask-aware layer there")
