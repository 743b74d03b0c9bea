"""The window is no service locator, and the session's events never keep a closed view alive.

The rule: outside explorer/qt/main_window.py (the window's own module, which builds it and hands out its parts), no
module of explorer/ reads or sets an attribute of a MainWindow that Qt's QMainWindow does not have. A module that
needs the session, the request layer, a widget or an action takes it as a parameter; it may still use the window
as a QMainWindow (a parent, the docks, the menu bar, resize and show). A window is an expression named `window`,
`win` or `main_window`, `self.window` / `self._window`, or a parameter or variable annotated `MainWindow`;
`getattr`, `hasattr` and `setattr` with a constant name count too.
"""

from __future__ import annotations

import ast
import gc
import weakref
from pathlib import Path

from PySide6.QtWidgets import QMainWindow, QWidget

from explorer.core import presets
from explorer.session import Session

ROOT = Path(__file__).resolve().parents[2]
OWN_MODULE = "explorer/qt/main_window.py"
WINDOW_NAMES = {"window", "win", "main_window"}
QT_API = set(dir(QMainWindow))


def _window_names(tree: ast.AST) -> set[str]:
    names = set(WINDOW_NAMES)
    for node in ast.walk(tree):
        annotation, name = None, None
        if isinstance(node, ast.arg):
            annotation, name = node.annotation, node.arg
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            annotation, name = node.annotation, node.target.id
        if annotation is not None and "MainWindow" in ast.unparse(annotation).replace("QMainWindow", ""):
            names.add(name)
    return names


def _is_window(node: ast.AST, names: set[str]) -> bool:
    if isinstance(node, ast.Name):
        return node.id in names
    return (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self"
            and node.attr in {"window", "_window"})


def window_attributes(source: str) -> set[str]:
    """The attributes of a window that `source` reads or sets and that QMainWindow does not have."""
    tree = ast.parse(source)
    names = _window_names(tree)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_window(node.value, names):
            found.add(node.attr)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in {"getattr", "hasattr", "setattr"} and len(node.args) >= 2
              and _is_window(node.args[0], names) and isinstance(node.args[1], ast.Constant)):
            found.add(node.args[1].value)
    return found - QT_API


def test_the_rule_sees_the_ways_a_module_reaches_into_the_window():
    source = '''
def install(window, parent):
    window.runs.submit()                      # a part
    window.resize(10, 10)                     # Qt's own: allowed
    getattr(window, "training_dock", None)
    parent.files.load()                       # not a window
class Panel:
    def __init__(self, host: MainWindow, frame: QMainWindow):
        self.window = host
        host.session.say("hi")
        frame.show()
    def start(self):
        self.window.checkup_dock.show()
'''
    assert window_attributes(source) == {"runs", "training_dock", "session", "checkup_dock"}


def test_no_module_but_the_windows_own_reads_its_parts():
    offenders = {}
    for path in sorted((ROOT / "explorer").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative == OWN_MODULE:
            continue
        found = window_attributes(path.read_text(encoding="utf-8"))
        if found:
            offenders[relative] = sorted(found)
    assert not offenders, f"modules that reach into the window (take these as parameters instead): {offenders}"


# --- events hold bound methods weakly ---

class CountingView(QWidget):
    total = 0                                  # calls on every instance, alive or not

    def __init__(self, session: Session):
        super().__init__()
        self.calls = 0
        session.events.result.connect(self.on_result)

    def on_result(self) -> None:
        self.calls += 1
        CountingView.total += 1


def _session() -> Session:
    return Session(presets.load_preset(presets.DEFAULT), trusted=True)


def test_a_closed_and_collected_view_no_longer_receives_events(qtbot):
    session = _session()
    view = CountingView(session)
    session.events.result.emit()
    assert view.calls == 1
    alive = weakref.ref(view)
    view.close()
    del view
    gc.collect()
    assert alive() is None                     # the session did not keep it alive
    CountingView.total = 0
    session.events.result.emit()               # and emitting does not call into a dead view
    assert CountingView.total == 0


def test_a_real_view_is_not_kept_alive_by_the_session(qtbot):
    from explorer.qt.shapes_panel import ShapesPanel
    session = _session()
    panel = ShapesPanel(session)
    alive = weakref.ref(panel)
    panel.close()
    del panel
    gc.collect()
    assert alive() is None
    session.events.result.emit()               # the session goes on without it
    session.events.selection.emit()


def test_plain_functions_stay_connected_and_disconnect_works():
    session = _session()
    heard = []
    session.events.status.connect(lambda text, error: heard.append(text))   # nothing else holds the lambda
    view_calls = []

    class Listener:
        def on_status(self, text, error):
            view_calls.append(text)

    listener = Listener()
    session.events.status.connect(listener.on_status)
    gc.collect()
    session.events.status.emit("one", False)
    session.events.status.disconnect(listener.on_status)
    session.events.status.emit("two", False)
    assert heard == ["one", "two"] and view_calls == ["one"]
