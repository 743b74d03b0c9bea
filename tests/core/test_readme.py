"""The README's counts come from the code: the number of built-in stacks and lessons, the default lesson's
place in the course, the course's parts; and the contract the docstrings cite ships in the package."""

from __future__ import annotations

import re
from pathlib import Path

from explorer.core import course, presets

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_counts_the_presets_and_lessons_the_code_has():
    stacks = [int(n) for n in re.findall(r"(\d+)\s+built-in stacks", README)]
    assert stacks and set(stacks) == {len(presets.names())}
    places = re.findall(r"Lesson (\d+) of (\d+) ·\s+(\w[\w ]*)", README)
    assert places
    default = course.lesson(presets.DEFAULT)
    for place, total, section in places:
        assert int(total) == len(course.COURSE)
        assert (int(place), section.strip()) == (course.position(presets.DEFAULT) + 1, default.section)
    table = README.split("| part | lessons |", 1)[1].split("\n\n", 1)[0]
    parts = [line.split("|")[1].strip() for line in table.strip().splitlines()[1:]]
    assert parts == list(course.SECTIONS)


def test_every_contract_citation_points_at_the_contract_file():
    contract = (ROOT / "explorer" / "CONTRACT.md").read_text(encoding="utf-8")
    sections = set(re.findall(r"^## (\d)\.", contract, re.MULTILINE))
    for path in [*ROOT.glob("explorer/**/*.py"), *ROOT.glob("tests/**/*.py"), ROOT / "README.md"]:
        if path == Path(__file__):
            continue
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(?<!explorer/)CONTRACT §", text), path
        assert set(re.findall(r"explorer/CONTRACT\.md §(\d)", text)) <= sections, path
