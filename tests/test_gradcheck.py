"""The finite-difference machinery the rubric's gradient checks share."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from bench.gradcheck_seeds import CHECKS, count_failures
from bench.local_box import LocalBox
from grader.rubric import gradcheck
from grader.rubric.feedback import CheckFailure, diagnose
from submission_corpus import BUGGY


def test_acceptance_rule_is_relative_and_absolute():
    assert not gradcheck.mismatch(np.array([1.0, 0.0]), np.array([1.0 + 9e-6, 9e-9])).any()
    assert gradcheck.mismatch(np.array([1.0, 0.0]), np.array([1.0 + 2e-5, 2e-8])).all()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_never_pass(bad):
    """A NaN loss made every comparison false, so NaN 'passed' (the bug this test pins down)."""
    assert gradcheck.mismatch(np.array([bad]), np.array([bad])).all()
    assert gradcheck.mismatch(np.array([1.0]), np.array([bad])).all()
    with pytest.raises(CheckFailure):
        gradcheck.expect_gradient(np.array([bad]), np.array([1.0]), "g")


def test_full_gradient_and_directional_derivative_of_a_quadratic():
    A = np.array([[2.0, 1.0], [1.0, 3.0]])

    def loss(p: np.ndarray) -> float:
        return float(p @ A @ p)

    point = np.array([0.5, -1.5])
    np.testing.assert_allclose(gradcheck.full_gradient(loss, point), 2 * A @ point, rtol=1e-9)
    u = np.array([0.6, 0.8])
    assert gradcheck.directional(loss, point, u) == pytest.approx(u @ (2 * A @ point), rel=1e-9)


def test_a_direction_that_crosses_a_relu_kink_is_detected():
    params = {"W1": np.array([[1.0]]), "b1": np.array([-1.0 + 1e-7]), "W2": np.array([[1.0]]), "b2": np.zeros(1)}

    def pre(p: dict) -> list[np.ndarray]:
        return [np.array([[1.0]]) @ p["W1"] + p["b1"]]

    assert gradcheck.crosses_kink(pre, params, "b1", np.array([1.0]))
    params["b1"] = np.array([0.5])
    assert not gradcheck.crosses_kink(pre, params, "b1", np.array([1.0]))


def test_gradient_checks_never_fail_a_correct_implementation_over_1000_seeds():
    failures = count_failures(range(1000))
    assert {name: found[:3] for name, found in failures.items() if found} == {}


@pytest.mark.parametrize("bug, check", [("gradient_missing_1_over_n", "cross_entropy"),
                                        ("extra_p_times_one_minus_p", "cross_entropy"),
                                        ("bias_gradient_is_mean", "linear_backward"),
                                        ("dW_transposed", "linear_backward"),
                                        ("relu_mask_inverted", "relu_backward"),
                                        ("gradient_sign_flipped", "MLP"),
                                        ("forward_without_relu", "MLP")])
def test_gradient_checks_catch_each_bug_on_every_seed(bug, check, tmp_path):
    spec = importlib.util.spec_from_file_location(f"buggy_{bug}", BUGGY[bug].write(tmp_path) / "mlp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    box = LocalBox(module)
    caught = 0
    for seed in range(50):
        try:
            CHECKS[check](box=box, rng=np.random.default_rng(seed))
        except CheckFailure:
            caught += 1
    assert caught == 50


def test_diagnose_explains_a_non_square_mismatch_instead_of_raising():
    """A transposed-square test ran allclose on mismatched shapes and raised (the bug this pins down)."""
    expected = np.arange(30.0).reshape(6, 5)
    assert diagnose(expected * 6, expected, batch=6) .startswith("the result is exactly N = 6")
    assert diagnose(expected + 1, expected) == ""
