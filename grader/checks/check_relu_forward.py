"""relu_forward: max(z, 0) elementwise."""

import numpy as np
import pytest

from grader.rubric.feedback import expect_close, expect_float64, expect_unmodified

pytestmark = pytest.mark.component("relu_forward")


@pytest.mark.points(2)
def check_golden(box, golden):
    """relu_forward matches the oracle on fixed inputs"""
    z = golden["relu.z"]
    out = expect_close(box.call("relu_forward", z), golden["relu.out"], "relu_forward(z)",
                       alternatives=((np.minimum(z, 0), "that is min(z, 0): ReLU keeps the positive part"),
                                     ((z > 0).astype(float), "that is ReLU's derivative, not ReLU")))
    expect_float64(out, "relu_forward(z)")


@pytest.mark.points(1)
def check_property(box, rng):
    """relu_forward keeps positive entries and zeroes the rest (fresh random input, any shape)"""
    z = rng.normal(size=(3, 4, 5))
    expect_close(box.call("relu_forward", z), np.where(z > 0, z, 0.0), "relu_forward(z) for z of shape (3, 4, 5)")


@pytest.mark.points(1)
def check_input_unchanged(box, rng):
    """relu_forward does not modify its input"""
    z = rng.normal(size=(6, 5))
    _, after = box.call("relu_forward", z, return_args=True)
    expect_unmodified([z], after, ["z"], "relu_forward")
