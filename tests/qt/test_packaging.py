"""The wheel carries what the installed app needs: the presets, the icon and the `rnn-explorer` command.

Built from a copy of the sources (the working tree gets no build/ or *.egg-info) with the test
environment's own setuptools (`--no-build-isolation`: no network)."""

from __future__ import annotations

import configparser
import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _missing_build_tools() -> str | None:
    for module in ("setuptools", "wheel", "pip"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed in this environment, so the wheel cannot be built offline"
    return None


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    reason = _missing_build_tools()
    if reason:
        pytest.skip(reason)
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "explorer", source / "explorer",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    completed = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", str(out), str(source)],
        check=False, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    wheels = list(out.glob("rnn_shape_explorer-*.whl"))
    assert len(wheels) == 1, list(out.iterdir())
    return wheels[0]


def test_the_wheel_holds_the_presets_the_icon_and_the_command(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        presets = {Path(name).name for name in names if name.startswith("explorer/presets/")}
        expected = {path.name for path in (ROOT / "explorer" / "presets").glob("*.stack.json")}
        assert expected and presets == expected
        assert "explorer/resources/icon.svg" in names
        assert archive.read("explorer/CONTRACT.md") == (ROOT / "explorer/CONTRACT.md").read_bytes()
        assert archive.read("explorer/resources/icon.svg") == (ROOT / "explorer/resources/icon.svg").read_bytes()
        assert {"explorer/qt/undo.py", "explorer/qt/exports.py", "explorer/qt/theme.py"} <= names
        entry_points = next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
        parser = configparser.ConfigParser()
        parser.read_string(archive.read(entry_points).decode())
        assert parser["console_scripts"]["rnn-explorer"] == "explorer.cli:main"
        assert not any("__pycache__" in name or name.startswith("tests/") for name in names)


def test_the_wheel_is_typed_and_versioned(wheel):
    import tomllib
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert wheel.name.startswith(f"rnn_shape_explorer-{version}-")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert {"explorer/py.typed", "explorer/library.py", "explorer/qt/explore.py"} <= names
        metadata = next(name for name in names if name.endswith(".dist-info/METADATA"))
        assert f"Version: {version}" in archive.read(metadata).decode().splitlines()
