"""The model doctor on planted defects: models written with plain Keras, saved as .keras, one defect each.

The doctor must name the kind on the layer that has it, and its evidence must agree with a computation written
here: each line run alone in plain Keras (leaks), tf.GradientTape (the gradient's reach), the LSTM's gates in
NumPy (saturation), pad_sequences (padding shares). Clean models must give nothing above `info`.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.core.doctor import HIGH, KINDS, LOW, VANISHING_RATIO, examine
from explorer.core.presets import load_any

RNG = np.random.default_rng(0)


def check_up(engine, model, lines, tmp_path, *, text=None, **batching):
    """The doctor's report on `model` saved as .keras and read back, for `lines` (token ids or feature rows)."""
    path = tmp_path / "model.keras"
    model.save(path)
    spec, _notes = load_any(str(path))
    for key, value in batching.items():
        setattr(spec.batching, key, value)
    if text is None:
        text = "\n".join(" ".join(map(str, line)) if np.ndim(line) == 1 else
                         "; ".join(" ".join(f"{v:.6g}" for v in step) for step in line) for line in lines)
    return spec, examine(engine, spec, text)


def only(report, kind):
    found = [finding for finding in report.findings if finding.kind == kind]
    assert len(found) == 1, report.to_json()
    return found[0]


def token_lines(lengths, vocab=20):
    return [RNG.integers(1, vocab, size=n).tolist() for n in lengths]


def submodel(model, name):
    return keras.Model(model.inputs, model.get_layer(name).output)


def test_a_forgotten_mask_leaks_padding_into_the_lstm(engine, tmp_path):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(20, 8, name="emb"),
                              keras.layers.LSTM(8, name="lstm"), keras.layers.Dense(3, name="head")])
    lines = token_lines([6, 3, 5, 2])
    spec, report = check_up(engine, model, lines, tmp_path, padding="post")
    leak = only(report, "padding_leak")
    assert (leak.kind, leak.severity, leak.layer) == ("padding_leak", "error", "lstm")
    assert leak.lines == [2, 3, 4]                       # the longest line (1) has no padding
    state = submodel(model, "lstm")
    padded = state(keras.utils.pad_sequences(lines, padding="post")).numpy()
    for row, line in enumerate(lines):
        alone = state(np.array([line])).numpy()[0]
        expected = float(np.abs(padded[row] - alone).max())
        assert leak.evidence["per_line"][row]["max_abs_difference"] == pytest.approx(expected, abs=1e-5)
    assert leak.evidence["max_abs_difference"]["emb"] == 0.0
    assert "mask_zero" in leak.fix and leak.action.setting == "mask_zero"


def test_max_pooling_after_a_masked_lstm_ignores_the_mask(engine, tmp_path):
    keras.utils.set_random_seed(2)
    model = keras.Sequential([keras.Input((None,), dtype="int32"),
                              keras.layers.Embedding(20, 8, mask_zero=True, name="emb"),
                              keras.layers.LSTM(8, return_sequences=True, name="lstm"),
                              keras.layers.GlobalMaxPooling1D(name="maxpool"), keras.layers.Dense(2, name="head")])
    lines = token_lines([7, 4, 2])
    _, report = check_up(engine, model, lines, tmp_path, padding="post")
    found = only(report, "mask_ignored")
    assert (found.layer, found.severity) == ("maxpool", "warning")
    padded = keras.utils.pad_sequences(lines, padding="post")
    assert found.evidence["padded_share"] == pytest.approx(float((padded == 0).mean()), abs=1e-6)
    assert found.lines == [2, 3]


def test_a_fixed_input_length_cuts_longer_lines(engine, tmp_path):
    keras.utils.set_random_seed(3)
    inputs = keras.Input(shape=(10,), dtype="int32")
    x = keras.layers.Embedding(50, 8, mask_zero=True, name="emb")(inputs)
    x = keras.layers.LSTM(8, name="lstm")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x))
    lines = token_lines([30, 30, 8, 10], vocab=50)
    _, report = check_up(engine, model, lines, tmp_path)
    found = only(report, "truncation")
    assert found.layer is None and found.lines == [1, 2]
    lost = sum(max(0, len(line) - 10) for line in lines)
    assert found.evidence["tokens_lost"] == lost == 40
    assert found.evidence["share_lost"] == pytest.approx(lost / sum(map(len, lines)), abs=1e-6)
    assert found.evidence["limit"] == 10


def numpy_lstm_gates(kernel, recurrent, bias, line):
    """The sigmoid gates (input, forget, output) of a Keras LSTM at each step of one unpadded line."""
    units = recurrent.shape[0]
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    h, c = np.zeros(units), np.zeros(units)
    found = {"input": [], "forget": [], "output": []}
    for x in line:
        z = x @ kernel + h @ recurrent + bias
        i, f, g, o = (z[k * units:(k + 1) * units] for k in range(4))
        i, f, o, g = sigmoid(i), sigmoid(f), sigmoid(o), np.tanh(g)
        c = f * c + i * g
        h = o * np.tanh(c)
        for name, value in (("input", i), ("forget", f), ("output", o)):
            found[name].append(value)
    return {name: np.array(values) for name, values in found.items()}


def test_unscaled_features_saturate_the_lstm_gates(engine, tmp_path):
    keras.utils.set_random_seed(4)
    model = keras.Sequential([keras.Input((None, 3)), keras.layers.LSTM(8, name="lstm"),
                              keras.layers.Dense(2, name="head")])
    lines = [np.column_stack([RNG.uniform(15, 30, 9), RNG.uniform(40, 90, 9), RNG.uniform(0, 12, 9)])
             for _ in range(3)]
    _, report = check_up(engine, model, lines, tmp_path)
    found = only(report, "saturated_gates")
    assert found.layer == "lstm" and "forget" in found.evidence["saturated"]
    kernel, recurrent, bias = model.get_layer("lstm").get_weights()
    gates = [numpy_lstm_gates(kernel, recurrent, bias, np.round(line, 5)) for line in lines]
    for name in ("input", "forget", "output"):
        values = np.concatenate([g[name] for g in gates])
        expected = float(((values < LOW) | (values > HIGH)).mean())
        assert found.evidence["share"][name] == pytest.approx(expected, abs=0.01)
        assert (name in found.evidence["saturated"]) == (expected > 0.5)


def test_a_bias_that_kills_half_the_units_gives_dead_units(engine, tmp_path):
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((None,), dtype="int32"),
                              keras.layers.Embedding(20, 8, mask_zero=True, name="emb"),
                              keras.layers.LSTM(8, name="lstm"),
                              keras.layers.Dense(8, activation="relu", name="hidden"),
                              keras.layers.Dense(2, name="head")])
    kernel, bias = model.get_layer("hidden").get_weights()
    bias[:4], bias[4:] = -100.0, 1.0          # the first half never positive, the others always
    model.get_layer("hidden").set_weights([kernel, bias])
    lines = token_lines([5, 6, 5, 6])
    _, report = check_up(engine, model, lines, tmp_path)
    found = only(report, "dead_units")
    assert found.layer == "hidden"
    outputs = submodel(model, "hidden")(keras.utils.pad_sequences(lines, padding="post")).numpy()
    never_changes = np.flatnonzero(np.ptp(outputs, axis=0) == 0).tolist()
    assert found.evidence["units"] == never_changes == [0, 1, 2, 3]


def gradient_reach(model, line) -> int:
    """How many steps back from the last one ∂output/∂x stays at or above VANISHING_RATIO of its peak."""
    x = tf.constant(line[None].astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = model(x)[0, 0]
    norms = tf.norm(tape.gradient(y, x)[0], axis=-1).numpy()
    reaching = np.flatnonzero(norms >= VANISHING_RATIO * norms.max())
    return len(norms) - 1 - int(reaching[0])


def test_a_simple_rnn_over_60_steps_forgets_its_first_steps(engine, tmp_path):
    keras.utils.set_random_seed(6)
    model = keras.Sequential([keras.Input((None, 2)), keras.layers.SimpleRNN(16, name="rnn"),
                              keras.layers.Dense(1, name="head")])
    lines = [np.round(RNG.normal(0, 1, (60, 2)), 4) for _ in range(2)]
    _, report = check_up(engine, model, lines, tmp_path)
    found = only(report, "vanishing_gradient")
    assert found.layer == "rnn" and found.lines == [1, 2]
    for entry, line in zip(found.evidence["per_line"], lines):
        expected = gradient_reach(model, line)
        assert expected < 59
        assert entry["length"] == 60 and abs(entry["k"] - expected) <= 1


def test_lengths_from_2_to_200_waste_compute_on_padding(engine, tmp_path):
    keras.utils.set_random_seed(7)
    model = keras.Sequential([keras.Input((None,), dtype="int32"),
                              keras.layers.Embedding(20, 4, mask_zero=True, name="emb"),
                              keras.layers.LSTM(4, name="lstm"), keras.layers.Dense(2, name="head")])
    lengths = [2, 3, 4, 200]
    _, report = check_up(engine, model, token_lines(lengths), tmp_path)
    found = only(report, "padding_waste")
    padded = keras.utils.pad_sequences(token_lines(lengths), padding="post")
    assert found.evidence["padded_share"] == pytest.approx(float((padded == 0).mean()), abs=1e-6)
    assert found.evidence["suggested_mode"] in ("bucket", "one_by_one")
    times = found.evidence["time_ms"]
    assert found.evidence["speedup"] == pytest.approx(times["pad"] / times[found.evidence["suggested_mode"]],
                                                      rel=1e-2)
    assert found.lines == [1, 2, 3]


def test_an_infinite_weight_gives_nan_or_inf(engine, tmp_path):
    keras.utils.set_random_seed(8)
    model = keras.Sequential([keras.Input((None, 2)), keras.layers.LSTM(4, name="lstm"),
                              keras.layers.Dense(2, name="head")])
    kernel, bias = model.get_layer("head").get_weights()
    kernel[0, 1] = np.inf
    model.get_layer("head").set_weights([kernel, bias])
    lines = [np.round(RNG.normal(0, 0.5, (4, 2)), 4) for _ in range(3)]
    _, report = check_up(engine, model, lines, tmp_path)
    found = only(report, "nan_or_inf")
    assert (found.layer, found.severity) == ("head", "error")
    bad = ~np.isfinite(model.predict(np.stack(lines), verbose=0)).all(axis=1)
    assert found.lines == [row + 1 for row in np.flatnonzero(bad)]


def test_pre_padding_with_a_mask_keeps_the_lstm_off_cudnn(engine, tmp_path):
    keras.utils.set_random_seed(9)
    model = keras.Sequential([keras.Input((None,), dtype="int32"),
                              keras.layers.Embedding(20, 4, mask_zero=True, name="emb"),
                              keras.layers.LSTM(4, name="lstm"), keras.layers.Dense(2, name="head")])
    _, report = check_up(engine, model, token_lines([5, 3, 4]), tmp_path, padding="pre")
    found = only(report, "cudnn_fallback")
    assert (found.layer, found.severity) == ("lstm", "info")
    assert found.action.setting == "padding" and found.action.value == "post"


def clean_tokens():
    return keras.Sequential([keras.Input((None,), dtype="int32"),
                             keras.layers.Embedding(20, 8, mask_zero=True, name="emb"),
                             keras.layers.LSTM(8, return_sequences=True, name="lstm"),
                             keras.layers.GlobalAveragePooling1D(name="pool"),
                             keras.layers.Dense(3, activation="softmax", name="head")])


def clean_features():
    return keras.Sequential([keras.Input((None, 3)), keras.layers.Masking(0.0, name="masking"),
                             keras.layers.GRU(8, name="gru"), keras.layers.Dense(2, name="head")])


@pytest.mark.parametrize("seed", [10, 11])
def test_clean_models_give_nothing_above_info(engine, tmp_path, seed):
    keras.utils.set_random_seed(seed)
    _, tokens = check_up(engine, clean_tokens(), token_lines([6, 7, 5, 7]), tmp_path, padding="post")
    features = [np.round(RNG.normal(0, 0.5, (n, 3)), 4) for n in (7, 8, 6)]
    _, scaled = check_up(engine, clean_features(), features, tmp_path, padding="post")
    for report in (tokens, scaled):
        assert set(report.checked) == set(KINDS)
        assert report.at_least("warning") == [], report.to_json()


def test_the_check_up_lesson_ends_with_the_doctor_finding_its_planted_truncation(engine):
    from explorer.core import course
    from explorer.core.presets import load_preset
    from explorer.core.sequences import parse
    assert course.lesson("checkup_truncation").section == "Check-up"
    spec = load_preset("checkup_truncation")
    report = examine(engine, spec)
    found = only(report, "truncation")
    assert report.at_least("warning") == [found]
    lines = [line.split() for line in spec.sequences.splitlines() if line.strip() and not line.startswith("#")]
    assert found.evidence["tokens_lost"] == sum(max(0, len(line) - 10) for line in lines) == 26
    assert found.lines == [3, 4, 6] and found.layer is None
    fixed = found.action.apply(spec, longest=int(parse(spec.sequences, spec.input).lengths.max()))
    assert fixed.batching.maxlen == 24
    assert examine(engine, fixed).at_least("warning") == []


@pytest.fixture(scope="module")
def forgotten_mask(tmp_path_factory):
    """Embedding (no mask) → LSTM → Dense, saved as .keras, and the Keras model itself."""
    keras.utils.set_random_seed(12)
    model = keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(20, 4, name="emb"),
                              keras.layers.LSTM(4, name="lstm"), keras.layers.Dense(2, name="head")])
    path = tmp_path_factory.mktemp("leak") / "model.keras"
    model.save(path)
    return model, load_any(str(path))[0]


@settings(max_examples=5, deadline=None)
@given(lengths=st.lists(st.integers(1, 8), min_size=2, max_size=4), padding=st.sampled_from(["pre", "post"]))
def test_the_leak_evidence_is_each_line_run_alone_in_keras(engine, forgotten_mask, lengths, padding):
    model, imported = forgotten_mask
    lines = [np.random.default_rng(n).integers(1, 20, n).tolist() for n in lengths]
    spec = imported.copy()
    spec.batching.padding = padding
    report = examine(engine, spec, "\n".join(" ".join(map(str, line)) for line in lines))
    padded = keras.utils.pad_sequences(lines, padding=padding)
    expected = {}
    for name in ("emb", "lstm", "head"):
        layer = submodel(model, name)
        whole = layer(padded).numpy()
        deltas = []
        for row, line in enumerate(lines):
            alone = layer(np.array([line])).numpy()[0]
            mine = whole[row, -len(line):] if padding == "pre" and whole.ndim == 3 else \
                whole[row, :len(line)] if whole.ndim == 3 else whole[row]
            deltas.append(float(np.abs(mine - alone).max()))
        expected[name] = deltas
    leaking = next((name for name, deltas in expected.items() if max(deltas) > 1e-5), None)
    found = [finding for finding in report.findings if finding.kind == "padding_leak"]
    assert [finding.layer for finding in found] == ([leaking] if leaking else [])
    if found:
        evidence = found[0].evidence
        for name, deltas in expected.items():
            assert evidence["max_abs_difference"][name] == pytest.approx(max(deltas), abs=1e-5)
        got = [entry["max_abs_difference"] for entry in evidence["per_line"]]
        assert got == pytest.approx(expected[leaking], abs=1e-5)
