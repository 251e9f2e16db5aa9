"""Similarity screening: copies survive renaming and reordering, independent work and the skeleton do not count."""

from __future__ import annotations

import ast
import csv
import os
import re

import pytest

from grader.assign.template import make_template
from grader.similarity import THRESHOLD, compare
from helpers import ROOT, run_grader

pytest.importorskip("copydetect", reason="the 'similarity' extra (the test environment installs it)")
REFERENCE = (ROOT / "reference" / "mlp.py").read_text()
TEMPLATE = make_template(REFERENCE)
INDEPENDENT = (ROOT / "tests" / "independent_solution.py").read_text()
RENAMES = {"logits": "scores", "params": "weights", "grads": "gradients", "dout": "upstream", "model": "net",
           "batch": "chunk", "shifted": "centred", "probs": "p", "cache": "memo", "linear_forward": "affine",
           "relu_backward": "relu_grad"}


def renamed(code: str) -> str:
    return re.sub(r"\b(" + "|".join(RENAMES) + r")\b", lambda m: RENAMES[m.group(1)], code)


def reordered(code: str) -> str:
    """The module's top-level definitions in reverse order (imports first, as Python needs them)."""
    lines, tree = code.splitlines(), ast.parse(code)
    chunks = ["\n".join(lines[node.lineno - 1:node.end_lineno]) for node in tree.body]
    imports = [c for c, n in zip(chunks, tree.body) if isinstance(n, (ast.Import, ast.ImportFrom))]
    return "\n\n\n".join(imports + [c for c, n in zip(chunks, tree.body)
                                    if not isinstance(n, (ast.Import, ast.ImportFrom))][::-1]) + "\n"


def score(a: str, b: str, template: str | None = TEMPLATE) -> float:
    (pair,) = compare({"a": a, "b": b}, template)
    return pair.score


def test_a_copy_renamed_and_reordered_is_caught():
    disguised = reordered(renamed(REFERENCE))
    assert disguised != REFERENCE and compile(disguised, "copy", "exec")
    assert score(REFERENCE, disguised) >= THRESHOLD


def test_independent_solutions_stay_below_the_threshold():
    assert score(REFERENCE, INDEPENDENT) < THRESHOLD


def test_the_untouched_skeleton_never_counts():
    assert score(TEMPLATE, TEMPLATE) == 0
    assert score(TEMPLATE, TEMPLATE, template=None) > THRESHOLD  # without subtracting it, it would


def test_the_command_writes_the_pairs_and_the_class_page_shows_them(tmp_path):
    klass = tmp_path / "class"
    for name, code in (("ann", REFERENCE), ("bob", reordered(renamed(REFERENCE))), ("cat", INDEPENDENT),
                       ("dan", TEMPLATE + "\n# <script>alert(1)</script>\n")):
        (klass / name).mkdir(parents=True)
        (klass / name / "mlp.py").write_text(code)
    done = run_grader("batch", str(klass), "--out", str(tmp_path / "out"), "--only", "softmax", "--similarity")
    assert done.returncode == 0, done.stderr
    with open(tmp_path / "out" / "similarity.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [(row["student_a"], row["student_b"]) for row in rows] == [("ann", "bob")]
    assert float(rows[0]["score"]) >= THRESHOLD and rows[0]["lines_a"] and rows[0]["lines_b"]
    page = (tmp_path / "out" / "index.html").read_text()
    assert "Similar submissions (advisory)" in page and "<mark>" in page and "<script>alert" not in page
    # Advisory: the grades are the grades.
    with open(tmp_path / "out" / "grades.csv", newline="") as stream:
        totals = {row["student"]: row["total"] for row in csv.DictReader(stream)}
    assert totals["ann"] == totals["bob"] == totals["cat"]


def test_a_screening_is_the_same_in_every_process(tmp_path):
    """copydetect's own k-gram hash is salted per process (PYTHONHASHSEED); the screening's is not."""
    for name, code in (("ann", REFERENCE), ("bob", reordered(renamed(REFERENCE))), ("cat", INDEPENDENT)):
        (tmp_path / "class" / name).mkdir(parents=True)
        (tmp_path / "class" / name / "mlp.py").write_text(code)
    outputs = []
    for salt in ("1", "2"):
        done = run_grader("similarity", str(tmp_path / "class"), "--out", str(tmp_path / salt), "--threshold", "0.01",
                          env={**os.environ, "PYTHONHASHSEED": salt})
        assert done.returncode == 0, done.stderr
        outputs.append((tmp_path / salt / "similarity.csv").read_text())
    assert outputs[0] == outputs[1] and outputs[0].count("\n") == 4


def test_similarity_errors_are_one_line(tmp_path):
    (tmp_path / "one").mkdir()
    done = run_grader("similarity", str(tmp_path), "--threshold", "2")
    assert done.returncode == 2 and "--threshold" in done.stderr and len(done.stderr.strip().splitlines()) == 1
