"""`explorer.explore()` opens the window on a model in memory (through a temporary .keras file read in the
engine) or a stack, with the sequences and batching given; from a script it blocks until the window closes."""

from __future__ import annotations

import keras
import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

import explorer

TIMEOUT_MS = 90_000
SEQUENCES = [[3, 9, 27], [5, 25], [7, 1, 4, 2]]


def in_memory_model() -> keras.Model:
    keras.utils.set_random_seed(3)
    return keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(40, 4, name="emb"),
                             keras.layers.GRU(5, return_sequences=True, name="rnn"),
                             keras.layers.GlobalMaxPooling1D(name="pool"), keras.layers.Dense(2, name="out")])


def table_layers(window) -> list[str]:
    table = window.shapes.table
    return [table.item(row, 0).text() for row in range(table.rowCount())]


def ran(window) -> bool:
    return window.session.result is not None and window.session.document.layer_names()[0] == "emb"


def test_explore_shows_an_in_memory_model_on_my_sequences(qtbot):
    model = in_memory_model()
    window = explorer.explore(model, SEQUENCES, padding="pre", block=False)
    try:
        qtbot.waitUntil(lambda: ran(window), timeout=TIMEOUT_MS)
        assert window.isVisible()
        assert [name for name in table_layers(window) if name in ("emb", "rnn", "pool", "out")] == \
            ["emb", "rnn", "pool", "out"]
        assert window.session.document.batching.padding == "pre"
        assert window.session.text == "3 9 27\n5 25\n7 1 4 2\n"
        expected = model.predict(keras.utils.pad_sequences(SEQUENCES), verbose=0)
        np.testing.assert_allclose(window.session.result.layers[-1].output, expected, atol=1e-5)
    finally:
        window.close()


def test_explore_on_a_stack_takes_the_batching(qtbot):
    window = explorer.explore("preset:last_state", "1 2\n3 4 5 6 7\n", maxlen=4, truncating="pre", block=False)
    try:
        assert window.session.document.batching.maxlen == 4
        assert window.session.document.batching.truncating == "pre"
        assert window.session.text == "1 2\n3 4 5 6 7\n"
    finally:
        window.close()


def test_explore_from_a_script_blocks_until_the_window_closes(qtbot):
    seen = []

    def close_when_run():
        windows = [w for w in QApplication.topLevelWidgets() if w.isVisible() and hasattr(w, "session")]
        if windows and ran(windows[0]):
            seen.append(table_layers(windows[0]))
            windows[0].close()
        else:
            QTimer.singleShot(100, close_when_run)

    QTimer.singleShot(100, close_when_run)
    assert explorer.explore(in_memory_model(), SEQUENCES) is None      # not in IPython: it blocks
    assert seen and "rnn" in seen[0]
