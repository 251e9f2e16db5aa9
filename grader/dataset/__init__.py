"""Data sets the grader and the reference train on: real MNIST, provisioned offline-first."""

from .mnist import MNIST, DataError, load_mnist, provision

__all__ = ["MNIST", "DataError", "load_mnist", "provision"]
