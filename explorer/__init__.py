"""RNN Shape Explorer: see shapes, padding and masks inside recurrent networks."""

__version__ = "0.1.0"


def doctor(model, sequences=None, **batching):
    """The check-up of `model` on `sequences` (text, one sequence a line; default: the stack's own): a
    `DoctorReport` with `findings`, `checked`, `to_json()`, `to_html()` and `to_markdown()`.

    `model`: a Keras model in memory, a `.keras` path, a stack file path or dict, or `preset:NAME`.
    `batching`: overrides such as `padding="pre"`, `maxlen=20`, `pad_value=0`, `mode="bucket"`.
    """
    from .core.doctor import examine
    from .core.run import Engine
    spec, trusted = _spec_of(model)
    for key, value in batching.items():
        if not hasattr(spec.batching, key):
            raise TypeError(f"doctor() got an unknown batching setting {key!r}")
        setattr(spec.batching, key, value)
    return examine(Engine(), spec, sequences, trust=trusted)


def _spec_of(model):
    """(the explorer's stack for `model`, whether its custom expressions may run)."""
    from pathlib import Path
    from .core import presets, spec
    if isinstance(model, dict):
        return spec.from_dict(model), False
    if isinstance(model, (str, Path)):
        reference = str(model)
        stack, _notes = presets.load_any(reference)
        return stack, presets.is_preset(reference)
    import tempfile
    from .core.keras_io import import_model
    with tempfile.TemporaryDirectory() as folder:       # a model in memory goes through the same import
        path = Path(folder) / "model.keras"
        model.save(path)
        stack, _weights, _notes = import_model(path)
    return stack, False
