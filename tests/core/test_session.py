"""The Session on its own (no Qt, no TensorFlow): edits, the text checked at every keystroke, the state of
the result and its reason, selection, trust and the saved state. Results are stand-ins: the session only
keeps them."""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.core.presets import load_preset
from explorer.core.spec import Batching, InputSpec, LayerSpec
from explorer.session import CURRENT, FAILED, NONE, RUNNING, STALE, Session


def session(**kwargs) -> Session:
    spec = load_preset("average_pooling")
    spec.sequences = "5 12 7\n8 4\n"
    return Session(spec, trusted=True, source="preset:average_pooling", **kwargs)


def result(lines=(1, 2), names=("embedding_1", "lstm_1", "global_average_pooling_1", "dense_1")):
    layers = [SimpleNamespace(name=name, type=name.rsplit("_", 1)[0]) for name in names]
    return SimpleNamespace(lines=list(lines), layers=layers, shown=lambda: layers)   # a run without shared layers


def recorder(s: Session) -> dict[str, list]:
    seen: dict[str, list] = {}
    for name in ("document", "edited", "stack", "text", "batching", "selection", "result", "modified"):
        getattr(s.events, name).connect(lambda *args, name=name: seen.setdefault(name, []).append(args))
    return seen


def test_a_new_session_has_checked_its_text_and_selected_the_first_recurrent_layer_and_line():
    s = session()
    assert s.state.kind == NONE and s.result is None
    assert s.selected_layer == "lstm_1" and s.selected_line == 1
    assert s.text_check.ok and s.text_check.batch.tolist() == [[5, 12, 7], [8, 4, 0]]
    assert not s.modified


def test_a_bad_text_makes_a_current_result_stale_with_every_error_and_keeps_it():
    s = session()
    shown = result()
    s.run_started()
    assert s.state.kind == RUNNING
    s.run_finished(shown)
    assert s.state.kind == CURRENT
    seen = recorder(s)
    s.set_text("1 2 abc 4\n5 x\n")
    assert s.result is shown                                  # kept, but not current
    assert s.state.kind == STALE and "abc" in s.state.reason and "(and 1 more)" in s.state.reason
    assert not s.state.pending                                # nothing runs until the text is fixed
    assert [(e.line, e.column) for e in s.text_check.errors] == [(1, 5), (2, 3)]
    assert s.text_check.batch is None
    assert seen["edited"] == [("text",)] and seen["text"] and seen["result"]
    s.set_text("")
    assert s.state.kind == STALE and "no sequences" in s.state.reason


def test_a_valid_edit_after_a_run_is_stale_until_the_run_that_follows():
    s = session()
    s.run_finished(result())
    s.set_text("1 2 3\n")
    assert s.state.kind == STALE and s.state.pending and "sequences changed" in s.state.reason
    s.set_live(False)
    spec = s.spec()
    spec.layers[1].params["units"] = 8
    s.set_stack(spec)
    assert s.state.kind == STALE and not s.state.pending and "press Run" in s.state.reason


def test_an_invalid_stack_names_its_layer():
    s = session()
    spec = s.spec()
    spec.layers[1].params["units"] = 0
    s.set_stack(spec)
    assert s.spec_error is not None
    message, layer = s.problem()
    assert layer == "lstm_1" and "units" in message
    assert s.state.kind == STALE and s.state.layer == "lstm_1"


def test_a_failed_run_keeps_the_shapes_before_the_failing_layer():
    s = session()
    prefix = result(names=("embedding_1", "lstm_1"))
    s.run_failed("gru_1 needs a sequence", "gru_1", prefix)
    assert s.state.kind == FAILED and s.state.layer == "gru_1" and s.partial is prefix
    s.run_finished(result())
    assert s.partial is None and s.state.kind == CURRENT


def test_switching_the_input_to_features_rechecks_the_text_and_fits_the_pad_value():
    s = session()
    s.set_batching(Batching(pad_value=7))
    spec = s.spec()
    spec.input = InputSpec("features", None, 1)
    spec.layers = [LayerSpec("lstm"), LayerSpec("dense")]
    s.set_stack(spec)
    assert s.text_check.batch is None and "timestep 1 has 3 values" in s.text_check.errors[0].problem
    s.set_text("0.5; 0.25\n1\n")
    assert s.text_check.batch.shape == (2, 2, 1) and s.document.batching.pad_value == 7.0
    spec = s.spec()
    spec.input = InputSpec("tokens", 5)
    s.set_stack(spec)
    assert s.document.batching.pad_value == 4                 # inside the new vocabulary


def test_undo_restores_a_snapshot_and_keeps_the_trained_weights():
    s = session()
    s.set_weights({"lstm_1": []}, "trained")
    assert s.modified                                         # weights that no file holds yet
    s.mark_clean()                                            # saved with them
    before = s.snapshot()
    seen = recorder(s)
    s.set_text("9 9\n")
    s.restore(before)
    assert s.text == "5 12 7\n8 4\n" and s.document.weights_id == "trained"
    assert [args for args in seen["edited"]] == [("text",), ("restore",)]
    assert not s.modified


def test_selection_follows_the_stack_and_the_result():
    s = session()
    s.select_layer("dense_1")
    assert s.selected_layer == "dense_1"
    s.select_layer("nope")
    assert s.selected_layer == "dense_1"
    spec = s.spec()
    del spec.layers[3]
    s.set_stack(spec)
    assert s.selected_layer == "lstm_1"                        # the selected layer is gone
    s.select_line(2)
    assert s.selected_row(result(lines=(1, 2))) == 1 and s.selected_row(result(lines=(1,))) is None


def test_modified_and_saved():
    s = session()
    seen = recorder(s)
    s.set_text("1\n")
    assert s.modified and seen["modified"][-1] == (True,)
    s.saved_as("/tmp/x.stack.json")
    assert not s.modified and s.source == "/tmp/x.stack.json"
    s.mark_modified()
    assert s.modified


def test_trust_asks_once_for_file_expressions_and_live_edits_do_not_ask_again():
    asked = []
    answers = [False, True]
    spec = load_preset("average_pooling")
    spec.layers.insert(2, LayerSpec("custom", {"expression": "x * 2"}))
    s = Session(spec, trusted=False, confirm_trust=lambda e: (asked.append(e), answers.pop(0))[1])
    assert not s.trust.ensure(s.spec(), ask_again=False) and len(asked) == 1
    assert not s.trust.ensure(s.spec(), ask_again=False) and len(asked) == 1     # refused: live edits do not ask
    assert s.trust.ensure(s.spec(), ask_again=True) and len(asked) == 2          # Run asks again
    typed = s.spec()
    typed.layers[2].params["expression"] = "x * 3"
    assert s.trust.ensure(typed, ask_again=False) and len(asked) == 2            # typed here: no question


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(["1 2 3", "4 x", "", "7", "# c", "0 0 9", "-1", "3;4"]), min_size=0, max_size=6))
def test_the_state_says_why_whenever_the_text_cannot_run(lines):
    s = session()
    s.run_finished(result())
    s.set_text("\n".join(lines))
    if s.text_check.errors:
        assert s.state.kind == STALE and s.state.reason.startswith("the sequences have errors")
        assert s.text_check.batch is None
    else:
        assert s.text_check.batch.shape[0] == len(s.text_check.lines) > 0
        assert s.state.kind in (STALE, CURRENT) and (s.state.kind == CURRENT or s.state.pending)


def test_a_subscriber_that_raises_is_reported_and_the_others_still_run(monkeypatch):
    s = session()
    reported, later = [], []
    monkeypatch.setattr("sys.excepthook", lambda kind, error, trace: reported.append(error))

    def broken():
        raise RuntimeError("a broken view")

    s.events.selection.connect(broken)
    s.events.selection.connect(lambda: later.append(s.selected_layer))
    s.select_layer("dense_1")
    assert [str(error) for error in reported] == ["a broken view"] and later == ["dense_1"]
