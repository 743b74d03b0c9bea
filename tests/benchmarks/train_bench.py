"""Training speed: `python tests/benchmarks/train_bench.py` prints one JSON line (a benchmark, not a test).

train_steps_per_s: the explorer's training steps per second (`train.train_steps`) on the default stack (the
average_pooling preset) with 64 contains_7 sequences; keras_steps_per_s: a plain Keras `train_on_batch` loop
over the same model (cloned, same weights, Adam 0.01) and the same data padded with keras.utils.pad_sequences,
timed in the same run, with TensorFlow's default graph optimizations (the explorer switches them off for its
forward passes); ratio = explorer ÷ Keras (target ≥ 0.8). Best of REPEATS timings of STEPS steps each, taken in
turns, after a warm-up that traces both.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

STEPS = 30
REPEATS = 10
WARM_UP = 5
SEQUENCES = 64


@contextlib.contextmanager
def tensorflow_defaults():
    """TensorFlow's own graph optimizer settings, as a plain Keras script runs with."""
    import tensorflow as tf
    saved = bool(tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer"))
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": False})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": saved})


def main() -> None:
    import numpy as np

    from explorer.core import backend, presets, sequences, tasks, train
    from explorer.core.run import Engine
    keras = backend.load()
    spec = presets.load_preset(presets.DEFAULT)
    text = tasks.generate("contains_7", SEQUENCES, spec.input, seed=0)
    settings = train.TrainSettings("adam", 0.01)
    engine = Engine()
    original = engine.built_for(spec).model
    twin = keras.models.clone_model(original)
    twin.set_weights(original.get_weights())
    progress = train.train_steps(engine, spec, text, settings, steps=WARM_UP)

    parsed = sequences.parse(text, spec.input)
    x = keras.utils.pad_sequences(parsed.items, padding="post")
    y = np.array([int(labels.values[0]) for labels in parsed.labels], dtype="int32")
    twin.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
                 metrics=["sparse_categorical_accuracy"])
    with tensorflow_defaults():
        for _ in range(WARM_UP):
            twin.train_on_batch(x, y)

    ours, theirs = [], []
    for _ in range(REPEATS):
        started = time.perf_counter()
        progress = train.train_steps(engine, progress.spec, text, settings, steps=STEPS)
        ours.append(STEPS / (time.perf_counter() - started))
        with tensorflow_defaults():
            started = time.perf_counter()
            for _ in range(STEPS):
                twin.train_on_batch(x, y)
            theirs.append(STEPS / (time.perf_counter() - started))
    print(json.dumps({"train_steps_per_s": round(max(ours), 1), "keras_steps_per_s": round(max(theirs), 1),
                      "ratio": round(max(ours) / max(theirs), 3), "sequences": SEQUENCES, "steps": STEPS,
                      "repeats": REPEATS, "stack": presets.DEFAULT, "backend": backend.name()}))


if __name__ == "__main__":
    main()
