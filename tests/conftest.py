"""Fixtures shared by the grader's own tests."""

from __future__ import annotations

import pytest

from grader.data import MNIST, load_mnist


@pytest.fixture(scope="session")
def mnist() -> MNIST:
    """Real MNIST, provisioned into the user's cache on first use (never a random stand-in)."""
    return load_mnist()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # tox -e test runs the suite in two passes, split by the serial marker: a pass that a selection
    # (a file, -k) leaves empty has nothing to fail.
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and session.config.getoption("markexpr") in (
            "serial", "not serial"):
        session.exitstatus = pytest.ExitCode.OK
