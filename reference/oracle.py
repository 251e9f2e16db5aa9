"""The PyTorch twin of the reference MLP: loss and gradients by autograd, the ground truth.

Weights come in and go out in the contract's NumPy layout (``Wk`` is ``(fan_in, fan_out)``,
``bk`` is ``(fan_out,)``), so the same numbers can be fed to the reference, to the oracle and
to a student's model. Instructor side only: students' grading never imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch

torch.set_default_dtype(torch.float64)


def batch_order(n: int, epochs: int, batch_size: int, seed: int) -> Iterator[list[np.ndarray]]:
    """The contract's mini-batches: one generator for the run, a fresh permutation per epoch.

    Yields, per epoch, the list of index arrays ``(<= batch_size,)`` in the order they are used.
    """
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(n)
        yield [order[start:start + batch_size] for start in range(0, n, batch_size)]


class OracleMLP:
    """Hidden layers linear + ReLU, output linear; parameters are float64 leaf tensors."""

    def __init__(self, params: dict[str, np.ndarray]) -> None:
        self.layers = sum(1 for key in params if key.startswith("W"))
        self.tensors = {key: torch.tensor(np.asarray(value, dtype=np.float64), requires_grad=True)
                        for key, value in params.items()}

    def logits(self, X: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Logits ``(N, C)`` for inputs ``X (N, D)``."""
        a = torch.as_tensor(X, dtype=torch.float64)
        for k in range(1, self.layers + 1):
            a = a @ self.tensors[f"W{k}"] + self.tensors[f"b{k}"]
            if k < self.layers:
                a = torch.relu(a)
        return a

    def loss_and_grads(self, X: np.ndarray, y: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        """Mean cross-entropy of ``(X (N, D), y (N,))`` and its gradient for every parameter."""
        for tensor in self.tensors.values():
            tensor.grad = None
        loss = torch.nn.functional.cross_entropy(self.logits(X), torch.as_tensor(y, dtype=torch.int64))
        loss.backward()
        return float(loss.detach()), {key: tensor.grad.numpy().copy() for key, tensor in self.tensors.items()}

    def params(self) -> dict[str, np.ndarray]:
        """The current weights, as NumPy copies in the contract's layout."""
        return {key: tensor.detach().numpy().copy() for key, tensor in self.tensors.items()}

    def train(self, X: np.ndarray, y: np.ndarray, epochs: Iterable[list[np.ndarray]], lr: float,
              on_epoch: Callable[[int, float], None] | None = None) -> list[float]:
        """Plain SGD over the given batches (``batch_order``); returns each epoch's per-sample mean loss."""
        X_all = torch.as_tensor(X, dtype=torch.float64)
        y_all = torch.as_tensor(y, dtype=torch.int64)
        history = []
        for epoch, batches in enumerate(epochs, start=1):
            total = 0.0
            for batch in batches:
                index = torch.as_tensor(batch)
                loss = torch.nn.functional.cross_entropy(self.logits(X_all[index]), y_all[index])
                for tensor in self.tensors.values():
                    tensor.grad = None
                loss.backward()
                with torch.no_grad():
                    for tensor in self.tensors.values():
                        tensor -= lr * tensor.grad
                total += float(loss.detach()) * len(batch)
            history.append(total / len(X))
            if on_epoch is not None:
                on_epoch(epoch, history[-1])
        return history


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax ``(N, C)`` by torch."""
    return torch.softmax(torch.as_tensor(logits, dtype=torch.float64), dim=1).numpy()


def cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy and its gradient ``(N, C)`` with respect to the logits, by autograd."""
    z = torch.tensor(np.asarray(logits, dtype=np.float64), requires_grad=True)
    loss = torch.nn.functional.cross_entropy(z, torch.as_tensor(y, dtype=torch.int64))
    loss.backward()
    return float(loss.detach()), z.grad.numpy().copy()


def layer_gradients(function: Callable[..., torch.Tensor], dout: np.ndarray, *inputs: np.ndarray) -> list[np.ndarray]:
    """Gradients of ``sum(dout * function(*inputs))`` for each input, by autograd (a layer's backward)."""
    tensors = [torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=True) for x in inputs]
    (torch.as_tensor(dout, dtype=torch.float64) * function(*tensors)).sum().backward()
    return [t.grad.numpy().copy() for t in tensors]
