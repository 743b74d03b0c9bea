"""`explorer.explore()` opens the window on a model in memory (through a temporary .keras file read in the
engine) or a stack, with the sequences and batching given; from a script it blocks until the window closes."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import keras
import numpy as np

import explorer

ROOT = Path(__file__).resolve().parents[2]
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


def test_explore_in_ipython_with_gui_qt_returns_the_live_window(qtbot, monkeypatch):
    shell = types.SimpleNamespace(active_eventloop="qt")       # what `%gui qt` leaves on IPython's shell
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    window = explorer.explore("preset:last_state", "1 2\n3 4 5 6 7\n", maxlen=4, truncating="pre")
    try:
        assert window.session.document.batching.maxlen == 4
        assert window.session.document.batching.truncating == "pre"
        assert window.session.text == "1 2\n3 4 5 6 7\n"
        qtbot.waitUntil(lambda: window.session.result is not None, timeout=TIMEOUT_MS)   # the loop runs on
        assert window.isVisible()
    finally:
        window.close()


SCRIPT = '''
import explorer
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

def close_when_run():
    windows = [w for w in QApplication.topLevelWidgets() if w.isVisible() and hasattr(w, "session")]
    if windows and windows[0].session.result is not None:
        print("layers:", " ".join(windows[0].session.document.layer_names()))
        windows[0].close()
    else:
        QTimer.singleShot(100, close_when_run)

app = QApplication([])
QTimer.singleShot(100, close_when_run)
explorer.explore("preset:last_state")      # at top level: no `if __name__ == "__main__":` guard
print("closed")
'''


def test_a_script_without_a_main_guard_runs_once(tmp_path):
    script = tmp_path / "look.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("layers:") == 1 and done.stdout.rstrip().endswith("closed"), done.stdout
