"""IDX reading and writing: round trips, compression, and every way a file can be broken."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from grader.data.idx import IDXError, read_idx, write_idx

ARRAYS = {
    "uint8-3d": np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
    "uint8-1d": np.array([5, 0, 4, 1, 9], dtype=np.uint8),
    "int32": np.array([[-1, 2**31 - 1], [7, -(2**31)]], dtype=np.int32),
    "float32": np.array([0.5, -1e-30, 3e38], dtype=np.float32),
    "float64": np.array([[np.pi], [-0.0]], dtype=np.float64),
}


@pytest.mark.parametrize("name", ARRAYS)
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_round_trip(tmp_path, name, suffix):
    path = tmp_path / f"data-idx{suffix}"
    write_idx(path, ARRAYS[name])
    back = read_idx(path)
    assert back.dtype == ARRAYS[name].dtype and back.dtype.isnative
    np.testing.assert_array_equal(back, ARRAYS[name])


def test_header_is_standard_big_endian(tmp_path):
    write_idx(tmp_path / "labels", np.array([1, 2, 3], dtype=np.uint8))
    assert (tmp_path / "labels").read_bytes() == b"\x00\x00\x08\x01\x00\x00\x00\x03\x01\x02\x03"


def test_gzip_is_detected_by_content_not_name(tmp_path):
    write_idx(tmp_path / "x.gz", ARRAYS["uint8-3d"])
    (tmp_path / "x.gz").rename(tmp_path / "x")
    np.testing.assert_array_equal(read_idx(tmp_path / "x"), ARRAYS["uint8-3d"])


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_truncated_file(tmp_path, suffix):
    path = tmp_path / f"images{suffix}"
    write_idx(tmp_path / "full", ARRAYS["uint8-3d"])
    data = (tmp_path / "full").read_bytes()[:-5]
    path.write_bytes(gzip.compress(data) if suffix else data)
    with pytest.raises(IDXError, match="truncated: header promises 24 data bytes, found 19"):
        read_idx(path)


def test_truncated_header(tmp_path):
    (tmp_path / "h").write_bytes(b"\x00\x00\x08\x03\x00\x00")
    with pytest.raises(IDXError, match="truncated in its header"):
        read_idx(tmp_path / "h")


def test_trailing_bytes(tmp_path):
    write_idx(tmp_path / "x", ARRAYS["uint8-1d"])
    (tmp_path / "x").write_bytes((tmp_path / "x").read_bytes() + b"\x00")
    with pytest.raises(IDXError, match="trailing bytes"):
        read_idx(tmp_path / "x")


def test_not_idx(tmp_path):
    (tmp_path / "x").write_bytes(b"<html>not found</html>")
    with pytest.raises(IDXError, match="not an IDX file"):
        read_idx(tmp_path / "x")


def test_corrupt_gzip(tmp_path):
    write_idx(tmp_path / "x.gz", np.zeros((100, 100), dtype=np.uint8))
    data = bytearray((tmp_path / "x.gz").read_bytes())
    data[20:30] = b"\xff" * 10
    (tmp_path / "x.gz").write_bytes(bytes(data))
    with pytest.raises(IDXError, match="corrupt gzip data"):
        read_idx(tmp_path / "x.gz")


def test_missing_file(tmp_path):
    with pytest.raises(IDXError, match="file not found"):
        read_idx(tmp_path / "nope")


def test_unsupported_dtype(tmp_path):
    with pytest.raises(IDXError, match="cannot hold"):
        write_idx(tmp_path / "x", np.array([1 + 2j]))
