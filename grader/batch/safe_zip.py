"""Extract a class's .zip only after every entry is validated: no absolute paths, no "..", no links,
and caps on total size, entry count and compression ratio (zip bombs)."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path, PurePosixPath

MAX_TOTAL_BYTES = 2 << 30
MAX_ENTRIES = 50_000
MAX_RATIO = 200


class UnsafeArchive(ValueError):
    """The archive breaks a rule; the message names the entry."""


def validate(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The archive's entries, once all of them passed every rule."""
    entries = archive.infolist()
    if len(entries) > MAX_ENTRIES:
        raise UnsafeArchive(f"{len(entries)} entries (the cap is {MAX_ENTRIES})")
    total = 0
    for entry in entries:
        path = PurePosixPath(entry.filename.replace("\\", "/"))
        if path.is_absolute() or entry.filename.startswith(("/", "\\")) or ":" in path.parts[0]:
            raise UnsafeArchive(f"{entry.filename!r}: an absolute path")
        if ".." in path.parts:
            raise UnsafeArchive(f"{entry.filename!r}: a path that climbs out with '..'")
        mode = entry.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise UnsafeArchive(f"{entry.filename!r}: a symbolic link")
        if entry.file_size and entry.file_size > MAX_RATIO * max(entry.compress_size, 1):
            raise UnsafeArchive(f"{entry.filename!r}: compressed {entry.file_size // max(entry.compress_size, 1)}:1 "
                                f"(the cap is {MAX_RATIO}:1)")
        total += entry.file_size
        if total > MAX_TOTAL_BYTES:
            raise UnsafeArchive(f"more than {MAX_TOTAL_BYTES} bytes uncompressed")
    return entries


def extract(zip_path: Path, target: Path) -> Path:
    """Validate, then extract into ``target``; return the folder holding one sub-folder per student."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            entries = validate(archive)
            for entry in entries:
                destination = target.joinpath(*PurePosixPath(entry.filename.replace("\\", "/")).parts)
                if entry.is_dir():
                    destination.mkdir(parents=True, exist_ok=True)
                    continue
                destination.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(entry) as source, open(destination, "wb") as out:
                    # Read at most the declared size plus one byte: a lying header cannot inflate past it.
                    data = source.read(entry.file_size + 1)
                    if len(data) > entry.file_size:
                        raise UnsafeArchive(f"{entry.filename!r}: holds more than its declared size")
                    out.write(data)
    except zipfile.BadZipFile as exc:
        raise UnsafeArchive(f"not a valid zip file ({exc})") from None
    children = [p for p in target.iterdir() if p.is_dir()]
    # A zip of one folder that holds the students: step into it.
    if len(children) == 1 and not (children[0] / "mlp.py").exists() and not any(target.glob("*.py")):
        return children[0]
    return target
