"""Version-1 stack files, frozen on the day the format was fixed (tests/fixtures/v1: the presets as they were
and hand-written edge documents), replayed on every run: each still reads as the same document, or is still
refused at the same place. A change that alters what an old file means fails here and needs a migration
(core/spec.py `migrate`); a new optional field with its default may add keys, never change old ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from explorer.core.errors import SpecError
from explorer.core.spec import dumps, load, loads, to_dict
from explorer.session import Session

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "v1"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))


def contains(actual, expected, where: str = "") -> None:
    """Every key and value of `expected` is in `actual` (lists item by item); `actual` may have more keys."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), where
        for key, value in expected.items():
            assert key in actual, f"{where}.{key} is gone"
            contains(actual[key], value, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), where
        for index, (a, e) in enumerate(zip(actual, expected)):
            contains(a, e, f"{where}[{index}]")
    else:
        assert actual == expected and type(actual) is type(expected), f"{where}: {actual!r} != {expected!r}"


def test_every_fixture_has_its_expectation():
    assert sorted(path.name for path in FIXTURES.glob("*.stack.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_version_1_file_reads_as_it_did(name):
    expected = EXPECTED[name]
    if "refused_at" in expected:
        with pytest.raises(SpecError) as refused:
            load(FIXTURES / name)
        assert refused.value.path == expected["refused_at"]
        return
    spec = load(FIXTURES / name)
    contains(to_dict(spec), expected["document"], name)
    assert to_dict(loads(dumps(spec))) == to_dict(spec)             # what the explorer writes reads back the same
    raw = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    for layer, written in zip(to_dict(spec)["layers"], raw["layers"]):
        contains(layer, written, name)                              # every value the file spells out is kept
    session = Session(spec, trusted=True)                           # and the window's model takes it as it is
    assert session.spec_error is None and session.text == (raw.get("sequences") or session.text)
