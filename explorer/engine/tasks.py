"""The engine's tasks, one per request kind (see requests.py). They run in the engine process, or in-process
through LocalChannel; execute() runs one and turns its outcome into a Reply. Each imports the core it needs."""

from __future__ import annotations

import time
import traceback

from .requests import TASKS, Job, Reply, Request, task


@task("devices")
def devices(request, engine, job):
    from ..core.backend import list_devices
    return list(list_devices())


@task("run")
def run(request, engine, job):
    """A RunResult; the engine then prepares its neighbours while idle. With `partial`, a StackError at layer k carries (as `partial`, the error reply's value) a
    run of the layers before it, so that the window shows the shapes up to the failing layer."""
    from ..core.errors import StackError
    from ..core.spec import LayerSpec
    p = request.payload
    spec, options = p["spec"], dict(device=p.get("device"), trust=p.get("trust", False),
                                    check_cancel=job.check_cancel)
    try:
        result = engine.run(spec, p.get("text"), progress=job.progress, **options)
        engine.plan_preparation(spec, *result.input.shape[:2])    # this stack is on screen now
        return result
    except StackError as error:
        names = spec.layer_names()
        index = names.index(error.layer) if error.layer in names else 0
        if p.get("partial") and index:
            prefix = spec.copy()
            prefix.layers = [LayerSpec(layer.type, dict(layer.params), name)
                             for layer, name in zip(prefix.layers[:index], names)]
            try:
                error.partial = engine.run(prefix, p.get("text"), **options)
            except StackError:
                pass
        raise


@task("leaks")
def leaks(request, engine, job):
    from ..core.leaks import leak_check
    p = request.payload
    return leak_check(engine, p["spec"], p.get("text"), device=p.get("device"), trust=p.get("trust", False))


@task("compare")
def compare(request, engine, job):
    from ..core.leaks import compare_modes
    p = request.payload
    return compare_modes(engine, p["spec"], p.get("text"), device=p.get("device"), trust=p.get("trust", False),
                         check_cancel=job.check_cancel)


@task("cell")
def cell(request, engine, job):
    """The gates and gradients of some rows of a run, for the window's Inside-the-cell view."""
    from ..core.cell import inside
    p = request.payload
    return inside(engine, p["spec"], p.get("text"), p["rows"], p.get("target"), p.get("device"), p.get("source"))


@task("doctor")
def doctor(request, engine, job):
    """The model doctor's report (explorer/core/doctor.py) on the stack and the sequences."""
    from ..core.doctor import examine
    p = request.payload
    return examine(engine, p["spec"], p.get("text"), device=p.get("device"), trust=p.get("trust", False),
                   check_cancel=job.check_cancel)


@task("train")
def train(request, engine, job):
    """Some optimizer steps (at most `steps`, for about `seconds`) on the stack's labelled sequences; the
    trainer stays in the engine between requests."""
    from ..core.train import train_steps
    p = request.payload
    return train_steps(engine, p["spec"], p.get("text"), p["settings"], steps=p["steps"], seconds=p["seconds"],
                       device=p.get("device"), trust=p.get("trust", False), check_cancel=job.check_cancel)


@task("code")
def code(request, engine, job):
    from ..core.codegen import export_code
    return export_code(request.payload["spec"])


@task("open-keras")
def open_keras(request, engine, job):
    """("ok", (spec, weights, notes)), or ("trust", message) when the model holds a custom expression."""
    from ..core import keras_io
    from ..core.errors import TrustError
    p = request.payload
    if p.get("custom_objects"):   # the user chose this file of layer classes, knowing it runs as code
        from ..core.keras_cards import load_custom_objects
        load_custom_objects(p["custom_objects"])
    try:
        return "ok", keras_io.import_model(p["path"], trust=p.get("trust", False))
    except TrustError as error:
        return "trust", error.message


@task("export-keras")
def export_keras(request, engine, job):
    from ..core import keras_io
    p = request.payload
    keras_io.export_model(engine.built_for(p["spec"]), p["path"])
    return p["path"]


@task("export-weights")
def export_weights(request, engine, job):
    """The weights of the model of `spec` (reused when it is the last one built), or of the last model."""
    spec = request.payload.get("spec")
    if spec is not None:
        engine.built_for(spec)
    return engine.weights()


def execute(request_id: int, request: Request, engine, job: Job) -> Reply:
    """Runs one request's task and turns its outcome into a Reply: user errors, cancels and bugs alike."""
    from ..core.backend import is_out_of_memory
    from ..core.errors import ExplorerError, OutOfMemoryError, strip_ansi
    from ..core.run import Cancelled
    started = time.perf_counter()
    reply = Reply(request_id, request.kind)
    try:
        function = TASKS.get(request.kind)
        if function is None:
            raise KeyError(f"no task for requests of kind {request.kind!r}")
        reply.value = function(request, engine, job)
    except Cancelled:
        reply.cancelled = True
    except ExplorerError as error:
        reply.error, reply.error_layer = error.message, error.layer
        reply.value = getattr(error, "partial", None)     # what could be computed before the error
        reply.fatal = isinstance(error, OutOfMemoryError)
    except Exception as error:  # a bug: the engine lives on, the traceback travels with the reply
        if is_out_of_memory(error):
            reply.error, reply.fatal = "out of memory (more than the engine may use)", True
        else:
            reply.details = traceback.format_exc()
            reply.error = f"internal error ({type(error).__name__}): {strip_ansi(str(error))[:300]}"
            reply.internal = True
    reply.elapsed_ms = (time.perf_counter() - started) * 1000
    return reply
