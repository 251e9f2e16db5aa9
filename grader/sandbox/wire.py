"""The wire format between the grader and the sandboxed child: no pickle in either direction.

A frame is ``b"MLPW"``, a big-endian u32 header length, a u64 body length, a UTF-8 JSON
header and a body of raw array buffers laid end to end. The header is
``{"msg": VALUE, "arrays": [{"dtype": "<f8", "shape": [2, 3]}, ...]}``; inside VALUE,
``{"__array__": i}`` stands for array i. Other markers: ``__tuple__``, ``__dict__`` (every
real dict, so markers cannot be forged by a key), ``__float__`` (nan / inf / -inf, keeping the
JSON strict), ``__handle__`` (an object living in the child), ``__callback__`` and ``__rng__`` (a
NumPy Generator, built by the child from its seed).

Every size is checked against the caps before anything is allocated, and the body must hold
exactly the bytes the arrays declare. This module is also copied into the child, so it
imports nothing but the standard library and NumPy.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable

import numpy as np

MAGIC = b"MLPW"
PREFIX = struct.Struct(">4sIQ")
ALLOWED_DTYPES = {"|b1", "|u1", "<i4", "<i8", "<f4", "<f8"}
MAX_HEADER_BYTES = 1 << 20
MAX_NDIM = 32


class ProtocolError(Exception):
    """A frame broke the wire format; the connection cannot be trusted any more."""


class Handle:
    """An object that lives in the child (a model), named by its number there."""

    def __init__(self, number: int, generation: int = 0) -> None:
        self.number, self.generation = number, generation

    def __repr__(self) -> str:
        return f"Handle({self.number})"


class Callback:
    """A parent-side function the child may call back during a request (e.g. ``on_epoch``).

    ``attach`` names an attribute of a child object (``(handle, "params")``) whose value
    travels with every call, so the parent can evaluate the model as it trains.
    """

    def __init__(self, function: Callable[..., object], attach: tuple[Handle, str] | None = None) -> None:
        self.function, self.attach = function, attach


class Generator:
    """Stands for ``np.random.default_rng(seed)``, built in the child (a Generator cannot travel)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed


class UnsendableValue(TypeError):
    """A value has a type or dtype the wire format does not carry."""


def encode(message: object, handle_of: Callable[[object], int | None] | None = None,
           callback_id: Callable[[Callback], int] | None = None) -> list[bytes | memoryview]:
    """Serialise ``message`` into a frame, returned as buffers to write in order.

    ``handle_of`` maps a child-side object to its handle number (None: not an object);
    ``callback_id`` registers a parent-side Callback. Raises UnsendableValue.
    """
    arrays: list[np.ndarray] = []

    def convert(value: object) -> object:
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int) and not isinstance(value, np.generic):
            return value
        if isinstance(value, float) and not isinstance(value, np.generic):
            return value if math.isfinite(value) else {"__float__": repr(value)}
        if isinstance(value, (np.ndarray, np.generic)):
            array = np.asarray(value)  # not ascontiguousarray: it would make a scalar 1-d
            if not array.flags.c_contiguous:
                array = array.copy(order="C")
            if array.dtype.str not in ALLOWED_DTYPES:
                raise UnsendableValue(f"an array of dtype {array.dtype} (allowed: bool, uint8, int32, "
                                      "int64, float32, float64)")
            arrays.append(array)
            return {"__array__": len(arrays) - 1}
        if isinstance(value, tuple):
            return {"__tuple__": [convert(v) for v in value]}
        if isinstance(value, list):
            return [convert(v) for v in value]
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                raise UnsendableValue("a dict with keys that are not strings")
            return {"__dict__": {k: convert(v) for k, v in value.items()}}
        if isinstance(value, Handle):
            return {"__handle__": value.number}
        if isinstance(value, Generator):
            return {"__rng__": int(value.seed)}
        if isinstance(value, Callback) and callback_id is not None:
            attach = None
            if value.attach is not None:
                attach = {"handle": value.attach[0].number, "attr": value.attach[1]}
            return {"__callback__": callback_id(value), "attach": attach}
        number = handle_of(value) if handle_of is not None else None
        if number is not None:
            return {"__handle__": number}
        raise UnsendableValue(f"a value of type {type(value).__name__}")

    header = json.dumps({"msg": convert(message),
                         "arrays": [{"dtype": a.dtype.str, "shape": list(a.shape)} for a in arrays]},
                        allow_nan=False).encode()
    body_length = sum(a.nbytes for a in arrays)
    buffers = [memoryview(a.reshape(-1).view(np.uint8)) for a in arrays]  # flat bytes, whatever the shape
    return [PREFIX.pack(MAGIC, len(header), body_length), header, *buffers]


def parse_prefix(prefix: bytes, max_body: int) -> tuple[int, int]:
    """Validate a frame's 16-byte prefix; return ``(header_length, body_length)``."""
    magic, header_length, body_length = PREFIX.unpack(prefix)
    if magic != MAGIC:
        raise ProtocolError("bad frame magic (the connection carried something that is not a frame)")
    if header_length > MAX_HEADER_BYTES:
        raise ProtocolError(f"frame header of {header_length} bytes exceeds the {MAX_HEADER_BYTES}-byte cap")
    if body_length > max_body:
        raise ProtocolError(f"frame body of {body_length} bytes exceeds the {max_body}-byte cap")
    return header_length, body_length


def parse_header(header: bytes, body_length: int) -> tuple[object, list[tuple[np.dtype, tuple[int, ...]]]]:
    """Validate a frame header against the announced body length; return the message and array specs."""
    try:
        parsed = json.loads(header.decode("utf-8"))
        message, specs = parsed["msg"], parsed["arrays"]
        arrays = []
        declared = 0
        for spec in specs:
            dtype_str, shape = spec["dtype"], spec["shape"]
            if dtype_str not in ALLOWED_DTYPES:
                raise ProtocolError(f"array dtype {dtype_str!r} is not allowed")
            if (not isinstance(shape, list) or len(shape) > MAX_NDIM
                    or not all(type(d) is int and d >= 0 for d in shape)):
                raise ProtocolError(f"array shape {str(shape)[:80]} is not a list of natural numbers")
            dtype = np.dtype(dtype_str)
            declared += math.prod(shape) * dtype.itemsize  # Python ints: no overflow
            if declared > body_length:
                raise ProtocolError(f"arrays declare more bytes than the frame body's {body_length}")
            arrays.append((dtype, tuple(shape)))
    except (ValueError, KeyError, TypeError, RecursionError, AttributeError) as exc:
        raise ProtocolError(f"malformed frame header ({type(exc).__name__})") from None
    if declared != body_length:
        raise ProtocolError(f"trailing bytes: the body has {body_length - declared} bytes no array declares")
    return message, arrays


def valid_text(text: str) -> str:
    """``text`` with lone surrogates (legal in JSON, unencodable in UTF-8) replaced by U+FFFD.

    Strings from the child end up in files the parent writes; one such character would make every
    UTF-8 write of the report fail.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text


def decode_body(message: object, arrays: list[tuple[np.dtype, tuple[int, ...]]], body: bytearray,
                resolve_handle: Callable[[int], object] | None = None,
                make_callback: Callable[[int, dict | None], object] | None = None,
                make_rng: Callable[[int], object] | None = None,
                text: Callable[[str], str] = valid_text) -> object:
    """Rebuild the value of a parsed frame; arrays are writable views into ``body``; ``text`` filters strings."""
    views, offset = [], 0
    for dtype, shape in arrays:
        count = math.prod(shape)
        views.append(np.frombuffer(body, dtype=dtype, count=count, offset=offset).reshape(shape))
        offset += count * dtype.itemsize

    def build(value: object) -> object:
        if isinstance(value, str):
            return text(value)
        if isinstance(value, list):
            return [build(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1 and "__array__" in value:
            index = value["__array__"]
            if type(index) is not int or not 0 <= index < len(views):
                raise ProtocolError("reference to an array that does not exist")
            return views[index]
        if len(value) == 1 and "__tuple__" in value and isinstance(value["__tuple__"], list):
            return tuple(build(v) for v in value["__tuple__"])
        if len(value) == 1 and "__dict__" in value and isinstance(value["__dict__"], dict):
            return {text(k): build(v) for k, v in value["__dict__"].items()}
        if len(value) == 1 and value.get("__float__") in ("nan", "inf", "-inf"):
            return float(value["__float__"])
        if len(value) == 1 and type(value.get("__handle__")) is int:
            return resolve_handle(value["__handle__"]) if resolve_handle else Handle(value["__handle__"])
        if len(value) == 1 and type(value.get("__rng__")) is int and make_rng is not None:
            return make_rng(value["__rng__"])
        if set(value) == {"__callback__", "attach"} and make_callback is not None:
            return make_callback(value["__callback__"], value["attach"])
        raise ProtocolError(f"unknown value marker {sorted(value)[:3]}")

    try:
        return build(message)
    except RecursionError:
        raise ProtocolError("frame value nested too deeply") from None


def read_frame(read_exact: Callable[[int], bytearray], max_body: int, **decode_options) -> object:
    """Read one frame and decode it.

    ``read_exact(n)`` returns exactly n bytes as a bytearray or raises; it should grow its buffer
    as bytes arrive, so a truncated frame never costs the size it claims.
    """
    header_length, body_length = parse_prefix(bytes(read_exact(PREFIX.size)), max_body)
    message, arrays = parse_header(bytes(read_exact(header_length)), body_length)
    return decode_body(message, arrays, read_exact(body_length), **decode_options)
