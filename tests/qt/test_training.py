"""The Training dock: training runs in the worker in chunks while the window stays live, the trained weights stay
with the stack (runs, undo, reset), labels that do not fit the head are underlined, and a pinned run shows Δ
where padding leaked after mask_zero is ticked."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.core.presets import load_preset
from explorer.core.run import Engine

TIMEOUT_MS = 90_000


@pytest.fixture
def win(make_window, qtbot):
    window = make_window(load_preset("train_attention_on_7"), source="preset:train_attention_on_7")
    qtbot.waitUntil(lambda: window.runs.settled and window.session.result is not None, timeout=TIMEOUT_MS)
    return window


def train(qtbot, window, steps: int) -> None:
    window.training.steps_spin.setValue(steps)
    window.training.train()
    assert window.training.running
    qtbot.waitUntil(lambda: not window.training.running and window.runs.settled, timeout=TIMEOUT_MS)


def test_training_in_the_window_keeps_the_weights_with_the_stack_and_undoes(win, qtbot, monkeypatch):
    from explorer.qt import training_panel
    monkeypatch.setattr(training_panel, "CHUNK_SECONDS", 0.0)     # one step per chunk: a run after each
    panel = win.training
    assert not win.training_dock.isHidden()          # a document with labels brings the panel forward
    untrained = win.session.result.layers[-1].output.copy()
    ticks = []
    win.runs.runFinished.connect(lambda reply: ticks.append(reply))
    train(qtbot, win, 40)
    assert len(panel.curve_loss) == 40 and len(panel.curve_accuracy) == 40
    assert panel.curve_loss[-1] < panel.curve_loss[0]
    assert "sparse categorical cross-entropy" in panel.loss_label.text()
    assert len(ticks) >= 20                           # the plots were refreshed during training, not only after
    trained = win.session.document.weights
    assert trained is not None
    # what the window shows is the stack with those weights, as a fresh engine computes it
    expected = Engine().run(win.session.spec(), win.session.text).layers[-1].output
    np.testing.assert_allclose(win.session.result.layers[-1].output, expected, atol=1e-5)
    assert np.abs(win.session.result.layers[-1].output - untrained).max() > 0.05

    assert win.history.stack.undoText() == "Train 40 steps"
    win.history.undo()
    assert win.session.document.weights is None
    qtbot.waitUntil(lambda: win.runs.settled, timeout=TIMEOUT_MS)
    np.testing.assert_allclose(win.session.result.layers[-1].output, untrained, atol=1e-6)
    win.history.redo()
    assert win.session.document.weights is trained

    panel.reset_weights()
    assert win.session.document.weights is None and panel.archived and not panel.curve_loss
    assert win.history.stack.undoText() == "Reset weights"
    win.history.undo()
    assert win.session.document.weights is trained


def test_pause_stops_after_the_chunk_in_flight(win, qtbot):
    panel = win.training
    panel.steps_spin.setValue(100_000)
    panel.train()
    qtbot.waitUntil(lambda: len(panel.curve_loss) > 0, timeout=TIMEOUT_MS)
    panel.pause()
    qtbot.waitUntil(lambda: not panel._request and win.runs.settled, timeout=TIMEOUT_MS)
    done = len(panel.curve_loss)
    assert 0 < done < 100_000 and not panel.running
    assert win.history.stack.undoText() == f"Train {done} steps"


def test_undoing_training_back_to_the_saved_weights_leaves_the_document_clean(win, qtbot):
    assert not win.session.modified and "*" not in win.windowTitle()
    train(qtbot, win, 3)
    assert win.session.modified and "*" in win.windowTitle()
    win.history.undo()
    assert win.history.stack.isClean()
    assert not win.session.modified and "*" not in win.windowTitle()
    win.history.redo()
    assert win.session.modified and "*" in win.windowTitle()
    win.training.reset_weights()                     # the seed's weights again: what the preset holds
    assert not win.session.modified and "*" not in win.windowTitle()


def test_a_label_that_does_not_fit_the_head_is_underlined(win, qtbot):
    win.session.set_text("5 12 7 | 1\n8 4 19 | 2\n")   # the head has 2 classes
    panel = win.training
    panel.train()
    qtbot.waitUntil(lambda: not panel.running, timeout=TIMEOUT_MS)
    error = win.sequence_editor.label_error
    assert (error.line, error.column) == (2, 10)
    underlined = [s for s in win.sequence_editor.text_edit.extraSelections() if s.format.toolTip() == error.problem]
    assert len(underlined) == 1 and underlined[0].cursor.selectedText() == "2"
    assert "label 2 is not a class id" in win.sequence_editor.error_label.text()


def test_pinning_then_ticking_mask_zero_shows_delta_only_on_padded_rows(make_window, qtbot):
    spec = load_preset("forgotten_mask_pre")
    window = make_window(spec, source="preset:forgotten_mask_pre")
    qtbot.waitUntil(lambda: window.runs.settled and window.session.result is not None, timeout=TIMEOUT_MS)
    panel = window.training
    panel.pin()
    lengths = window.session.result.lengths
    window.stack_editor.card("embedding_1").param_widget("mask_zero").setChecked(True)
    qtbot.waitUntil(lambda: window.runs.settled and window.session.result is not panel.pinned, timeout=TIMEOUT_MS)
    rows = {panel.delta_table.item(i, 0).text(): panel.delta_table.item(i, 1).text()
            for i in range(panel.delta_table.rowCount())}
    assert float(rows["embedding_1"]) == 0 and float(rows["lstm_1"]) > 0
    window.session.select_layer("lstm_1")
    padded = int(np.flatnonzero(lengths < lengths.max())[0])
    window.session.select_line(window.session.result.lines[padded])
    assert "Δ of" in panel.delta_title.text() and panel.delta_image.image is not None
    panel.unpin()
    assert panel.delta_table.rowCount() == 0


def test_undo_during_training_stops_it_and_keeps_the_undone_weights(win, qtbot):
    panel = win.training
    train(qtbot, win, 3)
    first = win.session.document.weights
    panel.steps_spin.setValue(100_000)
    panel.train()
    qtbot.waitUntil(lambda: len(panel.curve_loss) > 3, timeout=TIMEOUT_MS)
    win.history.undo()                          # back before the first session, while the second one runs
    assert not panel.running and win.session.document.weights is None
    qtbot.waitUntil(lambda: not win.runs.service.busy and win.runs.settled, timeout=TIMEOUT_MS)
    qtbot.wait(50)                               # the in-flight chunk's reply has been delivered (and dropped)
    assert win.session.document.weights is None and first is not None


def test_a_two_input_model_trains_in_the_window_on_the_labels_of_its_decoder_tab(make_window, qtbot):
    """Per-step labels on the target input's lines; the loss of the first step is Keras's on the same batch."""
    import keras

    from explorer.core.spec import from_dict
    from test_cell_plots import ENCODER_DECODER
    document = {**ENCODER_DECODER, "more_inputs": [{**ENCODER_DECODER["more_inputs"][0],
                                                    "sequences": "2 4 | 4 0\n6 1 8 3 5 | 1 8 3 5 0\n1 | 0\n"}]}
    window = make_window(from_dict(document), source=None)
    qtbot.waitUntil(lambda: window.runs.settled and window.session.result is not None, timeout=TIMEOUT_MS)
    built = Engine().built_for(from_dict(document))
    model = keras.Model.from_config(built.model.get_config())
    model.set_weights(built.model.get_weights())
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy")
    sources = keras.utils.pad_sequences([[3, 7, 1], [5], [2, 2, 9, 4, 1, 1, 2]], padding="post")
    targets = keras.utils.pad_sequences([[2, 4], [6, 1, 8, 3, 5], [1]], padding="post")
    labels = keras.utils.pad_sequences([[4, 0], [1, 8, 3, 5, 0], [0]], padding="post")
    expected = float(model.train_on_batch([sources, targets], labels))
    train(qtbot, window, 3)
    assert len(window.training.curve_loss) == 3, window.training.status_label.text()
    assert window.training.curve_loss[0] == pytest.approx(expected, rel=1e-5)


def test_generate_fills_every_input_of_a_model_of_several_in_one_undo_step(make_window, qtbot):
    from explorer.core import tasks
    from explorer.core.spec import from_dict
    from tests.cli.test_train_cli import TWO_INPUTS
    window = make_window(from_dict(TWO_INPUTS), source=None)
    qtbot.waitUntil(lambda: window.runs.settled and window.session.result is not None, timeout=TIMEOUT_MS)
    panel = window.training
    panel.task_combo.setCurrentIndex(panel.task_combo.findData("contains_7"))
    panel.count_spin.setValue(10)
    before = {name: window.session.text_of(name) for name in ("ids", "side", "meta")}
    panel.generate_button.click()
    expected = tasks.generate_inputs("contains_7", 10, window.session.document.all_inputs(),
                                     seed=window.session.document.seed)
    assert {name: window.session.text_of(name) for name in expected} == expected
    qtbot.waitUntil(lambda: window.runs.settled, timeout=TIMEOUT_MS)
    assert window.runs.last_reply.ok, window.session.status_text   # the three texts run together
    train(qtbot, window, 3)
    assert len(panel.curve_loss) == 3 and all(np.isfinite(panel.curve_loss))
    window.history.undo()                                          # the training, then the generated texts at once
    window.history.undo()
    assert {name: window.session.text_of(name) for name in before} == before
