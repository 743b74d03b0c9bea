"""On the command line every hostile file is refused with one `error:` line and exit 2, and nothing runs."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from explorer.core import keras_io
from explorer.core.spec import from_dict

ROOT = Path(__file__).resolve().parents[2]
SAFE = "ops.mean(x, axis=1)"


def main(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300)


def refused(ran) -> str:
    assert ran.returncode == 2, ran.stderr
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), ran.stderr
    return lines[0]


def stack(expression: str) -> dict:
    return {"input": {"kind": "tokens", "vocab_size": 10}, "sequences": "1 2\n",
            "layers": [{"type": "embedding", "output_dim": 2}, {"type": "lstm", "units": 2, "return_sequences": True},
                       {"type": "custom", "expression": expression, "name": "avg"}]}


def test_a_disguised_custom_layer_in_a_keras_file_is_refused_and_never_runs(engine, tmp_path):
    spec = from_dict(stack(SAFE))
    engine.run(spec, "1 2\n", trust=True)
    saved = tmp_path / "saved.keras"
    keras_io.export_model(engine.built_for(spec), saved)
    marker = tmp_path / "marker"
    hostile = tmp_path / "hostile.keras"
    with zipfile.ZipFile(saved) as old, zipfile.ZipFile(hostile, "w") as new:
        for info in old.infolist():
            data = old.read(info.filename)
            if info.filename == "config.json":
                config = json.loads(data)
                layer = next(layer for layer in config["config"]["layers"] if layer["config"]["name"] == "avg")
                layer.update(class_name="Dense", module="keras.layers")      # registered_name stays custom
                layer["config"]["expression"] = f'__import__("os").system("touch {marker}") or {SAFE}'
                data = json.dumps(config)
            new.writestr(info, data)
    (tmp_path / "lines.txt").write_text("1 2 3\n4 5\n")
    assert "avg" in refused(main("run", hostile, "--input", tmp_path / "lines.txt"))
    assert "avg" in refused(main("run", hostile, "--trust"))
    assert not marker.exists()


def test_export_code_needs_trust_and_the_script_checks_its_expression(tmp_path):
    marker = tmp_path / "marker"
    hostile = tmp_path / "hostile.stack.json"
    hostile.write_text(json.dumps(stack(f'__import__("os").system("touch {marker}") or {SAFE}')))
    safe = tmp_path / "safe.stack.json"
    safe.write_text(json.dumps(stack(SAFE)))
    assert "trust" in refused(main("export-code", safe))
    assert "avg: " in refused(main("export-code", hostile, "--trust"))
    exported = main("export-code", safe, "--trust")
    assert exported.returncode == 0, exported.stderr
    # the script, edited to hold the hostile expression, refuses it before it evaluates anything
    script = tmp_path / "script.py"
    assert exported.stdout.count(repr(SAFE)) == 1
    script.write_text(exported.stdout.replace(repr(SAFE), repr(f'__import__("os").system("touch {marker}")')))
    ran = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                         env={**os.environ, "PYTHONPATH": "", "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert ran.returncode != 0 and "ExpressionRefused" in ran.stderr
    assert not marker.exists()


@pytest.mark.parametrize("depth", [985, 100_000])
def test_a_deeply_nested_stack_file_is_one_error_line(tmp_path, depth):
    path = tmp_path / "deep.stack.json"
    path.write_text('{"title": ' + "[" * depth + "]" * depth + "}")
    assert "nested deeper" in refused(main("run", path))


def test_a_byte_order_mark_in_the_input_is_accepted(tmp_path):
    text = tmp_path / "bom.txt"
    text.write_bytes("\ufeff1 2 3\n4 5\n".encode("utf-8"))
    ran = main("run", "preset:average_pooling", "--input", text, "--json", "-")
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["batch"]["lengths"] == [3, 2]


def test_control_characters_are_escaped_and_long_numbers_cut(tmp_path):
    text = tmp_path / "bad.txt"
    text.write_bytes(b"1 2\x003\n" + b"9" * 4000 + b"\n")
    line = refused(main("run", "preset:average_pooling", "--input", text))
    assert "\x00" not in line and "\\x00" in line
    text.write_bytes(b"9" * 4000 + b"\n")
    line = refused(main("run", "preset:average_pooling", "--input", text))
    assert "…(4000 digits)" in line and len(line) < 400


def test_library_warnings_become_one_note_line(tmp_path):
    """Members that point outside the archive: Keras skips each with a Python warning."""
    import keras
    model = keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(10, 2, name="emb"),
                              keras.layers.LSTM(2, name="lstm")])
    model.save(tmp_path / "plain.keras")
    hostile = tmp_path / "traversal.keras"
    with zipfile.ZipFile(tmp_path / "plain.keras") as old, zipfile.ZipFile(hostile, "w") as new:
        for info in old.infolist():
            new.writestr(info, old.read(info.filename))
        new.writestr("../../outside.txt", "x")
        new.writestr("/absolute/outside.txt", "x")
    text = tmp_path / "input.txt"
    text.write_text("1 2\n")
    ran = main("run", hostile, "--input", text, "--json", tmp_path / "out.json")
    assert ran.returncode == 0, ran.stderr
    notes = [line for line in ran.stderr.splitlines() if "outside.txt" in line]
    assert len(notes) == 1 and notes[0].startswith("note: ") and "(and 1 more)" in notes[0]
    assert not (tmp_path.parent / "outside.txt").exists()


def test_run_has_the_engines_memory_limit(tmp_path):
    code = ("import resource, sys; from explorer import cli\n"
            f"sys.argv = ['rnn-explorer', 'run', 'preset:average_pooling', '--json', {str(tmp_path / 'out.json')!r}]\n"
            "assert cli.main() == 0\n"
            "print(resource.getrlimit(resource.RLIMIT_DATA)[0])")
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    from explorer.engine.client import ENGINE_MEMORY_LIMIT_MB
    assert ran.returncode == 0, ran.stderr
    assert int(ran.stdout.split()[-1]) == ENGINE_MEMORY_LIMIT_MB * 2**20
