"""Shared fixtures. Qt must be told to render offscreen before anything imports it."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def engine():
    """One engine for the session: TensorFlow loads once."""
    from explorer.core.run import Engine
    return Engine()
