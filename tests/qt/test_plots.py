"""The plots panel shows the real numbers of a run: heatmap, padding, mask, FC input, output, attention."""

from __future__ import annotations


import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPointF, Qt

from explorer.core.presets import load_preset
from explorer.session import Session
from explorer.qt.exports import write_plot
from explorer.qt.plots import (
    LEAKED,
    MASKED,
    PADDED,
    VALID,
    PlotsPanel,
    parse_units,
    runs,
    top_variance_units,
)

TEXT = "5 12 7 3 9 41 2\n8 4 19\n23 6 11 2 77\n"


@pytest.fixture(scope="module")
def results(engine):
    """One run per stack, computed once for the module."""
    cache = {}

    def get(name: str, text: str | None = None):
        key = (name, text)
        if key not in cache:
            cache[key] = engine.run(load_preset(name), text, trust=True)
        return cache[key]
    return get


@pytest.fixture
def panel(qtbot):
    spec = load_preset("average_pooling")
    spec.sequences = TEXT
    widget = PlotsPanel(Session(spec, trusted=True))
    qtbot.addWidget(widget)
    widget.resize(1100, 900)
    return widget


def bar_heights(item) -> np.ndarray:
    return np.asarray(item.opts["height"], dtype=np.float32)


# --- heatmap and padding ---

def test_heatmap_is_the_selected_layers_output(panel, results):
    result = results("average_pooling", TEXT)
    panel.show_result(result)
    assert panel.selected_layer == "lstm_1"          # the last recurrent layer by default
    assert panel.selected_row == 0
    output = result.layer("lstm_1").output
    image = panel.heatmap.item.image
    assert image.shape == (32, 7)                     # units × timesteps
    np.testing.assert_allclose(image, output[0].T, rtol=0, atol=0)
    # recurrent output: the diverging map centred on 0, fitted to a 1-2-5 step that holds the layer's values
    assert panel.heatmap.colorbar.colorMap().name == "CET-D1"
    biggest = np.abs(result.layer("lstm_1").output).max()
    lo, hi = panel.heatmap.item.levels
    assert lo == -hi and biggest <= hi < 2.5 * biggest
    assert f"{hi:.0e}"[0] in "125"
    assert tuple(panel.heatmap.colorbar.levels()) == (lo, hi)
    # unticking "fit colours" gives the fixed range of tanh
    panel.fit_colors.setChecked(False)
    assert tuple(panel.heatmap.colorbar.levels()) == (-1.0, 1.0)
    assert tuple(panel.heatmap.item.levels) == (-1.0, 1.0)
    panel.fit_colors.setChecked(True)
    assert panel.heatmap.item.isVisible() and not panel.heatmap.bars.isVisible()


@pytest.mark.parametrize("value, limit", [(0.014, 0.02), (0.02, 0.02), (0.3, 0.5), (0.7, 1.0), (1.0, 1.0),
                                          (3.2, 5.0), (0.0, 1.0)])
def test_fitted_colour_limits_are_round_numbers(value, limit):
    from explorer.qt.plots import nice_limit
    assert nice_limit(value) == pytest.approx(limit)


def test_padding_overlay_covers_exactly_the_padded_steps(panel, results):
    result = results("average_pooling", TEXT)
    panel.show_result(result)
    for row in range(result.mask.shape[0]):
        panel.select(row=row)
        padded = ~result.mask[row]
        np.testing.assert_array_equal(panel.heatmap.overlay.padded, padded)
        np.testing.assert_array_equal(panel.units_part.overlay.padded, padded)
        assert not panel.heatmap.overlay.masked.any()
        spans = runs(padded)
        if spans:
            rect = panel.heatmap.overlay.boundingRect()
            assert rect.left() == pytest.approx(spans[0][0] - 0.5)
            assert rect.right() == pytest.approx(spans[-1][1] - 0.5)
    # line 2 has 3 tokens: steps 3..6 are padding, and only those
    panel.select(row=1)
    assert np.flatnonzero(panel.heatmap.overlay.padded).tolist() == [3, 4, 5, 6]


def test_pre_padding_is_marked_at_the_start(panel, results):
    result = results("forgotten_mask_pre", TEXT)
    panel.show_result(result)
    panel.select(row=1)
    assert np.flatnonzero(panel.heatmap.overlay.padded).tolist() == [0, 1, 2, 3]
    # no mask reaches the LSTM: the padded cells are drawn as leaking in the batch mask
    assert set(np.unique(panel.mask.codes[~result.mask])) == {LEAKED}


def test_token_zero_is_marked_as_masked_by_the_layer(panel, results):
    result = results("average_pooling", "5 0 7 3\n8 4\n")
    panel.show_result(result)
    assert panel.selected_row == 0
    np.testing.assert_array_equal(panel.heatmap.overlay.padded, [False] * 4)
    np.testing.assert_array_equal(panel.heatmap.overlay.masked, [False, True, False, False])
    assert panel.mask.codes[0].tolist() == [VALID, MASKED, VALID, VALID]
    assert panel.mask.codes[1].tolist() == [VALID, VALID, PADDED, PADDED]


def test_select_switches_layer_and_row(panel, results):
    result = results("average_pooling", TEXT)
    panel.show_result(result)
    panel.select(layer="embedding_1", row=2)
    assert (panel.selected_layer, panel.selected_row) == ("embedding_1", 2)
    output = result.layer("embedding_1").output
    np.testing.assert_array_equal(panel.heatmap.item.image, output[2].T)
    # not recurrent: a sequential map whose range, on the colour bar, spans the valid cells
    valid = output[result.mask]
    assert panel.heatmap.colorbar.colorMap().name == "viridis"
    np.testing.assert_allclose(panel.heatmap.colorbar.levels(), (valid.min(), valid.max()), rtol=1e-6)
    np.testing.assert_array_equal(panel.heatmap.overlay.padded, ~result.mask[2])
    assert panel.layer_combo.currentData() == "embedding_1"
    assert panel.row_combo.currentIndex() == 2
    # unknown names and rows out of range change nothing
    panel.select(layer="nope", row=99)
    assert (panel.selected_layer, panel.selected_row) == ("embedding_1", 2)


def test_a_layer_without_time_axis_is_a_bar_chart(panel, results):
    result = results("average_pooling", TEXT)
    panel.show_result(result)
    panel.select(layer="global_average_pooling_1", row=1)
    assert not panel.heatmap.item.isVisible() and panel.heatmap.bars.isVisible()
    np.testing.assert_allclose(bar_heights(panel.heatmap.bars), result.layer("global_average_pooling_1").output[1])
    assert "vector of 32" in panel.heatmap.plot.titleLabel.text
    assert panel.units_part.curves == []
    # and back to a time-major layer: the heatmap returns, linked to the other time plots
    panel.select(layer="lstm_1")
    assert panel.heatmap.item.isVisible() and not panel.heatmap.bars.isVisible()
    assert panel.heatmap.plot.vb.linkedView(0) is panel.mask.plot.vb


def test_last_state_stack_defaults_to_the_recurrent_layer(panel, results):
    result = results("bidirectional_gru", TEXT)
    panel.show_result(result)
    assert panel.selected_layer == "gru_1"
    np.testing.assert_allclose(bar_heights(panel.heatmap.bars), result.layer("gru_1").output[0])


# --- unit lines ---

def test_unit_curves_default_to_the_most_varying_units(panel, results):
    result = results("average_pooling", TEXT)
    panel.show_result(result)
    matrix = result.layer("lstm_1").output[0]
    expected = top_variance_units(matrix, result.mask[0])
    assert len(expected) == 3 and panel.units_part.units == expected and panel.units_part.auto
    for unit, curve in zip(panel.units_part.units, panel.units_part.curves):
        x, y = curve.getData()
        np.testing.assert_array_equal(x, np.arange(7))
        np.testing.assert_allclose(y, matrix[:, unit])


def test_units_typed_by_the_user(panel, results, qtbot):
    result = results("average_pooling", TEXT)
    panel.show_result(result)
    panel.units_edit.setText("0, 5 40")     # 40 does not exist in a 32-unit layer
    panel.units_edit.editingFinished.emit()
    assert panel.units_part.units == [0, 5] and not panel.units_part.auto
    np.testing.assert_allclose(panel.units_part.curves[1].getData()[1], result.layer("lstm_1").output[0][:, 5])
    panel.select(row=2)                     # kept across rows
    assert panel.units_part.units == [0, 5]
    panel.session.set_units(None)
    assert panel.units_part.auto and len(panel.units_part.units) == 3
    assert parse_units("1-3 7") == [1, 2, 3, 7]
    with pytest.raises(ValueError):
        parse_units("a")


# --- the batch mask ---

def test_mask_image_is_the_batch_mask(panel, results):
    result = results("average_pooling", TEXT)
    panel.show_result(result)
    np.testing.assert_array_equal(panel.mask.item.image, panel.mask.codes)
    np.testing.assert_array_equal(np.isin(panel.mask.codes, (VALID, MASKED)), result.mask)
    assert panel.mask.codes.shape == result.mask.shape == (3, 7)
    # rows labelled by their editor line
    ticks = panel.mask.plot.getAxis("left")._tickLevels[0]
    assert [label for _, label in ticks] == [str(line) for line in result.lines] == ["1", "2", "3"]


def test_clicking_a_row_selects_its_line_in_the_session(panel, results, qtbot):
    result = results("average_pooling", TEXT)
    panel.show_result(result)
    panel.show()
    qtbot.waitExposed(panel)
    view = panel.time_view
    scene_point = panel.mask.plot.vb.mapViewToScene(QPointF(2.0, 2.0))   # timestep 2 of row 2
    point = view.mapFromScene(scene_point)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=point)
    assert panel.session.selected_line == result.lines[2]
    assert panel.selected_row == 2
    np.testing.assert_array_equal(panel.heatmap.item.image, result.layer("lstm_1").output[2].T)
    # the handler the click goes through, called directly
    panel.pick_row(0)
    assert panel.session.selected_line == result.lines[0] and panel.selected_row == 0


# --- vectors ---

def test_fc_input_and_output_bars(panel, results):
    result = results("average_pooling", TEXT)
    panel.show_result(result)
    for row in range(3):
        panel.select(row=row)
        np.testing.assert_allclose(bar_heights(panel.fc.bars.bars), result.layer("global_average_pooling_1").output[row])
        probabilities = result.layer("dense_1").output[row]
        np.testing.assert_allclose(bar_heights(panel.output.bars.bars), probabilities)
        assert panel.output.bars.text_labels == [f"{value:.2f}" for value in probabilities]
    assert "(3, 32)" in panel.fc.plot.titleLabel.text
    assert "probabilities" in panel.output.plot.titleLabel.text


def test_time_major_final_output_is_a_heatmap(panel, results):
    result = results("time_distributed", TEXT)
    panel.show_result(result)
    panel.select(row=1)
    last = result.layers[-1]
    np.testing.assert_allclose(panel.output.bars.image.image, last.output[1].T)
    assert panel.output.bars.image.isVisible() and not panel.output.bars.bars.isVisible()
    np.testing.assert_array_equal(panel.output.bars.overlay.padded, ~result.mask[1])
    # the FC input is itself a sequence here: shown as an image too
    np.testing.assert_allclose(panel.fc.bars.image.image, result.layer("lstm_1").output[1].T)


def test_attention_weights_under_the_heatmap(panel, results):
    result = results("attention_pooling", TEXT)
    panel.show_result(result)
    panel.select(row=1)
    weights = result.layer("attention_pooling_1").extras["attention_pooling_1/attention"][1]
    x, y = panel.attention.curve.getData()
    np.testing.assert_allclose(y, weights, rtol=1e-6)
    assert len(x) == len(y) + 1                        # step edges: one bar per timestep
    assert panel.attention.plot.isVisible()
    np.testing.assert_array_equal(panel.attention.overlay.padded, ~result.mask[1])
    assert panel.attention.plot.vb.linkedView(0) is panel.mask.plot.vb
    # a stack without attention has no attention plot
    panel.show_result(results("average_pooling", TEXT))
    assert not panel.attention.plot.isVisible()


# --- hover, selection memory, messages ---

def test_hover_moves_one_crosshair_through_the_time_plots(panel, results):
    result = results("average_pooling", TEXT)
    panel.show_result(result)
    text = panel.hover("heatmap", 2.2, 4.1)
    value = result.layer("lstm_1").output[0, 2, 4]
    assert text.startswith("line 1 · t=2 ·") and f"unit 4 = {value:+.4f}" in text and "token 7" in text
    assert panel.hover_label.text() == text
    for name in ("heatmap", "units", "mask"):
        line = panel.crosshairs[name]
        assert line.isVisible() and line.value() == 2
    assert "padded" not in panel.hover("units", 5.0, 0.0)     # line 1 has 7 steps
    assert panel.hover("mask", 5.0, 1.0) == "line 2 · t=5 · padded"
    panel.hover(None, 0, 0)
    assert not any(line.isVisible() for line in panel.crosshairs.values())


def test_moving_the_mouse_over_a_plot_describes_the_cell(panel, results, qtbot):
    result = results("average_pooling", TEXT)
    panel.show_result(result)
    panel.show()
    qtbot.waitExposed(panel)
    view = panel.time_view
    point = view.mapFromScene(panel.heatmap.plot.vb.mapViewToScene(QPointF(3.0, 5.0)))
    qtbot.mouseMove(view.viewport(), point)
    qtbot.waitUntil(lambda: "t=3" in panel.hover_label.text(), timeout=3000)
    value = result.layer("lstm_1").output[0, 3, 5]
    assert f"unit 5 = {value:+.4f}" in panel.hover_label.text()
    assert all(panel.crosshairs[name].value() == 3 for name in ("heatmap", "units", "mask"))


def test_show_result_keeps_a_valid_selection(panel, results):
    panel.show_result(results("average_pooling", TEXT))
    panel.select(layer="embedding_1", row=2)
    panel.show_result(results("average_pooling", "1 2\n3 4 5\n6\n7 8\n"))
    assert (panel.selected_layer, panel.selected_row) == ("embedding_1", 2)
    panel.show_result(results("average_pooling", "1 2\n"))        # row 2 is gone
    assert (panel.selected_layer, panel.selected_row) == ("embedding_1", 0)
    panel.show_result(results("sensor_features"))                  # embedding_1 is gone
    assert panel.selected_layer == "gru_1"


def test_messages_and_no_result(panel, results):
    panel.show()
    panel.show_message("loading TensorFlow…")
    assert panel.message_label.isVisible() and "TensorFlow" in panel.message_label.text()
    panel.show_result(results("average_pooling", TEXT))
    assert not panel.message_label.isVisible()
    panel.show_message("the run failed: boom")
    assert panel.message_label.isVisible()
    panel.show_message("")
    assert not panel.message_label.isVisible()
    panel.show_result(None)
    assert panel.heatmap.item.image is None and panel.mask.codes.size == 0 and panel.units_part.curves == []


# --- export ---

@pytest.mark.parametrize("name", ["heatmap", "units", "mask", "fc_input", "output", "attention"])
def test_export_png_and_svg(panel, results, tmp_path, name):
    panel.show_result(results("attention_pooling", TEXT))      # never shown: export must still work
    png = write_plot(panel, name, tmp_path / f"{name}.png")
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 1000
    svg = write_plot(panel, name, tmp_path / f"{name}.svg")
    assert "<svg" in svg.read_text(encoding="utf-8")
    with pytest.raises(ValueError):
        write_plot(panel, name, tmp_path / f"{name}.txt")


def test_export_rejects_unknown_and_missing_plots(panel, results, tmp_path):
    panel.show_result(results("average_pooling", TEXT))
    with pytest.raises(ValueError):
        write_plot(panel, "nope", tmp_path / "x.png")
    with pytest.raises(ValueError):
        write_plot(panel, "attention", tmp_path / "x.png")


# --- updates in place (their speed is measured by `python -m tests.benchmarks.bench`, not here) ---

def test_new_results_update_the_same_plot_items(panel, engine):
    """A new result re-uses the existing plot items (setData / setImage), never recreates them."""
    spec = load_preset("average_pooling").copy()
    rng = np.random.default_rng(0)
    texts = ["\n".join(" ".join(map(str, rng.integers(1, 999, size=rng.integers(5, 12)))) for _ in range(4))
             for _ in range(3)]
    results_ = [engine.run(spec, text) for text in texts]
    panel.show_result(results_[0])
    panel.select(layer="lstm_1", row=2)
    items = (panel.heatmap.item, panel.mask.item, panel.fc.bars.bars, panel.output.bars.bars, panel.heatmap.overlay)
    curves = list(panel.units_part.curves)
    for result in results_[1:]:
        panel.show_result(result)
        assert (panel.heatmap.item, panel.mask.item, panel.fc.bars.bars, panel.output.bars.bars,
                panel.heatmap.overlay) == items
        assert all(a is b for a, b in zip(panel.units_part.curves, curves))
    np.testing.assert_array_equal(panel.heatmap.item.image, results_[-1].layer("lstm_1").output[2].T)


def test_pure_helpers():
    assert runs(np.array([0, 1, 1, 0, 1], bool)) == [(1, 3), (4, 5)]
    assert runs(np.zeros(3, bool)) == []
    matrix = np.zeros((5, 4), np.float32)
    matrix[:, 2] = np.arange(5)
    matrix[:, 0] = [0, 1, 0, 1, 0]
    assert top_variance_units(matrix, np.ones(5, bool), 2) == [0, 2]
    assert top_variance_units(matrix, np.array([1, 1, 0, 0, 0], bool), 1) == [0]


# --- the panel and its session ---

def test_the_panel_follows_its_session_and_picks_into_it(panel, results, qtbot):
    session = panel.session
    result = results("average_pooling", TEXT)
    session.run_finished(result)                              # the session changes: the panel draws its result
    assert panel.result is result and not panel.greyed
    session.select_layer("embedding_1")
    assert panel.selected_layer == "embedding_1"
    np.testing.assert_array_equal(panel.heatmap.item.image, result.layer("embedding_1").output[0].T)
    session.select_line(3)
    assert panel.selected_row == 2
    session.set_units([1, 2])
    assert panel.units_part.units == [1, 2] and panel.units_edit.text() == "1 2"
    index = panel.layer_combo.findData("lstm_1")              # the panel picks: the session follows
    panel.layer_combo.setCurrentIndex(index)
    panel.layer_combo.activated.emit(index)
    assert session.selected_layer == "lstm_1"
    panel.units_edit.setText("4")
    panel.units_edit.editingFinished.emit()
    assert session.units == [4]
    session.set_text("1 x\n")                                 # not current any more: greyed with the reason
    assert panel.greyed and "x" in panel.message_label.text() and panel.result is result


def test_one_scale_per_layer_for_every_row_and_every_plot(panel, results):
    result = results("last_state", TEXT)                      # lstm_1 → dense: bars of a layer without time
    panel.show_result(result)
    last = result.layers[-1]
    panel.select(layer=last.name, row=0)
    ranges = []
    for row in range(len(result.lines)):
        panel.select(row=row)
        ranges.append((tuple(panel.heatmap.plot.vb.viewRange()[1]), tuple(panel.output.plot.vb.viewRange()[1])))
    assert len(set(ranges)) == 1                              # the bar scale does not jump with the row
    values = np.asarray(last.output)
    (lo, hi), _ = ranges[0]
    assert lo <= min(values.min(), 0) and hi >= max(values.max(), 0)   # and it holds every row's values
    sequence = results("time_distributed", TEXT)               # the output is a sequence: heatmap and image agree
    panel.show_result(sequence)
    panel.select(layer=sequence.layers[-1].name, row=1)
    assert tuple(panel.heatmap.item.levels) == tuple(panel.output.bars.image.levels)


def test_a_state_that_feeds_the_next_layer_is_labelled_a_state(qtbot, engine):
    """`x, h, c = LSTM(…, return_state=True)(x); Dense(2)(c)`: the heatmap shows the LSTM's output (Keras's first
    output) and says that c goes on; the FC input plot shows c, named; the layer list and the shapes table mark
    c as the state that feeds the next layer."""
    from explorer.core import spec as specs
    from explorer.qt.shapes_panel import ShapesPanel
    spec = specs.from_dict({"input": {"kind": "tokens", "vocab_size": 100},
                            "layers": [{"type": "embedding", "output_dim": 4},
                                       {"type": "lstm", "units": 3, "return_sequences": True, "return_state": True,
                                        "feeds": "c", "name": "enc"},
                                       {"type": "dense", "units": 2}], "sequences": TEXT})
    result = engine.run(spec)
    session = Session(spec, trusted=True)
    plots, shapes = PlotsPanel(session), ShapesPanel(session)
    qtbot.addWidget(plots)
    qtbot.addWidget(shapes)
    session.run_finished(result, spec)
    plots.show_result(result)
    session.select_layer("enc")
    enc = result.layer("enc")
    np.testing.assert_array_equal(plots.heatmap.item.image, enc.output[0].T)
    assert "the next layer takes its state c (return_state), not this output" in plots.heatmap._title
    np.testing.assert_allclose(plots.fc.bars.values, enc.extras["enc/state/c"][0])
    assert "from enc's state c" in plots.fc._title and "a state, passed on" in plots.fc._title
    listed = plots.layer_combo.itemText(plots.layer_combo.findData("enc"))
    assert "states  h (3, 3)  c → next layer (3, 3)" in listed
    cells = [shapes.table.item(row, 0).text() for row in range(shapes.table.rowCount())]
    assert "  └ state c → next layer" in cells and "  └ state h" in cells


@given(st.floats(-0.99, -0.01), st.integers(1, 40), st.integers(150, 1600))
@settings(max_examples=30, deadline=None)
def test_whole_number_axes_never_label_a_tick_minus_zero(qapp, low, count, pixels):
    """A plot's steps or units start half a step below 0: the tick at 0 reads "0", never "-0"."""
    from explorer.qt.plots.items import IntAxis
    axis = IntAxis("bottom")
    for spacing, values in axis.tickValues(low, count - 0.5, pixels):
        labels = axis.tickStrings(values, 1.0, spacing)
        assert "-0" not in labels and all(float(label) >= 0 or float(label) < low for label in labels), labels
