"""The batch of a run, again, for the requests that look into it after the run (gates, gradients)."""

from __future__ import annotations

import numpy as np

from . import sequences
from .errors import ExplorerError


def one_sequence_input(spec, what: str) -> None:
    """Refuses `what` (gates, gradients, the leak check, the doctor, training), which look into the padded
    sequences of one input, for a model of several inputs or of one vector per example."""
    if spec.more_inputs:
        raise ExplorerError(f"{what} cannot run: it looks into one input's padded sequences, but this model takes "
                            f"{len(spec.all_inputs())} inputs")
    if not spec.input.has_steps:
        raise ExplorerError(f"{what} cannot run: it looks into padded sequences, but this model's input is one vector "
                            "per example")


def batch_of(engine, spec, text: str | None = None):
    """(built model, layout) for `text` (default: the spec's own sequences), padded and split as
    Engine.run does it."""
    one_sequence_input(spec, "gates, gradients and the cell view")
    parsed = sequences.parse((spec.sequences if text is None else text) or "", spec.input)
    if spec.input.kind == "words":
        from .vocabulary import encode
        parsed, _ = encode(parsed, spec.input)
    from .run import bucket_cost
    built = engine.built_for(spec)
    cost = bucket_cost(built, spec.batching) if spec.batching.mode == "bucket" else None
    return built, sequences.layout(parsed, spec.batching, fixed_length=built.time_fixed is not None, bucket_cost=cost)


def pieces_for(layout, rows: np.ndarray):
    """(piece, its rows to run, their places in `rows`) for every piece of `layout` holding a wanted row."""
    for piece in layout.pieces:
        position = {int(row): i for i, row in enumerate(piece.rows)}
        places = [i for i, row in enumerate(rows) if int(row) in position]
        if places:
            yield piece, np.array([position[int(rows[i])] for i in places]), np.array(places)
