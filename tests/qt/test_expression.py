"""The custom layer's expression editor: checked at every keystroke on the GUI thread (with the core's
own rules, which need no Keras), the layer's output shape after a run, and its errors under it."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from seen import card_messages
from explorer.core.presets import load_preset
from explorer.core.spec import LayerSpec
from explorer.qt.expression_editor import ExpressionEdit, check_expression
from explorer.qt.stack_editor import LayerCard

RUN_TIMEOUT_MS = 60_000

CASES = [
    ("ops.mean(x, axis=1)", None),
    ("ops.sum(x * ops.expand_dims(ops.cast(mask, x.dtype), -1), axis=1)", None),
    ("x[:, -1]", None),
    ("ops.max(x, axis=1) + 1.5", None),
    ("np.mean(x)", '"np" is not available'),
    ("__import__('os')", '"__import__" is not available'),
    ("x.__class__", 'private attributes such as ".__class__"'),
    ("ops._private(x)", 'private attributes such as "._private"'),
    ("lambda: x", "Lambda constructs"),
    ("[v for v in x]", "ListComp constructs"),
    ("(y := x)", "NamedExpr constructs"),
    ("ops.mean(x, axis=", "not valid Python"),
    ("x +", "not valid Python"),
    ("open('f')", '"open" is not available'),
    ("   ", "the expression is empty"),
]


@pytest.mark.parametrize("expression, problem", CASES)
def test_the_expression_rules(expression, problem):
    found = check_expression(expression)
    assert found == problem if problem is None else problem in found


@pytest.mark.parametrize("expression, problem", [case for case in CASES if case[1]])
def test_the_custom_layer_refuses_what_the_editor_refuses(expression, problem):
    from explorer.core.errors import StackError
    from explorer.core.layers import CustomExpression  # imports Keras: only in the test
    with pytest.raises(StackError, match="expression"):
        CustomExpression(expression)


def _card(qtbot, expression: str = "ops.mean(x, axis=1)") -> LayerCard:
    card = LayerCard(LayerSpec("custom", {"expression": expression}), "custom_1")
    qtbot.addWidget(card)
    card.show()
    return card


def test_typing_shows_validity_live_and_an_invalid_expression_is_not_applied(qtbot):
    card = _card(qtbot)
    edit = card.param_widget("expression")
    assert isinstance(edit, ExpressionEdit)
    assert edit.status_label.isVisible() and edit.status_text == "✓ valid expression"
    emitted = []
    card.paramChanged.connect(lambda _card, key, value: emitted.append((key, value)))
    edit.selectAll()
    qtbot.keyClicks(edit, "np.mean(x)")
    assert not edit.valid
    assert 'the expression may use only ops, x and mask; "np" is not available' in edit.status_text
    assert "the layer still runs ops.mean(x, axis=1)" in edit.status_text
    assert "border" in edit.styleSheet()
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert emitted == []                                    # not applied
    assert card.layer.params["expression"] == "ops.mean(x, axis=1)"
    edit.selectAll()
    qtbot.keyClicks(edit, "ops.max(x, axis=1)")
    assert edit.valid and edit.styleSheet() == ""
    assert edit.status_text == "✓ valid expression: press Enter to apply"
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert emitted == [("expression", "ops.max(x, axis=1)")]
    assert edit.status_text == "✓ valid expression"


def test_the_output_shape_and_the_error_of_the_layer_show_under_the_expression(qtbot):
    card = _card(qtbot)
    edit = card.param_widget("expression")
    card.show_shapes((None, 32), (3, 32), "consumes")
    assert edit.status_text == "✓ output (None, 32) · this batch (3, 32)"
    card.show_messages("the expression failed: boom", [])
    assert edit.status_text == "✖ the expression failed: boom"
    assert "boom" in card_messages(card) and card.message_label.isHidden()   # said once, under the field
    card.show_messages(None, ["a warning"])
    assert edit.status_text.startswith("✓ output (None, 32)")
    assert "a warning" in card_messages(card)


def settle(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.runs.settled, timeout=RUN_TIMEOUT_MS)


def test_in_the_window_a_run_fills_the_shape_and_a_failing_expression_its_error(make_window, qtbot):
    win = make_window(load_preset("time_average_custom"), source="preset:time_average_custom")
    settle(qtbot, win)
    assert win.runs.last_reply.ok, win.session.status_text
    name = next(layer.name for layer in win.session.result.layers if layer.type == "custom")
    card = win.stack_editor.card(name)
    edit = card.param_widget("expression")
    layer = win.session.result.layer(name)
    from explorer.core.diagnose import format_shape
    assert edit.status_text.startswith(f"✓ output {format_shape(layer.symbolic_shape)} · this batch "
                                       f"{format_shape(layer.shape)}")
    win.questions.trust_answer = True
    edit.setText("ops.reshape(x, (7, 7, 7, 7))")   # admitted by the check, fails when it runs
    edit.editingFinished.emit()
    settle(qtbot, win)
    reply = win.runs.last_reply
    assert not reply.ok and reply.error_layer == name
    card = win.stack_editor.card(name)
    edit = card.param_widget("expression")
    assert edit.status_text.startswith("✖ ") and reply.error in edit.status_text
    assert "2401" in edit.status_text
    assert edit.isVisible() and edit.status_label.isVisible()
