"""``python -m grader summary``: the class page ``DIR/index.html`` from ``DIR/<student>/results.json``."""

from __future__ import annotations

from pathlib import Path

from grader.submission import UnusableSubmission

from .class_page import class_markdown, read_class, write_index


def main(folder: Path, summary_md: Path | None = None) -> int:
    if not folder.is_dir():
        raise UnusableSubmission(f"{folder}: no such directory")
    rows = read_class(folder)
    if not rows:
        raise UnusableSubmission(f"{folder}: no <student>/results.json below it")
    print(f"wrote {write_index(folder)} ({len(rows)} submissions)")
    if summary_md:
        summary_md.write_text(class_markdown(rows, "MLP assignment: class summary"), encoding="utf-8")
    return 0
