"""cs231n's layers, the way a student completes them (assignment 2, ``cs231n/layers.py``).

Row layout: a batch ``x: (N, D)``, weights ``w: (D, M)``, biases ``b: (M,)``, ``out = x w + b``.
"""

import numpy as np


def affine_forward(x, w, b):
    """out = x w + b for x of shape (N, d_1, ..., d_k), reshaped to (N, D)."""
    out = x.reshape(x.shape[0], -1) @ w + b
    cache = (x, w, b)
    return out, cache


def affine_backward(dout, cache):
    """dx, dw, db of out = x w + b, given dout = dL/dout of shape (N, M)."""
    x, w, b = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    db = np.sum(dout, axis=0)
    return dx, dw, db


def relu_forward(x):
    """out = max(0, x); the cache is x."""
    out = np.maximum(0, x)
    cache = x
    return out, cache


def relu_backward(dout, cache):
    """dx = dout where x > 0, else 0."""
    x = cache
    dx = dout * (x > 0)
    return dx


def softmax_loss(x, y):
    """The softmax loss averaged over the N rows of scores x, and its gradient dx."""
    shifted = x - np.max(x, axis=1, keepdims=True)
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    probs = np.exp(log_probs)
    N = x.shape[0]
    loss = -np.sum(log_probs[np.arange(N), y]) / N
    dx = probs.copy()
    dx[np.arange(N), y] -= 1
    dx /= N
    return loss, dx
