"""``python -m bench.similarity [--submissions 200]``: similarity screening's speed on a class of that size.

The class mixes the reference and an independent solution, each copy with some of its names
changed, so the pairs are realistic work for the fingerprint comparison (not identical files);
every other submission is a notebook, read the way grading reads it.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
import time
from pathlib import Path

from grader.assign.template import as_notebook, make_template
from grader.similarity import class_codes, compare

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("logits", "params", "grads", "dout", "model", "batch", "probs", "history", "rng", "loss", "order")


def synthetic_class(count: int, seed: int = 0) -> dict[str, str]:
    """``count`` submissions: the two solutions in turn, each with a random half of NAMES renamed."""
    reference = (ROOT / "reference" / "mlp.py").read_text()
    independent = (ROOT / "tests" / "independent_solution.py").read_text()
    rng = random.Random(seed)
    codes = {}
    for i in range(count):
        base = (reference, independent)[i % 2]
        picked = rng.sample(NAMES, len(NAMES) // 2)
        codes[f"student{i:03d}"] = re.sub(r"\b(" + "|".join(picked) + r")\b", lambda m, i=i: f"{m.group(1)}_{i}", base)
    return codes


def similarity_rows(count: int) -> list[tuple[str, str]]:
    """Reading a class from disk (every other submission a notebook) and comparing every pair."""
    template = make_template((ROOT / "reference" / "mlp.py").read_text())
    with tempfile.TemporaryDirectory(prefix="bench-similarity-") as scratch:
        for number, (name, code) in enumerate(synthetic_class(count).items()):
            (Path(scratch) / name).mkdir()
            if number % 2:
                (Path(scratch) / name / "mlp.ipynb").write_text(as_notebook(code, f"# {name}"))
            else:
                (Path(scratch) / name / "mlp.py").write_text(code)
        started = time.perf_counter()
        codes = class_codes(Path(scratch))
        read = time.perf_counter() - started
        pairs = compare(codes, template)
        seconds = time.perf_counter() - started - read
    return [(f"read {count} submissions (half of them notebooks)", f"{read:.2f} s"),
            (f"similarity, {count} submissions ({len(pairs)} pairs)",
             f"{seconds:.1f} s, {len(pairs) / seconds:.0f} pairs per second")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.similarity", description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=200)
    args = parser.parse_args(argv)
    for name, value in similarity_rows(args.submissions):
        print(f"{name}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
