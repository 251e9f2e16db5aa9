"""Run the rubric's gradient checks on the reference (correct, float64) over many seeds; count failures.

    python -m bench.gradcheck_seeds [--seeds 1000]

Each seed draws fresh random inputs, networks and directions exactly as a grade does. A
correct implementation must never fail; the script prints the count and the time per seed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import numpy as np

from bench.local_box import LocalBox
from grader.checks import check_cross_entropy, check_linear_backward, check_mlp, check_relu_backward
from grader.rubric.feedback import CheckFailure
from reference import mlp

CHECKS: dict[str, Callable] = {
    "linear_backward": check_linear_backward.check_finite_differences,
    "relu_backward": check_relu_backward.check_finite_differences,
    "cross_entropy": check_cross_entropy.check_finite_differences,
    "MLP": check_mlp.check_finite_differences,
}


def count_failures(seeds: range) -> dict[str, list[tuple[int, str]]]:
    """For each gradient check, the seeds (and messages) at which the reference failed it."""
    box = LocalBox(mlp)
    failures: dict[str, list[tuple[int, str]]] = {name: [] for name in CHECKS}
    for seed in seeds:
        for name, check in CHECKS.items():
            try:
                check(box=box, rng=np.random.default_rng(seed))
            except CheckFailure as failure:
                failures[name].append((seed, str(failure).splitlines()[0]))
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gradcheck_seeds", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1000)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    failures = count_failures(range(args.seeds))
    seconds = time.perf_counter() - started
    print(f"{'gradient check':<18}{'seeds':>7}{'failures':>10}")
    for name, failed in failures.items():
        print(f"{name:<18}{args.seeds:>7}{len(failed):>10}")
        for seed, message in failed[:5]:
            print(f"    seed {seed}: {message}")
    total = sum(len(f) for f in failures.values())
    per_seed = seconds / args.seeds * 1e3
    print(f"{total} failures in {args.seeds} seeds x {len(CHECKS)} checks ({per_seed:.1f} ms per seed)")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
