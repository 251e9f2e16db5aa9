"""JUnit XML for CI systems that read it (GitLab, Jenkins, Azure): one testcase per check.

The suite is named after the submission, each testcase's classname is its contract component,
and a check that lost points (or failed) is a ``<failure>`` whose message is its first feedback line. Student
text goes through ElementTree (which escapes markup) after dropping the characters XML 1.0 cannot
hold at all (NUL, most C0 controls, lone surrogates), so a submission that prints binary garbage
still yields a file every JUnit reader parses.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from grader.record import CheckResult, GradeRecord
from grader.report.results_json import write_atomically
from grader.text import clean_text

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: str) -> str:
    """``text`` without terminal control sequences, and every other character XML 1.0 forbids as U+FFFD."""
    return _NOT_XML.sub("\ufffd", clean_text(text))


def _lost_points(result: CheckResult) -> bool:
    # A check can pass with partial credit (accuracy between the thresholds): CI should see that too.
    return result.status != "passed" or result.score < result.max_score


def junit_document(grade: GradeRecord, suite: str) -> str:
    """The JUnit XML of a grade, as text; ``suite`` names the submission."""
    failed = [r for r in grade.results if _lost_points(r)]
    root = ET.Element("testsuites")
    testsuite = ET.SubElement(root, "testsuite", name=xml_text(suite), tests=str(len(grade.results)),
                              failures=str(len(failed)), errors="0", skipped="0", time=f"{grade.seconds:.3f}")
    properties = ET.SubElement(testsuite, "properties")
    for name, value in (("score", f"{grade.score:g}"), ("max_score", f"{grade.max_score:g}"),
                        ("calibration_id", grade.calibration_id)):
        ET.SubElement(properties, "property", name=name, value=value)
    for result in grade.results:
        case = ET.SubElement(testsuite, "testcase", classname=result.component, name=xml_text(result.name),
                             time=f"{result.seconds:.3f}")
        if _lost_points(result):
            first = result.output.strip().splitlines()[0] if result.output.strip() else "failed"
            failure = ET.SubElement(case, "failure", message=xml_text(first[:500]),
                                    type=f"lost {result.max_score - result.score:g} of {result.max_score:g} points")
            failure.text = xml_text(result.output)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(path: Path, grade: GradeRecord, suite: str) -> None:
    write_atomically(path, junit_document(grade, suite))
