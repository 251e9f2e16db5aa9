"""Reports: student text stays data on every path, and the pages work in a real browser.

The browser test uses Debian's headless Chromium (``.ci/run`` installs the ``chromium`` package);
where it is not installed it is skipped with that reason.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from grader.contract import COMPONENTS
from grader.report.results_json import read_results
from helpers import REFERENCE_SOURCE, ROOT
from submission_corpus import BUGGY

pytestmark = pytest.mark.mnist
PWN = "document.body.dataset.pwned=1"
# A folder name that breaks out of attributes and opens tags (a name cannot hold "/").
HOSTILE_NAME = f"q\"'><svg onload={PWN}>"
HOSTILE_CODE = f'''
import sys
print("<script>{PWN}</script>" + "A" * 300_000)
print("\\" onmouseover=\\"{PWN}\\" x=\\"", file=sys.stderr)


def softmax(logits):
    raise ValueError("\\"><img src=x onerror={PWN}>\\x00\\x07\\x1b[31m\\ud800" + "B" * 100_000)
'''
CHROMIUM = shutil.which("chromium")


def grade(submission: Path, out: Path, *args: str) -> Path:
    done = subprocess.run([sys.executable, "-m", "grader", "grade", str(submission), "--out", str(out), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return out


@pytest.fixture(scope="session")
def class_folder(once) -> Path:
    """Graded submissions side by side: full marks, partial, crashed and hostile, plus index.html (made once for
    every worker whose tests read them)."""
    return once("reports-class", make_class)


def make_class(base: Path) -> None:
    sources = base / "sources"
    hostile = sources / HOSTILE_NAME
    hostile.mkdir(parents=True)
    (hostile / "mlp.py").write_text(REFERENCE_SOURCE + HOSTILE_CODE)
    crashed = sources / "crashed"
    crashed.mkdir()
    (crashed / "mlp.py").write_text("import os\nos._exit(1)\n")
    reports = base / "reports"
    grade(ROOT / "reference", reports / "full-marks", "--epochs", "2")
    grade(BUGGY["dW_transposed"].write(sources / "partial"), reports / "partial", "--epochs", "2",
          "--junitxml", str(base / "partial.xml"))
    grade(crashed, reports / "crashed", "--only", "softmax,MLP")
    grade(hostile, reports / HOSTILE_NAME, "--only", "softmax,linear_forward",
          "--summary-md", str(base / "student.md"), "--junitxml", str(base / "hostile.xml"))
    done = subprocess.run([sys.executable, "-m", "grader", "summary", str(reports), "--summary-md",
                           str(base / "class.md")], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr


def test_student_text_never_becomes_markup(class_folder):
    reports = class_folder / "reports"
    page = (reports / HOSTILE_NAME / "report.html").read_text()
    index = (reports / "index.html").read_text()
    for text in (page, index):
        assert "<svg onload" not in text and "<img src=x" not in text and f'onmouseover="{PWN}"' not in text
    assert "<script" not in page  # the student report has no script at all
    assert index.count("<script") == 1  # the class summary has one: its own table sorter
    assert "&lt;script&gt;" in page and "&lt;img src=x" in page
    assert len(page) < 200_000  # huge output and messages are cut to head and tail
    record = read_results(reports / HOSTILE_NAME / "results.json")
    assert any("<img src=x" in result.output for result in record.results)  # JSON keeps the text, as text


def test_markdown_summaries_escape_student_text(class_folder):
    for name in ("student.md", "class.md"):
        markdown = (class_folder / name).read_text()
        assert "<svg" not in markdown and "<img" not in markdown and "&lt;" in markdown
        assert all(line.count("|") - line.count("\\|") in (0, 3, 4) for line in markdown.splitlines())


def test_junit_xml_parses_and_names_the_lost_points(class_folder):
    partial = ET.parse(class_folder / "partial.xml").getroot()
    record = read_results(class_folder / "reports" / "partial" / "results.json")
    cases = partial.findall("./testsuite/testcase")
    assert len(cases) == len(record.results) and {c.get("classname") for c in cases} <= set(COMPONENTS)
    failed = {c.get("classname") for c in cases if c.find("failure") is not None}
    assert "linear_backward" in failed and "softmax" not in failed
    assert partial.find("./testsuite").get("failures") == str(len([c for c in cases if c.find("failure") is not None]))
    # Hostile output (markup, NUL, escape codes, a lone surrogate) still gives a file any reader parses.
    hostile = ET.parse(class_folder / "hostile.xml").getroot()
    messages = [f.text for f in hostile.iter("failure")]
    assert any("<img src=x" in text and "\ufffd" in text for text in messages)
    assert not hostile.findall(".//img")


@pytest.mark.parametrize(("minimum", "status"), [("0", 0), ("1", 1), ("101", 2)])
def test_min_score_fails_ci_below_the_minimum(tmp_path, minimum, status):
    (tmp_path / "crashed").mkdir()
    (tmp_path / "crashed" / "mlp.py").write_text("import os\nos._exit(1)\n")
    done = subprocess.run([sys.executable, "-m", "grader", "grade", str(tmp_path / "crashed"), "--out",
                           str(tmp_path / "out"), "--only", "softmax", "--min-score", minimum],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == status, done.stderr
    assert (tmp_path / "out" / "results.json").exists() == (status != 2)  # below the minimum, reports still written
    assert len(done.stderr.strip().splitlines()) == (0 if status == 0 else 1)


def test_summary_command_needs_graded_submissions(tmp_path):
    done = subprocess.run([sys.executable, "-m", "grader", "summary", str(tmp_path)], capture_output=True, text=True,
                          cwd=ROOT)
    assert done.returncode == 2 and "no <student>/results.json" in done.stderr


def chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--hide-scrollbars"]
    return subprocess.run([CHROMIUM, *flags, *args, page.as_uri()], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
@pytest.mark.parametrize("page", ["full-marks/report.html", "partial/report.html", "crashed/report.html",
                                  f"{HOSTILE_NAME}/report.html", "index.html"])
def test_pages_render_in_a_real_browser_without_errors_or_student_scripts(class_folder, page, tmp_path):
    path = class_folder / "reports" / page
    shot = class_folder / "screenshots" / (page.replace("/", "_").replace(HOSTILE_NAME, "hostile") + ".png")
    shot.parent.mkdir(exist_ok=True)
    taken = chromium(path, tmp_path / "a", "--window-size=1100,1400", f"--screenshot={shot}")
    assert shot.exists() and shot.stat().st_size > 10_000, taken.stderr[-2000:]
    dom = chromium(path, tmp_path / "b", "--dump-dom")
    assert "</html>" in dom.stdout
    assert 'data-pwned="1"' not in dom.stdout, "a script from the submission ran"
    console = [line for line in dom.stderr.splitlines() + taken.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
