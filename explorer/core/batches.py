"""The batch of a run, again, for the requests that look into it after the run (gates, gradients)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import sequences


@dataclass
class InputsLayout(sequences.Layout):
    """The batch of a model of several inputs: the first input's layout (pad mode: one piece, the whole batch),
    and each input's by name in the model's order."""

    inputs: dict[str, sequences.Layout] = field(default_factory=dict)


def batch_of(engine, spec, text: str | dict[str, str] | None = None):
    """(built model, layout) for `text` (default: the spec's own sequences; with several inputs a dict by input
    name, or the first input's text), padded and split as Engine.run does it."""
    from .run import bucket_cost, parse_inputs
    built = engine.built_for(spec)
    if spec.more_inputs:
        parsed, _ = parse_inputs(spec, text)
        layouts = {item.name: sequences.input_layout(parsed[item.name], item, spec.batching)
                   for item in spec.all_inputs()}
        first = layouts[spec.input.name]
        return built, InputsLayout(first.batch, first.mask, first.lengths, first.pieces, layouts)
    parsed = sequences.parse((spec.sequences if text is None else text) or "", spec.input)
    if spec.input.kind == "words":
        from .vocabulary import encode
        parsed, _ = encode(parsed, spec.input)
    cost = bucket_cost(built, spec.batching) if spec.batching.mode == "bucket" else None
    return built, sequences.input_layout(parsed, spec.input, spec.batching, fixed_length=built.time_fixed is not None,
                                         bucket_cost=cost)


def pieces_for(layout, rows: np.ndarray):
    """(piece, its rows to run, their places in `rows`) for every piece of `layout` holding a wanted row."""
    for piece in layout.pieces:
        position = {int(row): i for i, row in enumerate(piece.rows)}
        places = [i for i, row in enumerate(rows) if int(row) in position]
        if places:
            yield piece, np.array([position[int(rows[i])] for i in places]), np.array(places)


def model_batch(layout, piece, chosen: np.ndarray):
    """What the model takes for rows `chosen` of a piece: the piece's batch, or the list of each input's."""
    if isinstance(layout, InputsLayout):   # pad mode: the piece's rows are the whole batch's
        return [each.batch[piece.rows[chosen]] for each in layout.inputs.values()]
    return piece.batch[chosen]


def covers_all(layout) -> bool:
    """The layout runs as one piece, the whole padded batch (pad mode): a layer's own time axis fits in as it is."""
    return len(layout.pieces) == 1 and layout.pieces[0].batch.shape[:2] == layout.batch.shape[:2]
