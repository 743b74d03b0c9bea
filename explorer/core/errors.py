"""The explorer's own errors: each carries a message meant for the user."""

import re

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


class ExplorerError(Exception):
    """A user error: shown as `error: <message>`, never as a traceback."""

    def __init__(self, message: str, *, layer: str | None = None):
        super().__init__(message)
        self.message = message
        self.layer = layer

    def __str__(self) -> str:
        return self.message


class SpecError(ExplorerError):
    """An invalid stack document; `path` names the place, e.g. `layers[2].units`."""

    def __init__(self, path: str, problem: str, *, layer: str | None = None):
        super().__init__(f"{path}: {problem}" if path else problem, layer=layer)
        self.path = path
        self.problem = problem


class SequenceError(ExplorerError):
    """A bad value in the sequence text, at a 1-based line and column."""

    def __init__(self, line: int, column: int, problem: str):
        super().__init__(f"line {line}, column {column}: {problem}")
        self.line = line
        self.column = column
        self.problem = problem


class StackError(ExplorerError):
    """A stack that is valid as a document but cannot be built or run; `fix`: the one setting that mends it
    (a diagnose.Fix), when there is one."""

    def __init__(self, message: str, *, layer: str | None = None, fix=None):
        super().__init__(message, layer=layer)
        self.fix = fix


class DeviceError(ExplorerError):
    """An unknown or unusable device."""


class TrustError(ExplorerError):
    """Code from a file (a custom expression) that the user has not agreed to run."""
