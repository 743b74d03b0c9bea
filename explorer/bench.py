"""`python -m explorer.bench`: how fast the explorer feels. A benchmark, not a test: it prints one JSON object.

It drives the real window offscreen (it sets QT_QPA_PLATFORM=offscreen itself) and the core:

- window_visible_s / first_result_s: a fresh process (`--phase startup`) from its own start (the parent writes
  the wall clock into EXPLORER_BENCH_SPAWNED just before spawning it; /proc/self/stat gives a second opinion)
  to the main window's first show event, and to the first run plotted.
- sequence_edit_ms: a change to the sequence text → plots updated (the window's runFinished handled, which
  comes after PlotsPanel.show_result), on the default stack of the README: the average_pooling preset with
  8 sequences × 50 tokens and LSTM 64.
- architecture_edit_ms: a change of units, layer type or return_sequences → plots updated, same stack.
- heavy_ratio_vs_keras: Engine.run of 256 × 1000 tokens, LSTM 256, with every probe output ÷ a plain Keras
  forward pass (model.predict_on_batch) of the same model on the same padded batch, best of N each.
- max_ui_stall_ms: the longest gap between ticks of a 5 ms QTimer on the GUI thread while the window runs
  that heavy batch in its worker and shows the result.
- bucket_speedup / padding_waste: lengths 1–1000 with a long (lognormal) tail, pad mode ÷ bucket mode.
- peak_rss_mb: the process's peak resident memory (VmHWM) over everything above; peak_rss_mb_core after the
  core phase alone (the heavy run, its Keras twin and the bucket runs), which runs first.

`python -m explorer.bench --quick` runs fewer repetitions (a smoke run).
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

SPAWNED_ENV = "EXPLORER_BENCH_SPAWNED"
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

    from .core.presets import load_preset
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
        window.runFinished.connect(self._finished)

    def _finished(self, reply) -> None:
        self.replies.append((time.perf_counter(), reply))
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
    """In a fresh process: start → window shown → first result plotted."""
    spawned = float(os.environ.get(SPAWNED_ENV, "nan"))
    age_at_entry = _process_age_s()
    t_entry = time.time()
    app = _qt_app()
    from PySide6.QtCore import QEvent, QObject

    from .core import presets
    from .qt.app import WINDOW_SIZE
    from .qt.main_window import MainWindow
    marks: dict[str, float] = {}

    class Watch(QObject):
        def eventFilter(self, watched, event):
            if event.type() == QEvent.Type.Show and "shown" not in marks:
                marks["shown"] = time.time()
                marks["tf_at_show"] = "tensorflow" in sys.modules
            return False

    reference = presets.PREFIX + presets.DEFAULT
    spec = presets.load_stack(reference)
    marks["imported"] = time.time()
    window = MainWindow(spec, trusted=True, source=reference)
    marks["constructed"] = time.time()
    watch = Watch()
    window.installEventFilter(watch)
    runs = _Runs(window)
    from PySide6.QtCore import QTimer
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
        "imports_done_s": round(marks["imported"] - origin, 3),
        "window_constructed_s": round(marks["constructed"] - origin, 3),
        "proc_age_at_entry_s": None if age_at_entry is None else round(age_at_entry, 3),
        "tensorflow_import_started_when_shown": bool(marks.get("tf_at_show")),
        "max_ui_stall_startup_ms": round(max(gaps), 1),   # shown → first result: TensorFlow loads meanwhile
    }


def run_startup(repeats: int) -> dict:
    best = None
    seen = []
    for _ in range(repeats):
        env = dict(os.environ, **{SPAWNED_ENV: repr(time.time())})
        done = subprocess.run([sys.executable, "-m", "explorer.bench", "--phase", "startup"], env=env,
                              capture_output=True, text=True, timeout=300)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            raise RuntimeError(f"the startup phase failed:\n{done.stderr[-3000:]}")
        found = json.loads(lines[-1])
        seen.append(found)
        if best is None or found["first_result_s"] < best["first_result_s"]:
            best = found
    best = dict(best)
    best["window_visible_s_all"] = [item["window_visible_s"] for item in seen]
    best["max_ui_stall_startup_ms_all"] = [item["max_ui_stall_startup_ms"] for item in seen]
    best["first_result_s_all"] = [item["first_result_s"] for item in seen]
    return best


def phase_window(edits: int) -> dict:
    """Sequence and architecture edits in one window, then the heavy batch with a 5 ms ticker."""
    import numpy as np
    app = _qt_app()
    from PySide6.QtGui import QTextCursor

    from .qt.app import WINDOW_SIZE
    from .qt.main_window import MainWindow

    spec = default_stack()
    window = MainWindow(spec, trusted=True, source=None)
    runs = _Runs(window)
    window.resize(*WINDOW_SIZE)
    window.show()
    _, reply = runs.wait(1)
    assert reply.ok, reply.error
    rng = np.random.default_rng(SEED + 1)
    editor = window.sequence_editor.text_edit

    # sequence edits: replace a token (same length), append one, or drop the last token of a line
    sequence_ms, kinds = [], []
    for i in range(edits + 3):   # the first 3 are a warm-up, not counted
        lines = editor.toPlainText().split("\n")
        rows = [n for n, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")]
        line_no = int(rng.choice(rows))
        words = lines[line_no].split()
        kind = ("replace", "replace", "append", "drop")[i % 4] if len(words) > 2 else "append"
        if kind == "replace":
            k = int(rng.integers(len(words)))
            words[k] = str(int(rng.integers(1, 1000)))
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
            kinds.append(kind)

    # architecture edits: units (a new value each time), layer type, return_sequences
    stack = window.stack_editor
    arch: dict[str, list[float]] = {"units": [], "type": [], "return_sequences": []}
    all_arch = []
    units = 64
    types = ["gru", "simple_rnn", "lstm"]
    for i in range(edits + 2):
        recurrent = next(card for card in stack.cards if card.layer.is_recurrent)
        kind = ("units", "type", "return_sequences")[i % 3]
        if kind == "units":
            units += 1
            ms, reply = _edit_and_wait(runs, lambda card=recurrent, value=units:
                                       card.param_widget("units").setValue(value))
        elif kind == "type":
            new_type = types[(i // 3) % 3]
            combo = recurrent.type_combo
            ms, reply = _edit_and_wait(runs, lambda combo=combo, value=new_type:
                                       combo.setCurrentIndex(combo.findData(value)))
        else:
            box = recurrent.param_widget("return_sequences")
            ms, reply = _edit_and_wait(runs, lambda box=box: box.setChecked(not box.isChecked()))
        if i >= 2:
            arch[kind].append(ms)
            all_arch.append(ms)
        if kind == "return_sequences" and not box.isChecked():
            # return_sequences off before global average pooling is refused at once, with the reason; turning
            # it back on is counted too (the engine still holds that model: no rebuild, no retrace)
            ms, reply = _edit_and_wait(runs, lambda box=box: box.setChecked(True))
            assert reply.ok, reply.error
            if i >= 2:
                arch[kind].append(ms)
                all_arch.append(ms)

    window_numbers = {
        "sequence_edit_ms_p50": _percentile(sequence_ms, 50),
        "sequence_edit_ms_p95": _percentile(sequence_ms, 95),
        "sequence_edit_count": len(sequence_ms),
        "architecture_edit_ms_p50": _percentile(all_arch, 50),
        "architecture_edit_ms_p95": _percentile(all_arch, 95),
        "architecture_edit_count": len(all_arch),
        "architecture_edit_ms_by_kind": {kind: {"p50": _percentile(v, 50), "p95": _percentile(v, 95), "n": len(v)}
                                         for kind, v in arch.items()},
    }
    window_numbers.update(_heavy_in_window(app, window, runs))
    _close(window)
    return window_numbers


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
    started = time.perf_counter()
    finished, reply = runs.wait(count, timeout_s=300)
    ticks.append(time.perf_counter())
    for _ in range(3):                       # the repaint that shows the result
        app.processEvents()
    ticks.append(time.perf_counter())
    ticker.stop()
    assert reply.ok, reply.error
    gaps = [((a - began) * 1000, (b - a) * 1000) for a, b in zip(ticks, ticks[1:])]
    if os.environ.get("EXPLORER_BENCH_DEBUG"):
        print("stalls > 30 ms (ms after start, length):", [(round(a), round(g)) for a, g in gaps if g > 30],
              "result at", round((finished - began) * 1000), file=sys.stderr)
    in_worker = [g for a, g in gaps if began + (a + g) / 1000 <= finished]
    return {"max": round(max(g for _, g in gaps), 1), "p99": _percentile([g for _, g in gaps], 99),
            "max_in_worker": round(max(in_worker), 1) if in_worker else None,
            "start_ms": round((started - began) * 1000, 1), "seconds": round(finished - began, 3)}


def _heavy_in_window(app, window, runs: _Runs) -> dict:
    """The heavy batch in the window. First the document is loaded (1 MB of text into the editor; the stack is
    built and traced and the batch runs), then it runs again from the Run button: the 5 ms timer on the GUI
    thread must keep ticking while the worker computes, and while the result is shown."""
    spec = heavy_stack()
    load = _ticking(app, runs, lambda: window.set_document(spec, trusted=True, source=None), len(runs.replies) + 1)
    _settle()
    rerun = _ticking(app, runs, lambda: window.run_now(asked=True), len(runs.replies) + 1)
    _settle()
    return {
        "max_ui_stall_ms": rerun["max"],
        "max_ui_stall_in_worker_ms": rerun["max_in_worker"],
        "ui_stall_p99_ms": rerun["p99"],
        "heavy_in_window_s": rerun["seconds"],
        "max_ui_stall_load_ms": load["max"],
        "heavy_load_set_document_ms": load["start_ms"],
        "heavy_load_in_window_s": load["seconds"],
    }


def phase_core(repeats: int) -> dict:
    """The heavy run against plain Keras, and pad vs bucket on long-tailed lengths."""
    import numpy as np

    from .core import backend
    from .core.run import Engine
    (getattr(backend, "load", None) or backend.tensorflow)()   # (older trees: tensorflow())
    engine = Engine()
    spec = heavy_stack()
    result = engine.run(spec, trust=True)
    model = engine.built_for(spec).model
    batch = result.input
    model.predict_on_batch(batch)                 # warm-up: Keras traces its predict function
    engine_s, keras_s = [], []
    for _ in range(repeats):                      # interleaved, so that noise hits both alike
        started = time.perf_counter()
        engine.run(spec, trust=True)
        engine_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        model.predict_on_batch(batch)
        keras_s.append(time.perf_counter() - started)
    keras_out = np.asarray(model.predict_on_batch(batch))
    agree = float(np.max(np.abs(keras_out - result.layers[-1].output)))
    numbers = {
        "heavy_engine_s": round(min(engine_s), 3),
        "heavy_keras_s": round(min(keras_s), 3),
        "heavy_ratio_vs_keras": round(min(engine_s) / min(keras_s), 3),
        "heavy_engine_s_all": [round(s, 3) for s in engine_s],
        "heavy_keras_s_all": [round(s, 3) for s in keras_s],
        "heavy_max_abs_diff_vs_keras": agree,
        "heavy_timing_ms": {k: round(v, 1) for k, v in result.timing_ms.items()},
    }
    del result

    for units, suffix in ((64, ""), (256, "_lstm256")):
        numbers.update(_bucket_numbers(engine, units, repeats, suffix))
    return numbers


def _bucket_numbers(engine, units: int, repeats: int, suffix: str) -> dict:
    """pad vs bucket (width 64) on 256 sequences of long-tailed lengths, the default stack with `units`."""
    import numpy as np
    rng = np.random.default_rng(SEED + 3)
    lengths = long_tail_lengths(256, rng)
    spec = default_stack(units)
    spec.sequences = token_lines(len(lengths), lengths, rng)
    spec.batching.bucket_width = 64
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
        "bucket_speedup_ideal": round(1 / (1 - waste), 3),
        "bucket_speedup_ideal_cells": round((1 - outcome["bucket"].computed_padding) / (1 - waste), 3),
        "bucket_computed_padding": round(outcome["bucket"].computed_padding, 4),
        "bucket_pieces": int(len(set(((outcome["pad"].lengths - 1) // 64).tolist()))),
        "bucket_pad_s": round(min(times["pad"]), 3),
        "bucket_bucket_s": round(min(times["bucket"]), 3),
    }
    if not suffix:
        found["bucket_setup"] = {"sequences": int(len(lengths)), "median_length": int(np.median(lengths)),
                                 "max_length": int(lengths.max()), "bucket_width": 64, "units": units}
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
    versions = {}
    for name in ("tensorflow", "keras", "PySide6", "pyqtgraph", "numpy"):
        module = sys.modules.get(name)
        versions[name] = getattr(module, "__version__", None) if module else None
    info["versions"] = versions
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m explorer.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--phase", choices=("all", "startup", "window", "core"), default="all")
    parser.add_argument("--edits", type=int, default=36, help="edits of each kind (at least 30 for the report)")
    parser.add_argument("--repeats", type=int, default=5, help="heavy and bucket runs (best of)")
    parser.add_argument("--startups", type=int, default=3, help="fresh processes for the start-up times")
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer edits and repeats")
    args = parser.parse_args(argv)
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


def _main(args) -> int:
    if args.quick:
        args.edits, args.repeats, args.startups = 6, 1, 1
    if args.phase == "startup":
        print(json.dumps(phase_startup()))
        return 0
    report: dict = {}
    if args.phase in ("all",):
        report.update(run_startup(args.startups))
    if args.phase in ("all", "core"):      # first: its arrays are gone before the window's heavy run
        report.update(phase_core(args.repeats))
        report["peak_rss_mb_core"] = _peak_rss_mb()
    if args.phase in ("all", "window"):
        report.update(phase_window(args.edits))
    report["peak_rss_mb"] = _peak_rss_mb()
    report["machine"] = machine()
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
