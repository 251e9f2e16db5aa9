"""The student template is generated from the reference and never leaks a solution line."""

from __future__ import annotations

import importlib.util
import inspect
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from grader.assign.template import SolutionBlockError, make_template, solution_lines
from grader.contract import COMPONENTS
from helpers import ROOT

REFERENCE = ROOT / "reference" / "mlp.py"
TEMPLATE = ROOT / "student_template" / "mlp.py"


def load_module(path: Path):
    spec = importlib.util.spec_from_file_location(f"mod_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_template_is_what_the_generator_produces():
    expected = make_template(REFERENCE.read_text())
    assert TEMPLATE.read_text() == expected, "student_template/mlp.py is stale: run `python -m grader assign`"


def test_no_solution_line_appears_in_the_template():
    secret = solution_lines(REFERENCE.read_text())
    assert len(secret) > 30  # the reference really has solution blocks
    leaked = secret & {line.strip() for line in TEMPLATE.read_text().splitlines()}
    assert not leaked


def test_template_keeps_the_contract_and_raises_hints():
    template, reference = load_module(TEMPLATE), load_module(REFERENCE)
    for name in COMPONENTS:
        assert inspect.signature(getattr(template, name)) == inspect.signature(getattr(reference, name))
        assert getattr(template, name).__doc__ == getattr(reference, name).__doc__
    calls = {
        "he_init": lambda: template.he_init(3, 2, np.random.default_rng(0)),
        "linear_forward": lambda: template.linear_forward(np.ones((2, 3)), np.ones((3, 2)), np.ones(2)),
        "linear_backward": lambda: template.linear_backward(np.ones((2, 2)), np.ones((2, 3)), np.ones((3, 2))),
        "relu_forward": lambda: template.relu_forward(np.ones(3)),
        "relu_backward": lambda: template.relu_backward(np.ones(3), np.ones(3)),
        "softmax": lambda: template.softmax(np.ones((2, 3))),
        "cross_entropy": lambda: template.cross_entropy(np.ones((2, 3)), np.zeros(2, dtype=int)),
        "sgd_step": lambda: template.sgd_step({"W1": np.ones(2)}, {"W1": np.ones(2)}, 0.1),
        "MLP": lambda: template.MLP(),
        "train": lambda: template.train(None, np.ones((2, 784)), np.ones(2)),
    }
    assert set(calls) == set(COMPONENTS)
    for call in calls.values():
        with pytest.raises(NotImplementedError, match=r"\w+ \w+"):
            call()


@pytest.mark.parametrize("source, message", [
    ("# BEGIN SOLUTION: a\n# BEGIN SOLUTION: b\n# END SOLUTION\n", "line 2: BEGIN SOLUTION inside"),
    ("x = 1\n# END SOLUTION\n", "line 2: END SOLUTION without"),
    ("# BEGIN SOLUTION: a\nx = 1\n", "never closed"),
    ("    # BEGIN SOLUTION\n    x = 1\n    # END SOLUTION\n", "line 1: BEGIN SOLUTION needs a hint"),
])
def test_malformed_markers_are_refused(source, message):
    with pytest.raises(SolutionBlockError, match=re.escape(message)):
        make_template(source)


def test_block_becomes_an_indented_raise_with_the_hint():
    source = 'def f():\n    """Doc."""\n    # BEGIN SOLUTION: say "hi"\n    return 1\n    # END SOLUTION\n'
    assert make_template(source) == 'def f():\n    """Doc."""\n    raise NotImplementedError("say \\"hi\\"")\n'


def test_assign_command_writes_the_template(tmp_path):
    out = tmp_path / "kit" / "mlp.py"
    command = [sys.executable, "-m", "grader", "assign", "--reference", str(REFERENCE), "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and "written" in done.stdout
    assert out.read_text() == TEMPLATE.read_text()
    again = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert "already up to date" in again.stdout
