"""linear_forward: the affine map x @ W + b."""

import numpy as np
import pytest

from grader.rubric.feedback import CheckFailure, as_array, expect_close, expect_float64, expect_unmodified

pytestmark = pytest.mark.component("linear_forward")


@pytest.mark.points(3)
def check_golden(box, golden):
    """linear_forward matches the oracle on fixed inputs"""
    x, W, b = golden["linear.x"], golden["linear.W"], golden["linear.b"]
    out = expect_close(box.call("linear_forward", x, W, b), golden["linear.out"], "linear_forward(x, W, b)",
                       alternatives=((x @ W, "the bias b is not added"), (x @ W.T + b, "W is transposed: use x @ W")))
    expect_float64(out, "linear_forward(x, W, b)")


@pytest.mark.points(2)
def check_shape_and_linearity(box, rng):
    """linear_forward gives (N, M) for non-square inputs and is affine in x (fresh random inputs)"""
    x, W, b = rng.normal(size=(7, 4)), rng.normal(size=(4, 3)), rng.normal(size=3)
    out = as_array(box.call("linear_forward", x, W, b), "linear_forward(x, W, b)")
    if out.shape != (7, 3):
        raise CheckFailure("linear_forward of x (7, 4), W (4, 3), b (3,) has the wrong shape", "(7, 3)",
                           str(out.shape))
    without_bias = as_array(box.call("linear_forward", x, W, np.zeros(3)), "linear_forward(x, W, 0)")
    doubled = as_array(box.call("linear_forward", 2 * x, W, np.zeros(3)), "linear_forward(2x, W, 0)")
    expect_close(out - without_bias, np.broadcast_to(b, (7, 3)), "linear_forward(x, W, b) - linear_forward(x, W, 0)")
    expect_close(doubled, 2 * without_bias, "linear_forward(2x, W, 0)")


@pytest.mark.points(1)
def check_inputs_unchanged(box, rng):
    """linear_forward does not modify its inputs"""
    args = [rng.normal(size=(5, 4)), rng.normal(size=(4, 3)), rng.normal(size=3)]
    _, after = box.call("linear_forward", *args, return_args=True)
    expect_unmodified(args, after, ["x", "W", "b"], "linear_forward")
