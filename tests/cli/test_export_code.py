"""The exported script is self-contained and prints the same shapes as `run --json`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from explorer.core.presets import names

ROOT = Path(__file__).resolve().parents[2]
PRESETS = ["average_pooling", "attention_pooling", "time_average_custom", "bidirectional_gru",
           "flatten_fixed_maxlen", "sensor_features", "time_distributed"]


def _shape(text: str) -> list:
    return [None if part.strip() == "None" else int(part) for part in text.strip().strip("()").split(",") if part.strip()]


def run_main(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300)


@pytest.mark.parametrize("preset", PRESETS)
def test_exported_script_prints_the_shapes_of_run_json(preset, tmp_path):
    assert preset in names()
    export = run_main("export-code", f"preset:{preset}")
    assert export.returncode == 0, export.stderr
    script = tmp_path / "stack.py"
    script.write_text(export.stdout)
    # The script runs on its own, from another folder, without the explorer.
    ran = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": "", "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300)
    assert ran.returncode == 0, ran.stderr
    assert "explorer" not in export.stdout.split('"""', 2)[2]  # imports nothing of ours
    printed = {}
    for line in ran.stdout.splitlines()[1:]:
        name, rest = line.split(None, 1)
        symbolic, _, concrete = rest.partition(")")
        printed[name] = (_shape(symbolic + ")"), _shape(concrete))
    report = json.loads(run_main("run", f"preset:{preset}", "--json", "-").stdout)
    expected = {layer["name"]: (layer["symbolic_shape"], layer["shape"]) for layer in report["layers"]}
    assert printed == expected


def test_export_code_refuses_a_bad_file_with_exit_2(tmp_path):
    bad = tmp_path / "bad.stack.json"
    bad.write_text('{"layers": [{"type": "lstm", "units": -3}]}')
    result = run_main("export-code", str(bad))
    assert result.returncode == 2
    assert result.stderr.strip() == "error: layers[0].units: must be a positive integer, got -3"
