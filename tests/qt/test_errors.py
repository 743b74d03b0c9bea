"""Errors never crash the window: an exception in a slot, in another thread or in the engine is logged with its
traceback, said in the status bar and in a non-modal message box, and the window keeps working."""

from __future__ import annotations

import logging
import sys
import threading

import pytest

from explorer.qt.errors import ErrorReporter, install_hooks, setup_logging, teardown_logging

RUN_TIMEOUT_MS = 60_000


def settle(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.runs.settled, timeout=RUN_TIMEOUT_MS)


@pytest.fixture
def reporter(tmp_path, qapp):
    teardown_logging()
    log_path = setup_logging(tmp_path)
    hooks = install_hooks(log_path)
    yield hooks
    hooks.uninstall()
    teardown_logging()


def log_text(reporter: ErrorReporter) -> str:
    for handler in logging.getLogger("explorer").handlers:
        handler.flush()
    return reporter.log_path.read_text(encoding="utf-8")


@pytest.mark.qt_no_exception_capture
def test_a_slot_that_raises_is_logged_and_shown_and_the_next_run_works(make_window, qtbot, reporter,
                                                                      monkeypatch):
    win = make_window()
    settle(qtbot, win)
    assert sys.excepthook is not sys.__excepthook__

    def broken(asked=True):
        raise RuntimeError("a bug in a slot, on purpose")

    monkeypatch.setattr(win.runs.runner, "run_now", broken)  # the scheduled run calls it
    win.stack_editor.card("lstm_1").param_widget("units").setValue(20)
    qtbot.waitUntil(lambda: "a bug in a slot" in win.session.status_text, timeout=5000)
    assert win.session.status_text.startswith("internal error (RuntimeError): a bug in a slot, on purpose")
    assert str(reporter.log_path) in win.session.status_text
    assert reporter.box is not None and reporter.box.isVisible() and not reporter.box.isModal()
    assert "a bug in a slot" in reporter.box.text()
    logged = log_text(reporter)
    assert "Traceback (most recent call last)" in logged and "RuntimeError: a bug in a slot, on purpose" in logged
    monkeypatch.undo()
    win.run_action.trigger()                            # the window still works
    settle(qtbot, win)
    assert win.runs.last_reply.ok and win.session.result.layer("lstm_1").output.shape[-1] == 20
    reporter.box.close()


@pytest.mark.qt_no_exception_capture
def test_an_exception_in_another_thread_is_shown_on_the_gui_thread(make_window, qtbot, reporter):
    win = make_window()
    thread = threading.Thread(target=lambda: 1 / 0, name="helper")
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: "ZeroDivisionError" in win.session.status_text, timeout=5000)
    assert "in thread helper" in log_text(reporter)
    assert reporter.messages[-1].startswith("internal error (ZeroDivisionError): division by zero")


def test_an_internal_error_in_the_engine_is_shown_and_the_engine_goes_on(make_window, qtbot, reporter):
    win = make_window()
    settle(qtbot, win)
    reporter.watch(win.runs.requests)

    from explorer.requests import Kind, NoPayload
    win.runs.submit(Kind("probe", NoPayload, "nothing"))   # a request kind without a task: a bug, caught in the engine
    qtbot.waitUntil(lambda: any("no task for requests of kind 'probe'" in m for m in reporter.messages),
                    timeout=RUN_TIMEOUT_MS)
    assert "internal error (KeyError)" in win.session.status_text and str(reporter.log_path) in win.session.status_text
    assert "Traceback" in log_text(reporter) and "explorer/engine/tasks.py" in log_text(reporter)
    win.run_action.trigger()
    settle(qtbot, win)
    assert win.runs.last_reply.ok


def test_keyboard_interrupts_are_not_reported(reporter, monkeypatch):
    called = []
    monkeypatch.setattr(sys, "__excepthook__", lambda *args: called.append(args[0]))
    sys.excepthook(KeyboardInterrupt, KeyboardInterrupt(), None)
    assert called == [KeyboardInterrupt] and reporter.messages == []


def test_hooks_are_put_back_when_uninstalled(qapp):
    before = (sys.excepthook, threading.excepthook)
    hooks = install_hooks(None)
    assert sys.excepthook is not before[0] and threading.excepthook is not before[1]
    hooks.uninstall()
    assert (sys.excepthook, threading.excepthook) == before


def test_the_log_goes_to_the_state_folder(tmp_path, monkeypatch):
    from explorer.qt.settings import STATE_DIR_ENV
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path / "state"))
    teardown_logging()
    try:
        path = setup_logging()
        assert path == tmp_path / "state" / "explorer.log"
        assert setup_logging() == path                       # once only
        logging.getLogger("explorer.engine").error("something to keep")
        for handler in logging.getLogger("explorer").handlers:
            handler.flush()
        assert "something to keep" in path.read_text()
    finally:
        teardown_logging()
