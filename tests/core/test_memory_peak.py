"""The memory estimate against the peak memory that `run --npz` really takes, measured by the operating system
(the high-water mark of a separate process's resident memory, VmHWM, less its peak after a tiny run that imported
TensorFlow)."""

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
