"""The lessons as a course: every preset placed once, in teaching order, opening where its point shows; and the
words that say how an edited stack differs from its lesson."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.core import course, presets
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
