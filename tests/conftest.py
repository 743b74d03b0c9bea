"""Shared fixtures. Qt must be told to render offscreen before anything imports it."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# Hypothesis: "ci" (the default) draws the same examples on every run, so a run repeats; "dev"
# (HYPOTHESIS_PROFILE=dev) draws new random ones, DEV_FACTOR times as many, to hunt for failures. Keep every
# failure found as an @example on its test.
DEV_FACTOR = 5
settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile("dev", derandomize=False, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_collection_modifyitems(items):
    """Under "dev", every property test (its own max_examples included) runs DEV_FACTOR times the examples."""
    if settings.default.derandomize:
        return
    for item in items:
        test = getattr(item, "obj", None)
        own = getattr(test, "_hypothesis_internal_use_settings", None)   # where @given/@settings keep them
        if own is not None and hasattr(test, "hypothesis"):
            test._hypothesis_internal_use_settings = settings(own, max_examples=own.max_examples * DEV_FACTOR)


@pytest.fixture(scope="session")
def engine():
    """One engine for the session: TensorFlow loads once."""
    from explorer.core.run import Engine
    return Engine()
