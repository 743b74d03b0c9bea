"""Inside the cell: the gates and gradients of some sequences of a run, for the window's Inside-the-cell view."""

from __future__ import annotations

from . import backend
from .batches import batch_of
from .gates import gates
from .gradients import gradients


def inside(engine, spec, text: str | None, rows, target: int | None = None, device: str | None = None) -> dict:
    """What the window's Inside-the-cell view shows for `rows` of a run of (spec, text): {"gates": "<layer>/<gate>"
    → (rows, T, units), "gradients": GradientResult}. A request kind for the engine's worker."""
    built, layout = batch_of(engine, spec, text)
    with backend.device_scope(backend.resolve_device(device)):
        return {"gates": gates(built, layout, rows), "gradients": gradients(built, layout, rows, target)}
