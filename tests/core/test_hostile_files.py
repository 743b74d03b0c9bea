"""Hostile files, each built here: trust is decided from what Keras would build, archives and JSON are bounded,
and the expression check admits nothing that reaches a private attribute or a module."""

import inspect
import json
import zipfile

import keras
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.core import keras_archive, keras_io
from explorer.core.errors import SpecError, StackError, TrustError
from explorer.core.expression import OPS_FUNCTIONS, expression_problem
from explorer.core.spec import from_dict, loads

MARKER_CODE = '__import__("os").system("touch {marker}") or ops.mean(x, axis=1)'


@pytest.fixture(scope="module")
def custom_model(tmp_path_factory, engine):
    """A model with a custom expression layer, saved as the explorer saves it."""
    spec = from_dict({"input": {"kind": "tokens", "vocab_size": 10},
                      "layers": [{"type": "embedding", "output_dim": 2},
                                 {"type": "lstm", "units": 2, "return_sequences": True, "bidirectional": True},
                                 {"type": "custom", "expression": "ops.mean(x, axis=1)", "name": "avg"}]})
    engine.run(spec, "1 2\n", trust=True)
    path = tmp_path_factory.mktemp("model") / "custom.keras"
    keras_io.export_model(engine.built_for(spec), path)
    return path


def rewrite(source, target, edit) -> None:
    """Copies a .keras archive with its config.json passed through `edit(config)`."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            data = old.read(info.filename)
            if info.filename == "config.json":
                data = json.dumps(edit(json.loads(data))).encode()
            new.writestr(info, data)


def custom_layer(config) -> dict:
    return next(layer for layer in config["config"]["layers"] if layer["config"]["name"] == "avg")


def disguise(expression):
    """The custom layer says it is a Dense from keras.layers; its registered_name still names the custom class."""
    def edit(config):
        layer = custom_layer(config)
        layer.update(class_name="Dense", module="keras.layers")
        layer["config"]["expression"] = expression
        return config
    return edit


def test_a_custom_layer_disguised_as_dense_still_needs_trust(custom_model, tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "disguised.keras"
    rewrite(custom_model, path, disguise("ops.mean(x, axis=1) if 9**9**8 else x"))
    with pytest.raises(TrustError, match="avg"):
        keras_io.import_model(path)
    with pytest.raises(StackError, match="avg.*2\\*\\*64"):      # with trust, the check refuses it before Keras
        keras_io.import_model(path, trust=True)
    rewrite(custom_model, path, disguise(MARKER_CODE.format(marker=marker)))
    for trust in (False, True):
        with pytest.raises((TrustError, StackError)):
            keras_io.import_model(path, trust=trust)
    assert not marker.exists()


def wrap(kind: str):
    """The custom layer moved inside a wrapper or a nested model, as Keras would save either."""
    def edit(config):
        layer = custom_layer(config)
        inner = {key: layer[key] for key in ("module", "class_name", "config", "registered_name")}
        inner.update(class_name="Dense", module="keras.layers")
        if kind == "TimeDistributed":
            layer.update(class_name=kind, module="keras.layers", registered_name=None,
                         config={"name": "avg", "layer": inner})
        else:
            layer.update(class_name="Sequential", module="keras", registered_name=None,
                         config={"name": "avg", "layers": [inner]})
        return config
    return edit


@pytest.mark.parametrize("kind", ["TimeDistributed", "Sequential"])
def test_a_custom_layer_inside_a_wrapper_or_nested_model_needs_trust(custom_model, tmp_path, kind):
    path = tmp_path / f"{kind}.keras"
    rewrite(custom_model, path, wrap(kind))
    with pytest.raises(TrustError):
        keras_io.import_model(path)


@pytest.mark.parametrize("node", [
    {"class_name": "rnn_explorer>CustomExpression", "config": {"name": "a", "expression": "x"}},   # no registered_name
    {"class_name": "function", "module": "keras.activations", "config": "rnn_explorer>CustomExpression",
     "registered_name": None},
    {"class_name": "CustomExpression", "module": "keras.layers", "config": {"name": "a", "expression": "x"},
     "registered_name": None},
])
def test_every_name_keras_looks_up_counts(node):
    assert keras_archive.classes({"class_name": "Sequential", "module": "keras", "registered_name": None,
                                  "config": {"name": "m", "layers": [node]}}).expressions


def test_a_custom_loss_in_compile_config_is_not_refused():
    """Models load with compile=False: Keras never builds what compile_config names."""
    config = {"class_name": "Sequential", "module": "keras", "registered_name": None, "config": {"name": "m"},
              "compile_config": {"loss": {"class_name": "Focal", "module": "losses", "registered_name": "Book>Focal",
                                          "config": {}}}}
    assert keras_archive.classes(config).unknown == {}


def test_an_unknown_class_is_named_with_its_layers_before_keras_loads_it(tmp_path):
    @keras.saving.register_keras_serializable(package="Book")
    class OneHotEncoding(keras.layers.Layer):
        def call(self, x):
            return keras.ops.one_hot(keras.ops.cast(x, "int32"), 4)

    model = keras.Sequential([keras.Input((None,)), OneHotEncoding(name="one_hot"), keras.layers.LSTM(2, name="lstm")])
    path = tmp_path / "book.keras"
    model.save(path)
    del keras.saving.get_custom_objects()["Book>OneHotEncoding"]   # a stranger's file: its class is not loaded here
    with pytest.raises(StackError) as caught:
        keras_io.import_model(path)
    message = caught.value.message
    assert "Book>OneHotEncoding" in message and "one_hot" in message and "--custom-objects" in message


def test_a_zip_bomb_is_refused_from_the_directory(tmp_path):
    """A 1 GB config.json and a 64 MB weights member of zeros, each in a file of about a megabyte."""
    for member, size in (("config.json", 2**30), ("model.weights.h5", 64 * 2**20)):
        path = tmp_path / "bomb.keras"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            if member != "config.json":
                archive.writestr("config.json", "{}")
            with archive.open(member, "w", force_zip64=True) as handle:
                chunk = b" " * 2**24
                for _ in range(size // len(chunk)):
                    handle.write(chunk)
        assert path.stat().st_size < 8 * 2**20
        with pytest.raises(SpecError, match=f"{member}.*damaged or hostile"):
            keras_io.import_model(path)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_deeply_nested_json_is_refused_with_a_sentence(tmp_path):
    path = tmp_path / "deep.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", '{"class_name": "Sequential", "config": ' + nested(990) + "}")
    with pytest.raises(SpecError, match="nested deeper"):
        keras_io.import_model(path)
    with pytest.raises(SpecError, match="nested deeper"):
        loads('{"title": ' + nested(985) + "}")
    with pytest.raises(SpecError, match="nested deeper"):
        loads('{"title": ' + nested(100_000) + "}")     # past json's own recursion limit


@pytest.mark.parametrize("expression", [
    "10**10**10", "9**9**8", "[0]*(3*10**8)", "ops.mean(x, axis=1) if 9**9**8 else x", "1 << 10**6",
    '"{0.__class__.__mro__}".format(x)', '"{0.__globals__[os]}".format(ops.mean)', "'%s' % x", "f'{x}'",
    "x.dtype.as_numpy_dtype.tofile('f')", "ops.numpy.mean(x)", "ops", "ops.image", "x.numpy()",
    "ops.convert_to_numpy(x).tofile('f')", "ops.while_loop(ops.all, ops.add, (x,))", "-" * 1000 + "x",
])
def test_the_check_refuses(expression):
    assert expression_problem(expression) is not None


def test_the_ops_functions_it_allows_are_functions_of_keras_ops():
    for name in OPS_FUNCTIONS:
        function = getattr(keras.ops, name)
        assert callable(function) and not inspect.ismodule(function) and not inspect.isclass(function)


class Probe:
    """Stands for x, mask and ops while an admitted expression runs: records every attribute it is asked for,
    however it is asked (a format string too)."""

    def __init__(self, log: list):
        object.__setattr__(self, "log", log)

    def __getattribute__(self, name):
        log = object.__getattribute__(self, "log")
        log.append(name)
        return Probe(log)

    def __call__(self, *args, **kwargs):
        return self

    def __getitem__(self, key):
        return self

    def __bool__(self):
        return True

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = __call__
    __pow__ = __rpow__ = __neg__ = __mod__ = __rmod__ = __matmul__ = __lt__ = __gt__ = __eq__ = __call__


RISKY = st.sampled_from([
    "x", "mask", "ops", "ops.mean", "ops.numpy", "ops.image", "__import__", "__builtins__", "getattr", "type",
    "().__class__", "'{0.__class__}'", "'{0.__globals__[os]}'", "'%s'", "b'x'", "1", "9", "10", "[0]", "()",
    "x.dtype", "x.shape", "os", "globals", "f'{x}'", "lambda: 0", "[c for c in x]",
])
ATTRIBUTES = st.sampled_from([
    "__class__", "__mro__", "__subclasses__", "__globals__", "__dict__", "__self__", "__module__", "format",
    "as_numpy_dtype", "tofile", "mean", "numpy", "shape", "dtype", "ndim", "gi_frame", "f_globals", "_private",
])


def _grow(inner):
    return st.one_of(
        st.tuples(inner, ATTRIBUTES).map(lambda t: f"{t[0]}.{t[1]}"),
        st.tuples(inner, st.lists(inner, max_size=2)).map(lambda t: f"{t[0]}({', '.join(t[1])})"),
        st.tuples(inner, inner).map(lambda t: f"{t[0]}[{t[1]}]"),
        st.tuples(inner, st.sampled_from(["+", "%", "*", "**", " or ", " if x else "]), inner)
        .map(lambda t: f"({t[0]}{t[1]}{t[2]})"),
        st.tuples(inner, ATTRIBUTES).map(lambda t: f"getattr({t[0]}, {t[1]!r})"),
    )


@pytest.mark.filterwarnings("ignore::SyntaxWarning")   # `'a'[b'x']` and the like: compiled, never admitted
@settings(max_examples=400, deadline=None)
@given(st.recursive(RISKY, _grow, max_leaves=6))
def test_whatever_the_syntax_an_admitted_expression_reaches_no_private_attribute_or_module(expression):
    if expression_problem(expression) is not None:
        return
    log: list = []
    ops_log: list = []
    try:
        eval(compile(expression, "<expression>", "eval"), {"__builtins__": {}},
             {"x": Probe(log), "mask": Probe(log), "ops": Probe(ops_log)})
    except Exception:   # a wrong call is the expression's own error; what it reached is what counts
        pass
    assert not [name for name in log + ops_log if name.startswith("_")]
    assert all(not inspect.ismodule(getattr(keras.ops, name, None)) for name in ops_log)
    assert set(log) <= {"shape", "ndim", "dtype"}


@pytest.mark.parametrize("kind, message", [
    ("h5", r"model\.data is an HDF5 model, not a stack file: a Keras model in HDF5 opens when its name ends in \.h5"),
    ("zip", r"model\.zip is a zip archive, not a stack file: a Keras model opens when its name ends in \.keras"),
    ("savedmodel", r"model is a TensorFlow SavedModel, which Keras 3 does not load as a model: save it as \.keras")])
def test_a_model_in_another_format_is_named_with_what_to_do(tmp_path, kind, message):
    from explorer.core.presets import load_any
    model = keras.Sequential([keras.Input((None, 2)), keras.layers.LSTM(2)])
    if kind == "h5":
        model.save(tmp_path / "model.h5")                          # Keras's own HDF5 writer, renamed
        (tmp_path / "model.h5").rename(tmp_path / "model.data")
    elif kind == "zip":
        model.save(tmp_path / "model.keras")
        (tmp_path / "model.keras").rename(tmp_path / "model.zip")
    else:
        model.export(tmp_path / "model", format="tf_saved_model")  # a directory with saved_model.pb
    path = tmp_path / {"h5": "model.data", "zip": "model.zip", "savedmodel": "model"}[kind]
    with pytest.raises(SpecError, match=message):
        load_any(str(path))
