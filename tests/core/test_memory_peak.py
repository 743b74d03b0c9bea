"""The memory estimate against the peak memory that `run --npz` really takes, and that plain Keras takes to run
the same layer, measured by the operating system (the high-water mark of a separate process's resident memory,
VmHWM, less its peak after a tiny run that imported TensorFlow)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from explorer.core import memory
from explorer.core.spec import from_dict

ROOT = Path(__file__).resolve().parents[2]

# Runs each (stack, rows, steps) through the command line's own `run --npz`, smallest first, and prints the
# growth of the process's peak memory (MB) over its peak after a tiny run.
PROBE = """
import json, sys
import numpy as np
from explorer import cli
def peak():   # this program's own high-water mark: ru_maxrss would start at the forking parent's (a big pytest)
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
def text(document, rows, steps):
    rng = np.random.default_rng(0)
    if document["input"]["kind"] == "tokens":
        vocab = document["input"]["vocab_size"]
        return "\\n".join(" ".join(map(str, rng.integers(1, vocab, steps))) for _ in range(rows))
    features = document["input"]["features"]
    return "\\n".join(";".join(" ".join("0.5" for _ in range(features)) for _ in range(steps)) for _ in range(rows))
folder = sys.argv[1]
def run(document, rows, steps):
    with open(f"{folder}/stack.json", "w") as f:
        json.dump(document, f)
    with open(f"{folder}/input.txt", "w") as f:
        f.write(text(document, rows, steps))
    status = cli.main(["run", f"{folder}/stack.json", "--input", f"{folder}/input.txt", "--npz", f"{folder}/out.npz",
                       "--trust"])
    assert status == 0
run({"input": {"kind": "tokens", "vocab_size": 10}, "layers": [{"type": "embedding", "output_dim": 2},
     {"type": "lstm", "units": 2}, {"type": "dense", "units": 2}]}, 2, 3)
base = peak()
for document, rows, steps in json.loads(sys.argv[2]):
    run(document, rows, steps)
    print(peak() - base, flush=True)
"""


def tokens(vocab, *layers):
    return {"input": {"kind": "tokens", "vocab_size": vocab}, "layers": [{"type": "embedding", "output_dim": 8},
                                                                         *layers]}


def features(*layers):
    return {"input": {"kind": "features", "features": 8}, "layers": list(layers)}


# each layer type at three sizes, each size about twice the one before: (stack, rows, steps)
CASES = {
    "embedding": [({"input": {"kind": "tokens", "vocab_size": v},
                    "layers": [{"type": "embedding", "output_dim": 48}]},
                   4, 10) for v in (500_000, 1_000_000, 2_000_000)],
    "simple_rnn": [(tokens(100, {"type": "simple_rnn", "units": u}), 3, 5) for u in (1024, 1536, 2048)],
    "lstm": [(tokens(100, {"type": "lstm", "units": u}), 3, 5) for u in (512, 768, 1024)],
    "gru": [(tokens(100, {"type": "gru", "units": u}), 3, 5) for u in (640, 896, 1280)],
    "bidirectional_lstm_sequences": [(features({"type": "lstm", "units": 64, "return_sequences": True,
                                                "bidirectional": True}), r, 500) for r in (100, 200, 400)],
    "time_distributed_dense": [(features({"type": "time_distributed_dense", "units": 1024}), r, 500)
                               for r in (50, 100, 200)],
    "dense_after_flatten": [({**features({"type": "flatten"}, {"type": "dense", "units": u}),
                              "batching": {"maxlen": 1000}}, 4, 1000) for u in (1024, 2048, 4096)],
    "custom": [(features({"type": "custom", "expression": f"ops.tile(x, (1, 1, {n}))"}), 20, 500)
               for n in (250, 500, 1000)],
    "attention_pooling": [(features({"type": "time_distributed_dense", "units": 512}, {"type": "attention_pooling"}),
                           r, 500) for r in (100, 200, 400)],
    "pooling_and_masking": [(features({"type": "masking"}, {"type": "time_distributed_dense", "units": 512},
                                      {"type": "global_max_pooling"}), r, 500) for r in (100, 200, 400)],
}


def _estimate(document, rows, steps) -> float:
    from explorer.core.run import _custom_shape
    return memory.estimate_mb(from_dict(document), rows, steps, custom_shape=_custom_shape)


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(CASES))
def test_the_estimate_is_within_a_factor_of_2_of_the_measured_peak(kind, tmp_path):
    cases = CASES[kind]
    ran = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path), json.dumps(cases)], capture_output=True,
                         text=True, cwd=ROOT, timeout=600)
    assert ran.returncode == 0, ran.stderr[-2000:]
    measured = [float(line) for line in ran.stdout.split()]
    estimated = [_estimate(*case) for case in cases]
    for estimate, peak in zip(estimated, measured):
        assert peak / 2 <= estimate <= peak * 2, (kind, estimated, measured)


# Plain Keras runs one layer in a fresh process: built, called once on the whole batch (as the engine runs it),
# its outputs and weights copied out (as the run's result holds them). Prints the growth of the process's peak
# memory (MB) over its peak after TensorFlow ran a few tiny layers.
PLAIN = """
import json, sys
import numpy as np
import keras
from keras import ops
from explorer.core import layers as own   # the explorer's own Keras layers, used as any Keras layer is
def peak():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
def run(layer, batch):
    output = layer(batch)
    return [np.array(value) for value in keras.tree.flatten(output)], layer.get_weights()
tiny = np.full((2, 3, 4), 0.5, "float32")
for layer in (keras.layers.Embedding(10, 4), keras.layers.LSTM(2), keras.layers.Dense(2)):
    run(layer, tiny[..., 0].astype("int32") if isinstance(layer, keras.layers.Embedding) else tiny)
base = peak()
case = json.loads(sys.argv[1])
shape = (case["rows"], case["steps"])
batch = (np.random.default_rng(0).integers(1, case["vocab"], shape).astype("int32") if case["vocab"]
         else np.full((*shape, case["features"]), 0.5, "float32"))
run(eval(case["layer"]), batch)
print(peak() - base)
"""


def one_layer(layer: dict, code: str, rows: int, steps: int, *, features: int = 64, vocab: int = 0):
    """A stack of one layer and the same layer in plain Keras (source), on `rows` × `steps` (× `features`)."""
    given = {"kind": "tokens", "vocab_size": vocab} if vocab else {"kind": "features", "features": features}
    return {"input": given, "layers": [layer]}, code, rows, steps


def card(class_name: str, config: dict, code: str, rows: int, steps: int):
    return one_layer({"type": "keras", "class_name": class_name, "config": config}, code, rows, steps)


# Each registry type (and three Keras layer cards) at a size where it dominates: its weights, or its batch
PLAIN_CASES = {
    "embedding": one_layer({"type": "embedding", "output_dim": 48}, "keras.layers.Embedding(500_000, 48)", 4, 10,
                           vocab=500_000),
    "masking": one_layer({"type": "masking"}, "keras.layers.Masking(0.0)", 400, 1000),
    "simple_rnn": one_layer({"type": "simple_rnn", "units": 2048}, "keras.layers.SimpleRNN(2048)", 3, 5),
    "lstm": one_layer({"type": "lstm", "units": 1024}, "keras.layers.LSTM(1024)", 3, 5),
    "gru": one_layer({"type": "gru", "units": 1152}, "keras.layers.GRU(1152)", 3, 5),
    "global_average_pooling": one_layer({"type": "global_average_pooling"},
                                        "keras.layers.GlobalAveragePooling1D()", 400, 1000),
    "masked_mean_pooling": one_layer({"type": "masked_mean_pooling"}, "own.MaskedMeanPooling()", 400, 1000),
    "global_max_pooling": one_layer({"type": "global_max_pooling"}, "keras.layers.GlobalMaxPooling1D()", 400, 1000),
    "time_average": one_layer({"type": "time_average"}, "own.TimeAverage()", 400, 1000),
    "last_timestep": one_layer({"type": "last_timestep"}, "own.LastTimestep()", 400, 1000),
    "attention_pooling": one_layer({"type": "attention_pooling"}, "own.AttentionPooling()", 400, 1000),
    "flatten": one_layer({"type": "flatten"}, "keras.layers.Flatten()", 400, 1000),
    "dense": one_layer({"type": "dense", "units": 1024}, "keras.layers.Dense(1024)", 100, 500, features=8),
    # Dense on a sequence is TimeDistributed(Dense): the same weights and numbers, and what the entry builds
    "time_distributed_dense": one_layer({"type": "time_distributed_dense", "units": 1024},
                                        "keras.layers.Dense(1024)", 100, 500, features=8),
    "custom": one_layer({"type": "custom", "expression": "ops.tile(x, (1, 1, 250))"},
                        "keras.layers.Lambda(lambda x: ops.tile(x, (1, 1, 250)))", 40, 500, features=8),
    "keras:Conv1D": card("Conv1D", {"filters": 512, "kernel_size": 3, "padding": "same"},
                         "keras.layers.Conv1D(512, 3, padding='same')", 100, 500),
    "keras:LayerNormalization": card("LayerNormalization", {}, "keras.layers.LayerNormalization()", 400, 1000),
    "keras:MaxPooling1D": card("MaxPooling1D", {"pool_size": 2}, "keras.layers.MaxPooling1D(2)", 400, 1000),
}


def test_the_plain_keras_cases_cover_every_registry_type():
    from explorer.core.registry import TYPES
    assert {key.split(":")[0] for key in PLAIN_CASES} == set(TYPES)


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(PLAIN_CASES))
def test_the_estimate_is_within_a_factor_of_2_of_plain_keras_running_the_layer(kind):
    from explorer.core import backend
    backend.load()   # a Keras layer card's estimate asks Keras for its shape and weights, as the engine does
    document, code, rows, steps = PLAIN_CASES[kind]
    given = document["input"]
    case = {"layer": code, "rows": rows, "steps": steps, "vocab": given.get("vocab_size", 0),
            "features": given.get("features", 0)}
    ran = subprocess.run([sys.executable, "-c", PLAIN, json.dumps(case)], capture_output=True, text=True, cwd=ROOT,
                         timeout=300)
    assert ran.returncode == 0, ran.stderr[-2000:]
    peak = float(ran.stdout.split()[-1])
    estimate = _estimate(document, rows, steps)
    assert peak / 2 <= estimate <= peak * 2, (kind, estimate, peak)
