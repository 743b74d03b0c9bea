"""Big batches run in slices of rows: same numbers, progress reported, a cancel honoured between slices."""

import numpy as np
import pytest

from explorer.core import run as run_module
from explorer.core.run import Cancelled, Engine
from explorer.core.spec import from_dict

SPEC = from_dict({"input": {"kind": "tokens", "vocab_size": 100}, "batching": {"padding": "pre"},
                  "layers": [{"type": "embedding", "output_dim": 4, "mask_zero": True},
                             {"type": "gru", "units": 3, "return_sequences": True},
                             {"type": "attention_pooling"}, {"type": "dense", "units": 2}]})
TEXT = "\n".join(" ".join(str(1 + (row * 7 + step) % 97) for step in range(3 + row % 11)) for row in range(40))


def use_tiny_slices(monkeypatch) -> None:
    monkeypatch.setattr(run_module, "FIRST_SLICE_CELLS", 30)
    monkeypatch.setattr(run_module, "SLICE_SECONDS", 1e-9)  # one row per slice after the first


@pytest.fixture
def tiny_slices(monkeypatch):
    use_tiny_slices(monkeypatch)


@pytest.mark.parametrize("mode", ["pad", "bucket"])
def test_slicing_rows_does_not_change_the_numbers(engine, monkeypatch, mode):
    spec = SPEC.copy()
    spec.batching.mode = mode
    whole_calls = []
    whole = Engine().run(spec, TEXT, progress=whole_calls.append)   # the same mode, before any slicing patch
    pieces = 1 if mode == "pad" else len({(3 + row % 11 - 1) // spec.batching.bucket_width for row in range(40)})
    assert len(whole_calls) <= pieces                                # each piece in one slice: the baseline
    use_tiny_slices(monkeypatch)
    calls = []
    sliced = engine.run(spec, TEXT, progress=calls.append)
    assert len(calls) > 10 and calls == sorted(calls) and calls[-1] == pytest.approx(1.0)
    for a, b in zip(sliced.layers, whole.layers):
        np.testing.assert_allclose(a.output, b.output, atol=1e-6, err_msg=a.name)
    np.testing.assert_allclose(sliced.layer("attention_pooling_1").extras["attention_pooling_1/attention"],
                               whole.layer("attention_pooling_1").extras["attention_pooling_1/attention"], atol=1e-6)


def test_a_cancel_stops_the_run_between_slices(engine, tiny_slices):
    progress = []

    def cancel_after_three():
        if len(progress) >= 3:
            raise Cancelled()

    with pytest.raises(Cancelled):
        engine.run(SPEC, TEXT, progress=progress.append, check_cancel=cancel_after_three)
    assert len(progress) == 3 and progress[-1] < 0.5


def test_chunked_mode_checks_for_a_cancel_between_windows(engine):
    spec = SPEC.copy()
    spec.layers = spec.layers[:2]
    spec.batching.mode, spec.batching.padding, spec.batching.chunk = "chunked", "post", 2
    checks = []

    def count_and_cancel():
        checks.append(1)
        if len(checks) > 4:
            raise Cancelled()

    with pytest.raises(Cancelled):
        engine.run(spec, TEXT, check_cancel=count_and_cancel)
