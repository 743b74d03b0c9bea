"""The exported script is self-contained and prints the same shapes as `run --json`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from explorer import cli
from explorer.core.presets import names

ROOT = Path(__file__).resolve().parents[2]
PRESETS = ["average_pooling", "attention_pooling", "time_average_custom", "bidirectional_gru",
           "flatten_fixed_maxlen", "sensor_features", "time_distributed"]


def _shape(text: str) -> list:
    return [None if part.strip() == "None" else int(part) for part in text.strip().strip("()").split(",") if part.strip()]


def run_main(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300)


def cli_output(capsys, *args) -> str:
    """What the command line prints, run in this process (main.py runs it the same way: see run_main)."""
    code = cli.main(list(args))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


@pytest.mark.parametrize("preset", PRESETS)
def test_exported_script_prints_the_shapes_of_run_json(preset, tmp_path, capsys):
    assert preset in names()
    exported = cli_output(capsys, "export-code", f"preset:{preset}")
    script = tmp_path / "stack.py"
    script.write_text(exported)
    # The script runs on its own, from another folder, without the explorer.
    ran = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": "", "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300)
    assert ran.returncode == 0, ran.stderr
    assert "explorer" not in exported.split("\n", 1)[1]  # imports nothing of ours (past the title line)
    printed = {}
    for line in ran.stdout.splitlines()[1:]:
        name, rest = line.split(None, 1)
        symbolic, _, concrete = rest.partition(")")
        printed[name] = (_shape(symbolic + ")"), _shape(concrete))
    report = json.loads(cli_output(capsys, "run", f"preset:{preset}", "--json", "-"))
    expected = {layer["name"]: (layer["symbolic_shape"], layer["shape"]) for layer in report["layers"]}
    assert printed == expected


def test_export_code_refuses_a_bad_file_with_exit_2(tmp_path):
    bad = tmp_path / "bad.stack.json"
    bad.write_text('{"layers": [{"type": "lstm", "units": -3}]}')
    result = run_main("export-code", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip() == "error: layers[0].units: must be a positive integer, got -3"


def test_the_script_of_a_model_with_custom_expressions_loads_its_trained_weights(tmp_path):
    import keras
    import numpy as np
    from explorer.core import keras_io
    from explorer.core.presets import load_preset
    from explorer.core.run import Engine
    from explorer.core.spec import LayerSpec
    spec = load_preset("time_average_custom")               # embedding, lstm, custom (a mean over time), dense
    spec.layers.insert(2, LayerSpec("custom", {"expression": "x * 2.0"}))
    built = Engine().built_for(spec)
    rng = np.random.default_rng(0)
    for layer in built.model.layers:                         # weights the seed does not give: "trained"
        layer.set_weights([w + rng.normal(0, 0.3, w.shape).astype(w.dtype) for w in layer.get_weights()])
    path = tmp_path / "model.keras"
    keras_io.export_model(built, path)
    export = run_main("export-code", str(path), "--trust")
    assert export.returncode == 0, export.stderr
    script = tmp_path / "model.py"
    batch = [[3, 14, 15, 0], [9, 2, 6, 5]]
    script.write_text(export.stdout + f"\nimport numpy\nnumpy.save('out.npy', model.predict(numpy.array({batch})))\n")
    ran = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": "", "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300)
    assert ran.returncode == 0, ran.stderr
    expected = keras.saving.load_model(path, compile=False).predict(np.array(batch))   # plain Keras on the file
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, atol=1e-5)
