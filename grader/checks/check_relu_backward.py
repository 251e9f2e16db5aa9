"""relu_backward: dout where z > 0, else 0."""

import numpy as np
import pytest

from grader.rubric import gradcheck
from grader.rubric.feedback import expect_close, expect_float64, expect_unmodified

pytestmark = pytest.mark.component("relu_backward")


@pytest.mark.points(3)
def check_golden(box, golden):
    """relu_backward matches the oracle on fixed inputs"""
    dout, z = golden["relu.dout"], golden["relu.z"]
    out = expect_close(box.call("relu_backward", dout, z), golden["relu.dz"], "relu_backward(dout, z)",
                       kind="gradient",
                       alternatives=((np.where(z > 0, 1.0, 0.0), "it returns the mask (z > 0) without multiplying "
                                                                 "by dout"),
                                     (dout * np.maximum(z, 0), "it multiplies dout by relu(z), not by the mask z > 0"),
                                     (np.where(z < 0, dout, 0.0), "the mask is inverted: pass dout where z > 0")))
    expect_float64(out, "relu_backward(dout, z)")


@pytest.mark.points(2)
def check_finite_differences(box, rng):
    """relu_backward agrees with central finite differences (fresh random inputs away from the kink)"""
    z = rng.normal(size=(4, 5))
    z[np.abs(z) < 1e-3] = 0.5  # a kink within h would make the numerical derivative meaningless
    dout = rng.normal(size=(4, 5))
    numeric = gradcheck.full_gradient(lambda p: float(np.sum(dout * np.maximum(p, 0))), z)
    gradcheck.expect_gradient(box.call("relu_backward", dout, z), numeric, "relu_backward(dout, z)")


@pytest.mark.points(1)
def check_inputs_unchanged(box, rng):
    """relu_backward does not modify its inputs"""
    args = [rng.normal(size=(6, 5)), rng.normal(size=(6, 5))]
    _, after = box.call("relu_backward", *args, return_args=True)
    expect_unmodified(args, after, ["dout", "z"], "relu_backward")
