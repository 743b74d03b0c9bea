"""The Inside-the-cell tab: gate heatmap, saturation bars and gradient curves of the selected sequence, computed in
the worker, hatched on padded steps and linked in time with the other plots."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.core.batches import batch_of
from explorer.core.gates import gates
from explorer.core.gradients import gradients
from explorer.core.presets import load_preset
from explorer.qt.plots.cell import saturation

RUN_TIMEOUT_MS = 60_000


@settings(max_examples=30, deadline=None)
@given(values=st.lists(st.lists(st.floats(0, 1), min_size=3, max_size=3), min_size=1, max_size=8),
       data=st.data())
def test_saturation_counts_valid_steps_below_or_above_the_thresholds(values, data):
    values = np.array(values)
    valid = np.array(data.draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values))))
    share = saturation(values, valid)
    for unit in range(values.shape[1]):
        chosen = [v for v, ok in zip(values[:, unit], valid) if ok]
        expected = sum(1 for v in chosen if v < 0.1 or v > 0.9) / len(chosen) if chosen else 0.0
        assert share[unit] == pytest.approx(expected)


@pytest.fixture
def cell_window(make_window, qtbot):
    # opened as the user's own stack: the lesson itself would open on this tab at once
    window = make_window(load_preset("forget_gate_saturation"), source=None)
    qtbot.waitUntil(lambda: window.session.result is not None, timeout=RUN_TIMEOUT_MS)
    panel = window.cell_panel
    assert panel.data is None, "nothing is computed while the tab is hidden"
    window.window_layout.plot_tabs.setCurrentWidget(panel)
    qtbot.waitUntil(lambda: panel.data is not None, timeout=RUN_TIMEOUT_MS)
    return window


def test_the_tab_shows_the_gates_and_gradients_of_the_selected_sequence(cell_window, qtbot, engine):
    window, panel = cell_window, cell_window.cell_panel
    window.session.select_line(4)                        # the shortest sequence: padded at the end
    row = window.session.result.lines.index(4)
    qtbot.waitUntil(lambda: panel.row == row and panel.data is not None and not panel.stale
                    and panel.state_label.text().startswith("line 4"), timeout=RUN_TIMEOUT_MS)
    spec = load_preset("forget_gate_saturation")
    built, layout = batch_of(engine, spec)
    forget = gates(built, layout)["lstm_1/forget"][row]                   # (T, units), the whole batch at once
    assert panel.layer_combo.currentData() == "lstm_1" and panel.gate_combo.currentText() == "forget"
    np.testing.assert_allclose(panel.gate_image.image, forget.T, atol=1e-6)
    valid = layout.mask[row]
    np.testing.assert_array_equal(panel.gate_overlay.padded, ~valid)
    widths = panel.saturation_bars.opts["width"]
    np.testing.assert_allclose(widths, np.mean((forget[valid] < 0.1) | (forget[valid] > 0.9), axis=0))
    expected = gradients(built, layout).norms
    assert set(panel.gradient_curves) == set(expected)
    panel.log_check.setChecked(False)
    for name, curve in panel.gradient_curves.items():
        np.testing.assert_allclose(curve.getData()[1], expected[name][row], rtol=1e-5, atol=1e-9)
    np.testing.assert_array_equal(panel.gradient_overlay.padded, ~valid)
    unit = int(np.argmax(forget[0]))
    assert panel.describe(panel.gate_plot, 0, unit) == f"step 0, unit {unit}: forget {forget[0, unit]:.4g}"
    padded_step = int(np.flatnonzero(~valid)[0])
    assert panel.describe(panel.gradient_plot, padded_step, 0).startswith(f"step {padded_step} (padded): input 0,")
    panel.log_check.setChecked(True)
    assert panel.gradient_plot.getAxis("left").logMode
    assert np.isnan(panel.gradient_curves["input"].yData[~valid]).all(), "masked zeros are gaps on a log scale"


def test_the_time_axis_follows_the_other_plots_both_ways(cell_window):
    window, panel = cell_window, cell_window.cell_panel
    window.plots.mask.plot.setXRange(2, 6, padding=0)
    assert panel.gate_plot.vb.viewRange()[0] == pytest.approx([2, 6])
    assert panel.gradient_plot.vb.viewRange()[0] == pytest.approx([2, 6], abs=0.05)
    panel.gate_plot.setXRange(1, 4, padding=0)
    assert window.plots.mask.plot.vb.viewRange()[0] == pytest.approx([1, 4])


def test_a_chosen_output_unit_and_a_new_run_recompute(cell_window, qtbot):
    window, panel = cell_window, cell_window.cell_panel
    panel.target_spin.setValue(1)
    qtbot.waitUntil(lambda: panel.data is not None and int(panel.data["gradients"].target[0]) == 1,
                    timeout=RUN_TIMEOUT_MS)
    assert "output unit 1" in panel.gradient_plot.titleLabel.text
    window.stack_editor.card("lstm_1").param_widget("units").setValue(6)
    qtbot.waitUntil(lambda: panel.data is not None and panel.data["gates"]["lstm_1/forget"].shape[2] == 6,
                    timeout=RUN_TIMEOUT_MS)
    assert panel.gate_image.image.shape[0] == 6


def test_numbers_that_are_not_current_say_why(cell_window, qtbot):
    window, panel = cell_window, cell_window.cell_panel
    assert panel.message_label.isHidden()
    window.sequence_editor.text_edit.setPlainText("1 2 oops\n")
    assert not panel.message_label.isHidden() and "oops" in panel.message_label.text()
    assert "not current" in panel.message_label.text()


ENCODER_DECODER = {
    "input": {"kind": "tokens", "vocab_size": 12, "name": "source"},
    "more_inputs": [{"kind": "tokens", "vocab_size": 12, "name": "target", "sequences": "2 4\n6 1 8 3 5\n1\n"}],
    "layers": [
        {"type": "embedding", "output_dim": 3, "mask_zero": True, "name": "source_emb", "inputs": ["source"]},
        {"type": "lstm", "units": 4, "return_state": True, "name": "encoder"},
        {"type": "embedding", "output_dim": 3, "mask_zero": True, "name": "target_emb", "inputs": ["target"]},
        {"type": "lstm", "units": 4, "return_sequences": True, "name": "decoder", "inputs": ["target_emb"],
         "initial_state": ["encoder/state/h", "encoder/state/c"]},
        {"type": "time_distributed_dense", "units": 12, "activation": "softmax", "name": "next"}],
    "seed": 2, "sequences": "3 7 1\n5\n2 2 9 4 1 1 2\n"}


def looking_inside(make_window, qtbot, engine, document):
    """A window on the stack `document` (a dict, or a StackSpec) with Inside the cell shown on line 1, and the
    engine's built stack and batch for it."""
    from explorer.core.spec import from_dict
    spec = from_dict(document) if isinstance(document, dict) else document
    window = make_window(from_dict(document) if isinstance(document, dict) else document, source=None)
    qtbot.waitUntil(lambda: window.session.result is not None, timeout=RUN_TIMEOUT_MS)
    panel = window.cell_panel
    window.window_layout.plot_tabs.setCurrentWidget(panel)
    window.session.select_line(1)
    return window, panel, batch_of(engine, spec)


def test_a_decoder_started_from_an_encoders_states_shows_its_gates_on_its_own_inputs_steps(make_window, qtbot,
                                                                                           engine):
    import keras
    window, panel, (built, layout) = looking_inside(make_window, qtbot, engine, ENCODER_DECODER)
    found = gates(built, layout)
    sources = keras.utils.pad_sequences([[3, 7, 1], [5], [2, 2, 9, 4, 1, 1, 2]], padding="post")
    targets = keras.utils.pad_sequences([[2, 4], [6, 1, 8, 3, 5], [1]], padding="post")
    for layer, ids in (("decoder", targets), ("encoder", sources)):
        window.session.select_layer(layer)
        qtbot.waitUntil(lambda: panel.data is not None and not panel.stale and panel.layer_combo.currentData() == layer
                        and panel.gate_image.image is not None
                        and panel.gate_image.image.shape[1] == ids.shape[1], timeout=RUN_TIMEOUT_MS)
        np.testing.assert_allclose(panel.gate_image.image, found[f"{layer}/forget"][0].T, atol=1e-6)
        np.testing.assert_array_equal(panel.gate_overlay.padded, ids[0] == 0)   # its own input's padding
        assert panel.data["gradients"] is not None


def test_the_gradients_of_a_two_input_model_are_drawn_over_one_input_s_steps_at_a_time(make_window, qtbot, engine):
    """Each curve is drawn over the steps it has: the chosen input's, and the layers that run over them; a decoder
    followed back to the source is named, not drawn on the source's axis."""
    window, panel, (built, layout) = looking_inside(make_window, qtbot, engine, ENCODER_DECODER)
    assert not panel.steps_combo.parentWidget().isHidden()
    for layer, source, drawn, left_out in (("decoder", "target", ["input", "target_emb", "decoder", "next"],
                                            "source_emb"),
                                           ("encoder", "source", ["input", "source_emb"], "target_emb, decoder, next")):
        window.session.select_layer(layer)         # the gradients follow the steps the selected layer runs over
        qtbot.waitUntil(lambda: panel.data is not None and not panel.stale and panel.data["gradients"] is not None
                        and panel.data["gradients"].source == source, timeout=RUN_TIMEOUT_MS)
        assert panel.steps_combo.currentData() == source and list(panel.gradient_curves) == drawn
        expected = gradients(built, layout, [0], source=source).norms
        for name in drawn:
            np.testing.assert_allclose(panel.gradient_curves[name].yData, np.where(
                expected[name][0] > 0, expected[name][0], np.nan), rtol=1e-5, err_msg=name)
        assert {len(panel.gradient_curves[name].xData) for name in drawn} == {len(expected["input"][0])}
        assert f"{left_out} run over another input's steps" in panel.gradient_plot.titleLabel.text


def test_a_shared_layer_s_further_call_is_looked_inside_on_its_own_input(make_window, qtbot, engine, tmp_path):
    """Selecting reader/call/1 (a shared LSTM on the right text) shows that call's gates, its input's padding and
    the gradients over the right text's steps."""
    from explorer.core import keras_io
    from tests.core.keras_files import trained_and_saved
    from tests.core.test_inside_graphs import one_reader_for_two_texts, padded
    trained_and_saved(one_reader_for_two_texts, [padded([[3, 7, 1], [5]]), padded([[2, 4], [6, 1, 8]])],
                      tmp_path / "siamese.keras", seed=8)
    spec, _, _ = keras_io.import_model(tmp_path / "siamese.keras")
    spec.sequences, spec.more_sequences = "3 7 1 9 4 2\n5 2\n", {"right": "2 2\n9 1 4 4 3\n"}
    window, panel, (built, layout) = looking_inside(make_window, qtbot, engine, spec)
    window.session.select_layer("reader/call/1")
    qtbot.waitUntil(lambda: panel.data is not None and not panel.stale and panel.data["gradients"] is not None
                    and panel.data["gradients"].source == "right", timeout=RUN_TIMEOUT_MS)
    assert [panel.layer_combo.itemText(i) for i in range(panel.layer_combo.count())] == ["reader", "reader/call/1"]
    assert panel.layer_combo.currentData() == "reader/call/1"
    np.testing.assert_allclose(panel.gate_image.image, gates(built, layout)["reader/call/1/forget"][0].T, atol=1e-6)
    np.testing.assert_array_equal(panel.gate_overlay.padded, [False, False, True, True, True])   # the right text's
    assert list(panel.gradient_curves) == ["input", "emb/call/1", "reader/call/1"]
