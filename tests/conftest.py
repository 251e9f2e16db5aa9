"""Fixtures shared by the grader's own tests."""

from __future__ import annotations

import pytest

from grader.data import MNIST, load_mnist


@pytest.fixture(scope="session")
def mnist() -> MNIST:
    """Real MNIST, provisioned into the user's cache on first use (never a random stand-in)."""
    return load_mnist()
