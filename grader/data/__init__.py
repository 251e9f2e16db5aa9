"""``python -m grader data``, and the data sets the grader and the reference train on: real MNIST, offline-first."""

from __future__ import annotations

from pathlib import Path

from .mnist import MNIST, DataError, find_idx_dir, load_mnist, provision, read_verified

__all__ = ["MNIST", "DataError", "load_mnist", "main", "provision"]


def main(mnist_dir: str | None = None, cache_dir: str | None = None) -> int:
    """Verify ``mnist_dir``, or provision the cache; print where MNIST is."""
    if mnist_dir:
        folder = find_idx_dir(Path(mnist_dir))
        read_verified(folder)
    else:
        folder = provision(Path(cache_dir) if cache_dir else None)
    print(f"MNIST verified in {folder}")
    return 0
