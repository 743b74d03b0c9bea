"""A `.keras` archive read as untrusted input, without Keras: its members' sizes checked from the zip directory
before anything is read, its config.json parsed with bounded nesting, and every class Keras would build from it
found the way Keras finds it (by `registered_name` first, then `module` and `class_name`). An HDF5 model (`.h5`,
Keras 2's format) is read alike: its datasets' sizes checked before any is read, its `model_config` parsed the
same way."""

from __future__ import annotations

import json
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .errors import SpecError, StackError, TrustError
from .expression import check_expression
from .memory import MEMORY_LIMIT_MB
from .spec import MAX_JSON_DEPTH, check_depth

CONFIG = "config.json"
CONFIG_LIMIT = 32 * 2**20          # far above any recurrent model's config
MEMBER_LIMIT = MEMORY_LIMIT_MB * 2**20
BOMB_RATIO = 100                    # weights of trained floats barely compress; a 100:1 member is a bomb
BOMB_FLOOR = 2**20                  # … above this size
OWN_PACKAGE = "rnn_explorer"        # layers.PACKAGE, without importing Keras
OWN_CLASSES = frozenset({"MaskedMeanPooling", "TimeAverage", "LastTimestep", "AttentionPooling", "CustomExpression"})
CODE_CLASS = "CustomExpression"     # the one class whose config holds code (an expression)
UNKNOWN_CLASSES = "classes that neither Keras nor the explorer knows"   # how the refusal of such a model reads
KERAS_PACKAGES = ("keras",)


@dataclass
class Classes:
    """What Keras would build from a config: the custom expressions (layer → expression) and the classes it
    does not know (class → the layers using them)."""
    expressions: dict[str, str] = field(default_factory=dict)
    unknown: dict[str, list[str]] = field(default_factory=dict)


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
MAX_HDF5_OBJECTS = 100_000          # groups and datasets: a recurrent model has a few dozen


def is_hdf5(path: str | Path) -> bool:
    try:
        with open(path, "rb") as file:
            return file.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE
    except OSError:
        return False


def read_hdf5_config(path: str | Path) -> dict:
    """An HDF5 model's `model_config`, refused (SpecError, one sentence) when the file holds no model (weights
    only), when its datasets would take more memory than the limit, or when its JSON nests deeper than a model's."""
    import h5py
    path = Path(path)
    total, seen = 0, 0

    def count(_name, item) -> bool | None:
        nonlocal total, seen
        seen += 1
        if isinstance(item, h5py.Dataset):
            total += item.size * item.dtype.itemsize
        return True if seen > MAX_HDF5_OBJECTS or total > MEMBER_LIMIT else None   # True stops the visit

    try:
        with h5py.File(path, "r") as file:
            file.visititems(count)
            raw = file.attrs.get("model_config")
    except (OSError, ValueError, TypeError) as error:
        raise SpecError("", f"{path.name} is not an HDF5 model file ({error})") from None
    if seen > MAX_HDF5_OBJECTS or total > MEMBER_LIMIT:
        raise SpecError("", f"{path.name} holds more than {MAX_HDF5_OBJECTS:,} objects or "
                            f"{MEMBER_LIMIT / 2**20:,.0f} MB of weights: the file is damaged or hostile")
    if raw is None:
        raise SpecError("", f"{path.name} holds weights only (save_weights), no model: open the model it was saved "
                            "from, or save that with model.save(\"model.keras\")")
    if not isinstance(raw, (str, bytes)) or len(raw) > CONFIG_LIMIT:
        raise SpecError("", f"{path.name}: its model_config is no model's: the file is damaged or hostile")
    return _parsed(raw, path.name, "model_config")


def read_config(path: str | Path) -> dict:
    """The archive's config.json, refused (SpecError, one sentence) when the file is no model archive, when a
    member would unpack to more than the limits allow, or when the JSON nests deeper than a model's can."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # zipfile warns about odd member names; the sizes decide here
            with zipfile.ZipFile(path) as archive:
                check_members(archive, path.name)
                try:
                    with archive.open(CONFIG) as member:
                        raw = member.read(CONFIG_LIMIT + 1)
                except KeyError:
                    raise SpecError("", f"{path.name} is not a .keras model file (it holds no {CONFIG})") from None
    except FileNotFoundError:
        raise SpecError("", f"cannot read {path}: no such file") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError) as error:
        raise SpecError("", f"{path.name} is not a .keras model file ({error})") from None
    return _parsed(raw, path.name, CONFIG)


def _parsed(raw: str | bytes, name: str, member: str) -> dict:
    """A model's config JSON, with its nesting bounded."""
    try:
        config = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise SpecError("", f"{name} is not a Keras model file ({member}: {error})") from None
    except RecursionError:
        config = None
    if config is None or not check_depth(config):
        raise SpecError("", f"{name}: {member} is nested deeper than {MAX_JSON_DEPTH} levels, more than any model "
                            "needs: the file is damaged or hostile")
    if not isinstance(config, dict):
        raise SpecError("", f"{name} is not a Keras model file ({member} holds no model)")
    return config


def check_members(archive: zipfile.ZipFile, name: str) -> None:
    """Refuses an archive whose directory announces a member larger than the limits, or one that unpacks to
    far more than it takes in the file (a zip bomb), before any member is read."""
    total = 0
    for info in archive.infolist():
        total += info.file_size
        limit = CONFIG_LIMIT if info.filename == CONFIG else MEMBER_LIMIT
        bomb = info.file_size > BOMB_FLOOR and info.file_size > BOMB_RATIO * max(info.compress_size, 1)
        if info.file_size > limit or bomb or total > MEMBER_LIMIT:
            raise SpecError("", f"{name}: the member {info.filename!r} unpacks to {info.file_size / 2**20:,.0f} MB "
                                f"from {info.compress_size / 2**20:,.1f} MB, over the limit of "
                                f"{limit / 2**20:,.0f} MB (or {BOMB_RATIO}:1): the file is damaged or hostile")


def classes(config, known: Callable[[str], bool] | None = None) -> Classes:
    """Every object Keras would deserialize from `config` (nested models and wrapped layers included), each
    named by the layer it belongs to; `known(name)` says which names this process has loaded already (the
    user's own classes). Depth-bounded by read_config, walked without recursion."""
    found = Classes()
    pending = [(config, "the model")]
    while pending:
        node, layer = pending.pop()
        if isinstance(node, list):
            pending += [(value, layer) for value in node]
            continue
        if not isinstance(node, dict):
            continue
        inner = node.get("config")
        if isinstance(node.get("class_name"), str) and "config" in node:
            if isinstance(inner, dict) and isinstance(inner.get("name"), str):
                layer = inner["name"]
            built = _built_class(node)
            if node["class_name"] == "Lambda" and isinstance(inner, dict) and inner.get("function_type") == "lambda":
                built, node = None, {"class_name": "__lambda__", "config": inner}   # Keras 2's: its bytecode
            if built == CODE_CLASS:
                expression = inner.get("expression") if isinstance(inner, dict) else None
                found.expressions[layer] = expression if isinstance(expression, str) else repr(expression)
            elif built is None and not (known and known(_looked_up(node))):
                label = _label(node)
                if layer not in found.unknown.setdefault(label, []):
                    found.unknown[label].append(layer)
        # compile_config (optimizer, loss, metrics) is never built: models load with compile=False
        pending += [(value, layer) for key, value in node.items() if key != "compile_config"]
    return found


def _built_class(node: dict) -> str | None:
    """The explorer's or Keras's class that Keras builds for this object, '' for a plain value, or None when
    neither would: registered_name wins over class_name in Keras, so every name it might look up counts."""
    class_name = node["class_name"]
    if class_name.startswith("__") and class_name.endswith("__"):
        return None if class_name == "__lambda__" else ""    # tensors, slices …; a lambda is code
    names = _names(node)
    own = {name.split(">", 1)[1] for name in names if name.startswith(OWN_PACKAGE + ">")}
    if CODE_CLASS in own or CODE_CLASS in names:
        return CODE_CLASS
    if own and own <= OWN_CLASSES and all(">" not in name or name.split(">", 1)[1] in own for name in names):
        return own.pop()
    if any(">" in name for name in names):
        return None
    module = node.get("module")
    keras_module = isinstance(module, str) and module.split(".", 1)[0] in KERAS_PACKAGES
    if class_name == "function":   # Keras's own, or one a user registered ("package>name"): their code
        return "" if (module == "builtins" or keras_module) and ">" not in str(node["config"]) else None
    if keras_module and node.get("registered_name") in (None, class_name):
        return class_name
    return None


def _looked_up(node: dict):
    """The name Keras looks this object up by first."""
    return node["config"] if node["class_name"] == "function" else node.get("registered_name", node["class_name"])


def _names(node: dict) -> set[str]:
    """Every name Keras might look this object up by."""
    return {name for name in (node["class_name"], node.get("registered_name"), _looked_up(node))
            if isinstance(name, str)}


def _label(node: dict) -> str:
    """The class as the file names it: `registered_name` when it says more than `class_name`."""
    if node["class_name"] == "__lambda__":
        return "__lambda__ (Python code saved with a Lambda layer)"
    names = [node.get("registered_name"), node["class_name"]]
    name = next(n for n in names if isinstance(n, str))
    return repr(node["config"])[:80] if name == "function" else name[:200]


def check_classes(path: Path, found: Classes, *, trust: bool, hdf5: bool = False) -> None:
    """Refuses, before Keras builds anything, a class it does not know and a custom expression the user has not
    trusted (or that the expression check refuses). `hdf5`: an HDF5 model, whose loader finds Keras's layers by
    their bare names only (not the keras.ops operations a .keras file names by module)."""
    unknown = found.unknown
    if unknown:
        named = "; ".join(f"{label} (used by {', '.join(layers[:5])}{' …' if len(layers) > 5 else ''})"
                          for label, layers in list(unknown.items())[:5])
        raise StackError(f"{path.name} uses {UNKNOWN_CLASSES}: {named}. If they come from your own code, load them "
                         "with --custom-objects FILE.py --trust (the window asks for the file)"
                         + ("; if they are Keras's own (keras.ops between layers), Keras reads them from a .keras "
                            "file only: save the model with model.save(\"model.keras\")" if hdf5 else ""))
    if found.expressions and not trust:
        layers = ", ".join(list(found.expressions)[:5])
        raise TrustError(f"{path.name} holds custom expressions, which run as code (layers {layers}): open it only "
                         "if you trust its source (--trust; the window asks)")
    for layer, expression in found.expressions.items():
        try:
            check_expression(expression)
        except StackError as error:
            raise StackError(f"{path.name}, layer {layer}: {error.message}") from None
