"""The contract's vocabulary has one home, grader/contract.py: no other copy of it anywhere."""

from __future__ import annotations

import ast
import re

import pytest

from grader.contract import COMPONENTS, POINTS, TOTAL_POINTS
from grader.rubric.run import CHECKS_DIR
from helpers import ROOT

SOURCES = [path for folder in ("grader", "tests", "bench", "reference") for path in (ROOT / folder).rglob("*.py")]
TEXTS = [path for path in (ROOT / "grader").rglob("*") if path.suffix in (".j2", ".yml", ".sh", ".ini")]


def component_literals(source: str) -> list[int]:
    """Line numbers of list, tuple or set literals, or tables (dicts of constants), that spell most components.

    A few names picked for a purpose (the functions a probe calls) are a selection, not a copy; a
    dict whose values are code (a call per component) specifies behaviour, not the vocabulary.
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        items = getattr(node, "elts", None)
        if isinstance(node, ast.Dict) and all(isinstance(value, ast.Constant) for value in node.values):
            items = node.keys
        if isinstance(node, (ast.List, ast.Tuple, ast.Set, ast.Dict)) and items:
            names = {item.value for item in items if isinstance(item, ast.Constant) and item.value in COMPONENTS}
            if len(names) > len(COMPONENTS) // 2:
                found.append(node.lineno)
    return found


def test_the_detector_finds_a_copied_list():
    assert component_literals(f"NAMES = {list(COMPONENTS)!r}\n") == [1]
    assert component_literals(f"POINTS = {dict.fromkeys(COMPONENTS, 10)!r}\n") == [1]
    assert component_literals(f"PICKED = {COMPONENTS[:3]!r}\n") == []
    assert component_literals(f"CALLS = {{{', '.join(f'{c!r}: len' for c in COMPONENTS)}}}\n") == []


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_python_file_but_the_contract_lists_the_components(path):
    if path == ROOT / "grader" / "contract.py":
        assert component_literals(path.read_text()) != []
    else:
        assert component_literals(path.read_text()) == [], f"{path}: import COMPONENTS/POINTS from grader.contract"


def test_no_template_or_script_lists_the_components():
    spelled = re.compile(r"\b(" + "|".join(COMPONENTS) + r")\b\W+(" + "|".join(COMPONENTS) + r")\b\W+("
                         + "|".join(COMPONENTS) + r")\b")
    for path in TEXTS:
        assert not spelled.search(path.read_text()), path


def test_the_checks_points_add_up_to_the_contracts_table():
    """One check file per component; the rubric refuses to run when their points differ from POINTS."""
    assert sum(POINTS.values()) == TOTAL_POINTS == 100 and tuple(POINTS) == COMPONENTS
    assert {path.name for path in CHECKS_DIR.glob("check_*.py")} == {f"check_{c.lower()}.py" for c in COMPONENTS}


def test_the_readme_states_the_contracts_points():
    stated = dict(re.findall(r"`(\w+)` \| (\d+) \|", (ROOT / "README.md").read_text()))
    assert {name: float(points) for name, points in stated.items()} == POINTS
