"""Training: the loss curve equals a plain Keras loop written here, contains_7 is learnt, the same seed gives the
same curve, the trained weights go back with the stack (stack file and .keras), and Δ after a pin shows where
padding leaked."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.core import compare, tasks, train
from explorer.core.build import build
from explorer.core.errors import SequenceError
from explorer.core.run import Engine
from explorer.core.spec import Batching, InputSpec, LayerSpec, StackSpec, dumps, loads

VOCAB = 30


def stack(head: LayerSpec, *, padding: str = "post", mask_zero: bool = True, return_sequences: bool = False,
          seed: int = 5, mode: str = "pad") -> StackSpec:
    return StackSpec(InputSpec("tokens", VOCAB), Batching(mode=mode, padding=padding),
                     [LayerSpec("embedding", {"output_dim": 8, "mask_zero": mask_zero}),
                      LayerSpec("lstm", {"units": 16, "return_sequences": return_sequences}), head], seed)


def data(rng, count: int = 12, per_step: bool = False, classes: int = 3):
    sequences = [rng.integers(1, VOCAB, size=rng.integers(2, 9)).tolist() for _ in range(count)]
    labels = [rng.integers(0, classes, size=len(s) if per_step else 1).tolist() for s in sequences]
    text = "".join(f"{' '.join(map(str, s))} | {' '.join(map(str, y))}\n" for s, y in zip(sequences, labels))
    return sequences, labels, text


def keras_twin(spec: StackSpec):
    """The same stack written in plain Keras, with the explorer's initial weights copied in by layer."""
    import keras
    head = spec.layers[-1]
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(VOCAB, 8, mask_zero=spec.layers[0].params["mask_zero"], name="e")(inputs)
    x = keras.layers.LSTM(16, return_sequences=spec.layers[1].params["return_sequences"], name="r")(x)
    outputs = keras.layers.Dense(head.params["units"], activation=head.params["activation"], name="h")(x)
    model = keras.Model(inputs, outputs)
    initial = build(spec)
    for ours, theirs in zip(spec.layer_names(), ("e", "r", "h")):
        model.get_layer(theirs).set_weights(initial.keras_layers[ours].get_weights())
    return model


def reference_curve(model, x, y, optimizer, loss_of, steps: int) -> list[float]:
    import tensorflow as tf
    curve = []
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = loss_of(y, model(x, training=True))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        curve.append(float(loss))
    return curve


@pytest.mark.parametrize("optimizer, padding, head", [
    ("adam", "post", "softmax"), ("sgd", "pre", "sigmoid"), ("rmsprop", "post", "per_step")])
def test_the_loss_curve_equals_a_plain_keras_loop(optimizer, padding, head):
    import keras
    from keras.utils import pad_sequences
    rng = np.random.default_rng(len(optimizer))
    per_step = head == "per_step"
    layer = {"softmax": LayerSpec("dense", {"units": 3, "activation": "softmax"}),
             "sigmoid": LayerSpec("dense", {"units": 1, "activation": "sigmoid"}),
             "per_step": LayerSpec("time_distributed_dense", {"units": 3, "activation": "softmax"})}[head]
    spec = stack(layer, padding=padding, return_sequences=per_step)
    sequences, labels, text = data(rng, per_step=per_step, classes=2 if head == "sigmoid" else 3)
    learning_rate = {"adam": 0.01, "sgd": 0.5, "rmsprop": 0.005}[optimizer]
    progress = train.train_steps(Engine(), spec, text, train.TrainSettings(optimizer, learning_rate), steps=20)

    x = pad_sequences(sequences, padding=padding)
    mask = x != 0
    model = keras_twin(spec)
    opt = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD,
           "rmsprop": keras.optimizers.RMSprop}[optimizer](learning_rate=learning_rate)
    if head == "softmax":
        y = np.array([label[0] for label in labels])
        loss_of = keras.losses.SparseCategoricalCrossentropy()
    elif head == "sigmoid":
        y = np.array([label for label in labels], dtype="float32")
        loss_of = keras.losses.BinaryCrossentropy()
    else:
        y = pad_sequences(labels, padding=padding)
        per_cell = keras.losses.SparseCategoricalCrossentropy(reduction=None)

        def loss_of(target, predicted):      # the mean over the valid steps only, written out
            weights = mask.astype("float32")
            return keras.ops.sum(per_cell(target, predicted) * weights) / weights.sum()
    expected = reference_curve(model, x, y, opt, loss_of, 20)
    assert progress.objective.loss == {"softmax": "sparse_categorical_crossentropy", "sigmoid": "binary_crossentropy",
                                       "per_step": "sparse_categorical_crossentropy"}[head]
    np.testing.assert_allclose(progress.loss, expected, atol=1e-4, rtol=0)
    assert expected[-1] < expected[0]            # it learnt something: the comparison is not between two flat lines
    assert len(progress.accuracy) == 20


@pytest.mark.backends
def test_same_seed_same_curve_and_training_resumes_in_chunks():
    rng = np.random.default_rng(0)
    spec = stack(LayerSpec("dense", {"units": 3, "activation": "softmax"}))
    _, _, text = data(rng)
    settings = train.TrainSettings("adam", 0.01)
    whole = train.train_steps(Engine(), spec, text, settings, steps=12)
    engine = Engine()
    first = train.train_steps(engine, spec, text, settings, steps=5)
    resumed = train.train_steps(engine, first.spec, text, settings, steps=7)    # the stack it handed back
    assert resumed.loss == whole.loss and resumed.total_steps == 12
    run_trained = engine.run(resumed.spec, text)
    fresh = Engine().run(whole.spec, text)        # rebuilt from the handed-back weights
    np.testing.assert_array_equal(run_trained.layers[-1].output, fresh.layers[-1].output)
    restarted = train.train_steps(engine, spec, text, settings, steps=3)          # the untrained stack: afresh
    assert restarted.loss == whole.loss[:3]


CONTAINS_7_STEPS = 40     # the README's figure: contains_7, 64 sequences, LSTM 16, Adam 0.01


def test_contains_7_is_learnt_and_the_keras_file_holds_the_trained_numbers(tmp_path):
    import keras
    from keras.utils import pad_sequences

    from explorer import cli
    spec = stack(LayerSpec("dense", {"units": 2, "activation": "softmax"}), seed=1)
    spec.sequences = None
    source = tmp_path / "s.stack.json"
    source.write_text(dumps(spec))
    saved, model_path, report = tmp_path / "t.stack.json", tmp_path / "t.keras", tmp_path / "r.json"
    assert cli.main(["train", str(source), "--task", "contains_7", "--count", "64", "--steps", str(CONTAINS_7_STEPS),
                     "--json", str(report), "--save", str(saved), "--save-keras", str(model_path)]) == 0
    import json
    document = json.loads(report.read_text())
    assert document["steps"] == CONTAINS_7_STEPS and len(document["loss"]) == CONTAINS_7_STEPS
    assert max(document["accuracy"]) >= 0.9 and document["run"]["output_shape"] == [64, 2]

    text = tasks.generate("contains_7", 64, spec.input, seed=spec.seed)
    rows = [[int(v) for v in line.split("|")[0].split()] for line in text.splitlines()[1:]]
    truth = np.array([int(7 in row) for row in rows])            # the rule, applied here
    x = pad_sequences(rows, padding="post")
    predicted = keras.models.load_model(model_path).predict(x, verbose=0)
    assert (predicted.argmax(-1) == truth).mean() >= 0.9
    untrained = keras_twin(spec).predict(x, verbose=0)
    assert np.abs(untrained - predicted).max() > 0.1             # the file holds trained numbers, not the seed's

    reopened = loads(saved.read_text())                           # the stack file keeps them too
    assert reopened.weights is not None and reopened.sequences == text
    result = Engine().run(reopened, None)
    np.testing.assert_allclose(result.layers[-1].output, predicted, atol=1e-5)


def test_bad_labels_for_the_head_are_reported_at_their_column():
    spec = stack(LayerSpec("dense", {"units": 3, "activation": "softmax"}))
    with pytest.raises(SequenceError) as caught:
        train.train_steps(Engine(), spec, "1 2 | 0\n3 4 5 | 3\n", steps=1)
    assert (caught.value.line, caught.value.column) == (2, 9)
    with pytest.raises(train.TrainingError, match="learning rate"):
        train.train_steps(Engine(), spec, "1 2 | 0\n", train.TrainSettings("adam", -1.0), steps=1)
    from explorer.core.errors import StackError
    with pytest.raises(StackError, match=r"training on this batch needs about .* MB \(1 sequences × 2 steps\)"):
        train.train_steps(Engine(memory_limit_mb=1e-6), spec, "1 2 | 0\n", steps=1)


@pytest.mark.parametrize("padding", ["pre", "post"])
def test_pinning_then_mask_zero_shows_delta_exactly_where_padding_leaked(engine, padding):
    layers = [LayerSpec("global_average_pooling"), LayerSpec("dense", {"units": 3, "activation": "softmax"})]
    spec = stack(layers[0], padding=padding, mask_zero=False, return_sequences=True)
    spec.layers.append(layers[1])
    text = "5 12 7 3 9 4 2\n8 4 19\n23 6 11 2 7\n"
    lengths = np.array([7, 3, 5])
    padded_rows = lengths < lengths.max()
    pinned = engine.run(spec, text)
    spec.layers[0].params["mask_zero"] = True
    deltas = {d.name: d for d in compare.compare(pinned, engine.run(spec, text))}
    assert deltas["embedding_1"].max_abs == 0                    # same weights: the embedding does not change
    lstm = np.abs(deltas["lstm_1"].delta).max(axis=2)           # (rows, steps), NaN off the valid steps
    valid = ~np.isnan(lstm)
    assert valid.sum(axis=1).tolist() == lengths.tolist()
    if padding == "pre":    # pre-padding runs before the tokens: every valid step of a padded row changed
        assert (lstm[padded_rows][valid[padded_rows]] > 1e-6).all()
    else:                   # post-padding comes after them: the valid steps are untouched
        assert deltas["lstm_1"].max_abs == 0
    assert (lstm[~padded_rows][valid[~padded_rows]] == 0).all()
    pooled = np.abs(deltas["global_average_pooling_1"].delta).max(axis=1)
    assert (pooled[padded_rows] > 1e-6).all() and (pooled[~padded_rows] < 1e-6).all()


def test_a_changed_batch_or_shape_is_not_compared(engine):
    spec = stack(LayerSpec("dense", {"units": 3, "activation": "softmax"}))
    pinned = engine.run(spec, "1 2 3\n4 5\n")
    other = compare.compare(pinned, engine.run(spec, "1 2 3\n4 6\n"))
    assert all(d.max_abs is None and "sequences changed" in d.reason for d in other)
    spec.layers[1].params["units"] = 8
    wider = {d.name: d for d in compare.compare(pinned, engine.run(spec, "1 2 3\n4 5\n"))}
    assert wider["lstm_1"].max_abs is None and "(2, 16) to (2, 8)" in wider["lstm_1"].reason


def test_the_forgotten_mask_lesson_holds():
    """Its claim: without mask_zero the trained LSTM counts padding, so each sequence alone is often wrong; with
    the mask the answers do not depend on the batching. Accuracy computed here from count_mod_3's rule."""
    import dataclasses

    from explorer.core.presets import load_preset
    lesson = load_preset("train_forgotten_mask")
    rows = [line.split("|")[0].split() for line in lesson.sequences.splitlines() if not line.startswith("#")]
    truth = np.array([len(row) % 3 for row in rows])
    accuracy = {}
    for mask in (False, True):
        lesson.layers[0].params["mask_zero"] = mask
        engine = Engine()
        progress, padded = train.train(engine, lesson, None, steps=100)
        alone = progress.spec.copy()
        alone.batching = dataclasses.replace(alone.batching, mode="one_by_one")
        single = engine.run(alone, None)
        accuracy[mask] = [float((run.layers[-1].output.argmax(-1) == truth).mean()) for run in (padded, single)]
    assert accuracy[False][0] >= 0.9 and accuracy[False][1] <= 0.7
    assert accuracy[True] == [1.0, 1.0]


@pytest.mark.backends
def test_bucket_mode_steps_through_the_buckets_in_turn():
    """Step i trains on bucket i mod n: the first loss of each bucket, before any update touched it, equals the
    Keras loss of that bucket (grouped and padded here) under the weights it met."""
    import keras
    from keras.utils import pad_sequences
    rng = np.random.default_rng(3)
    spec = stack(LayerSpec("dense", {"units": 3, "activation": "softmax"}), mode="bucket")
    spec.batching.bucket_width = 4
    sequences, labels, text = data(rng, count=10)
    buckets = sorted({(len(s) - 1) // 4 for s in sequences})
    engine = Engine()
    model = keras_twin(spec)
    loss_of = keras.losses.SparseCategoricalCrossentropy()
    for step, key in enumerate(buckets):
        rows = [i for i, s in enumerate(sequences) if (len(s) - 1) // 4 == key]
        x = pad_sequences([sequences[i] for i in rows], padding="post")
        expected = float(loss_of(np.array([labels[i][0] for i in rows]), model(x)))
        progress = train.train_steps(engine, spec if step == 0 else progress.spec, text, steps=1)
        assert progress.loss[-1] == pytest.approx(expected, abs=1e-5)
        for ours, theirs in zip(spec.layer_names(), ("e", "r", "h")):     # the weights after this step
            model.get_layer(theirs).set_weights(progress.spec.weights[ours])
