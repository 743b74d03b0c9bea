"""Qt tests never touch the user's settings or state files, and never wait on a modal question."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings


@pytest.fixture(scope="session", autouse=True)
def private_settings_and_state(tmp_path_factory):
    """QSettings and the state folder (autosave, log) in temporary folders; unsaved changes are discarded
    and crashed sessions are not restored unless a test answers those questions itself."""
    from explorer.qt import files, recovery
    from explorer.qt.settings import STATE_DIR_ENV
    root = tmp_path_factory.mktemp("explorer-user")
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(root / "config"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(STATE_DIR_ENV, str(root / "state"))
        patch.setattr(files, "ask_unsaved", lambda parent, name: files.DISCARD)
        patch.setattr(recovery, "ask_restore", lambda window, session: False)
        yield root


@pytest.fixture(autouse=True)
def no_settings_from_an_earlier_test(private_settings_and_state):
    """Each test starts from no remembered settings: a window an earlier test closed (its scale, its docks) must
    not shape this test's windows."""
    from explorer.qt.settings import open_settings
    settings = open_settings()
    settings.clear()
    settings.sync()
    yield


class Questions:
    """Answers a window's questions and keeps what it was told."""

    def __init__(self):
        self.unsaved: list[str] = []
        self.unsaved_answer = "discard"
        self.alerts: list[tuple[str, str]] = []
        self.save_path: str | None = None
        self.trust_answer = False
        self.trust_asked: list[list[str]] = []

    def ask_unsaved(self, name: str) -> str:
        self.unsaved.append(name)
        return self.unsaved_answer

    def alert(self, title: str, message: str) -> None:
        self.alerts.append((title, message))

    def trust(self, expressions: list[str]) -> bool:
        self.trust_asked.append(expressions)
        return self.trust_answer


@pytest.fixture
def make_window(qtbot):
    """Builds windows whose questions a test answers (`window.questions`); closes them afterwards."""
    from explorer.core.presets import load_preset
    from explorer.qt.main_window import MainWindow
    made = []

    def make(spec=None, *, trusted: bool = True, source: str | None = "preset:average_pooling", show=True,
             **kwargs):
        questions = Questions()
        spec = spec if spec is not None else load_preset("average_pooling")
        window = MainWindow(spec, trusted=trusted, source=source, confirm_trust=questions.trust, **kwargs)
        window.questions = questions
        window.files.ask_unsaved = questions.ask_unsaved
        window.files.alert = questions.alert
        window.files.ask_save_path = lambda suggested: questions.save_path
        made.append(window)
        if show:
            window.resize(1200, 800)
            window.show()
        return window

    yield make
    for window in made:
        window.files.ask_unsaved = lambda name: "discard"
        window.close()
