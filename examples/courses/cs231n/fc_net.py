"""cs231n's fully connected nets, the way a student completes them (assignment 2, ``fc_net.py``).

Check it (fnnjax builds the net in float64, writes its own values into ``model.params`` and calls
``model.loss(X, y)``; the returned loss is checked too):

    fnnjax verify --backprop examples/courses/cs231n/fc_net.py                  # FullyConnectedNet
    fnnjax verify --backprop examples/courses/cs231n/fc_net.py:TwoLayerNet
"""

import numpy as np
from layers import affine_backward, affine_forward, relu_backward, relu_forward, softmax_loss


class TwoLayerNet:
    """affine - relu - affine - softmax, with L2 regularisation 0.5 * reg * (||W1||^2 + ||W2||^2)."""

    def __init__(self, input_dim=3 * 32 * 32, hidden_dim=100, num_classes=10, weight_scale=1e-3, reg=0.0):
        self.params = {}
        self.reg = reg
        self.params["W1"] = weight_scale * np.random.randn(input_dim, hidden_dim)
        self.params["b1"] = np.zeros(hidden_dim)
        self.params["W2"] = weight_scale * np.random.randn(hidden_dim, num_classes)
        self.params["b2"] = np.zeros(num_classes)

    def loss(self, X, y=None):
        """The scores when y is None, else (loss, grads) with grads[k] = dloss/dparams[k]."""
        W1, b1, W2, b2 = self.params["W1"], self.params["b1"], self.params["W2"], self.params["b2"]
        h, cache1 = affine_forward(X, W1, b1)
        a, cache_relu = relu_forward(h)
        scores, cache2 = affine_forward(a, W2, b2)
        if y is None:
            return scores
        loss, dscores = softmax_loss(scores, y)
        loss += 0.5 * self.reg * (np.sum(W1 * W1) + np.sum(W2 * W2))
        grads = {}
        da, grads["W2"], grads["b2"] = affine_backward(dscores, cache2)
        dh = relu_backward(da, cache_relu)
        _, grads["W1"], grads["b1"] = affine_backward(dh, cache1)
        grads["W2"] += self.reg * W2
        grads["W1"] += self.reg * W1
        return loss, grads


class FullyConnectedNet:
    """{affine - relu} x (L - 1) - affine - softmax, with L2 regularisation 0.5 * reg * sum ||W||^2."""

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
        self.normalization = normalization
        self.use_dropout = dropout_keep_ratio != 1
        self.reg = reg
        self.num_layers = 1 + len(hidden_dims)
        self.dtype = dtype
        self.params = {}
        dims = [input_dim] + list(hidden_dims) + [num_classes]
        for l in range(1, self.num_layers + 1):
            self.params[f"W{l}"] = weight_scale * np.random.randn(dims[l - 1], dims[l])
            self.params[f"b{l}"] = np.zeros(dims[l])
        for k, v in self.params.items():
            self.params[k] = v.astype(dtype)

    def loss(self, X, y=None):
        """The scores when y is None, else (loss, grads) with grads[k] = dloss/dparams[k]."""
        X = X.astype(self.dtype)
        L = self.num_layers
        caches = []
        out = X
        for l in range(1, L):
            out, affine_cache = affine_forward(out, self.params[f"W{l}"], self.params[f"b{l}"])
            out, relu_cache = relu_forward(out)
            caches.append((affine_cache, relu_cache))
        scores, last_cache = affine_forward(out, self.params[f"W{L}"], self.params[f"b{L}"])
        if y is None:
            return scores
        loss, dout = softmax_loss(scores, y)
        grads = {}
        dout, grads[f"W{L}"], grads[f"b{L}"] = affine_backward(dout, last_cache)
        for l in range(L - 1, 0, -1):
            affine_cache, relu_cache = caches[l - 1]
            dout = relu_backward(dout, relu_cache)
            dout, grads[f"W{l}"], grads[f"b{l}"] = affine_backward(dout, affine_cache)
        for l in range(1, L + 1):
            W = self.params[f"W{l}"]
            loss += 0.5 * self.reg * np.sum(W * W)
            grads[f"W{l}"] += self.reg * W
        return loss, grads
