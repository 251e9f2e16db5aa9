"""Derive the student template from the reference solution (nbgrader's solution-block convention).

In ``reference/mlp.py`` the code a student must write sits between a line
``# BEGIN SOLUTION: <hint>`` and a line ``# END SOLUTION``. The template keeps everything
else (imports, signatures, docstrings) and replaces each block with
``raise NotImplementedError("<hint>")`` at the block's indentation.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import nbformat

from grader.errors import GraderError

_BEGIN = re.compile(r"^(?P<indent>\s*)# BEGIN SOLUTION(?::\s*(?P<hint>.*?))?\s*$")
_END = re.compile(r"^\s*# END SOLUTION\s*$")


class SolutionBlockError(GraderError):
    """The reference's solution markers are malformed; the message gives the line number."""


def split_blocks(source: str) -> list[tuple[str, list[str]]]:
    """Split ``source`` into segments: ``("code", lines)`` outside blocks, ``("solution", lines)`` inside.

    A solution segment's first line is its BEGIN marker and its last the END marker.
    """
    segments: list[tuple[str, list[str]]] = [("code", [])]
    for number, line in enumerate(source.splitlines(keepends=True), start=1):
        inside = segments[-1][0] == "solution"
        if _BEGIN.match(line):
            if inside:
                raise SolutionBlockError(f"line {number}: BEGIN SOLUTION inside another solution block")
            if not _BEGIN.match(line).group("hint"):
                raise SolutionBlockError(f"line {number}: BEGIN SOLUTION needs a hint: '# BEGIN SOLUTION: <hint>'")
            segments.append(("solution", [line]))
        elif _END.match(line):
            if not inside:
                raise SolutionBlockError(f"line {number}: END SOLUTION without a BEGIN SOLUTION")
            segments[-1][1].append(line)
            segments.append(("code", []))
        else:
            segments[-1][1].append(line)
    if segments[-1][0] == "solution":
        raise SolutionBlockError("the last BEGIN SOLUTION is never closed by END SOLUTION")
    return segments


def make_template(source: str) -> str:
    """The student template of a reference ``source``: each solution block becomes a hinted raise."""
    out = []
    for kind, lines in split_blocks(source):
        if kind == "code":
            out.extend(lines)
        else:
            begin = _BEGIN.match(lines[0])
            out.append(f"{begin.group('indent')}raise NotImplementedError({json.dumps(begin.group('hint'))})\n")
    return "".join(out)


def solution_lines(source: str) -> set[str]:
    """Stripped lines that only the solution blocks of ``source`` contain (the secret to keep out of kits)."""
    inside: set[str] = set()
    outside: set[str] = set()
    for kind, lines in split_blocks(source):
        body = lines[1:-1] if kind == "solution" else lines
        (inside if kind == "solution" else outside).update(line.strip() for line in body)
    return {line for line in inside - outside if line and not line.startswith("#")}


def write_template(reference: Path, template: Path) -> bool:
    """Regenerate ``template`` from ``reference``; return True when the file changed."""
    text = make_template(reference.read_text(encoding="utf-8"))
    if template.exists() and template.read_text(encoding="utf-8") == text:
        return False
    template.parent.mkdir(parents=True, exist_ok=True)
    template.write_text(text, encoding="utf-8")
    return True


def as_notebook(module_source: str, title: str) -> str:
    """``module_source`` as a notebook (nbformat 4 JSON): a title cell, then one code cell per top-level
    definition, with the comments and decorators above it; the module's preamble is the first code cell."""
    lines = module_source.splitlines()
    starts = []
    for node in ast.parse(module_source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
            while start > 0 and lines[start - 1].startswith("#"):
                start -= 1
            starts.append(start)
    bounds = [0, *starts, len(lines)]
    chunks = ["\n".join(lines[a:b]).strip("\n") for a, b in zip(bounds, bounds[1:]) if a < b]
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell(title),
                      *(nbformat.v4.new_code_cell(chunk) for chunk in chunks if chunk.strip())]
    return nbformat.writes(notebook)
