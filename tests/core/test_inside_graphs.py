"""Inside the cell of models that are graphs: a branch LSTM that takes the embedding rather than the layer listed
before it, and a decoder started from an encoder's states, in a model of two inputs. Written here in plain Keras,
trained one step, saved and opened as a user opens them; the gates equal a NumPy recurrence over the layer's true
input and initial states (read from Keras sub-models of the saved model), whose h equals the layer's own output."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st
from keras import layers

from explorer.core import keras_io
from explorer.core.batches import batch_of
from explorer.core.gates import gates
from explorer.core.run import Engine

from .keras_files import trained_and_saved

ENGINE = Engine()
VOCAB = 12
LSTM_GATES = ("input", "forget", "candidate", "output", "cell")


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def numpy_lstm(weights, x, valid, h0=None, c0=None):
    """Keras's LSTM (kernel columns [i, f, c, o], sigmoid gates, tanh) step by step: the gates at each step (0 where
    the mask skips it; the state carries over) and h."""
    kernel, recurrent, bias = (w.astype(np.float64) for w in weights)
    units = recurrent.shape[0]
    h = np.zeros((x.shape[0], units)) if h0 is None else h0.astype(np.float64)
    c = np.zeros_like(h) if c0 is None else c0.astype(np.float64)
    found = {gate: np.zeros((x.shape[0], x.shape[1], units)) for gate in (*LSTM_GATES, "h")}
    for t in range(x.shape[1]):
        z = x[:, t] @ kernel + h @ recurrent + bias
        i, f, g, o = sigmoid(z[:, :units]), sigmoid(z[:, units:2 * units]), np.tanh(z[:, 2 * units:3 * units]), \
            sigmoid(z[:, 3 * units:])
        new_c = f * c + i * g
        keep = valid[:, t][:, None]
        for gate, value in zip(LSTM_GATES, (i, f, g, o, new_c)):
            found[gate][:, t] = np.where(keep, value, 0.0)
        h = np.where(keep, o * np.tanh(new_c), h)
        c = np.where(keep, new_c, c)
        found["h"][:, t] = h
    return found


def branch_model():
    """Two LSTMs side by side on one embedding, as wide as each other: the second is listed after the first but
    takes the embedding."""
    ids = keras.Input((None,), dtype="int32", name="ids")
    embedded = layers.Embedding(VOCAB, 3, mask_zero=True, name="emb")(ids)
    first = layers.LSTM(3, return_sequences=True, name="a")(embedded)
    second = layers.LSTM(3, return_sequences=True, name="b")(embedded)
    joined = layers.Concatenate(name="cat")([first, second])
    return keras.Model(ids, layers.Dense(2, name="head")(layers.GlobalAveragePooling1D(name="pool")(joined)))


def encoder_decoder():
    """Keras's character-level translation example with token ids: the decoder starts from the encoder's h and c."""
    source = keras.Input((None,), dtype="int32", name="source")
    target = keras.Input((None,), dtype="int32", name="target")
    _, h, c = layers.LSTM(4, return_state=True, name="encoder")(
        layers.Embedding(VOCAB, 3, mask_zero=True, name="source_emb")(source))
    decoded = layers.LSTM(4, return_sequences=True, name="decoder")(
        layers.Embedding(VOCAB, 3, mask_zero=True, name="target_emb")(target), initial_state=[h, c])
    return keras.Model([source, target], layers.Dense(VOCAB, activation="softmax", name="next")(decoded))


def text_of(rows):
    return "".join(" ".join(map(str, row)) + "\n" for row in rows)


def padded(rows):
    return keras.utils.pad_sequences(rows, padding="post")


@pytest.fixture(scope="module")
def branch(tmp_path_factory):
    path = tmp_path_factory.mktemp("branch") / "model.keras"
    model = trained_and_saved(branch_model, [padded([[3, 7, 1, 9], [5, 2]])], path, seed=4)
    spec, _, _ = keras_io.import_model(path)
    return model, spec


@pytest.fixture(scope="module")
def translation(tmp_path_factory):
    path = tmp_path_factory.mktemp("translation") / "model.keras"
    model = trained_and_saved(encoder_decoder, [padded([[3, 7, 1], [5]]), padded([[2, 4], [6, 1, 8]])], path, seed=6)
    spec, _, _ = keras_io.import_model(path)
    return model, spec


def assert_gates_equal(found, reference, name, valid):
    for gate in LSTM_GATES:
        np.testing.assert_allclose(found[f"{name}/{gate}"], reference[gate], atol=1e-5, err_msg=f"{name} {gate}")
    np.testing.assert_allclose(reference["h"][valid], reference["own output"][valid], atol=1e-5)


ROWS = st.lists(st.lists(st.integers(1, VOCAB - 1), min_size=1, max_size=6), min_size=1, max_size=3)


@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=ROWS)
def test_the_gates_of_a_branch_lstm_come_from_its_own_input(branch, rows):
    model, spec = branch
    built, layout = batch_of(ENGINE, spec, text_of(rows))
    batch = padded(rows)
    np.testing.assert_array_equal(layout.batch, batch)
    embedded = keras.Model(model.inputs, model.get_layer("emb").output).predict(batch, verbose=0)
    valid = batch != 0
    found = gates(built, layout)
    for name in ("a", "b"):
        reference = numpy_lstm(model.get_layer(name).get_weights(), embedded.astype(np.float64), valid)
        reference["own output"] = keras.Model(model.inputs, model.get_layer(name).output).predict(batch, verbose=0)
        assert_gates_equal(found, reference, name, valid)


@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=st.lists(st.tuples(ROWS.map(lambda rows: rows[0]), ROWS.map(lambda rows: rows[0])), min_size=1,
                      max_size=3))
def test_the_gates_of_a_decoder_start_from_the_encoders_states(translation, pairs):
    model, spec = translation
    sources, targets = [p[0] for p in pairs], [p[1] for p in pairs]
    built, layout = batch_of(ENGINE, spec, {"source": text_of(sources), "target": text_of(targets)})
    batches = [padded(sources), padded(targets)]
    _, h, c = keras.Model(model.inputs, model.get_layer("encoder").output).predict(batches, verbose=0)
    embedded = keras.Model(model.inputs, model.get_layer("target_emb").output).predict(batches, verbose=0)
    own = keras.Model(model.inputs, model.get_layer("decoder").output).predict(batches, verbose=0)
    # Keras gives a call with initial states no mask of its input's: every step runs, padded ones too, as `own` shows
    every = np.ones(batches[1].shape, bool)
    reference = numpy_lstm(model.get_layer("decoder").get_weights(), embedded.astype(np.float64), every, h, c)
    reference["own output"] = own
    found = gates(built, layout)
    assert_gates_equal(found, reference, "decoder", every)
    encoder = numpy_lstm(model.get_layer("encoder").get_weights(),
                         keras.Model(model.inputs, model.get_layer("source_emb").output).predict(batches, verbose=0)
                         .astype(np.float64), batches[0] != 0)
    for gate in LSTM_GATES:   # the encoder's, on the source's steps and mask
        np.testing.assert_allclose(found[f"encoder/{gate}"], encoder[gate], atol=1e-5, err_msg=f"encoder {gate}")


def test_gradients_of_a_two_input_model_equal_a_gradient_tape_through_its_layers(translation):
    import tensorflow as tf
    from explorer.core.gradients import gradients
    model, spec = translation
    model = keras.models.clone_model(model)   # the saved model's layers as plain Keras calls them, same weights
    model.set_weights(translation[0].get_weights())
    sources, targets = [[3, 7, 1], [5], [2, 2, 9, 4]], [[2, 4], [6, 1, 8], [1]]
    built, layout = batch_of(ENGINE, spec, {"source": text_of(sources), "target": text_of(targets)})
    batches = [padded(sources), padded(targets)]
    unit = 3
    with tf.GradientTape(persistent=True) as tape:
        source_emb = model.get_layer("source_emb")(batches[0])
        target_emb = model.get_layer("target_emb")(batches[1])
        tape.watch([source_emb, target_emb])
        _, h, c = model.get_layer("encoder")(source_emb, mask=batches[0] != 0)
        decoded = model.get_layer("decoder")(target_emb, initial_state=[h, c])   # no mask: Keras gives it none
        tape.watch(decoded)
        out = model.get_layer("next")(decoded)
        last = np.array([len(row) - 1 for row in targets])
        chosen = tf.gather_nd(out, np.stack([np.arange(3), last, np.full(3, unit)], axis=1))
        total = tf.reduce_sum(chosen)
    np.testing.assert_allclose(out, model.predict(batches, verbose=0), atol=1e-5)   # the hand-made pass is the model
    expected = {name: np.linalg.norm(tape.gradient(total, tensor).numpy(), axis=2)
                for name, tensor in (("source_emb", source_emb), ("target_emb", target_emb), ("decoder", decoded))}
    found = gradients(built, layout, target=unit)
    np.testing.assert_array_equal(found.step, last)
    for name in ("source_emb", "target_emb", "decoder"):
        np.testing.assert_allclose(found.norms[name], expected[name], atol=1e-5, rtol=1e-4, err_msg=name)
    np.testing.assert_allclose(found.norms["input"], expected["source_emb"], atol=1e-5, rtol=1e-4)   # the first input
    other = gradients(built, layout, target=unit, source="target")
    np.testing.assert_allclose(other.norms["input"], expected["target_emb"], atol=1e-5, rtol=1e-4)


def test_gradients_of_a_branch_follow_the_graph_not_the_layer_listed_before(branch):
    import tensorflow as tf
    from explorer.core.gradients import gradients
    model, spec = branch
    rows = [[3, 7, 1, 9], [5, 2], [4]]
    built, layout = batch_of(ENGINE, spec, text_of(rows))
    batch = padded(rows)
    with tf.GradientTape(persistent=True) as tape:
        embedded = model.get_layer("emb")(batch)
        tape.watch(embedded)
        mask = batch != 0
        first = model.get_layer("a")(embedded, mask=mask)
        second = model.get_layer("b")(embedded, mask=mask)
        tape.watch([first, second])
        pooled = model.get_layer("pool")(model.get_layer("cat")([first, second]), mask=mask)
        out = model.get_layer("head")(pooled)
        total = tf.reduce_sum(out[:, 0])
    np.testing.assert_allclose(out, model.predict(batch, verbose=0), atol=1e-5)
    found = gradients(built, layout, target=0)
    for name, tensor in (("input", embedded), ("emb", embedded), ("a", first), ("b", second)):
        np.testing.assert_allclose(found.norms[name], np.linalg.norm(tape.gradient(total, tensor).numpy(), axis=2),
                                   atol=1e-6, rtol=1e-4, err_msg=name)


@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=st.lists(st.tuples(ROWS.map(lambda rows: rows[0]), ROWS.map(lambda rows: rows[0])), min_size=2,
                      max_size=3), padding=st.sampled_from(["pre", "post"]))
@example(pairs=[([3, 7], [2, 4, 5]), ([5], [6])], padding="pre")     # the decoder's padding comes first: a leak
@example(pairs=[([3, 7], [2, 4, 5]), ([5], [6])], padding="post")
def test_the_leak_check_of_a_two_input_model_equals_each_example_alone_through_predict(translation, pairs, padding):
    from explorer.core.leaks import TOLERANCE, leak_check
    model, spec = translation
    spec = spec.copy()
    spec.batching.padding = padding
    sources, targets = [p[0] for p in pairs], [p[1] for p in pairs]
    texts = {"source": text_of(sources), "target": text_of(targets)}
    report = leak_check(ENGINE, spec, texts)
    batches = [keras.utils.pad_sequences(rows, padding=padding) for rows in (sources, targets)]
    padded_out = model.predict(batches, verbose=0)
    worst = 0.0
    for row, (source, target) in enumerate(pairs):
        alone = model.predict([np.array([source]), np.array([target])], verbose=0)[0]
        steps = slice(None, len(target)) if padding == "post" else slice(-len(target), None)
        worst = max(worst, float(np.abs(padded_out[row][steps] - alone).max()))
    assert abs(report.differences["next"] - worst) < 1e-5
    # the encoder takes its embedding's mask; the decoder, given states, takes none: pre-padding leaks into it
    assert report.differences["encoder"] <= TOLERANCE
    assert report.leaking_layer == ("decoder" if worst > TOLERANCE else None), report.verdict
    if report.leaking_layer:
        assert report.verdict.endswith("decoder starts from initial states, and Keras gives a call with initial_state "
                                       "no mask: pad post (its valid steps come first), or give its call the mask "
                                       "yourself (mask=…)")


def branch_into_max_pooling():
    """A max pooling on a branch from the masked embedding, listed after an LSTM that ends in its last state."""
    ids = keras.Input((None,), dtype="int32", name="ids")
    embedded = layers.Embedding(VOCAB, 3, mask_zero=True, name="emb")(ids)
    last = layers.LSTM(3, name="last")(embedded)
    pooled = layers.GlobalMaxPooling1D(name="peak")(embedded)
    return keras.Model(ids, layers.Dense(1, name="head")(layers.Concatenate(name="both")([last, pooled])))


def test_the_doctor_judges_a_branch_by_the_mask_it_receives_not_the_layer_listed_before(tmp_path):
    from explorer.core.doctor import examine
    rows = [[3, 7, 1, 9], [5, 2], [4]]
    path = tmp_path / "model.keras"
    trained_and_saved(branch_into_max_pooling, [padded(rows)], path, seed=2)
    spec, _, _ = keras_io.import_model(path)
    report = examine(ENGINE, spec, text_of(rows))
    ignored = [finding for finding in report.findings if finding.kind == "mask_ignored"]
    assert [finding.layer for finding in ignored] == ["peak"], report.findings
    zeros = padded(rows) == 0      # the mask Keras's embedding gives it: the padding
    assert ignored[0].evidence == {"padded_share": round(float(zeros.mean()), 6), "padded_steps": int(zeros.sum())}


@pytest.mark.parametrize("flattened, flat", [("emb", False), ("a", True)])
def test_a_flatten_is_judged_by_the_tensor_it_takes_not_the_layer_listed_before(flattened, flat):
    from explorer.core.spec import from_dict
    spec = from_dict({"input": {"kind": "tokens", "vocab_size": VOCAB}, "batching": {"maxlen": 4}, "layers": [
        {"type": "embedding", "output_dim": 3, "name": "emb"},
        {"type": "lstm", "units": 2, "name": "a"},
        {"type": "flatten", "name": "flat", "inputs": [flattened]},
        {"type": "keras", "class_name": "Concatenate", "config": {}, "name": "both", "inputs": ["a", "flat"]}],
        "sequences": "1 2 3\n4\n"})
    result = ENGINE.run(spec)
    said = [message for message in result.warnings if message.startswith("flat receives")]
    assert bool(said) == flat, result.warnings
    assert result.layer("flat").shape == ((2, 2) if flat else (2, 12))   # Keras's own shapes


def test_the_doctor_finds_truncation_in_each_input_of_a_two_input_model(translation):
    from explorer.core.doctor import examine
    _, spec = translation
    spec = spec.copy()
    spec.batching.maxlen = 2
    sources, targets = [[3, 7, 1], [5]], [[2, 4], [6, 1, 8, 3]]
    report = examine(ENGINE, spec, {"source": text_of(sources), "target": text_of(targets)})
    cuts = {finding.message.split(":")[0]: finding.evidence for finding in report.findings
            if finding.kind == "truncation"}
    for name, rows in (("source", sources), ("target", targets)):
        lengths = np.array([len(row) for row in rows])
        lost = int(np.maximum(lengths - 2, 0).sum())
        assert cuts[f"input {name}"] == {"limit": 2, "lines_cut": int((lengths > 2).sum()), "lines": 2,
                                         "tokens_lost": lost, "share_lost": round(lost / lengths.sum(), 6),
                                         "longest": int(lengths.max())}
    assert "truncation" in report.checked


def one_reader_for_two_texts():
    """Keras's guide's shared layers: the same Embedding and LSTM read two texts, each pooled, then compared."""
    left = keras.Input((None,), dtype="int32", name="left")
    right = keras.Input((None,), dtype="int32", name="right")
    embed = layers.Embedding(VOCAB, 3, mask_zero=True, name="emb")
    reader = layers.LSTM(4, return_sequences=True, name="reader")
    joined = layers.Concatenate(name="join")([layers.GlobalAveragePooling1D(name="pool_left")(reader(embed(left))),
                                              layers.GlobalAveragePooling1D(name="pool_right")(reader(embed(right)))])
    return keras.Model([left, right], layers.Dense(2, name="same")(joined))


@pytest.fixture(scope="module")
def siamese(tmp_path_factory):
    path = tmp_path_factory.mktemp("siamese") / "model.keras"
    model = trained_and_saved(one_reader_for_two_texts, [padded([[3, 7, 1], [5]]), padded([[2, 4], [6, 1, 8]])],
                              path, seed=8)
    spec, _, _ = keras_io.import_model(path)
    return model, spec


@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=st.lists(st.tuples(ROWS.map(lambda rows: rows[0]), ROWS.map(lambda rows: rows[0])), min_size=1,
                      max_size=3))
def test_a_shared_layer_s_second_call_has_gates_and_gradients_of_its_own(siamese, pairs):
    """reader/call/1, the shared LSTM on the right text: its gates are a NumPy LSTM over the right text's embedding
    and mask, and the gradient at its output is tf.GradientTape's through plain Keras calls of the same layers."""
    import tensorflow as tf
    from explorer.core.gradients import gradients
    model, spec = siamese
    lefts, rights = [p[0] for p in pairs], [p[1] for p in pairs]
    built, layout = batch_of(ENGINE, spec, {"left": text_of(lefts), "right": text_of(rights)})
    batches = [padded(lefts), padded(rights)]
    embed, reader = model.get_layer("emb"), model.get_layer("reader")
    found = gates(built, layout)
    for key, batch in (("reader", batches[0]), ("reader/call/1", batches[1])):
        reference = numpy_lstm(reader.get_weights(), keras.ops.convert_to_numpy(embed(batch)).astype(np.float64),
                               batch != 0)
        for gate in LSTM_GATES:
            np.testing.assert_allclose(found[f"{key}/{gate}"], reference[gate], atol=1e-5, err_msg=f"{key} {gate}")
    with tf.GradientTape(persistent=True) as tape:
        read = [reader(embed(batch), mask=batch != 0) for batch in batches]
        tape.watch(read)
        pooled = [model.get_layer(name)(value, mask=batch != 0)
                  for name, value, batch in zip(("pool_left", "pool_right"), read, batches)]
        out = model.get_layer("same")(model.get_layer("join")(pooled))
        total = tf.reduce_sum(out[:, 1])
    np.testing.assert_allclose(out, model.predict(batches, verbose=0), atol=1e-5)   # the hand-made pass is the model
    norms = gradients(built, layout, target=1).norms
    for key, value in (("reader", read[0]), ("reader/call/1", read[1])):
        np.testing.assert_allclose(norms[key], np.linalg.norm(tape.gradient(total, value).numpy(), axis=2),
                                   atol=1e-6, rtol=1e-4, err_msg=key)
