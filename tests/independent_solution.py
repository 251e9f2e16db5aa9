"""A two-layer-object MLP written from scratch, independently of the reference's structure."""
import numpy as np


def he_init(fan_in, fan_out, rng):
    scale = np.sqrt(2.0 / fan_in)
    return scale * rng.standard_normal(size=(fan_in, fan_out))


def linear_forward(x, W, b):
    out = np.dot(x, W)
    return out + b[None, :]


def linear_backward(dout, x, W):
    grad_input = np.dot(dout, W.T)
    grad_weight = np.dot(x.T, dout)
    grad_bias = np.sum(dout, axis=0)
    return grad_input, grad_weight, grad_bias


def relu_forward(z):
    return np.maximum(z, 0.0)


def relu_backward(dout, z):
    mask = (z > 0).astype(dout.dtype)
    return dout * mask


def softmax(logits):
    peak = logits.max(axis=1, keepdims=True)
    e = np.exp(logits - peak)
    return e / e.sum(axis=1, keepdims=True)


def cross_entropy(logits, y):
    count = logits.shape[0]
    peak = logits.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(logits - peak).sum(axis=1, keepdims=True)) + peak
    log_probs = logits - log_norm
    loss = -log_probs[np.arange(count), y].mean()
    grad = np.exp(log_probs)
    grad[np.arange(count), y] -= 1.0
    return float(loss), grad / count


def sgd_step(params, grads, lr):
    for name, value in grads.items():
        params[name] -= lr * value


class Dense:
    """One affine layer whose weights live in the model's params dict."""

    def __init__(self, params, index, relu):
        self.params, self.index, self.relu = params, index, relu
        self.inp = self.pre = None

    def forward(self, a):
        self.inp = a
        self.pre = linear_forward(a, self.params[f"W{self.index}"], self.params[f"b{self.index}"])
        return relu_forward(self.pre) if self.relu else self.pre

    def backward(self, g, grads):
        if self.relu:
            g = relu_backward(g, self.pre)
        g_in, grads[f"W{self.index}"], grads[f"b{self.index}"] = linear_backward(g, self.inp,
                                                                              self.params[f"W{self.index}"])
        return g_in


class MLP:
    def __init__(self, sizes=(784, 128, 64, 10), seed=0):
        generator = np.random.default_rng(seed)
        self.params = {}
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
            self.params[f"W{i}"] = he_init(n_in, n_out, generator)
            self.params[f"b{i}"] = np.zeros(n_out)
        depth = len(sizes) - 1
        self.layers = [Dense(self.params, i, relu=i < depth) for i in range(1, depth + 1)]

    def forward(self, X):
        h = X
        for layer in self.layers:
            h = layer.forward(h)
        return h

    def backward(self, dlogits):
        grads, g = {}, dlogits
        for layer in reversed(self.layers):
            g = layer.backward(g, grads)
        return grads

    def loss_and_grads(self, X, y):
        loss, dlogits = cross_entropy(self.forward(X), y)
        return loss, self.backward(dlogits)

    def predict(self, X):
        return np.argmax(self.forward(X), axis=1)


def train(model, X, y, epochs=20, batch_size=64, lr=0.1, seed=0, on_epoch=None):
    shuffler = np.random.default_rng(seed)
    losses = []
    for epoch in range(epochs):
        perm = shuffler.permutation(len(X))
        batch_losses = []
        for lo in range(0, len(X), batch_size):
            idx = perm[lo:lo + batch_size]
            loss, grads = model.loss_and_grads(X[idx], y[idx])
            sgd_step(model.params, grads, lr)
            batch_losses.append(loss)
        losses.append(float(np.mean(batch_losses)))
        if on_epoch is not None:
            on_epoch(epoch, losses[-1])
    return losses
