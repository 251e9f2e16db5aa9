"""End to end: the reference learns real MNIST, and its training command is reproducible."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

from helpers import ROOT
from reference.mlp import MLP, train

pytestmark = pytest.mark.mnist


@pytest.mark.slow
def test_reference_learns_real_mnist(mnist):
    model = MLP(seed=0)
    losses = train(model, mnist.x_train, mnist.y_train, epochs=3, seed=0)
    accuracy = float(np.mean(model.predict(mnist.x_test) == mnist.y_test))
    # A model that fails to learn sits near 0.10; a subtly broken one (no 1/N, no ReLU,
    # labels shuffled apart from images) stays well below this after 3 epochs.
    assert accuracy >= 0.965, accuracy
    assert losses[0] > losses[1] > losses[2]


def run_train(*args: str) -> list[str]:
    done = subprocess.run([sys.executable, "-m", "reference.train", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()


@pytest.mark.slow
def test_train_command_prints_epochs_and_is_reproducible(mnist):
    first = run_train("--epochs", "2", "--seed", "3", "--batch-size", "128", "--lr", "0.2")
    second = run_train("--epochs", "2", "--seed", "3", "--batch-size", "128", "--lr", "0.2")
    epoch_lines = [line.split() for line in first[1:-1]]
    assert [cols[0] for cols in epoch_lines] == ["1", "2"]
    assert re.fullmatch(r"test_accuracy=0\.\d{4}", first[-1]) and float(first[-1].split("=")[1]) > 0.9
    # Everything but the seconds column repeats exactly.
    assert [line.split()[:3] for line in first[1:-1]] == [line.split()[:3] for line in second[1:-1]]
    assert first[-1] == second[-1]


def test_train_command_refuses_bad_arguments():
    done = subprocess.run([sys.executable, "-m", "reference.train", "--epochs", "0"], capture_output=True,
                          text=True, cwd=ROOT)
    assert done.returncode == 2 and "--epochs" in done.stderr.splitlines()[-1]
