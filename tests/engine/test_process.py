"""The engine process seen from its client: cancels that stop a call in flight, calls that cannot be stopped,
the memory limit. No Qt: the window's side is tested in tests/qt/test_engine.py."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from explorer.core.spec import from_dict
from explorer.engine.client import EngineClient

TIMEOUT_S = 120


class Replies:
    def __init__(self):
        self.items = []
        self.progress = []
        self._changed = threading.Condition()

    def add(self, reply) -> None:
        with self._changed:
            self.items.append(reply)
            self._changed.notify_all()

    def tick(self, request_id, fraction) -> None:
        self.progress.append((request_id, fraction))

    def wait_for(self, request_id: int, timeout_s: float = TIMEOUT_S):
        with self._changed:
            found = self._changed.wait_for(lambda: any(r.id == request_id for r in self.items), timeout_s)
        assert found, f"no reply to request {request_id} within {timeout_s} s"
        return next(r for r in self.items if r.id == request_id)


def lstm_stack(rows: int, steps: int, units: int = 256, **batching):
    spec = from_dict({"input": {"kind": "tokens", "vocab_size": 1000}, "batching": batching,
                      "layers": [{"type": "embedding", "output_dim": 32, "mask_zero": True},
                                 {"type": "lstm", "units": units, "return_sequences": True},
                                 {"type": "global_average_pooling"}]})
    rng = np.random.default_rng(0)
    spec.sequences = "\n".join(" ".join(map(str, rng.integers(1, 1000, steps))) for _ in range(rows)) + "\n"
    return spec


@pytest.fixture(scope="module")
def client():
    made = EngineClient()
    yield made
    made.shutdown()


def test_a_cancel_stops_a_run_inside_one_call_and_the_engine_answers_at_once(client):
    """A cancel answers within a second whatever the backend; TensorFlow stops the call in flight, so the same
    engine answers the next request at once (other backends' calls run on: the client replaces the engine)."""
    replies = Replies()
    channel = client.channel(replies.add, replies.tick)
    replies.wait_for(channel.submit("devices"))              # the engine is up
    pid, restarts = client.pid, client.restarts
    run = channel.submit("run", spec=lstm_stack(400, 1000), trust=True)   # its first slice: one call of seconds
    time.sleep(1.0)
    assert channel.busy and not replies.progress                         # inside that first call
    cancelled = time.monotonic()
    channel.cancel()
    assert not channel.busy
    assert replies.wait_for(run, 5).cancelled
    assert time.monotonic() - cancelled < 1.5, "the cancel was not answered within a second"
    if client.backend_name != "tensorflow":
        return
    assert replies.wait_for(channel.submit("devices")).ok
    assert time.monotonic() - cancelled < 1.5, "the engine did not stop its call within a second"
    assert (client.pid, client.restarts) == (pid, restarts)             # stopped, not replaced


def test_a_call_that_cannot_be_stopped_costs_the_engine_and_nothing_else(client, monkeypatch):
    """Chunked mode with one window of all the steps is one eager call that nothing interrupts: after the
    grace time the client kills the engine and starts a new one."""
    monkeypatch.setattr(client, "cancel_grace_s", 0.2)
    replies = Replies()
    channel = client.channel(replies.add)
    replies.wait_for(channel.submit("devices"))
    pid, restarts = client.pid, client.restarts
    run = channel.submit("run", spec=lstm_stack(400, 1000, mode="chunked", chunk=1000), trust=True)
    time.sleep(1.0)
    cancelled = time.monotonic()
    channel.cancel()
    assert replies.wait_for(run, 5).cancelled
    assert time.monotonic() - cancelled < 1.0
    assert client.restarts == restarts + 1
    answer = replies.wait_for(channel.submit("run", spec=lstm_stack(2, 5), trust=True))
    assert answer.ok and answer.value.layers[-1].shape == (2, 256) and client.pid != pid
    assert not [r for r in replies.items if r.kind == "engine"]      # a cancel is no failure to report


def test_the_memory_limit_stops_the_engine_not_the_client():
    """The estimate lets this run through (under 2 GB); the operating system's limit on the engine does not."""
    small = EngineClient(memory_limit_mb=520)
    try:
        replies = Replies()
        channel = small.channel(replies.add)
        assert replies.wait_for(channel.submit("devices")).ok
        failed = replies.wait_for(channel.submit("run", spec=lstm_stack(128, 1000), trust=True))
        assert failed.error is not None
        assert "memory" in failed.error.lower() or "engine stopped" in failed.error, failed.error
        assert replies.wait_for(channel.submit("run", spec=lstm_stack(2, 5, units=4), trust=True)).ok
    finally:
        small.shutdown()


def test_requests_are_answered_while_the_engine_prepares_neighbours(client):
    """After a run the idle engine prepares the stack's neighbours (core/prepare.py); requests that arrive
    meanwhile are answered, and right: the same numbers as a build in this process (the same seed), whether the
    model was built for the request or prepared."""
    from explorer.core.run import Engine
    replies = Replies()
    channel = client.channel(replies.add, replies.tick)
    on_screen = lstm_stack(3, 6, units=5)
    assert replies.wait_for(channel.submit("run", spec=on_screen, trust=True)).ok
    reference = Engine()
    for units in (17, 18, 6):                     # a typed value, a step from it (…), a step back
        time.sleep(0.3)                           # idle: preparing (each neighbour takes longer than this)
        spec = on_screen.copy()
        spec.layers[1].params["units"] = units
        answer = replies.wait_for(channel.submit("run", spec=spec, trust=True))
        assert answer.ok, answer.error
        assert answer.value.model_source in ("built", "prepared")
        expected = reference.run(spec, trust=True)
        for ours, theirs in zip(answer.value.layers, expected.layers):
            np.testing.assert_allclose(ours.output, theirs.output, atol=1e-6, rtol=1e-6)
    channel.close()


def test_idle_time_prepares_until_a_message_arrives_and_stops_at_the_memory_budget(monkeypatch):
    """The engine's wait for its next message: idle, it plans and prepares the neighbours of the stack on screen,
    and returns the message as soon as it comes; over PREPARE_MAX_RESIDENT_MB it only waits."""
    import queue

    from explorer.core.run import Engine
    from explorer.engine import process
    spec = lstm_stack(2, 5, units=4)
    for budget_mb, planned in ((1e9, True), (0, False)):
        monkeypatch.setattr(process, "PREPARE_MAX_RESIDENT_MB", budget_mb)
        engine = Engine()
        result = engine.run(spec, trust=True)
        engine.plan_preparation(spec, *result.input.shape[:2])
        inbox = queue.Queue()
        timer = threading.Timer(1.0, inbox.put, (("request", 1),))
        timer.start()
        assert process._next_request(inbox, engine) == ("request", 1)
        timer.join()
        assert (engine._on_screen is None) == planned
        assert bool(engine._plan or engine._prepared) == planned
