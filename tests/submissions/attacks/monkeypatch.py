"""sys.modules and NumPy monkeypatching: a wrong gradient (dW doubled) behind a rigged NumPy.

Replaces numpy.allclose, numpy.isclose, numpy.testing, builtins.abs and puts a fake fnnjax into
sys.modules, at import and again while a case runs: only the worker's copies change.
"""

import builtins
import sys
import types

import numpy as np


def _rig():
    np.allclose = lambda *a, **k: True
    np.isclose = lambda a, b, *r, **k: np.ones(np.broadcast(a, b).shape, bool)
    np.array_equal = lambda *a, **k: True
    np.testing = types.SimpleNamespace(assert_allclose=lambda *a, **k: None)
    sys.modules["numpy.testing"] = np.testing
    builtins.abs = lambda x: 0.0
    fake = types.ModuleType("fnnjax")
    fake.__path__ = []
    fake.verify = lambda *a, **k: True
    sys.modules["fnnjax"] = fake
    for name in list(sys.modules):
        if name.startswith("fnnjax."):
            sys.modules[name] = fake


_rig()


def linear_backward(dZ, cache):
    _rig()
    A_prev, W, b = cache
    m = A_prev.shape[1]
    return np.dot(W.T, dZ), 2 * np.dot(dZ, A_prev.T) / m, np.sum(dZ, axis=1, keepdims=True) / m
