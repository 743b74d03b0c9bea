"""The rules for a custom layer's expression, without Keras: usable on any thread, before anything runs."""

from __future__ import annotations

import ast

from .errors import StackError

EXPRESSION_NAMES = frozenset({"ops", "x", "mask"})
_FORBIDDEN = (ast.Lambda, ast.NamedExpr, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.Await,
              ast.Yield, ast.YieldFrom)


def check_expression(expression: str) -> ast.Expression:
    """Parses an expression and refuses anything but ops, x, mask, literals and operators (StackError)."""
    if not expression.strip():
        raise StackError("the expression is empty: write one over x (and mask), e.g. ops.mean(x, axis=1)")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as error:
        raise StackError(f"the expression is not valid Python: {error.msg} (column {error.offset})") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in EXPRESSION_NAMES:
            raise StackError(f'the expression may use only ops, x and mask; "{node.id}" is not available')
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise StackError(f'the expression may not use private attributes such as ".{node.attr}"')
        if isinstance(node, _FORBIDDEN):
            raise StackError(f"the expression may not contain {type(node).__name__} constructs")
    return tree


def expression_problem(expression: str) -> str | None:
    """None when the expression may run, else why not."""
    try:
        check_expression(expression)
    except StackError as error:
        return error.message
    return None
