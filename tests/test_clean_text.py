"""Text from a submission never drives a terminal or a spreadsheet: every output is cleaned."""

from __future__ import annotations

import csv
import json

import pytest

from grader.text import clean_text, csv_cell
from helpers import REFERENCE_SOURCE, grade, run_grader

# Clear screen, a window title (OSC), a carriage-return overwrite, a right-to-left override, a C1 CSI.
HOSTILE = "\x1b[2J\x1b]0;owned\x07fake\rreal \u202eevil\u202c \x9b31mred\x1b[0m \x1bc"
FORBIDDEN = ("\x1b", "\x07", "\r", "\u202e", "\u202c", "\x9b")


def assert_clean(text: str, where: str) -> None:
    found = [repr(char) for char in FORBIDDEN if char in text]
    assert not found, f"{where} keeps {found}"


def test_control_sequences_go_and_text_stays():
    assert clean_text(HOSTILE) == "fakereal evil red "
    assert clean_text("tab\there\nnew line, é, 中文, ∑") == "tab\there\nnew line, é, 中文, ∑"


@pytest.mark.parametrize("cell", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1"])
def test_formula_cells_are_quoted(cell):
    assert csv_cell(cell).startswith("'")


def test_plain_cells_are_left_alone():
    assert csv_cell("alice") == "alice" and csv_cell("raised ValueError: x") == "raised ValueError: x"


@pytest.mark.mnist
def test_no_output_carries_a_control_sequence(tmp_path):
    klass = tmp_path / "class"
    folder = klass / f"=cmd|' /C calc'!A0{HOSTILE[:6]}"
    folder.mkdir(parents=True)
    (folder / "mlp.py").write_text(REFERENCE_SOURCE + f"\nprint({HOSTILE!r})\n"
                                   f"def softmax(logits):\n    raise ValueError({HOSTILE!r})\n")
    out = tmp_path / "graded"
    done, record = grade(folder, out / folder.name, "--only", "softmax,relu_forward",
                         "--summary-md", str(tmp_path / "summary.md"), "--junitxml", str(tmp_path / "junit.xml"))
    assert record.component_points()["softmax"][0] == 0
    assert "ValueError" in done.stdout
    assert_clean(done.stdout, "the terminal summary")
    assert_clean((tmp_path / "summary.md").read_text(), "the Markdown summary")
    assert_clean((tmp_path / "junit.xml").read_text(), "the JUnit XML")
    assert_clean(json.dumps(json.loads((out / folder.name / "results.json").read_text()), ensure_ascii=False),
                 "results.json")
    assert_clean(record.stdout + record.stderr, "the captured output")

    batch = run_grader("batch", str(klass), "--out", str(out), "--only", "softmax,relu_forward", "--force")
    assert batch.returncode == 0, batch.stderr
    assert_clean(batch.stderr, "the batch progress")
    with open(out / "grades.csv", newline="", encoding="utf-8") as stream:
        (row,) = csv.DictReader(stream)
    assert row["student"].startswith("'=cmd")  # a spreadsheet shows it as text, never runs it
    assert_clean((out / "grades.csv").read_text(encoding="utf-8"), "grades.csv")
