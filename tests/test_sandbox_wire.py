"""The wire format: values survive a round trip; every malformed frame is refused cheaply."""

from __future__ import annotations

import fcntl
import json
import math
import mmap
import os
import struct
import tracemalloc

import numpy as np
import pytest

from grader.sandbox import shared, wire

CAP = 64 << 20


class Stream:
    """Reads a byte string the way the parent reads the pipe: growing its buffer as bytes arrive."""

    def __init__(self, data: bytes) -> None:
        self.data, self.position = data, 0

    def read_exact(self, count: int) -> bytearray:
        buffer = bytearray()
        while len(buffer) < count:
            chunk = self.data[self.position:self.position + min(count - len(buffer), 1 << 16)]
            if not chunk:
                raise EOFError("truncated frame")
            self.position += len(chunk)
            buffer += chunk
        return buffer


def frame_bytes(message: object) -> bytes:
    return b"".join(bytes(chunk) for chunk in wire.encode(message))


def raw_frame(header: dict, body: bytes = b"", body_length: int | None = None) -> bytes:
    encoded = json.dumps(header).encode()
    length = len(body) if body_length is None else body_length
    return wire.PREFIX.pack(wire.MAGIC, len(encoded), length) + encoded + body


def read(data: bytes) -> object:
    return wire.read_frame(Stream(data).read_exact, CAP)


def peak_bytes_while(action) -> int:
    tracemalloc.start()
    try:
        action()
    except (wire.ProtocolError, EOFError):
        pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def test_round_trip_of_every_allowed_value():
    value = {"ok": (np.arange(6, dtype=np.float64).reshape(2, 3), np.float32(1.5), [True, None, "s", 3],
                    {"W1": np.zeros((0, 4), np.int32), "nan": float("nan"), "inf": float("-inf")},
                    np.array([1, 2], np.uint8), np.array(True), 2**70)}
    back = read(frame_bytes(value))["ok"]
    np.testing.assert_array_equal(back[0], value["ok"][0])
    assert back[1].dtype == np.float32 and back[1].shape == () and back[1] == 1.5
    assert back[2] == [True, None, "s", 3] and back[6] == 2**70
    assert back[3]["W1"].shape == (0, 4) and np.isnan(back[3]["nan"]) and back[3]["inf"] == float("-inf")
    assert back[4].dtype == np.uint8 and back[5].dtype == np.bool_
    back[0][0, 0] = 7.0  # arrays arrive writable (students' code may modify what it is given)


def test_a_dict_key_cannot_forge_a_marker():
    back = read(frame_bytes({"__array__": 0}))
    assert back == {"__array__": 0}


def test_lone_surrogates_from_the_child_arrive_as_writable_text():
    # JSON admits "\ud800"; one such character in an error message made every report write fail.
    back = read(raw_frame({"msg": {"__dict__": {"k\ud800": ["x\udfff", "ok\U0001F600"]}}, "arrays": []}))
    ((key, (text, fine)),) = back.items()
    key.encode("utf-8"), text.encode("utf-8")
    assert "\ufffd" in key and text.startswith("x\ufffd") and fine == "ok\U0001F600"


@pytest.mark.parametrize("value", [np.array([1, "a"], dtype=object), np.array([1 + 2j]), object(),
                                   {1: "non-string key"}, np.array(["text"])])
def test_unsendable_values_are_refused_at_the_sender(value):
    with pytest.raises(wire.UnsendableValue):
        wire.encode({"ok": value})


def test_object_dtype_in_a_header_is_rejected():
    with pytest.raises(wire.ProtocolError, match="dtype '\\|O' is not allowed"):
        read(raw_frame({"msg": {"__array__": 0}, "arrays": [{"dtype": "|O", "shape": [1]}]}, bytes(8)))


def test_oversized_shape_header_is_rejected_without_allocating_it():
    frame = raw_frame({"msg": {"__array__": 0}, "arrays": [{"dtype": "<f8", "shape": [10**6, 10**6]}]}, bytes(8))
    with pytest.raises(wire.ProtocolError, match="declare more bytes"):
        read(frame)
    assert peak_bytes_while(lambda: read(frame)) < 1 << 20


def test_oversized_body_is_rejected_before_reading_it():
    frame = raw_frame({"msg": None, "arrays": []}, body_length=1 << 40)
    with pytest.raises(wire.ProtocolError, match="exceeds the 67108864-byte cap"):
        read(frame)


def test_truncated_frame_never_allocates_the_claimed_size():
    claimed = 50 << 20  # under the cap, so only the missing bytes can stop it
    frame = raw_frame({"msg": {"__array__": 0}, "arrays": [{"dtype": "|u1", "shape": [claimed]}]},
                      bytes(100), body_length=claimed)
    with pytest.raises(EOFError):
        read(frame)
    assert peak_bytes_while(lambda: read(frame)) < 1 << 20


def test_trailing_bytes_in_the_body_are_rejected():
    frame = raw_frame({"msg": {"__array__": 0}, "arrays": [{"dtype": "<i8", "shape": [1]}]}, bytes(9))
    with pytest.raises(wire.ProtocolError, match="trailing bytes: the body has 1 bytes"):
        read(frame)


@pytest.mark.parametrize("data, message", [
    (b"HTTP" + bytes(12), "bad frame magic"),
    (wire.PREFIX.pack(wire.MAGIC, 2 << 20, 0), "frame header of"),
    (wire.PREFIX.pack(wire.MAGIC, 5, 0) + b"{nope", "malformed frame header"),
    (raw_frame({"msg": {"__array__": 3}, "arrays": []}), "array that does not exist"),
    (raw_frame({"msg": {"__evil__": 1}, "arrays": []}), "unknown value marker"),
    (raw_frame({"msg": None, "arrays": [{"dtype": "<f8", "shape": [-1]}]}), "natural numbers"),
    (raw_frame({"msg": None, "arrays": [{"dtype": "<f8", "shape": [True]}]}), "natural numbers"),
    (struct.pack(">4sIQ", wire.MAGIC, 20002, 0) + b"[" * 10001 + b"]" * 10001, "malformed frame header"),
])
def test_malformed_frames_are_rejected(data, message):
    with pytest.raises(wire.ProtocolError, match=message):
        read(data)


def shared_images() -> np.ndarray:
    """A training set in sealed shared memory, as ``load_mnist(shared=True)`` makes it."""
    return shared.sealed_array((600, 784), np.float32, lambda out: out.__setitem__(..., np.arange(784) / 784))


def test_an_array_in_shared_memory_travels_as_a_descriptor_not_as_bytes():
    images = shared_images()
    labels = np.arange(600)
    frame, descriptors = wire.encode_shared({"args": [images, labels, images[100:500]]}, shared.locate)
    header = json.loads(bytes(frame[1]))
    assert header["descriptors"] == 1 and len(descriptors) == 1
    assert [spec.get("shared") for spec in header["arrays"]] == [[0, 0], None, [0, 100 * 784 * 4]]
    assert sum(len(memoryview(chunk).cast("B")) for chunk in frame[2:]) == labels.nbytes  # the labels alone

    # The receiver maps the descriptor copy-on-write: a write stays its own, the segment is sealed.
    _, header_length, body_length = wire.PREFIX.unpack(frame[0])
    message, arrays, count = wire.parse_header(bytes(frame[1]), body_length, wire.MAX_DESCRIPTORS)
    assert count == 1

    def map_shared(index, offset, dtype, shape):
        region = mmap.mmap(descriptors[index], offset + math.prod(shape) * dtype.itemsize, access=mmap.ACCESS_COPY)
        return np.frombuffer(region, dtype=dtype, count=math.prod(shape), offset=offset).reshape(shape)

    body = bytearray(b"".join(bytes(chunk) for chunk in frame[2:]))
    got = wire.decode_body(message, arrays, body, map_shared=map_shared)["args"]
    np.testing.assert_array_equal(got[0], images)
    np.testing.assert_array_equal(got[1], labels)
    np.testing.assert_array_equal(got[2], images[100:500])
    got[0][0, 0] = 42.0
    assert images[0, 0] == 0.0 and not images.flags.writeable
    with pytest.raises(OSError):  # sealed: not even a writable descriptor could change it
        os.write(os.open(f"/proc/self/fd/{descriptors[0]}", os.O_RDWR), b"x")
    seals = fcntl.fcntl(descriptors[0], fcntl.F_GET_SEALS)
    assert seals & fcntl.F_SEAL_WRITE and seals & fcntl.F_SEAL_SHRINK and seals & fcntl.F_SEAL_SEAL


def test_small_arrays_and_copies_of_a_shared_segment_travel_in_the_frame():
    images = shared_images()
    frame, descriptors = wire.encode_shared([images[:10], images.copy(), images[:, :400]], shared.locate)
    assert descriptors == [] and "descriptors" not in json.loads(bytes(frame[1]))
    back = read(b"".join(bytes(chunk) for chunk in frame))
    np.testing.assert_array_equal(back[1], images)
    np.testing.assert_array_equal(back[2], images[:, :400])


@pytest.mark.parametrize("header, message", [
    ({"msg": {"__array__": 0}, "arrays": [{"dtype": "<f4", "shape": [2], "shared": [0, 0]}], "descriptors": 1},
     "passing 1 descriptors"),
    ({"msg": {"__array__": 0}, "arrays": [{"dtype": "<f4", "shape": [2], "shared": [0, 0]}]},
     "names no descriptor"),
])
def test_the_parent_refuses_arrays_in_shared_memory_from_the_child(header, message):
    with pytest.raises(wire.ProtocolError, match=message):
        read(raw_frame(header))
