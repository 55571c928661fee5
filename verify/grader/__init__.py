"""The course grader: a hand-written backprop, run in its own process and judged in its course's terms.

:func:`check_user_backprop` checks a backward pass written by hand — your own in fnnjax's
conventions, or a course submission (cs231n, deeplearning.ai, Nielsen) — in a worker process with a
time limit per case, against ``jax.grad`` of the convention's loss and central differences, and
names what is wrong with the course's own arrays (``dW2``, ``grads["b1"]``, ``nabla_w[0]``).
:func:`check_backprop` checks the function a student is writing, from the notebook it is written in.
:func:`gradescope_results` and :func:`write_results` write Gradescope's ``results.json``.

One module per concern: ``_user_backprop.py`` (the entry), ``_convention.py`` and one adapter per
course (``_convention_fnnjax.py``, ``_convention_cs231n.py``, ``_convention_deeplearning_ai.py``,
``_convention_nielsen.py``, listed in ``_conventions.py``), ``_detect.py`` (which convention a file
is written in), ``_grading.py`` and ``_diagnosis.py`` (the verdict), ``_isolation.py``,
``_worker.py``, ``_wire.py``, ``_submission.py`` and ``_calls.py`` (the submission's process),
``_gradescope.py`` and ``_backprop_report.py`` (the reports), ``_functions.py`` (per-function
credit: each course function the file defines, on its own cases), ``_handin.py`` (folders and
zips), ``_notebook.py``, ``_environment.py`` and ``_course_helpers.py`` (what students hand in, and
what the grader's machine lacks), ``_sandbox.py`` and ``_seccomp.py`` (the sandbox), ``_live.py``
(:func:`check_backprop`, in the student's own process), ``_class.py``, ``_class_report.py`` and
``_class_cli.py`` (a whole class: :func:`grade_class`), ``_programs.py`` (compiled reference
programs kept beside JAX's cache). The worker imports only ``_worker.py``, ``_calls.py`` (with
``_function_calls.py``), ``_submission.py`` (with ``_environment.py``, ``_notebook.py`` and
``_course_helpers.py``) and ``_wire.py``, relatively and without JAX.

Example:
  >>> from fnnjax.verify.grader import CONVENTIONS
  >>> list(CONVENTIONS)
  ['fnnjax', 'cs231n', 'deeplearning-ai', 'nielsen']
"""

from ._class import ClassError, ClassResult, grade_class
from ._class_report import write_report
from ._convention_setup import parse_init
from ._conventions import CONVENTIONS
from ._gradescope import VISIBILITIES, failure_results, gradescope_results, write_results
from ._handin import HandInError, check_handin, is_handin
from ._live import BackpropCheck, check_backprop
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
    "BackpropCheck",
    "BackpropReport",
    "CaseResult",
    "ClassError",
    "ClassResult",
    "HandInError",
    "Sandbox",
    "SubmissionError",
    "check_backprop",
    "check_handin",
    "check_user_backprop",
    "failure_results",
    "fresh_seed",
    "grade_class",
    "gradescope_results",
    "is_handin",
    "load_user_function",
    "parse_init",
    "write_report",
    "write_results",
]
