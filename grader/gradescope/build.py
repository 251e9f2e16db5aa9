"""The Gradescope autograder zip: ``setup.sh``, ``run_autograder``, the grader and its pyproject.toml.

Gradescope unpacks the zip into ``/autograder/source``, runs ``setup.sh`` once to build the image,
then runs ``run_autograder`` for each submission (see ``files/autograder_README.md``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from grader.handout.bundle import FILES, HandoutError, InstructorTree, copy_grader, refuse_leaks

_EXECUTABLE = 0o100755 << 16  # zip external attributes: a regular file, rwxr-xr-x
_REGULAR = 0o100644 << 16


def build_autograder_zip(out: Path, source: Path) -> Path:
    """Write the autograder zip to ``out`` (replaced atomically) from the instructor's repository ``source``."""
    tree = InstructorTree(source).check()
    if out.suffix != ".zip":
        raise HandoutError(f"{out}: the autograder must be a .zip file")
    with tempfile.TemporaryDirectory(prefix="mlp-autograder-") as scratch:
        folder = Path(scratch)
        copy_grader(tree, folder)
        for name, shipped in (("setup.sh", "setup.sh"), ("run_autograder", "run_autograder"),
                              ("autograder_README.md", "README.md")):
            shutil.copyfile(FILES / name, folder / shipped)
        refuse_leaks(folder, tree)
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                name = path.relative_to(folder).as_posix()
                info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = _EXECUTABLE if name in ("setup.sh", "run_autograder") else _REGULAR
                archive.writestr(info, path.read_bytes())
        os.replace(partial, out)
    return out
