"""MLP: parameters, forward, backward, loss_and_grads and predict of the whole network."""

import numpy as np
import pytest

from grader.contract import SIZES
from grader.evaluation import pre_activations
from grader.rubric import gradcheck
from grader.rubric.feedback import CheckFailure, as_array, expect_close, expect_unmodified, show

pytestmark = pytest.mark.component("MLP")


def params_of(box, model) -> dict[str, np.ndarray]:
    params = box.getattr(model, "params")
    if not isinstance(params, dict):
        raise CheckFailure("model.params must be a dict", "dict", type(params).__name__)
    return params


def expect_layout(params: dict, sizes: tuple[int, ...]) -> None:
    expected = {f"W{k}": (sizes[k - 1], sizes[k]) for k in range(1, len(sizes))}
    expected |= {f"b{k}": (sizes[k],) for k in range(1, len(sizes))}
    got = {key: np.shape(value) for key, value in params.items()}
    if got != expected:
        raise CheckFailure(f"MLP(sizes={sizes}).params keys and shapes", str(expected), str(got),
                           "weights are (sizes[k-1], sizes[k]) and biases (sizes[k],), keyed W1, b1, ..., WL, bL")


def golden_model(box, golden):
    sizes = tuple(int(s) for s in golden["mlp.sizes"])
    model = box.call("MLP", sizes=sizes, seed=0)
    weights = {key.removeprefix("mlp.param."): value for key, value in golden.items() if key.startswith("mlp.param.")}
    box.write_params(model, weights)
    return model, weights


def loss_and_grads(box, model, X, y) -> tuple[float, dict]:
    value = box.method(model, "loss_and_grads", X, y)
    if not isinstance(value, (tuple, list)) or len(value) != 2 or not isinstance(value[1], dict):
        raise CheckFailure("loss_and_grads(X, y) must return (loss, grads)", "(float, dict)", show(value))
    loss = as_array(value[0], "the loss")
    if loss.size != 1:
        raise CheckFailure("the loss must be one number", "a float", show(loss))
    return float(loss.reshape(())), value[1]


@pytest.mark.points(2)
def check_default_layout(box):
    """MLP() has W1, b1, W2, b2, W3, b3 with the contract's shapes"""
    expect_layout(params_of(box, box.call("MLP")), SIZES)


@pytest.mark.points(2)
def check_any_depth(box):
    """MLP works for any depth: sizes (5, 4), (6, 5, 5, 4) and (10, 8, 6, 4, 3)"""
    for sizes in ((5, 4), (6, 5, 5, 4), (10, 8, 6, 4, 3)):
        model = box.call("MLP", sizes=sizes, seed=1)
        expect_layout(params_of(box, model), sizes)
        logits = as_array(box.method(model, "forward", np.ones((3, sizes[0]))), f"forward with sizes {sizes}")
        if logits.shape != (3, sizes[-1]):
            raise CheckFailure(f"forward of MLP(sizes={sizes}) on 3 samples", str((3, sizes[-1])), str(logits.shape))


@pytest.mark.points(1)
def check_zero_biases(box):
    """the biases start at zero"""
    for key, value in params_of(box, box.call("MLP", seed=3)).items():
        if key.startswith("b") and np.any(as_array(value, key) != 0):
            raise CheckFailure(f"{key} must start at zero", "zeros", show(value))


@pytest.mark.points(2)
def check_he_weights(box):
    """the model's weights follow He initialisation (std sqrt(2 / fan_in))"""
    params = params_of(box, box.call("MLP", seed=7))
    for k, fan_in in ((1, 784), (2, 128)):
        W = as_array(params[f"W{k}"], f"W{k}")
        expected = np.sqrt(2 / fan_in)
        spread_off = abs(W.std() / expected - 1) > 6 * np.sqrt(2 / (W.size - 1))
        if spread_off or abs(W.mean()) > 6 * expected / np.sqrt(W.size):
            raise CheckFailure(f"W{k} of MLP() must have mean 0 and std sqrt(2 / {fan_in})",
                               f"std {expected:.5f}", f"mean {W.mean():.4g}, std {W.std():.5f}",
                               "initialise every Wk with he_init(sizes[k-1], sizes[k], rng)")


@pytest.mark.points(1)
def check_seeded(box):
    """the same seed gives the same weights, a different seed different ones"""
    first, again, other = (params_of(box, box.call("MLP", seed=s))["W1"] for s in (11, 11, 12))
    if not np.array_equal(first, again):
        raise CheckFailure("MLP(seed=11) twice must give the same W1", "identical", "different",
                           "draw from np.random.default_rng(seed), not from np.random's global state")
    if np.array_equal(first, other):
        raise CheckFailure("MLP(seed=11) and MLP(seed=12) must differ", "different", "identical",
                           "the seed is ignored")


@pytest.mark.points(1)
def check_instances_share_nothing(box):
    """two models share no arrays"""
    first, second = box.call("MLP", sizes=(4, 3, 2), seed=0), box.call("MLP", sizes=(4, 3, 2), seed=0)
    before = params_of(box, second)
    box.write_params(first, {key: np.full(np.shape(value), 9.0) for key, value in before.items()})
    after = params_of(box, second)
    for key in before:
        if not np.array_equal(before[key], after[key]):
            raise CheckFailure("changing one model's weights must not change another's", "unchanged",
                               f"{key} changed", "params (or its arrays) are shared: a mutable default argument "
                               "or a class attribute; create them in __init__")


@pytest.mark.points(2)
def check_forward_golden(box, golden):
    """forward matches the oracle (fixed weights with non-zero biases and a square layer)"""
    model, _ = golden_model(box, golden)
    X = golden["mlp.X"]
    expect_close(box.method(model, "forward", X), golden["mlp.logits"], "forward(X)")


@pytest.mark.points(2)
def check_loss_and_grads_golden(box, golden):
    """loss_and_grads matches the oracle: the loss and every gradient"""
    model, weights = golden_model(box, golden)
    loss, grads = loss_and_grads(box, model, golden["mlp.X"], golden["mlp.y"])
    n = len(golden["mlp.X"])
    if not np.isclose(loss, float(golden["mlp.loss"]), rtol=1e-6):
        raise CheckFailure("the loss of loss_and_grads", f"{float(golden['mlp.loss']):.10g}", f"{loss:.10g}",
                           f"the loss is {n} times too large: a sum, not a mean" if np.isclose(
                               loss, n * float(golden["mlp.loss"]), rtol=1e-6) else "")
    if set(grads) != set(weights):
        raise CheckFailure("grads must have the same keys as params", str(sorted(weights)), str(sorted(grads)))
    for key in sorted(weights):
        expect_close(grads[key], golden[f"mlp.grad.{key}"], f"grads['{key}']", batch=n,
                     kind="bias_gradient" if key.startswith("b") else "gradient")


@pytest.mark.points(4)
def check_finite_differences(box, rng):
    """gradients agree with finite differences of its own loss (fresh random nets, random directions)"""
    for sizes in ((6, 5, 5, 4), (5, 7, 3)):
        model = box.call("MLP", sizes=sizes, seed=0)
        params = {f"W{k}": rng.normal(size=(sizes[k - 1], sizes[k])) * np.sqrt(2 / sizes[k - 1])
                  for k in range(1, len(sizes))}
        params |= {f"b{k}": rng.normal(scale=0.3, size=sizes[k]) for k in range(1, len(sizes))}
        X, y = rng.normal(size=(6, sizes[0])), rng.integers(0, sizes[-1], size=6)
        box.write_params(model, params)
        _, grads = loss_and_grads(box, model, X, y)

        def own_loss(key: str, value: np.ndarray, model=model, X=X, y=y) -> float:
            box.write_params(model, {key: value})
            return loss_and_grads(box, model, X, y)[0]

        for key in sorted(params):
            if key not in grads:
                raise CheckFailure(f"grads has no '{key}'", str(sorted(params)), str(sorted(grads)))
            analytic = as_array(grads[key], f"grads['{key}']")
            if analytic.shape != params[key].shape:
                raise CheckFailure(f"grads['{key}'] must have the parameter's shape", str(params[key].shape),
                                   str(analytic.shape), "the gradient is transposed" if
                                   analytic.shape == params[key].shape[::-1] else "")
            directions = [d for d in _directions(rng, params[key].shape)
                          if not gradcheck.crosses_kink(lambda p, X=X: pre_activations(p, X), params, key, d)]
            for direction in directions[:4]:
                numeric = gradcheck.directional(lambda p, key=key: own_loss(key, p), params[key], direction)
                projected = float(np.sum(analytic * direction))
                if gradcheck.mismatch(np.array(numeric), np.array(projected)):
                    box.write_params(model, {key: params[key]})
                    raise CheckFailure(f"grads['{key}'] of MLP(sizes={sizes}) along a random unit direction "
                                       "against finite differences of its own loss", f"{numeric:.10g}",
                                       f"{projected:.10g}", _ratio_diagnosis(numeric, projected, len(X)))
            box.write_params(model, {key: params[key]})


def _directions(rng: np.random.Generator, shape: tuple[int, ...]) -> list[np.ndarray]:
    """Random unit directions, then single coordinates (readable when they fail)."""
    directions = []
    for _ in range(6):
        u = rng.normal(size=shape)
        directions.append(u / np.linalg.norm(u))
    for _ in range(2):
        e = np.zeros(shape)
        e[tuple(rng.integers(0, n) for n in shape)] = 1.0
        directions.append(e)
    return directions


def _ratio_diagnosis(numeric: float, analytic: float, n: int) -> str:
    if numeric != 0 and np.isclose(analytic / numeric, n, rtol=1e-4):
        return f"the gradient is exactly N = {n} times too large: the 1/N of the batch mean is missing"
    if np.isclose(analytic, -numeric, rtol=1e-4):
        return "the sign is flipped (gradient ascent)"
    return ""


@pytest.mark.points(2)
def check_backward_uses_latest_forward(box, rng):
    """backward uses the most recent forward"""
    X1, X2, d = rng.normal(size=(4, 5)), rng.normal(size=(4, 5)), rng.normal(size=(4, 3))
    fresh = box.call("MLP", sizes=(5, 6, 3), seed=2)
    box.method(fresh, "forward", X2)
    expected = box.method(fresh, "backward", d)
    model = box.call("MLP", sizes=(5, 6, 3), seed=2)
    box.method(model, "forward", X1)
    box.method(model, "forward", X2)
    got = box.method(model, "backward", d)
    if not isinstance(got, dict) or not isinstance(expected, dict) or set(got) != set(expected):
        raise CheckFailure("backward must return a dict of gradients", "dict", type(got).__name__)
    for key in expected:
        expect_close(got[key], expected[key], f"backward's grads['{key}'] after forward(X1) then forward(X2)",
                     alternatives=())


@pytest.mark.points(1)
def check_predict(box, rng):
    """predict returns (N,) integer labels: the arg-max of forward"""
    model = box.call("MLP", sizes=(6, 5, 4), seed=4)
    X = rng.normal(size=(9, 6))
    logits = as_array(box.method(model, "forward", X), "forward(X)")
    labels = as_array(box.method(model, "predict", X), "predict(X)")
    if labels.shape != (9,) or labels.dtype.kind not in "iu":
        raise CheckFailure("predict(X) must return (N,) integer labels", "shape (9,), an integer dtype",
                           f"shape {labels.shape}, {labels.dtype}", "use argmax(axis=1) of the logits")
    expect_close(labels, logits.argmax(axis=1), "predict(X)")


@pytest.mark.points(1)
def check_inputs_unchanged(box, rng):
    """forward and loss_and_grads do not modify X or y"""
    model = box.call("MLP", sizes=(4, 3, 2), seed=0)
    X, y = rng.normal(size=(5, 4)), rng.integers(0, 2, size=5)
    _, after = box.method(model, "forward", X, return_args=True)
    expect_unmodified([X], after, ["X"], "forward")
    _, after = box.method(model, "loss_and_grads", X, y, return_args=True)
    expect_unmodified([X, y], after, ["X", "y"], "loss_and_grads")
