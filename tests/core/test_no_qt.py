"""The core, the engine package and the command line import and run with PySide6 and pyqtgraph absent."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent('''
    import importlib, importlib.abc, pkgutil, sys

    BLOCKED = ("PySide6", "shiboken6", "pyqtgraph", "PyQt5", "PyQt6")

    class NoQt(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
            return None

    sys.meta_path.insert(0, NoQt())
    try:
        import PySide6  # noqa: F401
    except ModuleNotFoundError:
        pass
    else:
        raise SystemExit("the blocker does not work")

    import explorer.core
    modules = [info.name for info in pkgutil.walk_packages(explorer.core.__path__, "explorer.core.")]
    import explorer.engine
    engine_modules = [info.name for info in pkgutil.walk_packages(explorer.engine.__path__, "explorer.engine.")]
    for name in [*modules, *engine_modules, "explorer.cli"]:
        importlib.import_module(name)

    from explorer.core import spec
    from explorer.core.run import Engine
    stack = spec.from_dict({"input": {"kind": "tokens", "vocab_size": 20},
                            "layers": [{"type": "embedding", "output_dim": 3, "mask_zero": True},
                                       {"type": "lstm", "units": 2}, {"type": "dense", "units": 2}]})
    result = Engine().run(stack, "1 2 3\\n4\\n")
    assert result.output_shape == (2, 2), result.output_shape

    from explorer import cli
    assert cli.main(["run", "preset:last_state", "--json", "-"]) == 0

    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    assert not loaded, loaded
    print("MODULES", len(modules))
''')


def test_core_engine_and_cli_work_without_qt():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-3000:]
    count = int(done.stdout.strip().splitlines()[-1].split()[1])
    assert count >= 10          # spec, sequences, build, run, diagnose, layers, backend, leaks, codegen, presets …


def test_core_sources_never_import_qt():
    for path in (ROOT / "explorer" / "core").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for name in ("PySide6", "pyqtgraph", "PyQt"):
            assert name not in text, f"{path.name} mentions {name}"
