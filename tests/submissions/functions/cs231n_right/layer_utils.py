"""A completed cs231n ``layer_utils.py`` in a flat folder (``from layers import *``), written for
fnnjax's grader tests: only the sandwich layers are the student's work in this file."""

from layers import *  # noqa: F403


def affine_relu_forward(x, w, b):
    """An affine transform followed by a ReLU -> (out, cache)."""
    a, fc_cache = affine_forward(x, w, b)  # noqa: F405
    out, relu_cache = relu_forward(a)  # noqa: F405
    cache = (fc_cache, relu_cache)
    return out, cache


def affine_relu_backward(dout, cache):
    """Backward pass of the affine-relu convenience layer -> (dx, dw, db)."""
    fc_cache, relu_cache = cache
    da = relu_backward(dout, relu_cache)  # noqa: F405
    dx, dw, db = affine_backward(da, fc_cache)  # noqa: F405
    return dx, dw, db
