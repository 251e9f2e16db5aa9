"""``python -m grader batch``: grade a class, in parallel, resumable, here or on a Dask cluster (runner.py)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from grader.contract import check_epochs, parse_components
from grader.errors import UsageError
from grader.submission import UnusableSubmission
from grader.summary.class_page import write_index

from .dask_cluster import DaskGrades
from .runner import Batch, LocalGrades, students_of
from .safe_zip import UnsafeArchive, extract


def main(submissions: Path, out: Path, jobs: int | None = None, scheduler: str | None = None, force: bool = False,
         epochs: int | None = None, only: str | None = None, similarity: bool = False) -> int:
    """Grade every student folder of ``submissions`` (a folder or a .zip) into ``out``."""
    if jobs is not None and jobs < 1:
        raise UsageError("--jobs must be a positive integer")
    if jobs is not None and scheduler:
        raise UsageError("--jobs does not apply with --scheduler (the cluster's threads set the parallelism)")
    check_epochs(epochs)
    parse_components(only)
    if not submissions.exists():
        raise UnusableSubmission(f"{submissions}: no such file or directory")
    grade_args = [*(["--epochs", str(epochs)] if epochs else []), *(["--only", only] if only else [])]
    with tempfile.TemporaryDirectory(prefix="mlp-batch-") as scratch:
        source = submissions
        if source.is_file():
            try:
                source = extract(source, Path(scratch))
            except UnsafeArchive as exc:
                raise UnusableSubmission(f"{submissions}: refused: {exc}") from None
        if not students_of(source):
            raise UnusableSubmission(f"{submissions}: holds no student folders")
        grades = DaskGrades(scheduler, grade_args) if scheduler else LocalGrades(jobs or os.cpu_count() or 1,
                                                                                   grade_args)
        try:
            rows = Batch(source, out, grades, force=force).run()
        finally:
            grades.close()
        if similarity:  # here, not on the workers: it needs every submission at once, and takes seconds
            from grader.similarity import main as screen  # noqa: PLC0415  (copydetect loads matplotlib: only if asked)

            screen(source, out)
            write_index(out)
    graded = sum(row.status in ("graded", "skipped") for row in rows)
    print(f"{graded} of {len(rows)} graded; {out / 'grades.csv'} and {out / 'index.html'}")
    return 0
