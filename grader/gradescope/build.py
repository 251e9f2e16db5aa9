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


# Gradescope's defaults: a 10-minute limit (the grade must be written well before it) and 768 MB.
# The memory setting is what the submission's process may use of its own (RLIMIT_DATA beyond what its
# interpreter and NumPy committed, python -m bench.memory measures the rest). Of 768 MiB, at the peak of
# the timed run: the grading process about 140 MiB (Python, pytest, the test set, the run's record), the
# training images 180 MiB in shared memory (once: the submission's process maps them), run.py 10 MiB, the
# submission's interpreter and NumPy 20 MiB and page tables and code 20 MiB leave about 400 MiB: enough
# for a train that copies the training set to float64 (360 MiB). A larger container: its MiB less 370.
DEFAULT_DEADLINE = 540.0
DEFAULT_MEMORY_MB = 400


def build_autograder_zip(out: Path, source: Path, deadline: float = DEFAULT_DEADLINE,
                         memory_mb: int = DEFAULT_MEMORY_MB, leaderboard: bool = False) -> Path:
    """Write the autograder zip to ``out`` (replaced atomically) from the instructor's repository ``source``.

    ``deadline`` seconds for a whole grade and ``memory_mb`` for the submission's own memory go
    into ``run_autograder`` (the environment there may still override them).
    """
    tree = InstructorTree(source).check()
    if out.suffix != ".zip":
        raise HandoutError(f"{out}: the autograder must be a .zip file")
    with tempfile.TemporaryDirectory(prefix="mlp-autograder-") as scratch:
        folder = Path(scratch)
        copy_grader(tree, folder)
        for name, shipped in (("setup.sh", "setup.sh"), ("autograder_README.md", "README.md")):
            shutil.copyfile(FILES / name, folder / shipped)
        script = (FILES / "run_autograder").read_text(encoding="utf-8")
        script = script.replace("@DEADLINE@", f"{deadline:g}").replace("@MEMORY_MB@", f"{memory_mb:g}")
        (folder / "run_autograder").write_text(script.replace("@GRADE_OPTIONS@", "--leaderboard" if leaderboard
                                                              else ""), encoding="utf-8")
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
