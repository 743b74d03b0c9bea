"""One plot package: every plot of the window is made in explorer/qt/plots/, on its shared helpers; no module
outside it subclasses or builds pyqtgraph's graphics classes (read from the source with ast)."""

from __future__ import annotations

import ast
from pathlib import Path

import explorer.qt

QT = Path(explorer.qt.__file__).resolve().parent
PLOTS = QT / "plots"


def pyqtgraph_uses(path: Path) -> list[str]:
    """'file:line what' for each class with a pyqtgraph base and each call of a pyqtgraph class (pg.PlotWidget(),
    pg.ImageItem(), … — helpers such as pg.mkPen and the pyqtgraph.exporters module are not plots)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules, names = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {alias.asname or alias.name for alias in node.names if alias.name.split(".")[0] == "pyqtgraph"}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "pyqtgraph":
            names |= {alias.asname or alias.name for alias in node.names}

    def is_graphics_class(expr: ast.expr) -> bool:
        if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id in modules:
            return expr.attr[:1].isupper()
        return isinstance(expr, ast.Name) and expr.id in names and expr.id[:1].isupper()

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and any(is_graphics_class(base) for base in node.bases):
            found.append(f"{path.name}:{node.lineno} class {node.name}")
        elif isinstance(node, ast.Call) and is_graphics_class(node.func):
            found.append(f"{path.name}:{node.lineno} {ast.unparse(node.func)}()")
    return found


def test_no_plot_is_made_outside_the_plot_package():
    outside = [use for path in sorted(QT.rglob("*.py")) if PLOTS not in path.parents for use in pyqtgraph_uses(path)]
    assert not outside, outside


def test_the_check_sees_the_plots_that_the_package_makes():
    inside = [use for path in sorted(PLOTS.rglob("*.py")) for use in pyqtgraph_uses(path)]
    made = " ".join(inside)
    for expected in ("class WrappedPlot", "class CurveWidget", "pg.ImageItem()", "pg.GraphicsLayoutWidget()"):
        assert expected in made, (expected, inside)
