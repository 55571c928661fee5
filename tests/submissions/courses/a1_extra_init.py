"""cs231n assignment 1's TwoLayerNet with a constructor parameter of the student's own (required, so
the grader cannot fill it): right otherwise, L2 term reg * sum W^2 (2017 on)."""

import numpy as np


class TwoLayerNet:
    def __init__(self, input_size, hidden_size, output_size, init_mode, std=1e-4):
        scale = std if init_mode == "gaussian" else np.sqrt(2.0 / input_size)
        self.params = {
            "W1": scale * np.random.randn(input_size, hidden_size),
            "b1": np.zeros(hidden_size),
            "W2": scale * np.random.randn(hidden_size, output_size),
            "b2": np.zeros(output_size),
        }

    def loss(self, X, y=None, reg=0.0):
        W1, b1, W2, b2 = (self.params[k] for k in ("W1", "b1", "W2", "b2"))
        N = X.shape[0]
        z1 = X @ W1 + b1
        h = np.maximum(0, z1)
        scores = h @ W2 + b2
        if y is None:
            return scores
        scores = scores - scores.max(axis=1, keepdims=True)
        probs = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
        loss = -np.log(probs[np.arange(N), y]).mean() + reg * (np.sum(W1**2) + np.sum(W2**2))
        dscores = probs
        dscores[np.arange(N), y] -= 1
        dscores /= N
        dh = (dscores @ W2.T) * (z1 > 0)
        grads = {
            "W1": X.T @ dh + 2 * reg * W1,
            "b1": dh.sum(axis=0),
            "W2": h.T @ dscores + 2 * reg * W2,
            "b2": dscores.sum(axis=0),
        }
        return loss, grads
