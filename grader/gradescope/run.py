"""What Gradescope's ``run_autograder`` runs: grade ``ROOT/submission`` into ``ROOT/results``.

``python -m grader.gradescope.run ROOT [GRADE OPTIONS]``. Gradescope shows the student whatever
``results.json`` says, so one is always left: when the grade cannot run (no ``mlp.py``, say),
it holds no score and the grader's one-line reason. The grade writes results.json after every
check, so even a grade Gradescope kills at its limit shows what was graded.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from grader.report.results_json import failure_reason, write_failure


def main(argv: list[str] | None = None) -> int:
    root, *options = sys.argv[1:] if argv is None else argv
    results = Path(root) / "results"
    results.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "grader", "grade", str(Path(root) / "submission"), "--out",
                           str(results), *options],
                          stderr=subprocess.PIPE, text=True, errors="replace", check=False)
    sys.stderr.write(done.stderr)
    if not (results / "results.json").exists():
        write_failure(results / "results.json", failure_reason(done.stderr, done.returncode))
    return 0


if __name__ == "__main__":
    sys.exit(main())
