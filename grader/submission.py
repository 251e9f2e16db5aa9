"""Where a submission's mlp.py (or mlp.ipynb) is (CONTRACT §1): at its top level, or in student_template/."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from grader.errors import GraderError

MAX_SUBMISSION_BYTES = 20 * 1024 * 1024
MAX_SUBMISSION_FILES = 2000
_NOT_SUBMITTED = ("__pycache__", ".git", ".tox", ".venv")


class UnusableSubmission(GraderError):
    """The path cannot be graded; the message is the one line the command prints."""


MODULE_FILES = ("mlp.py", "mlp.ipynb")  # mlp.py wins where a folder has both


def module_dir(submission: Path) -> Path:
    """The directory holding the submission's ``mlp.py`` or ``mlp.ipynb``."""
    if not submission.exists():
        raise UnusableSubmission(f"{submission}: no such file or directory")
    if not submission.is_dir():
        raise UnusableSubmission(f"{submission}: not a directory (give the folder that holds mlp.py)")
    for candidate in (submission, submission / "student_template"):
        if any((candidate / name).is_file() for name in MODULE_FILES):
            return candidate.resolve()
    raise UnusableSubmission(f"{submission}: no mlp.py (or mlp.ipynb) at its top level or in student_template/")


def submission_files(source: Path) -> Iterator[tuple[str, Path]]:
    """The submission's regular files as (relative POSIX path, path): no links, no caches.

    Files past MAX_SUBMISSION_BYTES in all, or past MAX_SUBMISSION_FILES, are left out: whatever a
    folder holds, grading copies or ships at most that much of it.
    """
    budget, count = MAX_SUBMISSION_BYTES, 0
    for directory, subdirs, files in os.walk(source):
        subdirs[:] = sorted(d for d in subdirs
                            if d not in _NOT_SUBMITTED and not os.path.islink(os.path.join(directory, d)))
        for name in sorted(files):
            path = Path(directory, name)
            if path.is_symlink() or not path.is_file():
                continue
            size = path.stat().st_size
            if size > budget or count >= MAX_SUBMISSION_FILES:
                continue
            budget, count = budget - size, count + 1
            yield path.relative_to(source).as_posix(), path
