"""Stand-ins for the course helper modules a hand-in imports but does not include.

deeplearning.ai's course 1, week 4 notebook imports ``from dnn_utils import sigmoid, sigmoid_backward,
relu, relu_backward`` (``dnn_utils_v2`` in later versions): a file the course provides beside the
notebook, which students rarely hand in. When a submission imports one of them and none is beside it,
the worker uses the stand-in written here: the four functions as the course defines them (each
forward returns ``(A, cache)`` with ``cache = Z``; each backward takes ``(dA, cache)`` and returns
``dZ``), and notes it. A ``dnn_utils.py`` in the hand-in is always used instead.

Imports only the standard library (NumPy when a stand-in is made: the submission imports it anyway).
"""

from __future__ import annotations

import re
import types

__all__ = ["is_course_helper", "stand_in"]

_DNN_UTILS = """
import numpy as np


def sigmoid(Z):
    A = 1 / (1 + np.exp(-Z))
    return A, Z


def relu(Z):
    A = np.maximum(0, Z)
    return A, Z


def relu_backward(dA, cache):
    dZ = np.array(dA, copy=True)
    dZ[cache <= 0] = 0
    return dZ


def sigmoid_backward(dA, cache):
    s = 1 / (1 + np.exp(-cache))
    return dA * s * (1 - s)
"""

_NAMES = re.compile(r"^dnn_utils(_v\d+)?$")


def is_course_helper(name: str) -> bool:
    """Whether ``name`` (a top-level module) is a course helper with a stand-in here.

    Example:
      >>> from fnnjax.verify.grader._course_helpers import is_course_helper
      >>> is_course_helper("dnn_utils_v2"), is_course_helper("testCases")
      (True, False)
    """
    return bool(_NAMES.match(name))


def stand_in(name: str) -> types.ModuleType:
    """The stand-in module ``name`` (``sigmoid``, ``relu``, ``sigmoid_backward``, ``relu_backward``).

    Example:
      >>> import numpy as np
      >>> from fnnjax.verify.grader._course_helpers import stand_in
      >>> dnn_utils = stand_in("dnn_utils")
      >>> A, cache = dnn_utils.relu(np.array([[-1.0, 2.0]]))
      >>> dnn_utils.relu_backward(np.ones((1, 2)), cache)
      array([[0., 1.]])
    """
    if not is_course_helper(name):
        raise ValueError(f"no stand-in for {name!r}; the stand-ins are dnn_utils and dnn_utils_vN")
    module = types.ModuleType(name, "the grader's stand-in for the course's helper module")
    exec(compile(_DNN_UTILS, f"<{name} stand-in>", "exec"), module.__dict__)
    return module
