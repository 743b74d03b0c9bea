"""Inside the cell: the gates and gradients of some sequences of a run, for the window's Inside-the-cell view."""

from __future__ import annotations

from . import backend
from .batches import batch_of
from .errors import ExplorerError
from .gates import gates
from .gradients import gradients


def inside(engine, spec, text: str | None, rows, target: int | None = None, device: str | None = None,
           source: str | None = None) -> dict:
    """What the window's Inside-the-cell view shows for `rows` of a run of (spec, text): {"gates": "<layer>/<gate>"
    → (rows, T, units), "masks": "<layer>" → (rows, T) the mask each gated layer's call receives, "gradients":
    GradientResult over the steps of the input `source` (default the first), or None with "no_gradients" saying
    why (a model whose only input is a vector)}. A request kind for the engine's worker."""
    built, layout = batch_of(engine, spec, text)
    masks: dict = {}
    with backend.device_scope(backend.resolve_device(device)):
        found = {"gates": gates(built, layout, rows, masks=masks), "masks": masks, "gradients": None}
        try:
            found["gradients"] = gradients(built, layout, rows, target, source)
        except ExplorerError as error:   # the gates still show
            found["no_gradients"] = error.message
        return found
