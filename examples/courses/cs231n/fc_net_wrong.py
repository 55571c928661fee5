"""A cs231n FullyConnectedNet with the course's classic L2 slip: reg * sum ||W||^2 in the loss and
2 * reg * W in the gradient, where cs231n's loss is 0.5 * reg * sum ||W||^2 (so dW gains reg * W).

The loss and the gradient agree with each other, so a numerical gradient check of this very loss
passes; fnnjax checks against the course's loss and names the factor:

    fnnjax verify --backprop examples/courses/cs231n/fc_net_wrong.py
"""

import numpy as np
from layers import affine_backward, affine_forward, relu_backward, relu_forward, softmax_loss


class FullyConnectedNet:
    """{affine - relu} x (L - 1) - affine - softmax, regularised with reg * sum ||W||^2 (cs231n uses 0.5 * reg)."""

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
            loss += self.reg * np.sum(W * W)
            grads[f"W{l}"] += 2 * self.reg * W
        return loss, grads
