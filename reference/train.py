"""Train the reference MLP on real MNIST and report test accuracy after every epoch.

    python -m reference.train [--epochs N] [--seed S] [--lr LR] [--batch-size B] [--mnist-dir DIR]

Prints one line per epoch (epoch, mean training loss, test accuracy, seconds of training)
and, as its last line, ``test_accuracy=0.XXXX``. The same seed gives the same numbers.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from grader.contract import BATCH_SIZE, EPOCHS, LR, SEED, SIZES
from grader.data import DataError, load_mnist
from reference.mlp import MLP, train


def accuracy(model: MLP, X: np.ndarray, y: np.ndarray) -> float:
    """Fraction of rows of ``X (N, 784)`` that ``model`` labels as ``y (N,)``."""
    return float(np.mean(model.predict(X) == y))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reference.train", description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--lr", type=float, default=LR)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--mnist-dir", help="folder with the four MNIST IDX files (default: the provisioned cache)")
    args = parser.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or args.lr <= 0:
        parser.error("--epochs and --batch-size must be positive integers and --lr a positive number")
    try:
        data = load_mnist(args.mnist_dir)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    model = MLP(sizes=SIZES, seed=args.seed)
    started = time.perf_counter()
    print(f"{'epoch':>5}  {'train_loss':>10}  {'test_acc':>8}  {'seconds':>7}", flush=True)

    def report(epoch: int, mean_loss: float) -> None:
        nonlocal started
        seconds = time.perf_counter() - started
        print(f"{epoch:>5}  {mean_loss:>10.4f}  {accuracy(model, data.x_test, data.y_test):>8.4f}  {seconds:>7.2f}",
              flush=True)
        started = time.perf_counter()  # evaluation is not training time

    train(model, data.x_train, data.y_train, epochs=args.epochs, batch_size=args.batch_size,
          lr=args.lr, seed=args.seed, on_epoch=report)
    print(f"test_accuracy={accuracy(model, data.x_test, data.y_test):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
