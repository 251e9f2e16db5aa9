"""Autograder for the "neural network from scratch" MLP assignment (see CONTRACT.md)."""

__version__ = "0.1.0"
