"""The check-up's speed: `python tests/benchmarks/doctor_bench.py` prints one JSON line (a benchmark, not a test).

doctor_s: `core.doctor.examine` on 64 lines × 100 token ids through Embedding 32 (mask_zero) → LSTM 64 →
Dense 10 softmax: every kind, the leak check and the gates and gradients included. keras_s: what plain Keras
needs for its two main measurements on the same model (the explorer's weights) and data: each line run alone
(`predict_on_batch`, 64 calls) plus one `tf.GradientTape` pass over the padded batch (the gradient of each
line's largest output at the embedding's output). Best of REPEATS, taken in turns in the same run after a
warm-up that traces both; ratio = doctor ÷ Keras.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

LINES, STEPS, UNITS = 64, 100, 64
REPEATS = 3


def main() -> None:
    import numpy as np
    import keras
    import tensorflow as tf
    from explorer.core.doctor import examine
    from explorer.core.run import Engine
    from explorer.core.spec import from_dict

    tokens = np.random.default_rng(0).integers(1, 1000, (LINES, STEPS))
    spec = from_dict({"input": {"kind": "tokens", "vocab_size": 1000},
                      "layers": [{"type": "embedding", "output_dim": 32, "mask_zero": True},
                                 {"type": "lstm", "units": UNITS},
                                 {"type": "dense", "units": 10, "activation": "softmax"}],
                      "sequences": "\n".join(" ".join(map(str, row)) for row in tokens)})
    engine = Engine()
    engine.run(spec)
    weights = engine.weights()

    embedding = keras.layers.Embedding(1000, 32, mask_zero=True)
    lstm, dense = keras.layers.LSTM(UNITS), keras.layers.Dense(10, activation="softmax")
    inputs = keras.Input((None,), dtype="int32")
    model = keras.Model(inputs, dense(lstm(embedding(inputs))))
    for layer, name in ((embedding, "embedding_1"), (lstm, "lstm_1"), (dense, "dense_1")):
        layer.set_weights([weights[key] for key in sorted(weights) if key.startswith(f"weights/{name}/")])
    padded = keras.utils.pad_sequences(list(tokens), padding="post")

    @tf.function
    def gradient(batch):
        with tf.GradientTape() as tape:
            embedded = embedding(batch)
            tape.watch(embedded)
            output = dense(lstm(embedded, mask=embedding.compute_mask(batch)))
            chosen = tf.reduce_sum(tf.reduce_max(output, axis=1))
        return tf.norm(tape.gradient(chosen, embedded), axis=-1)

    def keras_pass() -> None:
        for row in tokens:
            model.predict_on_batch(row[None])
        gradient(tf.constant(padded)).numpy()

    def doctor_pass() -> None:
        examine(engine, spec)

    doctor_pass()
    keras_pass()
    times = {"doctor": [], "keras": []}
    for _ in range(REPEATS):
        for name, work in (("doctor", doctor_pass), ("keras", keras_pass)):
            started = time.perf_counter()
            work()
            times[name].append(time.perf_counter() - started)
    best = {name: min(values) for name, values in times.items()}
    print(json.dumps({"lines": LINES, "steps": STEPS, "lstm_units": UNITS, "doctor_s": round(best["doctor"], 3),
                      "keras_s": round(best["keras"], 3), "ratio": round(best["doctor"] / best["keras"], 2),
                      "all_doctor_s": [round(t, 3) for t in times["doctor"]],
                      "all_keras_s": [round(t, 3) for t in times["keras"]],
                      "load_average": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
