"""RNN Shape Explorer: see shapes, padding and masks inside recurrent networks.

The library (see the README's "Use it from Python"): `inspect` runs a model on sequences and returns a
Report; `doctor` lists what is wrong with it on them; `explore` opens the window on them. Both are imported on first use, so `import explorer` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["inspect", "doctor", "explore", "Report", "__version__"]

if TYPE_CHECKING:
    from .library import Report, doctor, explore, inspect


def _version() -> str:
    """The installed distribution's version, else the one pyproject.toml declares (a source checkout)."""
    from importlib import metadata
    try:
        return metadata.version("rnn-shape-explorer")
    except metadata.PackageNotFoundError:
        import re
        from pathlib import Path
        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        found = re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(encoding="utf-8"), re.MULTILINE) \
            if pyproject.is_file() else None
        return found.group(1) if found else "0+unknown"


__version__ = _version()


def __getattr__(name: str) -> Any:
    if name in ("inspect", "doctor", "explore", "Report"):
        from . import library
        return getattr(library, name)
    raise AttributeError(f"module 'explorer' has no attribute {name!r}")
