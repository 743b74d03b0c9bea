"""Any command line gives a result or the explorer's own `error:` line with exit 2 — never a traceback."""

import json

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from explorer import cli

WORDS = st.sampled_from([
    "run", "presets", "export-code", "devices", "preset:average_pooling", "preset:nope", "preset:", "--json",
    "-", "--npz", "--input", "--device", "cpu", "gpu", "/GPU:7", "tpu", "--trust", "--leak-check", "--help",
    "/nonexistent/file.stack.json", "", " ", "--", "-x", "--json=-", "--device=/CPU:0", "ü", "\x00",
])
ARGV = st.lists(st.one_of(WORDS, st.text(max_size=12)), max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=ARGV)
@example(argv=["run", "\x00"])
@example(argv=["run", "preset:average_pooling", "--json", "out\x00.json"])
def test_any_command_line_exits_0_or_2_with_one_error_line(argv, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # outputs land in a scratch folder
    monkeypatch.setattr("explorer.qt.app.open_window", lambda stack=None, screenshot=None, **options: 0)
    try:
        status = cli.main(argv)
    except SystemExit as exit_:  # --help exits 0 through argparse
        status = exit_.code
    captured = capsys.readouterr()
    assert status in (0, 2), (argv, status, captured.err)
    assert "Traceback" not in captured.err
    if status == 2:
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and len(lines[0]) > len("error: "), lines


def test_a_run_with_fuzzed_json_output_path_still_writes_valid_json(capsys, tmp_path):
    target = tmp_path / "report.json"
    assert cli.main(["run", "preset:last_state", "--json", str(target)]) == 0
    assert json.loads(target.read_text())["layers"][-1]["name"] == "dense_1"
    assert cli.main(["run", "preset:last_state", "--json", str(tmp_path / "missing" / "r.json")]) == 2
    assert capsys.readouterr().err.startswith("error: cannot write")
