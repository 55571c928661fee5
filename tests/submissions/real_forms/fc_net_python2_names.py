"""A cs231n-style fc_net_loss from a Python 2 year: it imports under Python 3 but calls xrange."""

import numpy as np


def fc_net_loss(params, X, y, reg):
    n_layers = len([k for k in params if k.startswith("W")])
    grads = {}
    for i in xrange(1, n_layers + 1):  # noqa: F821  (Python 2)
        grads["W" + str(i)] = np.zeros_like(params["W" + str(i)])
    return 0.0, grads
