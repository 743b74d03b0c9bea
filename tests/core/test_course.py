"""The lessons as a course: every preset placed once, in teaching order, opening where its point shows; and the
words that say how an edited stack differs from its lesson."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.core import course, presets
from explorer.core.errors import SpecError
from explorer.core.sequences import parse


def test_every_preset_is_in_the_course_once_in_teaching_order():
    assert sorted(course.names()) == presets.names() and not course.uncovered()
    assert len(set(course.names())) == len(course.COURSE)
    sections = [lesson.section for lesson in course.COURSE]
    order = list(dict.fromkeys(sections))
    assert order == list(course.SECTIONS)                            # each part once, in the path's order
    assert sections == sorted(sections, key=order.index)             # and its lessons together


def test_each_lesson_opens_on_a_layer_of_its_stack_and_a_line_that_shows_padding():
    for lesson in course.COURSE:
        spec = presets.load_preset(lesson.preset)
        assert lesson.layer in spec.layer_names(), lesson.preset
        parsed = parse(spec.sequences, spec.input)
        assert lesson.line in parsed.lines, lesson.preset
        length = len(parsed.items[parsed.lines.index(lesson.line)])
        if lesson.section in ("Padding", "Masks", "Pooling", "Stacking", "Bidirectional"):
            longest = spec.batching.maxlen or max(len(item) for item in parsed.items)
            assert length < longest, f"{lesson.preset}: line {lesson.line} is not padded"
        assert len(lesson.look) > 40


def test_neighbours_walk_the_path_and_stop_at_its_ends():
    names = course.names()
    for index, name in enumerate(names):
        assert course.position(name) == index
        assert course.neighbour(name, 1) == (names[index + 1] if index + 1 < len(names) else None)
        assert course.neighbour(name, -1) == (names[index - 1] if index else None)
    assert course.neighbour("not a preset", 1) is None


@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from(course.names()), data=st.data())
def test_an_edit_is_named_in_the_words_on_screen(name, data):
    original = presets.load_preset(name)
    assert course.changes(original, original.copy()) == []
    edited = original.copy()
    names = edited.layer_names()
    index = data.draw(st.sampled_from([i for i, layer in enumerate(edited.layers) if layer.params]), "layer") \
        if any(layer.params for layer in edited.layers) else None
    expected = []
    if index is not None:
        key = data.draw(st.sampled_from(sorted(edited.layers[index].params)), "parameter")
        value = edited.layers[index].params[key]
        edited.layers[index].params[key] = (not value) if isinstance(value, bool) else (
            value + 1 if isinstance(value, (int, float)) else f"{value} changed")
        expected.append(f"{key} on {names[index]}")
    if data.draw(st.booleans(), "padding"):
        edited.batching.padding = "pre" if edited.batching.padding == "post" else "post"
        expected.append("padding")
    if data.draw(st.booleans(), "sequences"):
        edited.sequences = (edited.sequences or "") + "\n1 2\n"
        expected.append("the sequences")
    assert course.changes(original, edited) == expected


def test_a_bad_step_declaration_is_refused_by_name():
    from explorer.core.spec import from_dict, to_dict
    document = to_dict(presets.load_preset("forgotten_mask_post"))
    for bad, message in (([{"do": "dance"}], '"do" is one of'),
                         ([{"do": "train"}], "takes steps"),
                         ([{"do": "look", "claims": [{"accuracy": [0.9, 0.1]}]}], "[lo, hi]"),
                         ([{"do": "look", "plot": "pie"}], "unknown plot")):
        with pytest.raises(SpecError, match=re.escape(message)):
            from_dict({**document, "steps": bad})
    assert from_dict(document).steps == document["steps"]


def test_the_step_an_edit_reaches_is_found_from_the_declaration():
    from dataclasses import replace
    original = presets.load_preset("train_forgotten_mask")
    assert course.reached(original, original) is None
    one_by_one = replace(original, batching=replace(original.batching, mode="one_by_one"))
    assert course.reached(original, one_by_one) == 1
    masked = replace(original, layers=[replace(original.layers[0], params={**original.layers[0].params,
                                                                           "mask_zero": True}),
                                       *original.layers[1:]])
    assert course.reached(original, masked) == 4          # mask_zero on, back to pad: step 5
