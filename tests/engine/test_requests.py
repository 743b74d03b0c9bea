"""The request layer (explorer/requests.py) on the real engine process, driven by a plain loop, without Qt:
every request gets exactly one answer, a burst coalesces to the newest, cancel answers cancelled and never
drops training or exports, a dead or stalled engine is replaced and the request sent again, the dead
engine's shared blocks are unlinked, a result too big for /dev/shm travels through a file."""

from __future__ import annotations

import os
import queue
import signal
import time
import zipfile
from multiprocessing import shared_memory
from pathlib import Path

import numpy as np
import pytest

from explorer.core.presets import load_preset
from explorer.core.spec import from_dict
from explorer.core.train import TrainSettings
from explorer.engine import shared
from explorer.engine.client import EngineClient
from explorer.requests import (DEVICES, EXPORT_KERAS, KINDS, RUN, TRAIN, Requests, Runs)
from explorer.session import Session

TIMEOUT_S = 180


class Loop:
    """The host: call_soon puts a function in a queue that the test's thread runs."""

    def __init__(self):
        self.calls: queue.Queue = queue.Queue()

    def call_soon(self, function) -> None:
        self.calls.put(function)

    def run_until(self, condition, timeout_s: float = TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            left = deadline - time.monotonic()
            assert left > 0, "the condition did not come true in time"
            try:
                function = self.calls.get(timeout=min(left, 0.05))
            except queue.Empty:
                continue
            function()


class Answers:
    """Counts the answers of each request."""

    def __init__(self):
        self.by_ticket: dict[int, list] = {}

    def __call__(self, reply) -> None:
        self.by_ticket.setdefault(reply.id, []).append(reply)

    def one(self, ticket):
        answers = self.by_ticket.get(ticket.id, [])
        assert len(answers) == 1, f"{len(answers)} answers to request {ticket.id}"
        return answers[0]


def stack(units: int, rows: int = 2, steps: int = 5):
    spec = from_dict({"input": {"kind": "tokens", "vocab_size": 1000},
                      "layers": [{"type": "embedding", "output_dim": 8, "mask_zero": True},
                                 {"type": "lstm", "units": units, "return_sequences": True}]})
    rng = np.random.default_rng(units)
    spec.sequences = "\n".join(" ".join(map(str, rng.integers(1, 1000, steps))) for _ in range(rows)) + "\n"
    return spec


def slow_stack():
    """Seconds of work in the engine, so that the test acts while it is in flight."""
    return stack(256, rows=300, steps=600)


def run_payload(spec) -> dict:
    return dict(spec=spec, text=spec.sequences, trust=True)


@pytest.fixture
def loop():
    return Loop()


@pytest.fixture
def make_layer(loop):
    made = []

    def make(**client_options):
        engine = EngineClient(**client_options)
        layer = Requests(lambda on_reply, on_progress: engine.channel(on_reply, on_progress), loop.call_soon)
        notices = []
        layer.engine.connect(lambda text, failed: notices.append((text, failed)))
        layer.notices = notices
        made.append((layer, engine))
        answer = Answers()
        ticket = layer.submit(DEVICES, answer)
        loop.run_until(lambda: ticket.done)
        assert answer.one(ticket).ok
        return layer, engine

    yield make
    for layer, engine in made:
        layer.close()
        engine.shutdown()


def shm_names(pid: int) -> list[str]:
    return [name for name in os.listdir(shared.SHM_DIR) if name.startswith(shared.prefix(pid))]


def test_every_kind_has_its_task():
    from explorer.engine.tasks import TASKS
    assert set(KINDS) == set(TASKS)


def test_a_payload_that_does_not_fit_its_kind_is_refused_at_the_caller(loop):
    layer = Requests(lambda on_reply, on_progress: None, loop.call_soon)
    with pytest.raises(TypeError):
        layer.submit(RUN, None, spec=stack(2), txt="1 2")


def test_each_request_gets_one_answer_and_a_burst_runs_only_its_newest(make_layer, loop):
    layer, _ = make_layer()
    answers = Answers()
    first = layer.submit(RUN, answers, **run_payload(stack(3)))         # goes to the engine at once
    burst = [layer.submit(RUN, answers, **run_payload(stack(units))) for units in (4, 5, 6)]
    devices = layer.submit(DEVICES, answers)
    loop.run_until(lambda: devices.done and burst[-1].done and first.done)
    loop.run_until(lambda: layer.pending == 0)
    assert answers.one(first).ok and answers.one(first).value.layers[-1].output.shape == (2, 5, 3)
    assert [answers.one(t).cancelled for t in burst[:-1]] == [True, True]   # replaced: answered cancelled
    newest = answers.one(burst[-1])
    assert newest.ok and newest.value.layers[-1].output.shape == (2, 5, 6)
    assert answers.one(devices).ok and answers.one(devices).value


def test_cancel_answers_the_run_cancelled_and_never_drops_training_or_an_export(make_layer, loop, tmp_path):
    layer, _ = make_layer()
    answers = Answers()
    run = layer.submit(RUN, answers, **run_payload(slow_stack()))
    loop.run_until(lambda: layer.busy)
    trained = load_preset("train_attention_on_7")
    chunk = layer.submit(TRAIN, answers, spec=trained, text=trained.sequences, settings=TrainSettings(), steps=2,
                         seconds=0.0, trust=True)
    target = tmp_path / "model.keras"
    export = layer.submit(EXPORT_KERAS, answers, spec=stack(3), path=str(target))
    queued_run = layer.submit(RUN, answers, **run_payload(stack(4)))
    layer.cancel()
    loop.run_until(lambda: all(t.done for t in (run, chunk, export, queued_run)))
    assert answers.one(run).cancelled and answers.one(queued_run).cancelled
    assert answers.one(chunk).ok and len(answers.one(chunk).value.loss) >= 1
    assert answers.one(export).ok
    with zipfile.ZipFile(target) as archive:                   # a Keras archive was written
        assert "config.json" in archive.namelist()


def test_a_killed_engine_is_replaced_and_the_latest_stack_is_sent_again_by_itself(make_layer, loop):
    """The user's case: the engine is killed while it rebuilds the stack with 512 units; the session ends up
    showing the 512 units without a Run."""
    _, engine = make_layer()
    layer = Requests(lambda on_reply, on_progress: engine.channel(on_reply, on_progress), loop.call_soon)
    notices = []
    layer.engine.connect(lambda text, failed: notices.append(text))
    session = Session(stack(64, rows=50, steps=200), trusted=True)
    runs = Runs(session, layer)
    runs.run_now()
    loop.run_until(lambda: runs.settled)
    assert session.result.layers[-1].output.shape[-1] == 64
    document = session.document.copy()
    document.layers[1].params["units"] = 512
    session.set_stack(document)
    loop.run_until(lambda: layer.busy)
    old_pid = engine.pid
    os.kill(old_pid, signal.SIGKILL)
    loop.run_until(lambda: runs.settled)
    assert runs.last_reply.ok and session.state.current and engine.pid != old_pid
    assert session.result.layers[-1].output.shape[-1] == 512
    assert any("killed" in text and "the run in flight is sent to it again" in text for text in notices)
    layer.close()


def test_a_request_lost_twice_is_answered_with_the_error(make_layer, loop):
    layer, engine = make_layer()
    answers = Answers()
    run = layer.submit(RUN, answers, **run_payload(slow_stack()))
    for _ in range(2):
        loop.run_until(lambda: engine._flight is not None)
        pid = engine.pid
        os.kill(pid, signal.SIGKILL)
        loop.run_until(lambda: engine.pid != pid)
    loop.run_until(lambda: run.done)
    reply = answers.one(run)
    assert not reply.ok and not reply.cancelled and "killed" in reply.error
    assert len([text for text, _ in layer.notices if "sent to it again" in text]) == 1        # once


def test_five_deaths_in_a_row_answer_every_request_unlink_the_blocks_and_restart_brings_runs_back(make_layer,
                                                                                                   loop):
    layer, engine = make_layer()
    answers = Answers()
    big = layer.submit(RUN, answers, **run_payload(stack(64, rows=64, steps=200)))      # its arrays: in a block
    loop.run_until(lambda: big.done)
    assert answers.one(big).ok and shm_names(engine.pid), "the result travelled without a shared block"
    made = shared_memory.SharedMemory(name=shared.prefix(engine.pid) + "copying", create=True, size=1 << 16)
    made.close()                   # as if the engine died while copying a result into it: never sent
    tickets, dead = [], []
    while len(dead) < 5:
        if engine.failure is not None:                    # the restart limit: every request is answered …
            loop.run_until(lambda: layer.notices[-1][1])
            text, failed = layer.notices[-1]
            assert failed and "Restart engine" in text
            refused = layer.submit(RUN, answers, **run_payload(stack(3)))
            loop.run_until(lambda: refused.done)
            assert "Restart engine" in answers.one(refused).error
            layer.restart_engine()                        # … until Restart engine
        if layer.pending == 0:
            tickets.append(layer.submit(RUN, answers, **run_payload(stack(3))))
        if not dead:                                      # the first dies with the run in flight, the others
            loop.run_until(lambda: engine._flight is not None)      # while they load Keras
        pid = engine.pid
        os.kill(pid, signal.SIGKILL)
        dead.append(pid)
        loop.run_until(lambda: engine.pid != pid or engine.failure is not None)
    loop.run_until(lambda: layer.pending == 0)
    for ticket in tickets:
        answers.one(ticket)                               # exactly one answer each
    for pid in dead:
        assert shm_names(pid) == [], f"blocks of the dead engine {pid} are left in {shared.SHM_DIR}"
    if engine.failure is not None:
        layer.restart_engine()
    again = layer.submit(RUN, answers, **run_payload(stack(3)))
    loop.run_until(lambda: again.done)
    assert answers.one(again).ok and answers.one(again).value.layers[-1].output.shape == (2, 5, 3)


@pytest.mark.slow   # waits out the stall bound on a long run
def test_a_stopped_engine_is_replaced_after_the_heartbeat_bound(make_layer, loop):
    layer, engine = make_layer(heartbeat_s=0.2, stall_s=5.0)   # a loaded machine may be silent for 2 s
    answers = Answers()
    run = layer.submit(RUN, answers, **run_payload(stack(5, rows=200, steps=300)))
    loop.run_until(lambda: layer.busy and engine._flight is not None)
    stopped = engine.pid
    os.kill(stopped, signal.SIGSTOP)
    try:
        loop.run_until(lambda: run.done)
    finally:
        os.kill(stopped, signal.SIGCONT) if _alive(stopped) else None
    reply = answers.one(run)
    assert reply.ok and reply.value.layers[-1].output.shape == (200, 300, 5) and engine.pid != stopped
    assert any("stopped answering" in text for text, _ in layer.notices)
    # stopped while idle: the next request (bigger than the pipe's buffer) waits in the writer, not the host
    loop.run_until(lambda: engine._ready)
    idle = engine.pid
    os.kill(idle, signal.SIGSTOP)
    try:
        big = layer.submit(RUN, answers, **run_payload(stack(2, rows=300, steps=600)))
        loop.run_until(lambda: big.done)
    finally:
        os.kill(idle, signal.SIGCONT) if _alive(idle) else None
    assert answers.one(big).ok and engine.pid not in (idle, stopped)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_result_larger_than_shared_memory_travels_through_a_file(make_layer, loop, monkeypatch):
    from keras.utils import pad_sequences
    monkeypatch.setenv(shared.SHM_LIMIT_ENV, str(1 << 16))       # the engine sees 64 KB of room in /dev/shm
    layer, engine = make_layer()
    spec = stack(4, rows=120, steps=400)
    answers = Answers()
    run = layer.submit(RUN, answers, **run_payload(spec))
    loop.run_until(lambda: run.done)
    reply = answers.one(run)
    assert reply.ok, reply.error
    ids = [[int(token) for token in line.split()] for line in spec.sequences.splitlines()]
    np.testing.assert_array_equal(reply.value.input, pad_sequences(ids, padding="post"))
    assert shm_names(engine.pid) == []                                   # nothing went through /dev/shm
    leftovers = list(Path(shared.tempfile.gettempdir()).glob(shared.prefix(engine.pid) + "*"))
    assert leftovers == []                                               # the window removed the file once mapped


def test_a_result_with_no_room_anywhere_is_refused_with_a_sentence(monkeypatch):
    monkeypatch.setattr(shared, "_room", lambda path: 1000)
    monkeypatch.delenv(shared.SHM_LIMIT_ENV, raising=False)
    with pytest.raises(shared.ResultTooBig, match=r"larger than the free shared memory .* run fewer"):
        shared.dumps({"output": np.zeros((100, 100), np.float32)}, shared.BlockPool())
