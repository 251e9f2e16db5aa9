"""The wire format between the grader and the sandboxed child: no pickle in either direction.

A frame is ``b"MLPW"``, a big-endian u32 header length, a u64 body length, a UTF-8 JSON
header and a body of raw array buffers laid end to end. The header is
``{"msg": VALUE, "arrays": [{"dtype": "<f8", "shape": [2, 3]}, ...]}``; inside VALUE,
``{"__array__": i}`` stands for array i. Other markers: ``__tuple__``, ``__dict__`` (every
real dict, so markers cannot be forged by a key), ``__float__`` (nan / inf / -inf, keeping the
JSON strict), ``__handle__`` (an object living in the child), ``__callback__`` and ``__rng__`` (a
NumPy Generator, built by the child from its seed).

Large arrays of the grader that live in sealed shared memory (``shared.py``: the MNIST training
images) need not travel at all: ``encode_shared`` gives such an array the spec
``{"dtype": ..., "shape": ..., "shared": [d, offset]}``, its bytes are not in the body, the header
counts the descriptors in ``"descriptors": n``, and the sender passes those n file descriptors
with the frame's first bytes (SCM_RIGHTS on the request socket). The receiver maps descriptor d at
``offset`` (``decode_body``'s ``map_shared``). Only the grader sends such frames: the parent reads
the child's frames with ``max_descriptors=0``, which refuses any ``shared`` spec.

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
MAX_DESCRIPTORS = 8  # shared segments one frame may pass


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
    travels with every call, so the parent can evaluate the model as it trains; the function gets
    it as the keyword argument of that name. The child may call positionally or by keyword;
    arguments that do not bind to ``function`` raise TypeError (naming ``name``) in the child.
    With ``observed``, an observed call's record since the last callback comes as ``observed=``.
    """

    def __init__(self, function: Callable[..., object], attach: tuple[Handle, str] | None = None,
                 name: str = "on_epoch", observed: bool = False) -> None:
        self.function, self.attach, self.name, self.observed = function, attach, name, observed


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
    return encode_shared(message, None, handle_of, callback_id)[0]


def encode_shared(message: object, locate: Callable[[np.ndarray], tuple[int, int] | None] | None,
                  handle_of: Callable[[object], int | None] | None = None,
                  callback_id: Callable[[Callback], int] | None = None) -> tuple[list[bytes | memoryview], list[int]]:
    """``encode``, and arrays for which ``locate`` gives ``(file descriptor, byte offset)`` travel by reference.

    Returns the frame's buffers and the descriptors to pass with its first bytes, in the order the
    header's ``shared`` specs number them.
    """
    arrays: list[np.ndarray] = []
    specs: list[dict] = []
    descriptors: list[int] = []

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
            spec = {"dtype": array.dtype.str, "shape": list(array.shape)}
            place = locate(array) if locate is not None and array.ndim > 0 else None
            if place is not None and (place[0] in descriptors or len(descriptors) < MAX_DESCRIPTORS):
                fd, offset = place
                if fd not in descriptors:
                    descriptors.append(fd)
                spec["shared"] = [descriptors.index(fd), int(offset)]
            else:
                arrays.append(array)
            specs.append(spec)
            return {"__array__": len(specs) - 1}
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

    try:
        value = convert(message)
    finally:
        # convert calls itself, so it and its closure form a cycle: broken here, so the arrays it
        # collected are freed with the frame, not at the next garbage collection.
        convert = None  # the closure's cell now holds None
    framed = {"msg": value, "arrays": specs}
    if descriptors:
        framed["descriptors"] = len(descriptors)
    header = json.dumps(framed, allow_nan=False).encode()
    body_length = sum(a.nbytes for a in arrays)
    buffers = [memoryview(a.reshape(-1).view(np.uint8)) for a in arrays]  # flat bytes, whatever the shape
    return [PREFIX.pack(MAGIC, len(header), body_length), header, *buffers], descriptors


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


def parse_header(header: bytes, body_length: int, max_descriptors: int = 0
                 ) -> tuple[object, list[tuple[np.dtype, tuple[int, ...], tuple[int, int] | None]], int]:
    """Validate a frame header against the announced body length.

    Returns the message, each array's ``(dtype, shape, shared)`` (``shared``: ``(descriptor index,
    offset)`` for an array passed by reference, else None) and the number of descriptors the frame
    passes. ``max_descriptors`` is how many the reader accepts (0: no array by reference).
    """
    try:
        parsed = json.loads(header.decode("utf-8"))
        message, specs = parsed["msg"], parsed["arrays"]
        descriptors = parsed.get("descriptors", 0)
        if type(descriptors) is not int or not 0 <= descriptors <= max_descriptors:
            raise ProtocolError(f"a frame passing {str(descriptors)[:20]} descriptors (this side accepts "
                                f"{max_descriptors})")
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
            shared = spec.get("shared")
            if shared is not None:
                if not (isinstance(shared, list) and len(shared) == 2 and all(type(v) is int for v in shared)
                        and 0 <= shared[0] < descriptors and shared[1] >= 0):
                    raise ProtocolError("an array in shared memory names no descriptor the frame passes")
                arrays.append((dtype, tuple(shape), (shared[0], shared[1])))
                continue
            declared += math.prod(shape) * dtype.itemsize  # Python ints: no overflow
            if declared > body_length:
                raise ProtocolError(f"arrays declare more bytes than the frame body's {body_length}")
            arrays.append((dtype, tuple(shape), None))
    except (ValueError, KeyError, TypeError, RecursionError, AttributeError) as exc:
        raise ProtocolError(f"malformed frame header ({type(exc).__name__})") from None
    if declared != body_length:
        raise ProtocolError(f"trailing bytes: the body has {body_length - declared} bytes no array declares")
    return message, arrays, descriptors


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


def decode_body(message: object, arrays: list[tuple[np.dtype, tuple[int, ...], tuple[int, int] | None]],
                body: bytearray, resolve_handle: Callable[[int], object] | None = None,
                make_callback: Callable[[int, dict | None], object] | None = None,
                make_rng: Callable[[int], object] | None = None,
                text: Callable[[str], str] = valid_text,
                map_shared: Callable[[int, int, np.dtype, tuple[int, ...]], np.ndarray] | None = None) -> object:
    """Rebuild the value of a parsed frame; arrays are writable views into ``body``; ``text`` filters strings.

    An array passed by reference is ``map_shared(descriptor index, offset, dtype, shape)``.
    """
    views, offset = [], 0
    for dtype, shape, shared in arrays:
        count = math.prod(shape)
        if shared is not None:
            if map_shared is None:
                raise ProtocolError("an array in shared memory where none is accepted")
            views.append(map_shared(shared[0], shared[1], dtype, shape))
            continue
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
    finally:
        build = None  # a cycle like encode's convert: the arrays (a mapped training set) go with the value


def read_frame(read_exact: Callable[[int], bytearray], max_body: int, **decode_options) -> object:
    """Read one frame and decode it.

    ``read_exact(n)`` returns exactly n bytes as a bytearray or raises; it should grow its buffer
    as bytes arrive, so a truncated frame never costs the size it claims.
    """
    header_length, body_length = parse_prefix(bytes(read_exact(PREFIX.size)), max_body)
    message, arrays, _ = parse_header(bytes(read_exact(header_length)), body_length)
    return decode_body(message, arrays, read_exact(body_length), **decode_options)
