"""Model files as users make them: a model written in plain Keras, trained one step, saved as `.keras`."""

from __future__ import annotations

import keras
import numpy as np


def trained_and_saved(build, batches: list[np.ndarray], path, seed: int = 0):
    """`build()`'s model trained one step on `batches` (one padded batch per input) toward ones for each output,
    then saved to `path`; returns the model."""
    keras.utils.set_random_seed(seed)
    model = build()
    model.compile("adam", "mse")
    steps = batches[0].shape[1]
    targets = [np.ones((len(batches[0]), *(size or steps for size in out.shape[1:])), "float32")
               for out in model.outputs]
    model.fit(batches if len(batches) > 1 else batches[0], targets if len(targets) > 1 else targets[0], verbose=0)
    model.save(path)
    return model


def exported_output(code: str, output: str, folder) -> np.ndarray:
    """Runs an exported script alone, in `folder`, as a user runs it, and returns what it computes for `output`
    (results[output])."""
    import subprocess
    import sys
    (folder / "model.py").write_text(code + f"\n__import__('numpy').save('exported.npy', results[{output!r}])\n")
    ran = subprocess.run([sys.executable, "model.py"], capture_output=True, text=True, cwd=folder, timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]
    return np.load(folder / "exported.npy")
