"""`import explorer` is light (nothing heavy until a function is called) and names its public API."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import explorer

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("numpy", "keras", "tensorflow", "PySide6", "pyqtgraph", "jax", "torch")


def test_import_explorer_loads_nothing_heavy():
    script = ("import sys, explorer; explorer.__version__; explorer.__all__; "
              f"print([m for m in {HEAVY!r} if m in sys.modules])")
    loaded = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]", loaded.stdout + loaded.stderr


def test_the_public_api():
    assert explorer.__all__ == ["inspect", "doctor", "explore", "Report", "__version__"]
    assert all(getattr(explorer, name) is not None for name in explorer.__all__)
    assert explorer.__version__ == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert "explorer.__all__" in (ROOT / "README.md").read_text()
    assert (ROOT / "explorer" / "py.typed").is_file()
