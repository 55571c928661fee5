"""cs231n's function form: ``fc_net_loss(params, X, y, reg) -> (loss, grads)`` for any depth.

``params["W1"]: (D, H1)``, ``params["b1"]: (H1,)``, ..., ``params["WL"]: (H_(L-1), C)``; ReLU hidden
layers, the softmax loss averaged over the N rows of X, plus 0.5 * reg * sum ||W||^2:

    fnnjax verify --backprop examples/courses/cs231n/fc_loss.py
"""

import numpy as np
from layers import affine_backward, affine_forward, relu_backward, relu_forward, softmax_loss


def fc_net_loss(params, X, y, reg):
    """The loss and the gradient of every parameter, by backpropagation through the layers."""
    L = len(params) // 2
    caches = []
    out = X
    for l in range(1, L):
        out, affine_cache = affine_forward(out, params[f"W{l}"], params[f"b{l}"])
        out, relu_cache = relu_forward(out)
        caches.append((affine_cache, relu_cache))
    scores, last_cache = affine_forward(out, params[f"W{L}"], params[f"b{L}"])
    loss, dout = softmax_loss(scores, y)
    grads = {}
    dout, grads[f"W{L}"], grads[f"b{L}"] = affine_backward(dout, last_cache)
    for l in range(L - 1, 0, -1):
        affine_cache, relu_cache = caches[l - 1]
        dout = relu_backward(dout, relu_cache)
        dout, grads[f"W{l}"], grads[f"b{l}"] = affine_backward(dout, affine_cache)
    for l in range(1, L + 1):
        loss += 0.5 * reg * np.sum(params[f"W{l}"] ** 2)
        grads[f"W{l}"] += reg * params[f"W{l}"]
    return loss, grads
