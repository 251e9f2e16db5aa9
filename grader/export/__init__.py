"""``python -m grader export DIR --format canvas|moodle``: a class's grades as a file the LMS imports.

Submission folders are mapped to students through a roster CSV (a ``folder`` column plus the
LMS's own identifiers); without one, a folder's name is taken as the student's login. A student
who could not be graded gets an empty cell, never a 0 (an import would record a 0 as a grade), and
is listed on stderr.

- Canvas (Gradebook import): ``Student, ID, SIS User ID, SIS Login ID, Section``, then one column
  per assignment, and a ``Points Possible`` row under the header.
- Moodle (Grade import, CSV): an identifier column the import maps to a user field (``Email
  address``, ``Username`` or ``ID number``), then the grade item's column.
"""

from __future__ import annotations

import csv
import io
import sys
from dataclasses import dataclass
from pathlib import Path

from grader.contract import TOTAL_POINTS
from grader.errors import UsageError
from grader.report.results_json import UnreadableResults, read_results, write_atomically
from grader.submission import UnusableSubmission
from grader.text import clean_text, csv_cell

CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
CANVAS_POINTS_ROW = "    Points Possible"  # Canvas's own export writes this label, indented, in the Student column
# Roster column -> the Moodle user field an import maps it to (the first one the roster has is used).
MOODLE_IDENTIFIERS = {"email": "Email address", "username": "Username", "idnumber": "ID number"}
ROSTER_COLUMNS = ("folder", "name", "id", "sis_user_id", "sis_login_id", "section", *MOODLE_IDENTIFIERS)


@dataclass
class Student:
    folder: str
    fields: dict[str, str]  # roster columns (without a roster: the folder as login and username)
    score: float | None  # None: not graded
    why_not: str = ""


def read_roster(path: Path) -> dict[str, dict[str, str]]:
    """folder -> that student's roster row (lower-case column names)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as stream:
            rows = [{(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
                    for row in csv.DictReader(stream)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UnusableSubmission(f"{path}: cannot read the roster ({exc})") from None
    if not rows or "folder" not in rows[0]:
        raise UnusableSubmission(f"{path}: the roster needs a 'folder' column "
                                 f"(and any of {', '.join(ROSTER_COLUMNS[1:])})")
    return {row["folder"]: row for row in rows if row["folder"]}


def class_grades(folder: Path, roster: dict[str, dict[str, str]] | None) -> list[Student]:
    """Every student of the roster (or every graded folder without one), with a score where it was graded."""
    folders = sorted(p.parent.name for p in folder.glob("*/results.json"))
    names = list(roster) if roster is not None else folders
    students = []
    for name in names:
        fields = roster[name] if roster is not None else {"name": name, "sis_login_id": name, "username": name}
        try:
            record = read_results(folder / name / "results.json")
        except UnreadableResults:
            students.append(Student(name, fields, None, "no results.json"))
            continue
        if record.failure is not None:
            students.append(Student(name, fields, None, record.failure))
        elif record.incomplete:
            students.append(Student(name, fields, None, "grading did not finish"))
        elif record.max_score < TOTAL_POINTS:
            students.append(Student(name, fields, None, "graded in part (--only or --epochs)"))
        else:
            students.append(Student(name, fields, record.score))
    if roster is not None:
        for name in sorted(set(folders) - set(roster)):
            print(clean_text(f"left out: {name} has results but no roster row"), file=sys.stderr)
    return students


def canvas_csv(students: list[Student], assignment: str) -> str:
    stream = io.StringIO()
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow([*CANVAS_COLUMNS, csv_cell(assignment)])
    writer.writerow([CANVAS_POINTS_ROW, "", "", "", "", f"{TOTAL_POINTS:g}"])
    for student in students:
        f = student.fields
        writer.writerow([csv_cell(f.get("name", student.folder)), csv_cell(f.get("id", "")),
                         csv_cell(f.get("sis_user_id", "")), csv_cell(f.get("sis_login_id", "")),
                         csv_cell(f.get("section", "")), _grade(student)])
    return stream.getvalue()


def moodle_identifier(roster: dict[str, dict[str, str]] | None) -> str:
    """The roster column Moodle's import maps to a user field (without a roster: the folder, as username)."""
    if roster is None:
        return "username"
    columns = set().union(*(row for row in roster.values() if row))
    key = next((k for k in MOODLE_IDENTIFIERS if k in columns), None)
    if key is None:
        raise UsageError(f"--format moodle needs a roster column among {', '.join(MOODLE_IDENTIFIERS)}")
    return key


def moodle_csv(students: list[Student], assignment: str, key: str) -> str:
    stream = io.StringIO()
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow([MOODLE_IDENTIFIERS[key], csv_cell(assignment)])
    for student in students:
        writer.writerow([csv_cell(student.fields.get(key, "")), _grade(student)])
    return stream.getvalue()


def _grade(student: Student) -> str:
    return "" if student.score is None else f"{student.score:g}"


def main(folder: Path, lms: str, roster: Path | None = None, assignment: str = "MLP assignment",
         out: Path | None = None) -> int:
    if not folder.is_dir():
        raise UnusableSubmission(f"{folder}: no such directory")
    rows = read_roster(roster) if roster else None
    key = moodle_identifier(rows) if lms == "moodle" else ""
    students = class_grades(folder, rows)
    if not students:
        raise UnusableSubmission(f"{folder}: no <student>/results.json below it")
    text = canvas_csv(students, assignment) if lms == "canvas" else moodle_csv(students, assignment, key)
    out = out or folder / f"{lms}.csv"
    write_atomically(out, text)
    ungraded = [s for s in students if s.score is None]
    for student in ungraded:
        print(clean_text(f"not graded (empty cell): {student.folder}: {student.why_not[:200]}"), file=sys.stderr)
    print(f"wrote {out}: {len(students) - len(ungraded)} grades, {len(ungraded)} empty")
    return 0
