"""Tensors placed among a call's values: a list, tuple or dict of values with a tensor at each of some places
(spec.argument_parameter names them; KerasOperation and the build fill them)."""

from __future__ import annotations

import re
from typing import Any


def placed(value: Any, at: dict[tuple, Any], here: tuple = ()) -> Any:
    """`value` (lists, tuples and dicts of values) with the items of `at` at their places ((1, 0): item 1's item
    0; ("gate",): the dict's "gate")."""
    if here in at:
        return at[here]
    if not isinstance(value, (list, tuple, dict)) or not any(len(key) > len(here) and key[:len(here)] == here
                                                             for key in at):
        return value
    if isinstance(value, dict):
        return {key: placed(item, at, (*here, key)) for key, item in value.items()}
    items = [placed(item, at, (*here, k)) for k, item in enumerate(value)]
    return tuple(items) if isinstance(value, tuple) else items


_ITEM = re.compile(r"\[(\d{1,2}|[A-Za-z_][A-Za-z0-9_]{0,63})\]")   # an item of a list, or a key of a dict


def argument_parameter(argument: str) -> tuple[str, tuple[int | str, ...]]:
    """The call's parameter an `arguments` entry names, and the place of its item ("mask[1]": ("mask", (1,)),
    "xs[1][0]": ("xs", (1, 0)), "inputs[gate]": ("inputs", ("gate",))), () for the whole parameter; ("", ())
    for a malformed entry."""
    name, bracket, rest = argument.partition("[")
    indices = _ITEM.findall(bracket + rest)
    if bracket and (not indices or "".join(f"[{index}]" for index in indices) != bracket + rest or len(indices) > 4):
        return "", ()
    return name, tuple(int(index) if index.isdigit() else index for index in indices)


def argument_places(arguments: list[str] | None) -> dict[str, list[tuple[int | str, ...]]]:
    """The parameters `arguments` gives tensors item by item, each with the places of its tensors, in order: the
    options of those parameters are the lists the tensors fill."""
    places: dict[str, list[tuple[int | str, ...]]] = {}
    for argument in arguments or []:
        name, items = argument_parameter(argument)
        if items:
            places.setdefault(name, []).append(items)
    return places
