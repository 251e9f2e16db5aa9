"""sgd_step: every params[k] becomes params[k] - lr * grads[k]."""

import numpy as np
import pytest

from grader.rubric.feedback import CheckFailure, as_array, expect_close

pytestmark = pytest.mark.component("sgd_step")


def stepped(box, params: dict, grads: dict, lr: float) -> tuple[dict, dict]:
    _, after = box.call("sgd_step", params, grads, lr, return_args=True)
    new_params, new_grads = after[0], after[1]
    if not isinstance(new_params, dict) or set(new_params) != set(params):
        raise CheckFailure("sgd_step must keep the params dict's keys", str(sorted(params)),
                           str(sorted(new_params)) if isinstance(new_params, dict) else type(new_params).__name__)
    return new_params, new_grads


@pytest.mark.points(4)
def check_golden(box, golden):
    """sgd_step updates every parameter to p - lr * g, so the caller's dict sees it"""
    params = {"W1": golden["sgd.W"], "b1": golden["sgd.b"]}
    grads = {"W1": golden["sgd.dW"], "b1": golden["sgd.db"]}
    lr = float(golden["sgd.lr"])
    after, _ = stepped(box, params, grads, lr)
    for key, name in (("W1", "W"), ("b1", "b")):
        got = as_array(after[key], f"params['{key}'] after sgd_step")
        if got.shape == params[key].shape and np.array_equal(got, params[key]):
            raise CheckFailure(f"params['{key}'] after sgd_step", "p - lr * g", "unchanged",
                               "the update never reached the dict: `p = p - lr * g` in a loop rebinds a local name. "
                               "Write params[k] -= lr * grads[k] (or assign params[k] = ...)")
        expect_close(got, golden[f"sgd.{name}.after"], f"params['{key}'] after sgd_step(params, grads, lr={lr})",
                     alternatives=((params[key] + lr * grads[key], "the sign is flipped (gradient ascent)"),
                                   (params[key] - grads[key], "lr is not applied")))


@pytest.mark.points(1)
def check_grads_unchanged(box, rng):
    """sgd_step does not modify the gradients"""
    grads = {"W1": rng.normal(size=(3, 2)), "b1": rng.normal(size=2)}
    _, new_grads = stepped(box, {"W1": rng.normal(size=(3, 2)), "b1": rng.normal(size=2)}, grads, 0.1)
    for key in grads:
        if not (isinstance(new_grads, dict) and np.array_equal(new_grads.get(key), grads[key])):
            raise CheckFailure(f"sgd_step must not modify grads['{key}']", "unchanged", "changed",
                               "an in-place operation on the gradient (g *= lr)")


@pytest.mark.points(1)
def check_any_keys(box, rng):
    """sgd_step works for any number of layers (fresh random 3-layer parameters)"""
    params = {f"{p}{k}": rng.normal(size=(4, 3) if p == "W" else 3) for k in (1, 2, 3) for p in "Wb"}
    grads = {key: rng.normal(size=value.shape) for key, value in params.items()}
    after, _ = stepped(box, params, grads, 0.3)
    for key in params:
        expect_close(after[key], params[key] - 0.3 * grads[key], f"params['{key}'] after sgd_step")
