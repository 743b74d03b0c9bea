"""The core, the session, the engine package and the command line import and run with PySide6 and pyqtgraph
absent; the modules of explorer/ import each other without circles."""

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
    for name in [*modules, *engine_modules, "explorer.session", "explorer.requests", "explorer.cli",
                 "explorer.library"]:
        importlib.import_module(name)

    from explorer.core import spec
    from explorer.core.run import Engine
    stack = spec.from_dict({"input": {"kind": "tokens", "vocab_size": 20},
                            "layers": [{"type": "embedding", "output_dim": 3, "mask_zero": True},
                                       {"type": "lstm", "units": 2}, {"type": "dense", "units": 2}]})
    result = Engine().run(stack, "1 2 3\\n4\\n")
    assert result.output_shape == (2, 2), result.output_shape

    from explorer.session import Session
    session = Session(stack, trusted=True)
    session.set_text("1 2 x\\n")
    assert session.state.kind == "stale" and session.text_check.errors

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


def _imports(path: Path, package: str, typing: bool) -> set[str]:
    """Every explorer module `path` imports, wherever the statement is (functions too); the imports for type
    checkers only when `typing`."""
    import ast
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if not typing and isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            node.body = []
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("explorer")}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("explorer"):
                found.add(target)
                found |= {f"{target}.{alias.name}" for alias in node.names}
    return found


def test_no_import_circles_in_explorer():
    """Outside the core even an import for type checkers counts: a module that needs the window's type is a
    sign that state belongs in the Session."""
    modules = {}
    for path in (ROOT / "explorer").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = name if parts[-1] == "__init__" else ".".join(parts[:-1])
        modules[name] = (path, package)
    graph = {name: {target for target in _imports(path, package, typing=not name.startswith("explorer.core"))
                    if target in modules and target != name}
             for name, (path, package) in modules.items()}
    for name in graph:                       # a package's own __init__ is not a circle with its modules
        graph[name] = {t for t in graph[name] if not (name.startswith(t + ".") or t.startswith(name + "."))}
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                raise AssertionError("import circle: " + " -> ".join(trail[trail.index(target):] + [name, target])
                                     if target in trail else f"import circle: {name} -> {target}")
            if target not in state:
                visit(target, trail + [name])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


def _imported_names(path: Path, package: str) -> set[str]:
    """Every module `path` imports (absolute names, relative ones resolved), wherever the statement is."""
    import ast
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            found |= {target} | {f"{target}.{alias.name}" for alias in node.names}
    return found


def test_the_layers_import_only_what_they_may():
    """The window reaches the engine only through the request layer; the core, the session and the request
    layer never import Qt."""
    qt_free = [*(ROOT / "explorer" / "core").rglob("*.py"), ROOT / "explorer" / "session.py",
               ROOT / "explorer" / "requests.py"]
    for path in qt_free:
        package = ".".join(path.relative_to(ROOT).parts[:-1])
        imported = {name.split(".")[0] for name in _imported_names(path, package)}
        assert not imported & {"PySide6", "shiboken6", "pyqtgraph", "PyQt5", "PyQt6"}, path.name
    for path in (ROOT / "explorer" / "qt").rglob("*.py"):
        package = ".".join(path.relative_to(ROOT).parts[:-1])
        engine = [name for name in _imported_names(path, package)
                  if name == "explorer.engine" or name.startswith("explorer.engine.")]
        assert not engine, f"{path.relative_to(ROOT)} imports {engine[0]}: use explorer.requests"
