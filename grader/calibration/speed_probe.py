"""Measure this machine: the matmuls of the MLP's own shapes at batch 64, in float64 (< 1 s).

Run as a script (``python -I speed_probe.py``) under the sandbox child's environment, so the
BLAS thread count is the child's; prints the best CPU time of several repetitions, in seconds.
CPU time, as the timed run's budget is: other load on the machine slows neither much. The time
budget scales the calibrated reference time by probe(now) / probe(calibration).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

REPEATS, BATCHES = 3, 100


def _measure() -> float:
    import numpy as np  # noqa: PLC0415  (the script runs standalone)

    rng = np.random.default_rng(0)
    shapes = [(784, 128), (128, 64), (64, 10)]
    weights = [rng.normal(size=shape) for shape in shapes]
    x = rng.random((64, 784))
    best = float("inf")
    for _ in range(REPEATS):
        started = time.process_time()
        for _ in range(BATCHES):
            a, inputs = x, []
            for W in weights:  # forward
                inputs.append(a)
                a = a @ W
            d = a
            for W, a_in in zip(reversed(weights), reversed(inputs)):  # backward: dW and dx
                _ = a_in.T @ d
                d = d @ W.T
        best = min(best, time.process_time() - started)
    return best


def probe_seconds(blas_threads: int = 1) -> float:
    """The probe's time on this machine, measured in a fresh process with ``blas_threads`` BLAS threads."""
    from grader.sandbox.session import child_env  # noqa: PLC0415  (this file also runs alone in a child: stdlib at top)

    with tempfile.TemporaryDirectory() as workdir:
        done = subprocess.run([sys.executable, "-I", os.path.abspath(__file__)], capture_output=True, text=True,
                              env=child_env(workdir, blas_threads), check=True, timeout=60)
    return float(done.stdout.strip())


if __name__ == "__main__":
    print(f"{_measure():.6f}")
