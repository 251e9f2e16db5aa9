"""linear_backward: dx, dW, db of the affine layer."""

import numpy as np
import pytest

from grader.rubric import gradcheck
from grader.rubric.feedback import CheckFailure, as_array, expect_close, expect_float64, expect_unmodified

pytestmark = pytest.mark.component("linear_backward")


def three_arrays(value: object, call: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not isinstance(value, (tuple, list)) or len(value) != 3:
        raise CheckFailure(f"{call} must return three arrays (dx, dW, db)", "a tuple of 3 arrays",
                           f"{type(value).__name__}" + (f" of length {len(value)}" if isinstance(value, (tuple, list))
                                                        else ""))
    return tuple(as_array(v, f"{call}[{i}]") for i, v in enumerate(value))


@pytest.mark.points(4)
def check_golden(box, golden):
    """linear_backward matches the oracle on fixed inputs (square W, so a transpose cannot hide)"""
    dout, x, W = golden["linear.dout"], golden["linear.x"], golden["linear.W"]
    dx, dW, db = three_arrays(box.call("linear_backward", dout, x, W), "linear_backward(dout, x, W)")
    n = len(x)
    expect_close(dx, golden["linear.dx"], "dx", kind="gradient", alternatives=((dout @ W, "dx uses W, not W.T"),))
    expect_close(dW, golden["linear.dW"], "dW", batch=n, kind="gradient",
                 alternatives=((dout.T @ x, "dW is dout.T @ x, the transpose: use x.T @ dout"),))
    expect_close(db, golden["linear.db"], "db", batch=n, kind="bias_gradient")
    for name, value in (("dx", dx), ("dW", dW), ("db", db)):
        expect_float64(value, name)


@pytest.mark.points(4)
def check_finite_differences(box, rng):
    """linear_backward's dx, dW, db agree with central finite differences where N, D and M all differ"""
    # Distinct N, D, M: a value that is right only when W is square (or N equals D) cannot pass.
    n, d, m = (int(v) for v in rng.choice(np.arange(3, 10), size=3, replace=False))
    x, W, b, dout = rng.normal(size=(n, d)), rng.normal(size=(d, m)), rng.normal(size=m), rng.normal(size=(n, m))
    dx, dW, db = three_arrays(box.call("linear_backward", dout, x, W), "linear_backward(dout, x, W)")
    # The layer's loss is sum(dout * (x @ W + b)): its gradients are what backward must return.
    numeric = {
        "dx": gradcheck.full_gradient(lambda p: float(np.sum(dout * (p @ W + b))), x),
        "dW": gradcheck.full_gradient(lambda p: float(np.sum(dout * (x @ p + b))), W),
        "db": gradcheck.full_gradient(lambda p: float(np.sum(dout * (x @ W + p))), b),
    }
    for name, analytic in (("dx", dx), ("dW", dW), ("db", db)):
        kind = "bias_gradient" if name == "db" else "gradient"
        gradcheck.expect_gradient(analytic, numeric[name], name, batch=len(x), kind=kind)


@pytest.mark.points(1)
def check_shapes(box, rng):
    """linear_backward returns shapes (N, D), (D, M), (M,) for non-square inputs"""
    x, W, dout = rng.normal(size=(6, 4)), rng.normal(size=(4, 3)), rng.normal(size=(6, 3))
    dx, dW, db = three_arrays(box.call("linear_backward", dout, x, W), "linear_backward(dout, x, W)")
    got, expected = (dx.shape, dW.shape, db.shape), ((6, 4), (4, 3), (3,))
    if got != expected:
        raise CheckFailure("linear_backward's shapes for x (6, 4), W (4, 3)", str(expected), str(got),
                           "db must be summed over the batch axis (axis=0) to shape (M,)" if db.shape != (3,) else "")


@pytest.mark.points(1)
def check_inputs_unchanged(box, rng):
    """linear_backward does not modify its inputs"""
    args = [rng.normal(size=(5, 3)), rng.normal(size=(5, 4)), rng.normal(size=(4, 3))]
    _, after = box.call("linear_backward", *args, return_args=True)
    expect_unmodified(args, after, ["dout", "x", "W"], "linear_backward")
