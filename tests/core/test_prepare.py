"""Models prepared while the engine is idle (explorer/core/prepare.py): a prepared model's run equals a fresh
build's run bit for bit and the same model written here in plain Keras (with the prepared model's weights loaded
into it, the batch padded by keras.utils.pad_sequences); preparation gives way to a request at once."""

from __future__ import annotations

import itertools
import sys
import threading

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from keras.utils import pad_sequences

from explorer.core import prepare
from explorer.core.run import Engine
from explorer.core.spec import from_dict

LINES = [[5, 12, 7, 3, 9], [8, 4], [23, 6, 11, 2, 77, 1, 4]]
RNN = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}
POOL = {"global_average_pooling": keras.layers.GlobalAveragePooling1D,
        "global_max_pooling": keras.layers.GlobalMaxPooling1D}


def small_stack():
    spec = from_dict({"input": {"kind": "tokens", "vocab_size": 100},
                      "layers": [{"type": "embedding", "output_dim": 4, "mask_zero": True},
                                 {"type": "lstm", "units": 3, "return_sequences": True},
                                 {"type": "global_average_pooling"},
                                 {"type": "dense", "units": 2}]})
    spec.sequences = "\n".join(" ".join(map(str, line)) for line in LINES) + "\n"
    return spec


def plain_keras(spec, built) -> np.ndarray:
    """The stack in plain Keras with the explorer's weights, on the batch as pad_sequences pads it."""
    embedding, recurrent, pooling, dense = spec.layers
    p = recurrent.params
    cell = RNN[recurrent.type](p["units"], return_sequences=True, go_backwards=p["go_backwards"])
    layers = [keras.layers.Embedding(100, embedding.params["output_dim"], mask_zero=embedding.params["mask_zero"]),
              keras.layers.Bidirectional(cell) if p["bidirectional"] else cell,
              POOL[pooling.type](), keras.layers.Dense(dense.params["units"])]
    model = keras.Sequential([keras.Input((None,), dtype="int32"), *layers])
    for layer, name in zip(layers, spec.layer_names()):
        layer.set_weights(built.keras_layers[name].get_weights())
    return np.asarray(model.predict_on_batch(pad_sequences(LINES, padding="post")))


def shown(engine, spec, result) -> None:
    """`spec` is on screen (`result` its run); the engine's first idle step plans for it."""
    engine.plan_preparation(spec, *result.input.shape[:2])
    engine.prepare_next()


ON_SCREEN = small_stack()
CHECKED = [variant for variant in prepare.neighbours(ON_SCREEN) if variant.layers[2].type in POOL]
ENGINE = Engine()


def test_neighbours_are_one_action_away_and_every_control_comes_early():
    found = prepare.neighbours(ON_SCREEN)
    assert len(found) == 16          # units ±1, 2 types, 2 toggles, 5 poolings, head ±1, embedding ±1, mask_zero
    for variant in found:
        changed = [a != b for a, b in zip(variant.layers, ON_SCREEN.layers)]
        assert sum(changed) == 1, variant.layers
    firsts = [(i, variant.layers[i]) for variant in found[:7]
              for i in range(4) if variant.layers[i] != ON_SCREEN.layers[i]]
    assert firsts[0][1].params["units"] == 4                   # the units spin box's step up first
    assert [i for i, _ in firsts] == [1, 1, 1, 2, 3, 0, 0]     # then one of each other control
    assert firsts[1][1].type in {"gru", "simple_rnn"} - {ON_SCREEN.layers[1].type}
    assert firsts[3][1].type in set(prepare.POOLINGS) - {ON_SCREEN.layers[2].type}


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(range(len(CHECKED))))
def test_a_prepared_model_runs_like_a_fresh_build_and_plain_keras(index):
    engine = Engine()
    first = engine.run(ON_SCREEN)
    shown(engine, ON_SCREEN, first)
    variant = CHECKED[index]
    while variant.architecture_key() not in engine._prepared:
        engine.prepare_next()
    prepared = engine.run(variant)
    fresh = Engine().run(variant)
    assert (prepared.model_source, fresh.model_source) == ("prepared", "built")
    for ours, theirs in zip(prepared.layers, fresh.layers):
        np.testing.assert_array_equal(ours.output, theirs.output)
    expected = plain_keras(variant, engine.built_for(variant))
    np.testing.assert_allclose(prepared.layers[-1].output, expected, atol=1e-5, rtol=1e-5)


def test_preparation_gives_way_to_a_request_and_is_taken_up_again():
    """A request that arrives while a neighbour is prepared (early in its build, in its trace, near its first
    call: after that share of the Python calls a whole preparation makes) stops it at once; the engine then
    answers the request as a fresh engine would, and prepares the same neighbour again afterwards."""
    engine = Engine()
    first = engine.run(ON_SCREEN)
    shown(engine, ON_SCREEN, first)
    planned = list(engine._plan)
    counted = Engine()
    shown(counted, ON_SCREEN, first)
    calls = itertools.count()
    with prepare.preemptible(lambda: next(calls) < 0):
        counted.prepare_next()
    whole = next(calls)
    typed = ON_SCREEN.copy()
    for share, units in ((0.05, 7), (0.5, 8), (0.95, 9)):
        calls = itertools.count()
        with pytest.raises(prepare.Preempted):
            with prepare.preemptible(lambda: next(calls) > share * whole):
                engine.prepare_next()
        assert engine._plan == planned and not engine._prepared
        typed.layers[1].params["units"] = units            # the request: a typed value, built for it
        answered = engine.run(typed)
        expected = Engine().run(typed)
        for ours, theirs in zip(answered.layers, expected.layers):
            np.testing.assert_array_equal(ours.output, theirs.output)
        shown(engine, ON_SCREEN, first)                    # back on screen
    engine.prepare_next()
    assert list(engine._prepared) == [planned[0].architecture_key()]
    assert engine.run(planned[0]).model_source == "prepared"


def tensorflow_takes_a_graph_lock(frame) -> bool:
    """TensorFlow holds a graph's lock (GroupLock.acquire, in TensorFlow's own Python) and checks its groups."""
    return frame.f_code.co_name == "_another_group_active"


def test_a_request_arriving_while_tensorflow_holds_a_graph_lock_leaves_the_engine_working():
    """A request may arrive at any instant of a preparation, inside TensorFlow's own bookkeeping too: here, at
    every fourth of the moments TensorFlow holds one of its graph locks while a neighbour is built and traced.
    Each preparation step still ends (stopped or done), and the engine then answers as a fresh engine does."""
    engine = Engine()
    first = engine.run(ON_SCREEN)
    shown(engine, ON_SCREEN, first)
    locks = [0]

    def count(frame, event, arg):
        if event == "call" and tensorflow_takes_a_graph_lock(frame):
            locks[0] += 1

    counted = Engine()
    shown(counted, ON_SCREEN, first)
    sys.setprofile(count)
    try:
        counted.prepare_next()
    finally:
        sys.setprofile(None)
    assert locks[0] > 20

    def step_with_request_at(lock: int) -> threading.Thread:
        seen, arrived = [0], []

        def arrive(frame, event, arg):
            if event == "call" and tensorflow_takes_a_graph_lock(frame):
                seen[0] += 1
                if seen[0] == lock:
                    arrived.append(True)

        def step():
            sys.setprofile(arrive)       # this thread's calls only
            try:
                with prepare.preemptible(lambda: bool(arrived)):
                    engine.prepare_next()
            except prepare.Preempted:
                pass
            finally:
                sys.setprofile(None)

        thread = threading.Thread(target=step, daemon=True)
        thread.start()
        thread.join(timeout=60)
        return thread

    for lock in range(1, locks[0] + 1, 4):
        assert not step_with_request_at(lock).is_alive(), f"the engine hangs after a request at graph lock {lock}"
        shown(engine, ON_SCREEN, first)
    typed = ON_SCREEN.copy()
    typed.layers[1].params["units"] = 6
    answered, expected = engine.run(typed), Engine().run(typed)
    for ours, theirs in zip(answered.layers, expected.layers):
        np.testing.assert_array_equal(ours.output, theirs.output)


def test_a_request_already_waiting_prepares_nothing_and_a_run_plans_nothing_itself():
    engine = Engine()
    first = engine.run(ON_SCREEN)
    engine.plan_preparation(ON_SCREEN, *first.input.shape[:2])
    assert engine.preparing and not engine._plan            # planned in idle time, not in the run's
    with pytest.raises(prepare.Preempted):
        with prepare.preemptible(lambda: True):
            engine.prepare_next()
    assert engine.preparing and not engine._plan and not engine._prepared


def test_a_new_stack_on_screen_keeps_only_its_own_neighbours_and_skips_those_over_the_memory_limit():
    engine = Engine()
    first = engine.run(ON_SCREEN)
    shown(engine, ON_SCREEN, first)
    engine.prepare_next()                                     # units 4
    units_4 = list(engine._prepared)
    assert len(units_4) == 1
    moved = ON_SCREEN.copy()
    moved.layers[1].params["units"] = 5                       # units 4 is one of its neighbours too
    shown(engine, moved, first)
    assert list(engine._prepared) == units_4
    moved.layers[1].params["units"] = 9                       # units 4 is not
    shown(engine, moved, first)
    assert not engine._prepared
    tight = Engine(memory_limit_mb=1e-3)
    shown(tight, ON_SCREEN, first)
    assert not tight.preparing


def test_the_type_drop_down_and_the_neighbours_retype_alike():
    """The card's type choice keeps the parameters both types share: a GRU keeps the LSTM's units and flags, a
    pooling keeps nothing it does not take."""
    gru = prepare.retyped(ON_SCREEN.layers[1], "gru")
    assert (gru.type, gru.params["units"], gru.params["return_sequences"]) == ("gru", 3, True)
    dense = prepare.retyped(ON_SCREEN.layers[1], "dense")
    assert dense.params["units"] == 3 and "return_sequences" not in dense.params
