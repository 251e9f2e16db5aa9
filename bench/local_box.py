"""An in-process stand-in for the sandbox, for benchmarks on trusted code (the reference) only.

It offers the Sandbox's call interface and copies arguments the way the wire does, so the
rubric's own check functions can run thousands of times without a child process.
"""

from __future__ import annotations

import copy
from types import ModuleType

import numpy as np

from grader.sandbox import Generator


def _arrive(value: object) -> object:
    """What the child would receive: copies, with Generators built from their seeds."""
    if isinstance(value, Generator):
        return np.random.default_rng(value.seed)
    if isinstance(value, (list, tuple)):
        return type(value)(_arrive(v) for v in value)
    if isinstance(value, dict):
        return {k: _arrive(v) for k, v in value.items()}
    return copy.deepcopy(value)


class LocalBox:
    """``call``, ``method``, ``getattr`` and ``write_params`` on a module loaded in this process."""

    def __init__(self, module: ModuleType) -> None:
        self.module = module

    def call(self, name: str, *args: object, return_args: bool = False, timeout: float | None = None,
             **kwargs: object) -> object:
        args, kwargs = _arrive(list(args)), _arrive(kwargs)
        result = getattr(self.module, name)(*args, **kwargs)
        return (result, args) if return_args else result

    def method(self, handle: object, name: str, *args: object, return_args: bool = False,
               timeout: float | None = None, **kwargs: object) -> object:
        args, kwargs = _arrive(list(args)), _arrive(kwargs)
        result = getattr(handle, name)(*args, **kwargs)
        return (result, args) if return_args else result

    def getattr(self, handle: object, name: str) -> object:
        return copy.deepcopy(getattr(handle, name))

    def write_params(self, handle: object, values: dict[str, np.ndarray]) -> None:
        for key, value in values.items():
            handle.params[key][...] = value
