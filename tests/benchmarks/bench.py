"""`python -m tests.benchmarks.bench` (from the repository root): how fast the explorer feels. A benchmark, not
a test (pytest does not collect it): it prints one JSON line.

It drives the real window offscreen (it sets QT_QPA_PLATFORM=offscreen itself), whose engine runs in its own
process, and the core in-process for the Keras references:

- window_visible_s / first_result_s: a fresh process (`--phase startup`) from its own start (the parent writes
  the wall clock into EXPLORER_BENCH_SPAWNED just before spawning it) to the window's first show event, and to
  the first run plotted; max_ui_stall_startup_ms: the longest gap of a 5 ms QTimer from show to first result.
- plain_script_s: a fresh process that imports TensorFlow, builds the default stack in plain Keras and predicts
  once, timed the same way in the same benchmark run; first_result_ratio = first_result_s ÷ plain_script_s.
- sequence_edit_ms: a change to the sequence text → plots updated (the window's runFinished, which comes
  after the plots), on the default stack: the average_pooling preset, 8 sequences × 50 tokens, LSTM 64.
- rebuild_ms: a change of units, layer type or bidirectional → plots updated, right after the previous result
  (no pause: the engine has no idle time to prepare anything); every one a model the engine has never built
  (units only grow). cache_hit_ms: units set back to the value before (a model it keeps).
- edit_ms: one action on a layer card, drawn at random (seed `edit_setup.seed`) from what a person does with
  the default stack: a units spin box's step, a typed units value, the recurrent type drop-down, the
  bidirectional or go_backwards check box, the pooling drop-down, the embedding's or the head's spin box step;
  a pause of `think_s` before each (the engine prepares the neighbours of what is on screen meanwhile) → plots
  updated. Each edit is counted by where its model came from (the run's model_source): built for it, kept from
  an earlier edit (a cache hit), or prepared while idle (prepared_share). typed_value_ms: the typed units values
  alone (no preparation guesses them). keras_fresh_ms: plain Keras building the same models (keras.Sequential)
  and calling predict_on_batch once on the same padded batch (build + trace + first call), in another process
  of the same benchmark run; rebuild_ratio_vs_keras = edit_ms_p50 ÷ keras_fresh_ms_p50.
- heavy_ratio_vs_keras: the window's run of 256 × 1000 tokens, LSTM 256, from the request to every output
  having arrived in the window process ÷ plain Keras predict_on_batch of the same model on the same padded
  batch (in another process), best of N each. max_ui_stall_ms: the longest gap of a 5 ms QTimer during those
  runs and the display of their results (max_ui_stall_runs_ms, per run) and while the 1 MB document is loaded
  and first run (max_ui_stall_load_ms);
  window_rss_mb: the window process's peak resident memory by the end of it.
- oversize_refusal_s: units 4096 and 500 × 300 tokens → the refusal shown.
- bucket_speedup: lengths 1–1000 with a long (lognormal) tail, pad time ÷ bucket time in the engine;
  bucket_speedup_target = 0.5 × 1/(1 − padding_waste).

`--quick` runs fewer repetitions (a smoke run).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
import types

SPAWNED_ENV = "EXPLORER_BENCH_SPAWNED"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE = "tests.benchmarks.bench"
SEED = 1234


def _percentile(values: list[float], q: float) -> float:
    import numpy as np
    return round(float(np.percentile(np.asarray(values, dtype=float), q)), 2) if values else float("nan")


def _process_age_s() -> float | None:
    """Seconds since this process started, from /proc (resolution: one clock tick, usually 10 ms)."""
    try:
        with open("/proc/self/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])            # field 22 of the whole line: starttime
        with open("/proc/uptime") as handle:
            uptime = float(handle.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _peak_rss_mb() -> float:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    import resource
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# --- stacks ---

def token_lines(rows: int, lengths, rng) -> str:
    import numpy as np
    lengths = np.broadcast_to(np.asarray(lengths), (rows,))
    return "\n".join(" ".join(map(str, rng.integers(1, 1000, int(n)).tolist())) for n in lengths) + "\n"


def default_stack(units: int = 64, rows: int = 8, steps: int = 50):
    """The README's default stack: average_pooling with LSTM `units` and rows × steps random token ids."""
    import numpy as np

    from explorer.core.presets import load_preset
    spec = load_preset("average_pooling")
    spec.layers[1].params["units"] = units
    spec.sequences = token_lines(rows, steps, np.random.default_rng(SEED))
    return spec


def long_tail_lengths(count: int, rng):
    """Lengths 1–1000 with a long tail: lognormal, median about 60."""
    import numpy as np
    return np.clip(np.round(rng.lognormal(mean=np.log(60), sigma=1.0, size=count)), 1, 1000).astype(int)


# --- Qt helpers ---

def _close(window) -> None:
    """Closes a bench window without a question about unsaved edits (it would wait for an answer)."""
    files = getattr(window, "files", None)
    if files is not None and hasattr(files, "ask_unsaved"):
        files.ask_unsaved = lambda *_args: "discard"
    window.close()
    window.deleteLater()            # gone before the application is: Qt tears down in order at exit
    from PySide6.QtCore import QCoreApplication, QEvent
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def _qt_app():
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtWidgets import QApplication
    return QApplication.instance() or QApplication([sys.argv[0]])


class _Runs:
    """Collects the window's runFinished replies with the time each was handled."""

    def __init__(self, window):
        from PySide6.QtCore import QEventLoop
        self.window = window
        self.replies: list[tuple[float, object]] = []
        self._loop = QEventLoop()
        self._wanted = 0
        window.runs.runFinished.connect(self._finished)

    def _finished(self, reply) -> None:
        """Keeps what the figures need, not the result: its arrays' shared block goes back to the engine."""
        value = reply.value
        run_ms = value.timing_ms["run"] if reply.ok and hasattr(value, "timing_ms") else None
        kept = types.SimpleNamespace(ok=reply.ok, error=reply.error, elapsed_ms=reply.elapsed_ms, run_ms=run_ms,
                                     model_source=getattr(value, "model_source", None))
        self.replies.append((time.perf_counter(), kept))
        if len(self.replies) >= self._wanted and self._loop.isRunning():
            self._loop.quit()

    def wait(self, count: int, timeout_s: float = 120.0) -> tuple[float, object]:
        """Runs the event loop (blocking, no busy wait) until `count` replies have arrived; returns the last."""
        from PySide6.QtCore import QTimer
        if len(self.replies) < count:
            self._wanted = count
            guard = QTimer()
            guard.setSingleShot(True)
            guard.timeout.connect(self._loop.quit)
            guard.start(int(timeout_s * 1000))
            self._loop.exec()
            guard.stop()
        if len(self.replies) < count:
            raise TimeoutError(f"no run finished within {timeout_s:.0f} s")
        return self.replies[count - 1]


def _settle() -> None:
    """Lets the window paint what the last result changed (a person does not edit within a millisecond of a
    result), so that an edit's time does not include the previous result's repaint."""
    from PySide6.QtWidgets import QApplication
    for _ in range(3):
        QApplication.processEvents()
        QApplication.sendPostedEvents()


def _edit_and_wait(runs: _Runs, edit) -> tuple[float, object]:
    _settle()
    count = len(runs.replies) + 1
    started = time.perf_counter()
    edit()
    finished, reply = runs.wait(count)
    return (finished - started) * 1000, reply


# --- phases ---

def phase_startup() -> dict:
    """In a fresh process, as `python main.py` does it: the engine starts, then the window; start → window
    shown → first result plotted."""
    spawned = float(os.environ.get(SPAWNED_ENV, "nan"))
    age_at_entry = _process_age_s()
    t_entry = time.time()
    from explorer.engine.client import shared_client
    shared_client()                              # as open_window: Keras loads in the engine meanwhile
    app = _qt_app()
    from PySide6.QtCore import QEvent, QObject, QTimer

    from explorer.core import presets
    from explorer.qt.app import WINDOW_SIZE
    from explorer.qt.main_window import MainWindow
    marks: dict[str, float] = {}

    class Watch(QObject):
        def eventFilter(self, watched, event):
            if event.type() == QEvent.Type.Show and "shown" not in marks:
                marks["shown"] = time.time()
            return False

    reference = presets.PREFIX + presets.DEFAULT
    window = MainWindow(presets.load_stack(reference), trusted=True, source=reference)
    watch = Watch()
    window.installEventFilter(watch)
    runs = _Runs(window)
    ticks: list[float] = []
    ticker = QTimer()
    ticker.setInterval(5)
    ticker.timeout.connect(lambda: ticks.append(time.perf_counter()))
    window.resize(*WINDOW_SIZE)
    window.show()
    ticker.start()
    ticks.append(time.perf_counter())
    app.processEvents()
    finished, reply = runs.wait(1)
    ticker.stop()
    first_result = time.time() - (time.perf_counter() - finished)
    gaps = [(b - a) * 1000 for a, b in zip(ticks, ticks[1:] + [finished])]
    _close(window)
    origin = t_entry - (age_at_entry or 0.0) if math.isnan(spawned) else spawned
    return {
        "window_visible_s": round(marks["shown"] - origin, 3),
        "first_result_s": round(first_result - origin, 3),
        "first_result_ok": bool(reply.ok),
        "interpreter_start_s": round(t_entry - origin, 3),
        "max_ui_stall_startup_ms": round(max(gaps), 1),
    }


PLAIN_SCRIPT = """
import os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras
spec = {spec}
layers = spec["layers"]
model = keras.Sequential([
    keras.Input((None,), dtype="int32"),
    keras.layers.Embedding(spec["input"]["vocab_size"], layers[0]["output_dim"], mask_zero=True),
    keras.layers.LSTM(layers[1]["units"], return_sequences=True),
    keras.layers.GlobalAveragePooling1D(),
    keras.layers.Dense(layers[3]["units"], activation=layers[3]["activation"]),
])
lines = [l for l in spec["sequences"].splitlines() if l.strip() and not l.startswith("#")]
batch = keras.utils.pad_sequences([[int(t) for t in l.split()] for l in lines], padding="post")
model.predict(batch, verbose=0)
print(time.time())
"""


def plain_script_s() -> float:
    """A fresh process that imports TensorFlow, builds the default stack in plain Keras and predicts once."""
    from explorer.core import presets
    from explorer.core.spec import to_dict
    spec = to_dict(presets.load_preset(presets.DEFAULT))
    script = PLAIN_SCRIPT.replace("{spec}", repr(spec))
    started = time.time()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"the plain script failed:\n{done.stderr[-3000:]}")
    return float(done.stdout.split()[-1]) - started


def _phase_process(phase: str, timeout_s: int = 1800, extra: tuple[str, ...] = ()) -> dict:
    env = dict(os.environ, **{SPAWNED_ENV: repr(time.time())})
    done = subprocess.run([sys.executable, "-m", MODULE, "--phase", phase, *_passed_options(), *extra], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the {phase} phase failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def _keras_edits(models: list[dict]) -> dict:
    """The plain Keras reference of the one-action edits, in a process of its own."""
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(models, handle)
    try:
        return _phase_process("keras-edits", extra=("--models", handle.name))
    finally:
        os.remove(handle.name)


def run_startup(repeats: int) -> dict:
    """Start-ups and plain scripts interleaved (noise hits both alike); the best of each."""
    seen, plain = [], []
    for _ in range(repeats):
        seen.append(_phase_process("startup", 300))
        plain.append(plain_script_s())
    best = dict(min(seen, key=lambda item: item["first_result_s"]))
    best["plain_script_s"] = round(min(plain), 3)
    best["first_result_ratio"] = round(best["first_result_s"] / min(plain), 3)
    best["plain_script_s_all"] = [round(value, 3) for value in plain]
    for key in ("window_visible_s", "first_result_s", "max_ui_stall_startup_ms"):
        best[f"{key}_all"] = [item[key] for item in seen]
    best["max_ui_stall_startup_ms"] = max(item["max_ui_stall_startup_ms"] for item in seen)
    return best


def phase_window(edits: int, repeats: int, think_s: float) -> dict:
    """In a process without Keras: sequence edits, rebuilds and cache hits, the one-action edits, the oversized
    refusal, then the heavy batch with a 5 ms ticker."""
    import numpy as np
    app = _qt_app()
    from PySide6.QtGui import QTextCursor

    from explorer.qt.app import WINDOW_SIZE
    from explorer.qt.main_window import MainWindow

    window = MainWindow(default_stack(), trusted=True, source=None)
    runs = _Runs(window)
    window.resize(*WINDOW_SIZE)
    window.show()
    _, reply = runs.wait(1)
    assert reply.ok, reply.error
    rng = np.random.default_rng(SEED + 1)
    editor = window.sequence_editor.text_edit

    # sequence edits: replace a token (same length), append one, or drop the last token of a line
    sequence_ms = []
    for i in range(edits + 3):   # the first 3 are a warm-up, not counted
        lines = editor.toPlainText().split("\n")
        rows = [n for n, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")]
        line_no = int(rng.choice(rows))
        words = lines[line_no].split()
        kind = ("replace", "replace", "append", "drop")[i % 4] if len(words) > 2 else "append"
        if kind == "replace":
            words[int(rng.integers(len(words)))] = str(int(rng.integers(1, 1000)))
        elif kind == "append":
            words.append(str(int(rng.integers(1, 1000))))
        else:
            words.pop()
        block = editor.document().findBlockByNumber(line_no)

        def edit(block=block, text=" ".join(words)):
            cursor = QTextCursor(block)
            cursor.movePosition(QTextCursor.MoveOperation.EndOfBlock, QTextCursor.MoveMode.KeepAnchor)
            cursor.insertText(text)

        ms, reply = _edit_and_wait(runs, edit)
        assert reply.ok, reply.error
        if i >= 3:
            sequence_ms.append(ms)

    # rebuilds: units (only ever growing), layer type, bidirectional: every architecture new to the engine;
    # after each units edit, units back and forth again: models the engine keeps (cache hits)
    stack = window.stack_editor
    rebuild: dict[str, list[float]] = {"units": [], "type": [], "bidirectional": []}
    cache_ms: list[float] = []
    rebuilt_from: list[str] = []
    units = 64
    types = ["gru", "simple_rnn", "lstm"]

    def recurrent():
        return next(card for card in stack.cards if card.layer.is_recurrent)

    def set_units(value):
        return lambda: recurrent().param_widget("units").setValue(value)

    for i in range(edits + 3):
        kind = ("units", "type", "bidirectional")[i % 3]
        if kind == "units":
            units += 1
            ms, reply = _edit_and_wait(runs, set_units(units))
        elif kind == "type":
            combo = recurrent().type_combo
            value = types[(i // 3) % 3]
            ms, reply = _edit_and_wait(runs, lambda combo=combo, value=value:
                                       combo.setCurrentIndex(combo.findData(value)))
        else:
            box = recurrent().param_widget("bidirectional")
            ms, reply = _edit_and_wait(runs, lambda box=box: box.setChecked(not box.isChecked()))
        assert reply.ok, reply.error
        if i >= 3:
            rebuild[kind].append(ms)
            rebuilt_from.append(reply.model_source)
        if kind == "units" and i >= 3:
            for value in (units - 1, units):
                ms, reply = _edit_and_wait(runs, set_units(value))
                assert reply.ok, reply.error
                cache_ms.append(ms)
    every = [ms for values in rebuild.values() for ms in values]
    numbers = {
        "sequence_edit_ms_p50": _percentile(sequence_ms, 50),
        "sequence_edit_ms_p95": _percentile(sequence_ms, 95),
        "sequence_edit_count": len(sequence_ms),
        "rebuild_ms_p50": _percentile(every, 50),
        "rebuild_ms_p95": _percentile(every, 95),
        "rebuild_count": len(every),
        "rebuild_model_sources": {source: rebuilt_from.count(source) for source in sorted(set(rebuilt_from))},
        "rebuild_ms_by_kind": {kind: {"p50": _percentile(v, 50), "p95": _percentile(v, 95), "n": len(v)}
                               for kind, v in rebuild.items()},
        "cache_hit_ms_p50": _percentile(cache_ms, 50),
        "cache_hit_ms_p95": _percentile(cache_ms, 95),
        "cache_hit_count": len(cache_ms),
    }
    numbers.update(_one_action_edits(window, runs, edits, think_s))
    numbers.update(_oversize_in_window(window, runs))
    numbers.update(_heavy_in_window(app, window, runs, repeats))
    _close(window)
    return numbers


RECURRENT = ("lstm", "gru", "simple_rnn")
POOLINGS = ("global_average_pooling", "global_max_pooling")     # the ones plain Keras has, for the reference
ACTIONS = ("units_step", "typed_units", "type", "bidirectional", "go_backwards", "pooling", "embedding_step",
           "dense_step")


def _pause(seconds: float) -> None:
    """The event loop runs for `seconds` (a person looking at the plots); no busy wait."""
    from PySide6.QtCore import QEventLoop, QTimer
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


def _action(window, kind: str, rng):
    """The edit of one action on a control of the default stack's cards, as a function to call."""
    cards = window.stack_editor.cards
    recurrent = next(card for card in cards if card.layer.is_recurrent)

    def step(card, key):
        spin = card.param_widget(key)
        by = 1 if spin.value() == 1 else int(rng.choice([-1, 1]))
        return lambda: spin.stepBy(by)                    # a click on the spin box's arrow

    def pick(combo, values, current):
        value = str(rng.choice([v for v in values if v != current]))
        return lambda: combo.setCurrentIndex(combo.findData(value))

    def toggle(box):
        return lambda: box.setChecked(not box.isChecked())

    if kind == "units_step":
        return step(recurrent, "units")
    if kind == "typed_units":
        spin = recurrent.param_widget("units")
        value = int(rng.choice([v for v in range(8, 161) if v != spin.value()]))
        return lambda: spin.setValue(value)               # typed, then Enter (keyboard tracking is off)
    if kind == "type":
        return pick(recurrent.type_combo, RECURRENT, recurrent.layer.type)
    if kind in ("bidirectional", "go_backwards"):     # never both on: Keras refuses go_backwards in Bidirectional
        other = recurrent.param_widget("go_backwards" if kind == "bidirectional" else "bidirectional")
        return toggle(other if other.isChecked() else recurrent.param_widget(kind))
    if kind == "pooling":
        card = next(card for card in cards if card.layer.type in POOLINGS)
        return pick(card.type_combo, POOLINGS, card.layer.type)
    if kind == "embedding_step":
        return step(next(card for card in cards if card.layer.type == "embedding"), "output_dim")
    return step(next(card for card in cards if card.layer.type == "dense"), "units")


def _one_action_edits(window, runs: _Runs, count: int, think_s: float) -> dict:
    """`count` edits drawn at random from ACTIONS on the default stack, each after a pause of think_s."""
    import numpy as np
    window.session.load(default_stack(), trusted=True, source=None)
    runs.wait(len(runs.replies) + 1)
    rng = np.random.default_rng(SEED + 5)
    done: list[tuple[str, float, str]] = []
    engine_ms: list[tuple[str, float]] = []       # the engine's part of each edit (its task, in its process)
    models = []
    for _ in range(count):
        _pause(think_s)
        kind = str(rng.choice(ACTIONS))
        ms, reply = _edit_and_wait(runs, _action(window, kind, rng))
        assert reply.ok, reply.error
        done.append((kind, ms, reply.model_source))
        engine_ms.append((reply.model_source, reply.elapsed_ms))
        document = window.session.snapshot()
        models.append({"input": document["input"], "layers": document["layers"]})

    def figures(values):
        return {"p50": _percentile(values, 50), "p95": _percentile(values, 95), "n": len(values)}

    every = [ms for _, ms, _ in done]
    typed = [ms for kind, ms, _ in done if kind == "typed_units"]
    sources = {source: figures([ms for _, ms, s in done if s == source]) for source in ("built", "kept", "prepared")}
    return {
        "edit_setup": {"seed": SEED + 5, "think_s": think_s, "actions": list(ACTIONS)},
        "edit_ms_by_action": {kind: {**figures([ms for k, ms, _ in done if k == kind]),
                                     "prepared": sum(k == kind and s == "prepared" for k, _, s in done),
                                     "kept": sum(k == kind and s == "kept" for k, _, s in done)}
                              for kind in ACTIONS},
        "edit_ms_p50": _percentile(every, 50),
        "edit_ms_p95": _percentile(every, 95),
        "edit_count": len(every),
        "edit_ms_by_model_source": sources,
        "edit_engine_ms_p50_by_model_source": {source: _percentile([ms for s, ms in engine_ms if s == source], 50)
                                               for source in sources},
        "prepared_share": round(sources["prepared"]["n"] / max(1, len(done)), 3),
        "kept_share": round(sources["kept"]["n"] / max(1, len(done)), 3),
        "typed_value_ms_p50": _percentile(typed, 50),
        "typed_value_ms_p95": _percentile(typed, 95),
        "typed_value_count": len(typed),
        "edit_models": models,             # for the plain Keras reference (taken out of the report)
    }


def phase_keras_edits(path: str) -> dict:
    """Plain Keras, the models of the edits (a JSON file): keras.Sequential built and predict_on_batch called
    once on the default stack's padded batch, each a fresh model (build + trace + first call)."""
    import keras
    with open(path) as handle:
        models = json.load(handle)
    lines = [line for line in default_stack().sequences.splitlines() if line.strip()]
    batch = keras.utils.pad_sequences([[int(t) for t in line.split()] for line in lines], padding="post")
    for model in models[:2]:                       # warm-up: Keras's own first-use costs, not counted
        _plain_model(keras, model).predict_on_batch(batch)
    times = []
    for model in models:
        started = time.perf_counter()
        _plain_model(keras, model).predict_on_batch(batch)
        times.append((time.perf_counter() - started) * 1000)
    return {"keras_fresh_ms_p50": _percentile(times, 50), "keras_fresh_ms_p95": _percentile(times, 95),
            "keras_fresh_count": len(times), "keras_fresh_ms_all": [round(ms, 1) for ms in times]}


def _plain_model(keras, model: dict):
    """keras.Sequential of the layers the edits use, written here (independent of the explorer's build)."""
    cells = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "simple_rnn": keras.layers.SimpleRNN}
    layers = [keras.Input((None,), dtype="int32")]
    for layer in model["layers"]:
        kind = layer["type"]
        if kind == "embedding":
            layers.append(keras.layers.Embedding(model["input"]["vocab_size"], layer["output_dim"],
                                                 mask_zero=layer["mask_zero"]))
        elif kind in cells:
            cell = cells[kind](layer["units"], return_sequences=layer["return_sequences"],
                               go_backwards=layer["go_backwards"])
            layers.append(keras.layers.Bidirectional(cell) if layer["bidirectional"] else cell)
        elif kind == "global_average_pooling":
            layers.append(keras.layers.GlobalAveragePooling1D())
        elif kind == "global_max_pooling":
            layers.append(keras.layers.GlobalMaxPooling1D())
        else:
            layers.append(keras.layers.Dense(layer["units"], activation=layer.get("activation")))
    return keras.Sequential(layers)


def _oversize_in_window(window, runs: _Runs) -> dict:
    """Units 4096 and 500 × 300 tokens, then Run: how long until the refusal is on screen."""
    import numpy as np
    window.live_check.setChecked(False)
    _settle()
    started = time.perf_counter()
    card = next(card for card in window.stack_editor.cards if card.layer.is_recurrent)
    card.param_widget("units").setValue(4096)
    window.sequence_editor.text_edit.setPlainText(token_lines(500, 300, np.random.default_rng(SEED + 4)))
    count = len(runs.replies) + 1
    window.runs.run_now(asked=True)
    finished, reply = runs.wait(count)
    assert not reply.ok and "over the limit" in (reply.error or ""), reply.error
    window.live_check.setChecked(True)
    return {"oversize_refusal_s": round(finished - started, 3)}


def heavy_stack(units: int = 256, rows: int = 256, steps: int = 1000):
    import numpy as np
    spec = default_stack(units)
    spec.sequences = token_lines(rows, steps, np.random.default_rng(SEED + 2))
    return spec


def _ticking(app, runs: _Runs, start, count: int) -> dict:
    """Calls start(), then runs the event loop until the window's `count`-th reply, with a 5 ms QTimer on the
    GUI thread; returns the gaps between its ticks from start() on (a gap = the GUI thread was busy)."""
    from PySide6.QtCore import QTimer
    ticks: list[float] = []
    ticker = QTimer()
    ticker.setInterval(5)
    ticker.timeout.connect(lambda: ticks.append(time.perf_counter()))
    ticker.start()
    began = time.perf_counter()
    ticks.append(began)
    start()
    finished, reply = runs.wait(count, timeout_s=300)
    ticks.append(time.perf_counter())
    for _ in range(3):                       # the repaint that shows the result
        app.processEvents()
    ticks.append(time.perf_counter())
    ticker.stop()
    assert reply.ok, reply.error
    gaps = [(b - a) * 1000 for a, b in zip(ticks, ticks[1:])]
    return {"max": round(max(gaps), 1), "p99": _percentile(gaps, 99), "seconds": finished - began}


def _heavy_in_window(app, window, runs: _Runs, repeats: int) -> dict:
    """The heavy batch: loaded (built, traced, run), then run again from the Run button `repeats` times: the
    time until its outputs have arrived in this process, and the 5 ms timer's longest gap meanwhile."""
    heavy = heavy_stack()                  # its 1 MB of text made before the timing: the load is what is timed
    load = _ticking(app, runs, lambda: window.session.load(heavy, trusted=True, source=None),
                    len(runs.replies) + 1)
    seconds, stalls, task, forward = [], [], [], []
    for _ in range(repeats):
        _settle()
        rerun = _ticking(app, runs, lambda: window.runs.run_now(asked=True), len(runs.replies) + 1)
        seconds.append(rerun["seconds"])
        stalls.append(rerun["max"])
        reply = runs.replies[-1][1]
        task.append(reply.elapsed_ms / 1000)               # the engine's part: parse, run, diagnostics
        forward.append(reply.run_ms / 1000)                 # of which the forward pass
    return {
        "heavy_window_s": round(min(seconds), 3),
        "heavy_window_s_all": [round(value, 3) for value in seconds],
        "heavy_engine_task_s_all": [round(value, 3) for value in task],
        "heavy_forward_s_all": [round(value, 3) for value in forward],
        "max_ui_stall_ms": max(stalls + [load["max"]]),   # the heavy runs' display and the 1 MB document's load
        "max_ui_stall_runs_ms": stalls,
        "max_ui_stall_load_ms": load["max"],          # 1 MB of text into the editor, then its run
        "heavy_load_in_window_s": round(load["seconds"], 3),
        "window_rss_mb": _peak_rss_mb(),
        "window_imported_keras": any(name.split(".")[0] in ("keras", "tensorflow") for name in sys.modules),
    }


def phase_core(repeats: int) -> dict:
    """In-process Keras: the heavy batch's plain predict_on_batch (the reference of heavy_ratio_vs_keras), and
    pad vs bucket on long-tailed lengths."""
    from explorer.core import backend
    from explorer.core.run import Engine
    backend.load()
    engine = Engine()
    spec = heavy_stack()
    result = engine.run(spec, trust=True)
    model = engine.built_for(spec).model
    batch = result.input
    model.predict_on_batch(batch)                 # warm-up: Keras traces its predict function
    keras_s = []
    for _ in range(repeats):
        started = time.perf_counter()
        model.predict_on_batch(batch)
        keras_s.append(time.perf_counter() - started)
    numbers = {"heavy_keras_s": round(min(keras_s), 3), "heavy_keras_s_all": [round(s, 3) for s in keras_s],
               "heavy_timing_ms": {k: round(v, 1) for k, v in result.timing_ms.items()}}
    del result
    for units, suffix in ((64, ""), (256, "_lstm256")):
        numbers.update(_bucket_numbers(engine, units, repeats, suffix))
    return numbers


def _bucket_numbers(engine, units: int, repeats: int, suffix: str) -> dict:
    """pad vs bucket on 256 sequences of long-tailed lengths, the default stack with `units`."""
    import numpy as np
    rng = np.random.default_rng(SEED + 3)
    lengths = long_tail_lengths(256, rng)
    spec = default_stack(units)
    spec.sequences = token_lines(len(lengths), lengths, rng)
    spec.batching.bucket_width = 8
    times: dict[str, list[float]] = {"pad": [], "bucket": []}
    outcome = {}
    for mode in ("pad", "bucket"):                # warm-up: build and trace once
        spec.batching.mode = mode
        outcome[mode] = engine.run(spec, trust=True)
    for _ in range(repeats):
        for mode in ("pad", "bucket"):
            spec.batching.mode = mode
            started = time.perf_counter()
            engine.run(spec, trust=True)
            times[mode].append(time.perf_counter() - started)
    waste = outcome["pad"].padded_fraction
    found = {
        "padding_waste": round(waste, 4),
        "bucket_speedup": round(min(times["pad"]) / min(times["bucket"]), 3),
        "bucket_speedup_target": round(0.5 / (1 - waste), 3),
        "bucket_computed_padding": round(outcome["bucket"].computed_padding, 4),
        "bucket_pad_s": round(min(times["pad"]), 3),
        "bucket_bucket_s": round(min(times["bucket"]), 3),
    }
    if not suffix:
        found["bucket_setup"] = {"sequences": int(len(lengths)), "median_length": int(np.median(lengths)),
                                 "max_length": int(lengths.max()), "bucket_width": 8, "units": units}
    return {key + suffix if key.startswith("bucket") else key: value for key, value in found.items()
            if not (suffix and key == "padding_waste")}


def machine() -> dict:
    info = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    try:
        info["cpus_usable"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    try:
        with open("/proc/cpuinfo") as handle:
            info["cpu"] = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")),
                               None)
    except OSError:
        pass
    try:
        with open("/proc/loadavg") as handle:
            info["loadavg"] = handle.read().split()[:3]
    except OSError:
        pass
    from importlib import metadata
    versions = {}
    for name in ("tensorflow", "keras", "PySide6", "pyqtgraph", "numpy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    info["versions"] = versions
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.splitlines()[0])
    parser.add_argument("--phase", choices=("all", "startup", "window", "core", "keras-edits"), default="all")
    parser.add_argument("--think", type=float, default=1.5, help="seconds before each one-action edit")
    parser.add_argument("--models", help="keras-edits: the JSON file of the edits' models")
    parser.add_argument("--edits", type=int, default=36, help="edits of each kind (at least 30 for the report)")
    parser.add_argument("--repeats", type=int, default=3, help="heavy and bucket runs (best of)")
    parser.add_argument("--startups", type=int, default=3, help="fresh processes for the start-up times")
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer edits and repeats")
    args = parser.parse_args(argv)
    global _OPTIONS
    _OPTIONS = (["--edits", str(args.edits), "--repeats", str(args.repeats), "--think", str(args.think)]
                + (["--quick"] if args.quick else []))
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    scratch = None
    if "RNN_EXPLORER_STATE_DIR" not in os.environ:   # the bench windows' autosaves stay out of the user's
        import tempfile
        scratch = tempfile.mkdtemp(prefix="explorer-bench-")
        os.environ["RNN_EXPLORER_STATE_DIR"] = scratch
    try:
        return _main(args)
    finally:
        if scratch is not None:
            import shutil
            shutil.rmtree(scratch, ignore_errors=True)


_OPTIONS: list[str] = []


def _passed_options() -> list[str]:
    return _OPTIONS


def _main(args) -> int:
    if args.quick:
        args.edits, args.repeats, args.startups = 6, 1, 1
    if args.phase == "startup":
        print(json.dumps(phase_startup()))
        return 0
    if args.phase == "window":
        print(json.dumps(phase_window(args.edits, args.repeats, args.think)))
        return 0
    if args.phase == "core":
        print(json.dumps(phase_core(args.repeats)))
        return 0
    if args.phase == "keras-edits":
        print(json.dumps(phase_keras_edits(args.models)))
        return 0
    report: dict = {}
    report.update(run_startup(args.startups))
    report.update(_phase_process("core"))
    report.update(_phase_process("window"))
    report.update(_keras_edits(report.pop("edit_models")))
    report["rebuild_ratio_vs_keras"] = round(report["edit_ms_p50"] / report["keras_fresh_ms_p50"], 3)
    report["heavy_ratio_vs_keras"] = round(report["heavy_window_s"] / report["heavy_keras_s"], 3)
    report["machine"] = machine()
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
