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


MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")   # a trained Keras model: its archive, or Keras 2's HDF5 file


def is_keras_model(reference: str) -> bool:
    return reference.lower().endswith(MODEL_SUFFIXES)


def load_any(reference: str, *, trust: bool = False) -> tuple[StackSpec, list[str]]:
    """A stack file, `preset:NAME` or a trained MODEL.keras or .h5 (the window's import: weights kept), and the
    import's notes."""
    if is_keras_model(reference):
        from .keras_io import import_model
        spec, _weights, notes = import_model(reference, trust=trust)
        return spec, notes
    return load_stack(reference), []
