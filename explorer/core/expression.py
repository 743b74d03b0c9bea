"""The rules for a custom layer's expression, without Keras: usable on any thread, before anything runs.

An allow-list: the names `x`, `mask` and `ops`; calls of `ops.<function>`; `x.shape`, `x.ndim`, `x.dtype` (and
`mask`'s); literals, arithmetic, comparisons, conditionals and subscripts. Constant arithmetic is folded here with
bounds, so that `10**10**10` or `[0] * 10**9` is refused instead of run. The section between the markers needs
only `ast` and `math`: exported scripts carry a copy of it and check their expressions before evaluating them.
"""

from __future__ import annotations

import ast
import math

from .errors import StackError

# --- the check (self-contained; exported scripts carry this section as it is) ---
EXPRESSION_NAMES = frozenset({"ops", "x", "mask"})
TENSOR_ATTRIBUTES = frozenset({"shape", "ndim", "dtype"})
# keras.ops's functions, less those that take a function to call or leave the graph (a test keeps it current)
OPS_FUNCTIONS = frozenset("""
    abs absolute adaptive_average_pool adaptive_max_pool add all allclose amax amin angle any append arange
    arccos arccosh arcsin arcsinh arctan arctan2 arctanh argmax argmin argpartition argsort array array_split
    average average_pool bartlett batch_normalization binary_crossentropy bincount bitwise_and bitwise_invert
    bitwise_left_shift bitwise_not bitwise_or bitwise_right_shift bitwise_xor blackman broadcast_to cast
    categorical_crossentropy cbrt cdist ceil celu cholesky cholesky_inverse clip concatenate conj conjugate conv
    conv_transpose convert_to_tensor copy corrcoef correlate cos cosh count_nonzero cross ctc_decode ctc_loss
    cumprod cumsum deg2rad depth_to_space depthwise_conv det diag diagflat diagonal diff digitize divide
    divide_no_nan dot dot_product_attention dsplit dstack dtype eig eigh einsum elu empty empty_like equal erf
    erfc erfinv exp exp2 expand_dims expm1 extract_sequences eye fabs fft fft2 flip fliplr flipud floor
    floor_divide fmax fmin fmod fold full full_like gcd gelu geomspace get_item glu greater greater_equal
    hamming hanning hard_shrink hard_sigmoid hard_silu hard_swish hard_tanh heaviside histogram hsplit hstack
    hypot i0 identity ifft2 imag in_top_k inner inv irfft is_tensor isclose isfinite isin isinf isnan isneginf
    isposinf isreal istft kaiser kron layer_normalization lcm ldexp leaky_relu left_shift less less_equal
    linspace log log10 log1p log2 log_sigmoid log_softmax logaddexp logaddexp2 logdet logical_and logical_not
    logical_or logical_xor logspace logsumexp lstsq lu_factor matmul matrix_rank max max_pool maximum mean
    median meshgrid min minimum mod moments moveaxis multi_hot multiply nan_to_num nanargmax nanargmin
    nancumprod nancumsum nanmax nanmean nanmedian nanmin nanpercentile nanprod nanquantile nanstd nansum nanvar
    ndim negative nextafter nonzero norm normalize not_equal one_hot ones ones_like outer pad percentile pinv
    polar power prod psnr ptp qr quantile rad2deg ravel real rearrange reciprocal relu relu6 repeat reshape rfft
    right_shift rms_normalization roll rot90 round rsqrt saturate_cast scatter scatter_update searchsorted
    segment_max segment_min segment_prod segment_sum select selu separable_conv shape sigmoid sign signbit silu
    sin sinc sinh size slice slice_update slogdet soft_shrink softmax softplus softsign solve solve_triangular
    sort space_to_depth sparse_categorical_crossentropy sparse_plus sparse_sigmoid sparsemax split sqrt square
    squareplus squeeze stack std stft stop_gradient subtract sum svd swapaxes swish take take_along_axis tan
    tanh tanh_shrink tensordot threshold tile top_k trace transpose trapezoid tri tril triu true_divide trunc
    unfold unique unravel_index unstack vander var vdot view view_as_complex view_as_real vsplit vstack where
    zeros zeros_like
""".split())
MAX_LENGTH = 2000        # characters
MAX_DEPTH = 50           # nested sub-expressions
MAX_NUMBER = 2 ** 64     # an integer constant, folded or written
MAX_ITEMS = 10_000       # a list or tuple constant, repeated or written
_UNKNOWN = object()      # the value of a sub-expression that depends on x or mask
_PASSIVE = (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)


class ExpressionRefused(ValueError):
    """Why an expression may not run, in one sentence."""


def expression_tree(expression: str) -> ast.Expression:
    """The parsed expression when the allow-list admits it, else ExpressionRefused."""
    text = expression.strip()
    if not text:
        raise ExpressionRefused("the expression is empty: write one over x (and mask), e.g. ops.mean(x, axis=1)")
    if len(text) > MAX_LENGTH:
        raise ExpressionRefused(f"the expression is {len(text):,} characters long, over the limit of {MAX_LENGTH:,}")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as error:
        raise ExpressionRefused(f"the expression is not valid Python: {error.msg} (column {error.offset})") from None
    except (ValueError, RecursionError, MemoryError) as error:
        raise ExpressionRefused(f"the expression is not valid Python: {error}") from None
    _admit(tree.body, 0)
    return tree


def _admit(node: ast.AST, depth: int):
    """Refuses what the allow-list does not hold; returns the node's value when it is a folded constant."""
    if depth > MAX_DEPTH:
        raise ExpressionRefused(f"the expression nests deeper than {MAX_DEPTH} levels")
    inner = depth + 1
    if isinstance(node, ast.Constant):
        return _bounded(node.value)
    if isinstance(node, ast.Name):
        if node.id not in EXPRESSION_NAMES:
            raise ExpressionRefused(f'the expression may use only ops, x and mask; "{node.id}" is not available')
        if node.id == "ops":
            raise ExpressionRefused("ops may only be called, as in ops.mean(x, axis=1)")
        return _UNKNOWN
    if isinstance(node, ast.Attribute):
        if node.attr.startswith("_"):
            raise ExpressionRefused(f'the expression may not use private attributes such as ".{node.attr}"')
        owner = node.value.id if isinstance(node.value, ast.Name) else None
        if owner is not None and owner not in EXPRESSION_NAMES:
            _admit(node.value, inner)   # refused, naming the unknown name
        if owner == "ops" and node.attr in OPS_FUNCTIONS:
            return _UNKNOWN
        if owner in ("x", "mask") and node.attr in TENSOR_ATTRIBUTES:
            return _UNKNOWN
        raise ExpressionRefused(f'".{node.attr}" is not allowed here: the expression may call ops functions and '
                                "read x.shape, x.ndim and x.dtype (or mask's)")
    if isinstance(node, ast.Call):
        function = node.func
        if not (isinstance(function, ast.Name) and function.id in ("x", "mask")):
            _admit(function, inner)   # an unknown name or attribute is refused with its own reason
        if not (isinstance(function, ast.Attribute) and isinstance(function.value, ast.Name)
                and function.value.id == "ops"):
            raise ExpressionRefused("the expression may call only ops functions, as in ops.mean(x, axis=1)")
        for argument in node.args:
            _admit(argument, inner)
        for keyword in node.keywords:
            if keyword.arg is None:
                raise ExpressionRefused("the expression may not unpack **arguments")
            _admit(keyword.value, inner)
        return _UNKNOWN
    if isinstance(node, (ast.Tuple, ast.List)):
        values = [_admit(element, inner) for element in node.elts]
        return _UNKNOWN if any(value is _UNKNOWN for value in values) else _bounded(tuple(values))
    if isinstance(node, ast.UnaryOp):
        value = _admit(node.operand, inner)
        if value is _UNKNOWN or not isinstance(value, (int, float, complex)):
            return _UNKNOWN
        return _bounded(_fold(node.op, 0, value) if isinstance(node.op, (ast.USub, ast.UAdd)) else _UNKNOWN)
    if isinstance(node, ast.BinOp):
        return _binary(node.op, _admit(node.left, inner), _admit(node.right, inner))
    if isinstance(node, (ast.Subscript, ast.Slice, ast.Compare, ast.BoolOp, ast.IfExp)):
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, _PASSIVE):
                _admit(child, inner)
        return _UNKNOWN
    raise ExpressionRefused(f"the expression may not contain {type(node).__name__} constructs")


def _bounded(value):
    """The constant, or a refusal when it is larger than an expression needs."""
    if isinstance(value, int) and abs(value) > MAX_NUMBER:
        raise ExpressionRefused(f"the expression holds a number over {MAX_NUMBER:,} (2**64)")
    if isinstance(value, (tuple, str, bytes)) and len(value) > MAX_ITEMS:
        raise ExpressionRefused(f"the expression holds a constant of {len(value):,} items, over {MAX_ITEMS:,}")
    return value


def _binary(op: ast.operator, left, right):
    """Folds arithmetic on constants within the bounds; refuses string formatting and unbounded repetition."""
    texts = (str, bytes)
    if isinstance(left, texts) or isinstance(right, texts):
        raise ExpressionRefused("the expression may not compute with strings (no formatting or repetition)")
    sequences = [side for side in (left, right) if isinstance(side, tuple)]
    if sequences:
        count = right if sequences[0] is left else left
        if not isinstance(op, ast.Mult) or not isinstance(count, int) or len(sequences) > 1:
            raise ExpressionRefused("a list in the expression may only be repeated a constant number of times")
        if len(sequences[0]) * count > MAX_ITEMS:
            raise ExpressionRefused(f"the expression repeats a list to more than {MAX_ITEMS:,} items")
        return sequences[0] * count
    if left is _UNKNOWN or right is _UNKNOWN or not all(isinstance(v, (int, float, complex)) for v in (left, right)):
        return _UNKNOWN
    return _bounded(_fold(op, left, right))


def _fold(op, left, right):
    """One arithmetic step on bounded numbers, refusing results that would be too large to compute."""
    integers = isinstance(left, int) and isinstance(right, int)
    if isinstance(op, ast.Pow) and integers and right > 0 and abs(left) > 1 and right * math.log2(abs(left)) > 64:
        raise ExpressionRefused(f"the expression holds a number over {MAX_NUMBER:,} (2**64)")
    if isinstance(op, (ast.LShift, ast.RShift)) and integers and right > 64:
        raise ExpressionRefused("the expression shifts by more than 64 bits")
    functions = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
                 ast.USub: lambda a, b: -b, ast.UAdd: lambda a, b: +b, ast.Pow: lambda a, b: a ** b}
    function = functions.get(type(op))
    if function is None:     # division, modulo, shifts, bit operations: cannot grow past the bound
        return _UNKNOWN
    try:
        return function(left, right)
    except (OverflowError, ZeroDivisionError, TypeError, ValueError):
        return _UNKNOWN
# --- end of the check ---


def check_expression(expression: str) -> ast.Expression:
    """The parsed expression, or StackError saying why it may not run."""
    try:
        return expression_tree(expression)
    except ExpressionRefused as refused:
        raise StackError(str(refused)) from None


def expression_problem(expression: str) -> str | None:
    """None when the expression may run, else why not."""
    try:
        expression_tree(expression)
    except ExpressionRefused as refused:
        return str(refused)
    return None


def check_source() -> str:
    """The check's source, as exported scripts carry it (it needs `import ast, math`)."""
    import inspect
    source = inspect.getsource(inspect.getmodule(check_source))
    return source[source.index("# --- the check"):source.index("# --- end of the check ---")]
