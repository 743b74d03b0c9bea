"""Every lesson does what its text says: one window is driven through each lesson's declared steps the way the
banner tells a person to (ticking the box, choosing the mode, clicking Fix, pressing Train), and each declared
claim is checked on the plot on screen and against plain Keras (`model.predict` on `keras.utils.pad_sequences`,
each sequence alone for the leak check and one-by-one accuracy). The plot a lesson names must be in view, and no
plot on screen empty, at 1024×768 (Focus, 125 %), 1280×800 and 1600×1000."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtWidgets import QApplication, QCheckBox, QComboBox

from explorer.core import course, presets, steps
from explorer.qt.layout import MIN_VIEW
from explorer.qt.style import escape

RUN_TIMEOUT_MS = 120_000
SIZES = ((1024, 768, 1.25, True), (1280, 800, 1.0, False), (1600, 1000, 1.0, False))
TRAINING = {"train_attention_on_7", "train_forgotten_mask"}
TOL = 1e-4


@pytest.fixture(scope="module")
def room(qapp):
    """One window for every lesson (a window costs an engine start and a run)."""
    from explorer.qt.main_window import MainWindow
    window = MainWindow(presets.load_preset("forgotten_mask_post"), trusted=True, source="preset:forgotten_mask_post",
                        confirm_trust=lambda expressions: False)
    window.files.ask_unsaved = lambda name: "discard"
    window.resize(1280, 800)
    window.show()
    yield window
    window.window_layout.set_focus(False)
    window.window_layout.set_scale(1.0)
    window.close()


def settle(qtbot, window) -> None:
    """The run is on screen, the Inside-the-cell numbers too when that tab is shown, and the plots laid out."""
    qtbot.waitUntil(lambda: window.runs.settled, timeout=RUN_TIMEOUT_MS)
    cell = window.cell_panel
    if window.window_layout.plot_tabs.currentIndex() == window.window_layout.plot_tabs.page_index(cell):
        qtbot.waitUntil(lambda: not cell.waiting and cell.data is not None, timeout=RUN_TIMEOUT_MS)
    layout = window.window_layout
    for _ in range(3):
        qtbot.waitUntil(lambda: not layout._arrange_timer.isActive() and not layout.plot_fit._pending.isActive(),
                        timeout=5000)
        QApplication.processEvents()


def open_lesson(qtbot, window, name: str) -> None:
    window.load_preset(name)
    settle(qtbot, window)


# --- what is on screen ---

def in_view(window, name: str) -> QRect | None:
    """The view box of the named plot in its scroll area's viewport coordinates, when its tab is shown."""
    if name == "accuracy":
        widget = window.training.accuracy_plot
        if not (window.training_dock.isVisible() and widget.isVisible()):
            return None
        box = widget.mapFromScene(widget.getPlotItem().vb.sceneBoundingRect()).boundingRect()
        return box if widget.rect().adjusted(-1, -1, 1, 1).contains(box) else None
    scroll, plot = window.window_layout.plot_item(name)
    if window.window_layout.plot_tabs.currentWidget() is not scroll or not plot.isVisible():
        return None
    view = plot.scene().views()[0]
    box = view.mapFromScene(plot.vb.sceneBoundingRect()).boundingRect()
    return QRect(view.mapTo(scroll.viewport(), box.topLeft()), box.size())


def assert_in_view(window, name: str, where: str) -> None:
    box = in_view(window, name)
    assert box is not None, f"{where}: {name} is not shown"
    if name == "accuracy":          # the Training panel's curve: on screen, its number in its title
        assert box.width() >= MIN_VIEW[0] - 1 and box.height() > 0, f"{where}: {name} is {box.size()}"
        assert "this run" in window.training.accuracy_plot.getPlotItem().titleLabel.text or \
            not window.training.curve_loss, where
        return
    scroll, _ = window.window_layout.plot_item(name)
    viewport = scroll.viewport().rect().adjusted(-1, -1, 1, 1)
    assert viewport.contains(box), f"{where}: {name} at {box} outside the viewport {viewport}"
    assert box.width() >= MIN_VIEW[0] - 1 and box.height() >= MIN_VIEW[1] - 1, f"{where}: {name} is {box.size()}"


def has_data(plot) -> bool:
    for item in plot.items:
        if not item.isVisible():
            continue
        if hasattr(item, "image") and item.image is not None and np.size(item.image):
            return True
        if isinstance(getattr(item, "opts", None), dict) and np.size(item.opts.get("height", [])):
            return True
        data = getattr(item, "yData", None)
        if data is not None and np.isfinite(np.asarray(data, dtype=float)).any():
            return True
    return False


def shown_plots(window) -> dict:
    tab = window.window_layout.plot_tabs.currentWidget()
    if tab is window.window_layout.plots_scroll:
        return {name: plot for name, plot in window.plots.plots().items() if plot.isVisible()}
    cell = window.cell_panel
    return {name: plot for name, plot in (("gates", cell.gate_plot), ("saturation", cell.saturation_plot),
                                          ("gradient", cell.gradient_plot)) if plot.isVisible()}


def plot_data(window, name: str) -> np.ndarray:
    """The numbers the named plot draws for the selected line."""
    plots = window.plots
    if name == "heatmap":
        part = plots.heatmap
        return np.asarray(part.item.image if part.timed else part.bars.opts["height"], dtype=np.float64)
    if name == "fc_input":
        return np.asarray(plots.fc.bars.values, dtype=np.float64)
    if name == "attention":
        return np.asarray(plots.attention.curve.yData, dtype=np.float64)
    if name == "gradient":
        return np.asarray(window.cell_panel.data["gradients"].norms["input"][0], dtype=np.float64)
    raise AssertionError(f"no data reader for {name}")


def shown_accuracy(window) -> float:
    title = window.training.accuracy_plot.getPlotItem().titleLabel.text
    found = re.search(r"this run \(\w+\): ([0-9.]+)", title)
    assert found, f"no accuracy of this run in {title!r}"
    return float(found.group(1))


# --- plain Keras ---

def keras_model(engine, spec):
    return engine.built_for(spec)


def keras_inputs(spec, text: str) -> tuple[list, list]:
    """The sequences and labels of the text, read here without the explorer's parser."""
    rows, labels = [], []
    for line in text.splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        data, _, label = line.partition("|")
        if spec.input.kind == "features":
            rows.append([[float(v) for v in step.replace(",", " ").split()] for step in data.split(";")])
        else:
            rows.append([int(v) for v in data.replace(",", " ").split()])
        labels.append(int(label) if label.strip() else None)
    return rows, labels


def padded(spec, rows):
    import keras
    b = spec.batching
    dtype = "float32" if spec.input.kind == "features" else "int32"
    return keras.utils.pad_sequences(rows, maxlen=b.maxlen, padding=b.padding, truncating=b.truncating,
                                     value=b.pad_value, dtype=dtype)


def keras_layer_output(engine, spec, text: str, layer: str, row: int, *, into: bool = False) -> np.ndarray:
    """The layer's output (`into`: its input) for one row of the padded batch."""
    import keras
    built = keras_model(engine, spec)
    rows, _ = keras_inputs(spec, text)
    keras_layer = built.keras_layers[layer]
    probe = keras.Model(built.model.inputs, keras_layer.input if into else keras_layer.output)
    return np.asarray(probe.predict(padded(spec, rows), verbose=0))[row]


def keras_leaks(engine, spec, text: str) -> bool:
    """Does a sequence's final output in the padded batch differ from the sequence run alone (on its own steps,
    for an output with a time axis)?"""
    model = keras_model(engine, spec).model
    rows, _ = keras_inputs(spec, text)
    batch = np.asarray(model.predict(padded(spec, rows), verbose=0))
    for row, in_batch in zip(rows, batch):
        alone = np.asarray(model.predict(np.asarray([row]), verbose=0))[0]
        if alone.ndim == 2:         # (T, units): the sequence's own steps in the batch
            in_batch = in_batch[:len(row)] if spec.batching.padding == "post" else in_batch[-len(row):]
        if np.abs(in_batch - alone).max() > TOL:
            return True
    return False


def keras_accuracy(engine, spec, text: str) -> float:
    model = keras_model(engine, spec).model
    rows, labels = keras_inputs(spec, text)
    if spec.batching.mode == "one_by_one":
        outputs = [np.asarray(model.predict(np.asarray([row]), verbose=0))[0] for row in rows]
    else:
        outputs = list(np.asarray(model.predict(padded(spec, rows), verbose=0)))
    return float(np.mean([output.argmax() == label for output, label in zip(outputs, labels)]))


# --- the steps, as a person takes them ---

def take(qtbot, window, step: steps.Step) -> None:
    args = step.args
    if step.do == "param":
        widget = window.stack_editor.card(args["layer"]).param_widget(args["param"])
        if isinstance(widget, QCheckBox):
            if widget.isChecked() != args["value"]:
                widget.click()
        elif isinstance(widget, QComboBox):
            widget.setCurrentIndex(widget.findData(args["value"]))
        else:
            widget.setValue(args["value"])
    elif step.do == "type":
        combo = window.stack_editor.card(args["layer"]).type_combo
        combo.setCurrentIndex(combo.findData(args["to"]))
    elif step.do == "batching":
        (key, value), = args.items()
        editor = window.sequence_editor
        widget = {"mode": editor.mode_combo, "padding": editor.padding_combo,
                  "truncating": editor.truncating_combo}.get(key)
        assert widget is not None, f"no control for {key}"
        widget.setCurrentIndex(widget.findData(value))
    elif step.do == "fix":
        button = window.fix_button.button
        assert button.isVisible(), "the lesson asks for the Fix button, and none is shown"
        button.click()
    elif step.do == "train":
        panel = window.training
        panel.steps_spin.setValue(args["steps"])
        panel.train_button.click()
        qtbot.waitUntil(lambda: not panel.running and not panel._request, timeout=RUN_TIMEOUT_MS)
    elif step.do == "reset_weights":
        window.training.reset_button.click()
    elif step.do == "checkup":
        checkup(qtbot, window)
    elif step.do == "checkup_fix":
        panel = window.checkup
        assert panel.report is not None, "the lesson asks for the Check-up's Fix before a Check-up"
        with_fix = next(i for i, finding in enumerate(panel.report.findings) if finding.action is not None)
        groups = [panel.tree.topLevelItem(i) for i in range(panel.tree.topLevelItemCount())]
        item = next(group.child(j) for group in groups for j in range(group.childCount())
                    if group.child(j).data(0, Qt.ItemDataRole.UserRole) == with_fix)
        panel.tree.setCurrentItem(item)
        assert panel.fix_button.isVisible(), "the finding offers no Fix button"
        panel.fix_button.click()
    settle(qtbot, window)


def checkup(qtbot, window):
    """Presses Check-up and waits for its report."""
    panel = window.checkup
    panel.report = None
    window.checkup_action.trigger()
    qtbot.waitUntil(lambda: panel.report is not None and panel.run_button.isEnabled(), timeout=RUN_TIMEOUT_MS)
    return panel.report


def leak_verdict(qtbot, window) -> bool:
    label = window.shapes.leak_label
    label.setText("")
    window.shapes.leak_button.click()
    qtbot.waitUntil(lambda: "leak check:" in label.text(), timeout=RUN_TIMEOUT_MS)
    assert window.status_message.toolTip().startswith("leak check: "), "the verdict is not in the status line"
    return "✖" in label.text()


def check(qtbot, window, engine, claim: steps.Claim, before: dict, where: str) -> None:
    session = window.session
    spec, text = session.spec(), session.text
    where = f"{where}: {claim.words()}"
    if claim.kind == "leak":
        assert leak_verdict(qtbot, window) == claim.value, where
        assert keras_leaks(engine, spec, text) == claim.value, f"{where} (plain Keras)"
    elif claim.kind == "finding":
        found = [finding for finding in window.checkup.report.findings if finding.kind == claim.value]
        assert found, f"{where}: the Check-up lists {[f.kind for f in window.checkup.report.findings]}"
        if claim.value == "truncation":       # the lines longer than maxlen, counted from the text itself
            lengths = [len(line.split()) for line in text.splitlines() if line.strip() and not line.startswith("#")]
            cut = sum(length > spec.batching.maxlen for length in lengths)
            assert found[0].evidence["lines_cut"] == cut > 0, where
            assert found[0].evidence["tokens_lost"] == sum(max(0, n - spec.batching.maxlen) for n in lengths), where
    elif claim.kind == "clean":
        report = checkup(qtbot, window)
        assert not report.at_least("warning"), f"{where}: {[(f.kind, f.severity) for f in report.findings]}"
    elif claim.kind == "accuracy":
        shown = shown_accuracy(window)
        assert shown == pytest.approx(keras_accuracy(engine, spec, text), abs=1e-3), f"{where} (plain Keras)"
        assert claim.value[0] <= shown <= claim.value[1], f"{where}: shown {shown}"
    elif claim.kind == "values":
        data = plot_data(window, claim.value)
        assert data.ndim == 1 and len(data) == claim.count, f"{where}: {data.shape}"
        layer = window.plots.selected_layer if claim.value == "heatmap" else session.result.fc_input.layer
        reference = keras_layer_output(engine, spec, text, layer, window.plots.selected_row,
                                       into=claim.value == "fc_input")
        assert reference.size == claim.count, f"{where} (plain Keras: {reference.shape})"
        if spec.batching.mode == "pad":
            np.testing.assert_allclose(data, reference.ravel(), atol=TOL, err_msg=where)
    elif claim.kind == "zero_on_padding":
        data = plot_data(window, claim.value)
        result = session.result
        valid = result.mask[window.plots.selected_row]
        assert (~valid).any(), f"{where}: the line has no padding"
        np.testing.assert_array_equal(data[:len(valid)][~valid], 0, err_msg=where)
        assert (data[:len(valid)][valid] != 0).all(), where
    else:
        data, old = plot_data(window, claim.value), before[claim.value]
        differ = data.shape != old.shape or np.abs(data - old).max() > steps.CHANGE
        assert differ == (claim.kind == "changes"), where
        if claim.value in ("heatmap", "fc_input") and before["spec"].batching.mode == spec.batching.mode == "pad":
            layer = window.plots.selected_layer if claim.value == "heatmap" else session.result.fc_input.layer
            row = window.plots.selected_row
            into = claim.value == "fc_input"
            now = keras_layer_output(engine, spec, text, layer, row, into=into)
            then = keras_layer_output(engine, before["spec"], before["text"], layer, row, into=into)
            keras_differ = now.shape != then.shape or np.abs(now - then).max() > steps.CHANGE
            assert keras_differ == (claim.kind == "changes"), f"{where} (plain Keras)"


def snapshot(window, plots) -> dict:
    taken = {"spec": window.session.spec(), "text": window.session.text}
    for name in plots:
        taken[name] = plot_data(window, name)
    return taken


LESSONS = [pytest.param(name, marks=pytest.mark.slow) if name in TRAINING else name for name in course.names()]


def test_every_lesson_declares_steps_whose_words_the_banner_shows(room, qtbot):
    for name in course.names():
        spec = presets.load_preset(name)
        declared = course.steps(spec)
        assert declared, f"{name} declares no steps"
        assert declared[0].plot, f"{name}: the first step names no plot"
        room.load_preset(name)
        shown = room.lesson_banner.text()
        for step in declared:
            if step.words():
                assert escape(step.words()) in shown, (name, step.words())


@pytest.mark.parametrize("name", LESSONS)
def test_following_the_lesson_shows_what_it_claims(room, qtbot, engine, name):
    room.window_layout.set_focus(False)
    room.window_layout.set_scale(1.0)
    room.resize(1280, 800)
    open_lesson(qtbot, room, name)
    declared = course.steps(room.session.spec())
    for index, step in enumerate(declared):
        where = f"{name}, step {index + 1} ({step.do})"
        compared = [c.value for c in step.claims if c.kind in ("changes", "same")]
        before = snapshot(room, compared)
        take(qtbot, room, step)
        if step.plot:
            assert_in_view(room, step.plot, where)
        for claim in step.claims:
            check(qtbot, room, engine, claim, before, where)


@pytest.mark.slow   # a grid: every lesson at every classroom size
def test_the_named_plot_is_in_view_and_no_plot_is_empty_at_classroom_sizes(room, qtbot):
    layout = room.window_layout
    try:
        for name in course.names():
            wanted = course.steps(presets.load_preset(name))[0].plot
            room.load_preset(name)             # opened once: its plot stays in view as the window changes
            for width, height, scale, focus in SIZES:
                layout.set_focus(focus)
                layout.set_scale(scale, announce=False)
                room.resize(width, height)
                settle(qtbot, room)
                where = f"{name} at {width}x{height}{' Focus' if focus else ''} {scale:.0%}"
                assert_in_view(room, wanted, where)
                if not focus:
                    tabs = room.window_layout.plot_tabs
                    assert tabs.height() >= height / 2, f"{where}: the plots get {tabs.height()} px"
                empty = [plot for plot, item in shown_plots(room).items() if not has_data(item)]
                assert not empty, f"{where}: empty plots {empty}"
    finally:
        layout.set_focus(False)
        layout.set_scale(1.0, announce=False)


def test_reaching_a_step_marks_it_and_brings_its_plot_back_into_view(room, qtbot):
    open_lesson(qtbot, room, "max_pooling")
    scroll = room.window_layout.plots_scroll
    scroll.verticalScrollBar().setValue(scroll.verticalScrollBar().maximum())
    room.sequence_editor.padding_combo.setCurrentIndex(room.sequence_editor.padding_combo.findData("pre"))
    settle(qtbot, room)
    assert room.lesson_banner.reached == 1
    assert "<b>✓ Set padding to pre" in room.lesson_banner.text()
    assert_in_view(room, "fc_input", "max_pooling after padding pre")


def test_the_batch_mask_marks_padding_that_ran_unmasked_even_at_a_layer_without_a_time_axis(room, qtbot):
    import keras
    from explorer.qt.plots.state import LEAKED, PADDED
    open_lesson(qtbot, room, "forgotten_mask_post")
    mask = room.plots.mask
    assert room.plots.selected_layer == "lstm_1" and room.session.result.layer("lstm_1").output.ndim == 2
    rows, _ = keras_inputs(room.session.spec(), room.session.text)
    padding = keras.utils.pad_sequences(rows, padding="post") == 0       # token 0 only where Keras padded
    np.testing.assert_array_equal(mask.codes == LEAKED, padding)
    np.testing.assert_array_equal(mask.leaked_hatch.cells, padding)
    assert "padded, NOT masked (hatched)" in mask.plot.titleLabel.text
    assert not room.plots.units_part.plot.isVisible()                      # no empty unit lines
    assert "no unit lines over time" in room.plots.heatmap.plot.titleLabel.text
    room.stack_editor.card("embedding_1").param_widget("mask_zero").click()
    settle(qtbot, room)
    np.testing.assert_array_equal(mask.codes == PADDED, padding)
    assert not mask.leaked_hatch.cells.any()


def test_the_task_box_names_the_task_of_the_lessons_sequences(room, qtbot):
    open_lesson(qtbot, room, "train_forgotten_mask")
    assert room.training.task_combo.currentData() == "count_mod_3"
    open_lesson(qtbot, room, "train_attention_on_7")
    assert room.training.task_combo.currentData() == room.session.text.split()[2].rstrip(":")


@pytest.mark.parametrize("size", SIZES[:2], ids=lambda size: f"{size[0]}x{size[1]}")
def test_switching_the_layer_type_inside_the_cell_never_leaves_a_plot_without_height(room, qtbot, size):
    width, height, scale, focus = size
    layout = room.window_layout
    try:
        layout.set_focus(focus)
        layout.set_scale(scale, announce=False)
        room.resize(width, height)
        open_lesson(qtbot, room, "forgetting_simple_rnn")
        cell = room.cell_panel
        for kind in ("lstm", "gru", "simple_rnn", "lstm"):
            take(qtbot, room, steps.Step("type", {"layer": room.session.spec().layer_names()[0], "to": kind}))
            gates = kind != "simple_rnn"
            assert cell.gate_plot.isVisible() == gates, kind
            for plot in (cell.gate_plot, cell.saturation_plot, cell.gradient_plot):
                if plot.isVisible():
                    assert plot.vb.size().height() >= MIN_VIEW[1] - 1, (kind, plot.titleLabel.text)
            if not gates:
                assert "no gates" in cell.state_label.text()
    finally:
        layout.set_focus(False)
        layout.set_scale(1.0, announce=False)


def wheel(widget, position, delta: int, modifiers) -> None:
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    event = QWheelEvent(QPointF(position), QPointF(widget.mapToGlobal(position)), QPoint(0, 0), QPoint(0, delta),
                        Qt.MouseButton.NoButton, modifiers, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, event)


def test_the_wheel_scrolls_the_column_ctrl_wheel_zooms_and_a_double_click_shows_the_plot_whole(room, qtbot):
    from PySide6.QtCore import Qt
    layout = room.window_layout
    try:
        layout.set_focus(True)
        layout.set_scale(1.25, announce=False)
        room.resize(1024, 768)
        open_lesson(qtbot, room, "average_pooling")
        bar = layout.plots_scroll.verticalScrollBar()
        assert bar.maximum() > 0, "the column must scroll at this size"
        bar.setValue(0)
        heatmap = room.plots.heatmap.plot
        view = room.plots.time_view
        centre = view.mapFromScene(heatmap.vb.sceneBoundingRect().center())
        before = heatmap.vb.viewRange()
        wheel(view.viewport(), centre, -120, Qt.KeyboardModifier.NoModifier)
        assert bar.value() > 0 and heatmap.vb.viewRange() == before          # scrolled, not zoomed
        bar.setValue(0)
        centre = view.mapFromScene(heatmap.vb.sceneBoundingRect().center())
        wheel(view.viewport(), centre, 120, Qt.KeyboardModifier.ControlModifier)
        assert bar.value() == 0 and heatmap.vb.viewRange() != before         # zoomed in, not scrolled
        qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=centre)
        np.testing.assert_allclose(heatmap.vb.viewRange(), before, atol=0.05)
    finally:
        layout.set_focus(False)
        layout.set_scale(1.0, announce=False)


def test_the_sequence_picker_counts_the_steps_typed_and_says_when_a_line_is_cut(room, qtbot):
    open_lesson(qtbot, room, "forgotten_mask_post")
    combo = room.plots.row_combo
    room.session.set_text("5 12 7 3 9\n8\n")
    settle(qtbot, room)
    assert [combo.itemText(i) for i in range(combo.count())] == ["line 1 (5 steps)", "line 2 (1 step)"]
    room.session.set_text("5 12 7 3 9 41\n8\n")                 # a sixth token typed
    settle(qtbot, room)
    assert combo.itemText(0) == "line 1 (6 steps)"
    editor = room.sequence_editor
    editor.maxlen_spin.setValue(3)
    settle(qtbot, room)
    assert combo.itemText(0) == "line 1 (3 of 6 steps: truncated)" and combo.itemText(1) == "line 2 (1 step)"


def test_the_compare_delta_of_a_layer_without_a_time_axis_runs_along_its_units(room, qtbot, engine):
    open_lesson(qtbot, room, "forgotten_mask_post")
    panel = room.training
    panel.pin()
    before = room.session.spec()
    take(qtbot, room, steps.Step("param", {"layer": "embedding_1", "param": "mask_zero", "value": True}))
    room.session.select_layer("lstm_1")
    row = room.session.selected_row(room.session.result)
    plot = panel.delta_plot.getPlotItem()
    image = panel.delta_image.image
    assert image.shape == (1, 32) and plot.getAxis("bottom").labelText == "unit"
    np.testing.assert_allclose(plot.vb.viewRange()[0], (-0.5, 31.5), atol=1e-6)
    text = room.session.text
    expected = (keras_layer_output(engine, room.session.spec(), text, "lstm_1", row)
                - keras_layer_output(engine, before, text, "lstm_1", row))
    np.testing.assert_allclose(image[0], expected, atol=TOL)
    panel.unpin()


def test_the_unsaved_question_for_a_keras_model_names_the_stack_file_that_save_writes(make_window, qtbot, tmp_path):
    window = make_window()
    model = tmp_path / "m.keras"
    window.session.load(presets.load_preset("last_state"), trusted=True, source=str(model))
    window.session.set_text("1 2 3\n")
    window.questions.unsaved_answer = "cancel"
    assert not window.files.maybe_discard()
    assert window.questions.unsaved == ["m.keras as m.stack.json (the model file itself is not changed)"]
