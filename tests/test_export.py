"""Grades land where courses keep them: Canvas and Moodle import files, grades.csv's maximum.

The column rules are the LMSs' own, written here from their documentation (not from the module):
- Canvas Gradebook import: the first columns are Student, ID, SIS User ID, SIS Login ID and
  Section (present even when empty), then one column per assignment; the row under the header
  may be "Points Possible". A grade is a number; an empty cell leaves the grade unchanged.
- Moodle grade import (CSV): one identifier column that the import maps to a user field (email
  address, username or ID number), then one column per grade item holding numbers.
"""

from __future__ import annotations

import csv
import io

import pytest

from grader.record import CheckResult, GradeRecord
from grader.report.results_json import write_failure, write_results
from helpers import run_grader

CANVAS_FIRST = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


def graded(folder, name: str, score: float, maximum: float = 100.0, incomplete: bool = False) -> None:
    (folder / name).mkdir(parents=True)
    record = GradeRecord(results=[CheckResult("all", "MLP", maximum, score, "passed", "")], incomplete=incomplete)
    write_results(folder / name / "results.json", record)


@pytest.fixture
def klass(tmp_path):
    out = tmp_path / "graded"
    graded(out, "alice-repo", 97.5)
    graded(out, "bob-repo", 0.0)  # graded, and a real zero
    graded(out, "=evil()", 50.0)
    graded(out, "partial-repo", 40.0, incomplete=True)  # a grade that was killed: not a grade
    (out / "crashed-repo").mkdir()
    write_failure(out / "crashed-repo" / "results.json", "no mlp.py")
    roster = tmp_path / "roster.csv"
    roster.write_text("folder,name,id,sis_user_id,sis_login_id,section,email\n"
                      "alice-repo,Alice A,101,S101,alice,Sec 1,alice@uni.edu\n"
                      "bob-repo,Bob B,102,S102,bob,Sec 1,bob@uni.edu\n"
                      "crashed-repo,Carol C,103,S103,carol,Sec 2,carol@uni.edu\n"
                      "partial-repo,Dan D,104,S104,dan,Sec 2,dan@uni.edu\n"
                      "missing-repo,Eve E,105,S105,eve,Sec 2,eve@uni.edu\n")
    return out, roster


def read(path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


def test_canvas_import_file_follows_canvas_rules(klass, tmp_path):
    out, roster = klass
    done = run_grader("export", str(out), "--format", "canvas", "--roster", str(roster), "--assignment", "MLP (hw3)")
    assert done.returncode == 0, done.stderr
    rows = read(out / "canvas.csv")
    assert rows[0] == [*CANVAS_FIRST, "MLP (hw3)"]
    assert rows[1][0].strip() == "Points Possible" and rows[1][-1] == "100"
    grades = {row[3]: row[-1] for row in rows[2:]}  # by SIS Login ID
    assert grades == {"alice": "97.5", "bob": "0", "carol": "", "dan": "", "eve": ""}
    assert all(len(row) == 6 for row in rows)
    # Ungraded students are empty cells, never 0, and each is named on stderr; a folder not in the roster too.
    for folder in ("crashed-repo", "partial-repo", "missing-repo"):
        assert f"not graded (empty cell): {folder}" in done.stderr
    assert "=evil()" in done.stderr and "no roster row" in done.stderr


def test_moodle_import_file_follows_moodle_rules(klass):
    out, roster = klass
    done = run_grader("export", str(out), "--format", "moodle", "--roster", str(roster))
    assert done.returncode == 0, done.stderr
    rows = read(out / "moodle.csv")
    assert rows[0] == ["Email address", "MLP assignment"]
    grades = dict(rows[1:])
    assert grades == {"alice@uni.edu": "97.5", "bob@uni.edu": "0", "carol@uni.edu": "", "dan@uni.edu": "",
                      "eve@uni.edu": ""}
    assert all(value == "" or float(value) >= 0 for value in grades.values())


def test_without_a_roster_the_folder_is_the_login_and_formulas_are_defused(klass):
    out, _ = klass
    done = run_grader("export", str(out), "--format", "canvas")
    assert done.returncode == 0, done.stderr
    rows = {row[3]: row for row in read(out / "canvas.csv")[2:]}
    assert rows["alice-repo"][-1] == "97.5" and rows["'=evil()"][0] == "'=evil()"  # shown as text, never run


@pytest.mark.parametrize(("args", "message"), [(("--format", "moodle", "--roster", "{names}"), "needs a roster column"),
                                               (("--format", "canvas", "--roster", "/no/roster.csv"), "roster"),
                                               (("--format", "canvas", "--roster", "{bad}"), "'folder' column")])
def test_export_errors_are_one_line(klass, tmp_path, args, message):
    out, _ = klass
    (tmp_path / "names.csv").write_text("folder,name\nalice-repo,Alice A\n")  # no identifier Moodle can map
    (tmp_path / "bad.csv").write_text("student,email\nalice,alice@uni.edu\n")
    done = run_grader("export", str(out), *(a.format(names=tmp_path / "names.csv", bad=tmp_path / "bad.csv")
                                            for a in args))
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1
