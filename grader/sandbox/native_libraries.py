"""The system libraries that the allowed libraries' compiled extensions need, and nothing else.

The child may read the Python installation; an extension of matplotlib or Pillow also loads system
libraries (``libdl.so.2``, ``libstdc++.so.6``, ...) from /lib or /usr/lib, which Landlock would hide.
This module reads each extension's ELF dynamic section for its ``DT_NEEDED`` entries, resolves
them as the dynamic loader does (RUNPATH/RPATH with ``$ORIGIN``, then the system directories), and
follows the libraries found, so the child can be given read access to exactly those files.
"""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Iterable
from pathlib import Path

from .stand_ins import FRAMEWORKS, KNOWN

_PT_LOAD, _PT_DYNAMIC = 1, 2
_DT_NEEDED, _DT_STRTAB, _DT_RPATH, _DT_RUNPATH = 1, 5, 15, 29
_SYSTEM_DIRS = tuple(f"{prefix}/{multiarch}" for prefix in ("/lib", "/usr/lib", "/usr/local/lib")
                     for multiarch in (f"{os.uname().machine}-linux-gnu", "")) + ("/lib64", "/usr/lib64")


def needed(path: str) -> tuple[list[str], list[str]]:
    """(DT_NEEDED names, RUNPATH/RPATH directories with $ORIGIN expanded) of a 64-bit little-endian ELF file.

    Anything else, or a file that is not well formed, gives two empty lists.
    """
    try:
        with open(path, "rb") as stream:
            data = stream.read()
    except OSError:
        return [], []
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return [], []
    try:
        phoff, = struct.unpack_from("<Q", data, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
        loads, dynamic = [], None
        for index in range(phnum):
            kind, _, offset, vaddr, _, filesz = struct.unpack_from("<IIQQQQ", data, phoff + index * phentsize)
            if kind == _PT_LOAD:
                loads.append((vaddr, offset, filesz))
            elif kind == _PT_DYNAMIC:
                dynamic = (offset, filesz)
        if dynamic is None:
            return [], []
        entries = [struct.unpack_from("<qQ", data, dynamic[0] + at) for at in range(0, dynamic[1], 16)]
        strtab = next(value for tag, value in entries if tag == _DT_STRTAB)
        base = next(offset + strtab - vaddr for vaddr, offset, size in loads if vaddr <= strtab < vaddr + size)
    except (struct.error, StopIteration):
        return [], []

    def text(at: int) -> str:
        return data[base + at:data.index(b"\0", base + at)].decode("utf-8", "replace")

    origin = os.path.dirname(os.path.realpath(path))
    names = [text(value) for tag, value in entries if tag == _DT_NEEDED]
    dirs = [part.replace("$ORIGIN", origin).replace("${ORIGIN}", origin)
            for tag, value in entries if tag in (_DT_RPATH, _DT_RUNPATH) for part in text(value).split(":") if part]
    return names, dirs


def _resolve(name: str, dirs: Iterable[str]) -> str | None:
    for directory in [*dirs, *_SYSTEM_DIRS]:
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate):
            return os.path.realpath(candidate)
    return None


def libraries_needed(extensions: Iterable[str]) -> set[str]:
    """Every library file the ``extensions`` load, directly or through each other (real paths)."""
    found: set[str] = set()
    pending = list(extensions)
    while pending:
        names, dirs = needed(pending.pop())
        for name in names:
            library = _resolve(name, dirs)
            if library is not None and library not in found:
                found.add(library)
                pending.append(library)
    return found


@functools.lru_cache(maxsize=8)
def allowed_extension_libraries(site_dirs: tuple[str, ...]) -> tuple[str, ...]:
    """The system libraries (outside ``site_dirs``) the extensions of the non-framework libraries that
    ``stand_ins`` lists need, where those libraries are installed in ``site_dirs``."""
    roots = [Path(site, *key.split(".")) for site in site_dirs for key in KNOWN if key not in FRAMEWORKS]
    # Vendored libraries sit beside the package (pillow.libs, scipy.libs): theirs are needed too.
    roots += [path for site in site_dirs if os.path.isdir(site) for path in Path(site).glob("*.libs")]
    extensions = [str(path) for root in roots if root.is_dir() for path in root.rglob("*.so*") if path.is_file()]
    inside = tuple(os.path.realpath(site) + os.sep for site in site_dirs)
    return tuple(sorted(path for path in libraries_needed(extensions) if not path.startswith(inside)))
