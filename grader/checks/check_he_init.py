"""he_init: shape, He statistics, and drawing only from the given generator."""

import numpy as np
import pytest

from grader.rubric.feedback import CheckFailure, as_array, expect_float64, show
from grader.sandbox import Generator

pytestmark = pytest.mark.component("he_init")


@pytest.mark.points(2)
def check_shapes(box, rng):
    """he_init returns a (fan_in, fan_out) float64 array for non-square sizes"""
    for fan_in, fan_out in ((300, 200), (64, 10), (1, 5), (10, 784)):
        W = as_array(box.call("he_init", fan_in, fan_out, Generator(int(rng.integers(1 << 30)))),
                     f"he_init({fan_in}, {fan_out}, rng)")
        if W.shape != (fan_in, fan_out):
            raise CheckFailure(f"he_init({fan_in}, {fan_out}, rng) has the wrong shape", str((fan_in, fan_out)),
                               str(W.shape), "weights are (fan_in, fan_out): rows are inputs, columns outputs")
        expect_float64(W, f"he_init({fan_in}, {fan_out}, rng)")


def init_diagnosis(std: float, fan_in: int, fan_out: int) -> str:
    for candidate, name in ((np.sqrt(2 / fan_out), "the std uses fan_out; He scales by sqrt(2 / fan_in)"),
                            (1.0, "the weights are unscaled (std 1); multiply by sqrt(2 / fan_in)"),
                            (np.sqrt(1 / fan_in), "variance 1/fan_in is LeCun/Xavier; He uses 2/fan_in"),
                            (2 / fan_in, "the std is 2/fan_in: that is the variance; take its square root"),
                            (np.sqrt(2 / (fan_in + fan_out)), "that is Xavier/Glorot; He uses sqrt(2 / fan_in)")):
        if abs(std / candidate - 1) < 0.05:
            return name
    return ""


@pytest.mark.points(3)
def check_statistics(box, rng):
    """he_init draws with mean 0 and variance 2 / fan_in (normal or uniform)"""
    fan_in, fan_out = 500, 400
    W = as_array(box.call("he_init", fan_in, fan_out, Generator(int(rng.integers(1 << 30)))), "he_init(500, 400, rng)")
    if W.shape != (fan_in, fan_out) or not np.all(np.isfinite(W)):
        raise CheckFailure("he_init(500, 400, rng) must be a finite (500, 400) array", "(500, 400)", show(W))
    n = W.size
    variance = 2 / fan_in
    # Tolerances are 6 standard errors of the sample statistics (normal draws; uniform ones vary less).
    mean_tol = 6 * np.sqrt(variance / n)
    var_tol = 6 * np.sqrt(2 / (n - 1))
    # Spread first: a wrong scale also blows up the mean's tolerance, and its diagnosis is the useful one.
    if abs(W.var() / variance - 1) > var_tol:
        std = float(W.std())
        raise CheckFailure("the weights' variance must be 2 / fan_in", f"std {np.sqrt(variance):.5f}",
                           f"std {std:.5f}", init_diagnosis(std, fan_in, fan_out))
    if abs(W.mean()) > mean_tol:
        raise CheckFailure("the weights' mean must be 0", f"|mean| <= {mean_tol:.2e}", f"{W.mean():.4g}",
                           "the draws are shifted: use a zero-mean distribution")


@pytest.mark.points(2)
def check_uses_only_the_generator(box, rng):
    """the same generator state gives the same weights; different seeds give different ones"""
    seed = int(rng.integers(1 << 30))
    first = as_array(box.call("he_init", 30, 20, Generator(seed)), "he_init(30, 20, rng)")
    again = as_array(box.call("he_init", 30, 20, Generator(seed)), "he_init(30, 20, rng)")
    if first.shape != again.shape or not np.array_equal(first, again):
        raise CheckFailure("two generators with the same seed must give the same weights", "identical arrays",
                           "different arrays", "the draws come from np.random's global state (np.random.randn, "
                           "np.random.normal, ...) instead of the rng argument")
    other = as_array(box.call("he_init", 30, 20, Generator(seed + 1)), "he_init(30, 20, rng)")
    if np.array_equal(first, other):
        raise CheckFailure("different seeds must give different weights", "different arrays", "identical arrays",
                           "the function ignores rng (a fixed seed inside?)")
