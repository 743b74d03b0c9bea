"""The built-in stacks, each with a lesson: `preset:NAME` wherever a stack file is accepted."""

from __future__ import annotations

from importlib import resources

from .errors import SpecError
from .spec import StackSpec, load, loads

PREFIX = "preset:"
SUFFIX = ".stack.json"
DEFAULT = "average_pooling"


def names() -> list[str]:
    folder = resources.files("explorer") / "presets"
    return sorted(entry.name[: -len(SUFFIX)] for entry in folder.iterdir() if entry.name.endswith(SUFFIX))


def load_preset(name: str) -> StackSpec:
    if name not in names():
        raise SpecError("", f'unknown preset "{name}"; presets: {", ".join(names())}')
    text = (resources.files("explorer") / "presets" / f"{name}{SUFFIX}").read_text(encoding="utf-8")
    return loads(text, f"preset {name}")


def is_preset(reference: str) -> bool:
    return reference.startswith(PREFIX)


def load_stack(reference: str) -> StackSpec:
    """A file path or `preset:NAME`."""
    if is_preset(reference):
        return load_preset(reference[len(PREFIX):])
    return load(reference)
