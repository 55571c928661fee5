"""The course grader: a hand-written backprop, run in its own process and judged in its course's terms.

:func:`check_user_backprop` checks a backward pass written by hand — your own in fnnjax's
conventions, or a course submission (cs231n, deeplearning.ai, Nielsen) — in a worker process with a
time limit per case, against ``jax.grad`` of the convention's loss and central differences, and
names what is wrong with the course's own arrays (``dW2``, ``grads["b1"]``, ``nabla_w[0]``).
:func:`gradescope_results` and :func:`write_results` write Gradescope's ``results.json``.

One module per concern: ``_user_backprop.py`` (the entry), ``_convention.py`` and one adapter per
course (``_convention_fnnjax.py``, ``_convention_cs231n.py``, ``_convention_deeplearning_ai.py``,
``_convention_nielsen.py``, listed in ``_conventions.py``), ``_detect.py`` (which convention a file
is written in), ``_grading.py`` and ``_diagnosis.py`` (the verdict), ``_isolation.py``,
``_worker.py``, ``_wire.py``, ``_submission.py`` and ``_calls.py`` (the submission's process),
``_gradescope.py`` and ``_backprop_report.py`` (the reports), ``_functions.py`` (per-function
credit: each course function the file defines, on its own cases). The worker imports only
``_worker.py``, ``_calls.py`` (with ``_function_calls.py``), ``_submission.py`` and ``_wire.py``,
relatively and without JAX.

Example:
  >>> from fnnjax.verify.grader import check_user_backprop
  >>> report = check_user_backprop("examples/student_backprop.py:my_backprop", progress=False)  # doctest: +SKIP
  >>> report.passed  # doctest: +SKIP
  True
"""

from ._convention_setup import parse_init
from ._conventions import CONVENTIONS
from ._gradescope import VISIBILITIES, failure_results, gradescope_results, write_results
from ._handin import HandInError, check_handin, is_handin
from ._sandbox import Sandbox, fresh_seed
from ._user_backprop import (
    DEFAULT_TIMEOUT,
    BackpropReport,
    CaseResult,
    SubmissionError,
    check_user_backprop,
    load_user_function,
)

__all__ = [
    "CONVENTIONS",
    "DEFAULT_TIMEOUT",
    "VISIBILITIES",
    "BackpropReport",
    "CaseResult",
    "HandInError",
    "Sandbox",
    "SubmissionError",
    "check_handin",
    "check_user_backprop",
    "failure_results",
    "fresh_seed",
    "gradescope_results",
    "is_handin",
    "load_user_function",
    "parse_init",
    "write_results",
]
