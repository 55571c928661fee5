"""A cs231n-style fc_net_loss written for the NumPy of its day: np.float, np.reshape(newshape=),
np.product (all removed since). Right in its mathematics."""

import numpy as np


def fc_net_loss(params, X, y, reg):
    n_layers = len([k for k in params if k.startswith("W")])
    N = X.shape[0]
    a = np.reshape(X, newshape=(N, np.product(X.shape[1:]))).astype(np.float)
    caches = []
    for i in range(1, n_layers + 1):
        z = a.dot(params[f"W{i}"]) + params[f"b{i}"]
        caches.append((a, z))
        a = np.maximum(z, 0) if i < n_layers else z
    shifted = a - a.max(axis=1, keepdims=True)
    p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(N), y]).mean()
    loss += 0.5 * reg * sum(np.sum(params[f"W{i}"] ** 2) for i in range(1, n_layers + 1))
    dz = p.copy()
    dz[np.arange(N), y] -= 1
    dz /= N
    grads = {}
    for i in range(n_layers, 0, -1):
        a_prev, z = caches[i - 1]
        if i < n_layers:
            dz = dz * (z > 0)
        grads[f"W{i}"] = a_prev.T.dot(dz) + reg * params[f"W{i}"]
        grads[f"b{i}"] = dz.sum(axis=0)
        dz = dz.dot(params[f"W{i}"].T)
    return loss, grads
