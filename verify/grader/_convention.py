"""What every convention adapter shares: the case, the entry, the data, and reading returned values.

A convention says how a course writes backprop. Its adapter (``verify/grader/_convention_<name>.py``) is
a small subclass of :class:`Convention` that says, for its course: the cases (depths 1-4,
nonsquare widths and one square layer, batch sizes that are no layer width, ``reg`` on and off
where the course has it); the container the submission is given (``params["W1"]: (D, H)`` for
cs231n, ``parameters["b1"]: (n1, 1)`` for deeplearning.ai, ``net.weights[0]`` for Nielsen) and how
it maps to fnnjax's layers (the reference is :func:`fnnjax.loss` of the same network,
differentiated by ``jax.grad`` in float64); what the submission returns and how to read it
(:meth:`Convention.unpack`, which names what is wrong with a returned structure in the course's
words); and the course's own names and phrases for the diagnoses (``dW2``, ``grads['b1']``,
``nabla_w[0]``; "cs231n's loss is 0.5·reg·Σ W², so dW gains reg·W"). Everything else (the
oracles, the judging, the diagnosis algorithm, the isolation) is shared.
"""

from __future__ import annotations

import copy
import functools
import math
import re
from collections.abc import Sequence
from typing import Any, NamedTuple, TypeVar, cast

import numpy as np

import fnnjax
from fnnjax import gradcheck as gc

from ._wire import Opaque

__all__ = [
    "BATCH_SIZE",
    "COURSE_VALUE_RTOL",
    "Case",
    "Convention",
    "Entry",
    "Inputs",
    "Mismatch",
    "Options",
    "Unpacked",
    "coarsest",
    "copy_tree",
    "describe_value",
    "gradient_array",
    "make_inputs",
    "match_path",
    "near",
    "scalar_value",
]

BATCH_SIZE = 7
"""N, the batch size of the fnnjax convention's cases: > 1 and no layer width, so a sum where a mean
belongs shows as 7."""


class Case(NamedTuple):
    """One network a backprop is run on.

    Attributes:
      sizes: ``(M_0, ..., M_L)``.
      hidden: one activation per hidden layer.
      output: the output activation.
      loss: the loss name (fnnjax's).
      l2: the weight-decay coefficient (cs231n's ``reg``).
      batch: the number of samples N (m; 1 for Nielsen's one example).
      optional: a depth the course's own notebooks never build (cs231n's ``hidden_dims=[]``, a
        one-layer deeplearning.ai or Nielsen network): run and reported, but it carries no points
        and does not decide the verdict.
    """

    sizes: tuple[int, ...]
    hidden: tuple[str, ...]
    output: str
    loss: str
    l2: float
    batch: int = BATCH_SIZE
    optional: bool = False

    @property
    def mlp(self) -> fnnjax.MLP:
        """The :class:`fnnjax.MLP` of this case."""
        return fnnjax.MLP(self.sizes, hidden=self.hidden, output=self.output)

    @property
    def architecture(self) -> str:
        """``4-6-3``."""
        return "-".join(str(m) for m in self.sizes)

    @property
    def activations(self) -> str:
        """``relu, softmax`` (hidden layers first)."""
        return ", ".join((*self.hidden, self.output))

    @property
    def depth(self) -> int:
        """L, the number of layers with parameters."""
        return len(self.sizes) - 1


class Entry(NamedTuple):
    """What in a submission is checked, and in which convention.

    Attributes:
      convention: the convention's name.
      kind: ``function``, ``class`` or ``module`` (deeplearning.ai's pair of functions).
      name: the function's or class's name (``L_model_backward`` for deeplearning.ai).
      init: the constructor's parameter names (class forms).
      why: how it was chosen, in words (``the file defines class FullyConnectedNet with loss()``).
    """

    convention: str
    kind: str
    name: str
    init: tuple[str, ...] = ()
    why: str = ""


class Inputs(NamedTuple):
    """One case's data, drawn on the host in float64.

    Attributes:
      params: the parameters in the convention's container (what the submission is given).
      data: the other arrays the submission is given, by the course's names (``X``, ``y``...).
      x: the same inputs in fnnjax's layout, ``(N, M_0)``.
      y: the same targets in fnnjax's layout, ``(N, M_L)`` (one-hot rows for softmax).
      d: the Taylor-test direction, ``(P,)``.
    """

    params: Any
    data: dict[str, np.ndarray]
    x: np.ndarray
    y: np.ndarray
    d: np.ndarray


class Unpacked(NamedTuple):
    """What a submission returned for one case, read in its convention.

    Attributes:
      grads: one gradient array per leaf of the params container, in ``leaf_layout`` order.
      dtype: the coarsest floating dtype among them (sets the tolerances).
      loss: the returned loss value, or None when the convention returns none.
      loss_dtype: its dtype.
      output: the returned network output (deeplearning.ai's AL), or None.
    """

    grads: list[np.ndarray]
    dtype: str
    loss: float | None = None
    loss_dtype: str | None = None
    output: np.ndarray | None = None


class Options(NamedTuple):
    """How a check is configured beyond the convention (``check_user_backprop``'s keywords).

    Attributes:
      l2_factor: cs231n's L2 term is ``l2_factor·reg·Σ‖W‖²`` (None: the form's own, 1 for assignment
        1's ``neural_net.py`` (2017 on), 0.5 otherwise).
      strict: judge with fnnjax's float64 tolerances instead of the course's own standard.
      init: extra constructor keywords ``(name, value)`` for the class forms (``--init KEY=VALUE``).
      cost: Nielsen's cost, read from the network (``quadratic`` or ``cross-entropy``), or None.
    """

    l2_factor: float | None = None
    strict: bool = False
    init: tuple[tuple[str, Any], ...] = ()
    cost: str | None = None


COURSE_VALUE_RTOL = 1e-6
"""In the course standard, a returned loss or network output is right when it agrees with the
reference to this relative error (six significant digits: a float32 computation or a log(p + 1e-8)
agrees to seven)."""


class Mismatch(Exception):
    """What a submission returned does not fit its convention (structure, shape, dtype): one line."""


# ----------------------------------------------------------------------------------------------
# Reading returned values


def describe_value(v) -> str:
    """``a list of 2 arrays``, ``a dict``, ``a float``: a returned value in words."""
    if isinstance(v, np.ndarray):
        return f"an array of shape {v.shape}"
    if isinstance(v, Opaque):
        return f"a {v.type}"
    if isinstance(v, (list, tuple)):
        kinds = sorted({"array" if isinstance(x, np.ndarray) else type(x).__name__ for x in v})
        plural = "" if len(v) == 1 else "s"
        return f"a {type(v).__name__} of {len(v)} {'/'.join(k + plural for k in kinds) or 'items'}"
    return f"a {type(v).__name__}"


def gradient_array(value, name: str, shape: tuple[int, ...], param: str, hint: str = "") -> np.ndarray:
    """A returned gradient leaf checked: an array of floats with its parameter's shape (or, for a
    matrix, the transposed shape: judged and diagnosed as transposed).

    Raises:
      Mismatch: not an array, not floating-point, or another shape.
    """
    if not isinstance(value, np.ndarray):
        raise Mismatch(
            f"{name} is {describe_value(value)}, not an array; return a NumPy (or JAX/PyTorch) "
            f"array of shape {shape}, like {param}"
        )
    if value.dtype.kind != "f":
        raise Mismatch(
            f"{name} has dtype {value.dtype}; a gradient is floating-point (e.g. "
            f"np.zeros_like({param}) for a float {param})"
        )
    got = tuple(value.shape)
    if got != shape and not (len(shape) == 2 and got == shape[::-1]):
        raise Mismatch(
            f"{name} has shape {got} but {param} has shape {shape}; a gradient has the shape of its parameter{hint}"
        )
    return value


def scalar_value(value, name: str) -> tuple[float, str]:
    """A returned loss as ``(float, dtype)``.

    Raises:
      Mismatch: not a number or a one-element floating array.
    """
    if isinstance(value, bool) or value is None:
        raise Mismatch(f"{name} is {value!r}; return the loss as a float")
    if isinstance(value, (int, float)):
        return float(value), "float64"
    if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "fiu":
        dtype = str(value.dtype) if value.dtype.kind == "f" else "float64"
        return float(value.reshape(())), dtype
    raise Mismatch(
        f"{name} is {describe_value(value)}; return the loss as one number (the average over "
        "the batch plus the regularisation term)"
    )


def coarsest(arrays: Sequence[np.ndarray]) -> str:
    """The floating dtype with the largest epsilon among arrays (float16 > float32 > float64)."""
    return functools.reduce(gc.coarser, (str(a.dtype) for a in arrays))


# ----------------------------------------------------------------------------------------------
# The adapters


class Convention:
    """The shared part of every adapter; subclasses say what differs (see the module docstring).

    Attributes:
      name: the ``--convention`` name.
      title: the course, in words.
      contract: what fnnjax calls, in one line.
      reference: the loss the gradient must be the gradient of, in the course's words.
      batch: the batch size's symbol (``N``, ``m``), or None for one example.
      returns_loss: the submission returns the loss value too (it is checked).
      checks_output: the submission returns the network output too (checked).
    """

    name = ""
    title = ""
    contract = ""
    reference = ""
    batch = "N"
    returns_loss = False
    checks_output = False
    transposed_hint = ""
    options = Options()
    course_metric: str | None = None
    """How the course measures a gradient's error: ``elementwise`` (cs231n's ``rel_error``:
    ``max |x − y| / max(1e-8, |x| + |y|)``), ``norm`` (deeplearning.ai's ``gradient_check_n``:
    ``‖x − y‖ / (‖x‖ + ‖y‖)``), or None (no course standard: fnnjax's tolerances only)."""
    course_threshold = 0.0
    """The largest error, in :attr:`course_metric`, the course's gradient checks accept."""
    course_source = ""
    """Where :attr:`course_threshold` comes from, in words."""

    def __repr__(self) -> str:
        return f"<convention {self.name}>"

    def _trace_key(self) -> tuple:
        """What the compiled programs (the reference, the wrong variants) depend on: instances that
        differ only in words or options share them."""
        return (type(self), float(getattr(self, "l2_factor", 0.0)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Convention) and self._trace_key() == other._trace_key()

    def __hash__(self) -> int:
        return hash(self._trace_key())

    # -- configuration -------------------------------------------------------------------------

    def configured(self, entry: Entry, options: Options) -> Convention:
        """This convention set up for one entry and the check's :class:`Options` (one instance per
        setting, cached: the compiled reference programs are kept per instance)."""
        form = self._form(entry)
        key = (type(self).__name__, form, options.l2_factor, options.strict, repr(options.init), options.cost)
        cache = Convention._configured
        if key not in cache:
            conv = copy.copy(self)
            conv.options = options
            conv._setup(entry, options)
            cache[key] = conv
        return cache[key]

    _configured: dict[tuple, Convention] = {}

    def _form(self, entry: Entry) -> str:
        """Which of the convention's forms an entry is (what :meth:`_setup` depends on)."""
        return ""

    def _setup(self, entry: Entry, options: Options) -> None:
        """Adjust this copy's attributes to an entry and options (called once per instance)."""

    @property
    def course_mode(self) -> bool:
        """Judged by the course's own standard (not ``strict``, and the course has one)."""
        return self.course_metric is not None and not self.options.strict

    def standard(self) -> str:
        """The standard a gradient is judged by, in words."""
        if not self.course_mode:
            return "fnnjax's float64 tolerances (eps^(3/4) against jax.grad, central differences, Taylor test)"
        formula = (
            "max |x − y| / max(1e-8, |x| + |y|)" if self.course_metric == "elementwise" else "‖x − y‖ / (‖x‖ + ‖y‖)"
        )
        return (
            f"the course's: relative error {formula} ≤ {self.course_threshold:g} ({self.course_source}); "
            "--strict for fnnjax's float64 tolerances"
        )

    def course_error(self, expected: np.ndarray, got: np.ndarray) -> float:
        """The error of one returned array in the course's own measure (:attr:`course_metric`)."""
        e, g = np.asarray(expected, np.float64), np.asarray(got, np.float64)
        if e.shape != g.shape or not np.all(np.isfinite(g)):
            return math.inf
        if self.course_metric == "elementwise":
            return float(np.max(np.abs(e - g) / np.maximum(1e-8, np.abs(e) + np.abs(g)), initial=0.0))
        denominator = float(np.linalg.norm(e) + np.linalg.norm(g))
        return float(np.linalg.norm(e - g)) / denominator if denominator else 0.0

    def l2_coefficient(self, case: Case) -> float:
        """fnnjax's weight-decay coefficient λ (its L2 term is ``0.5·λ·Σ‖W‖²``) for a case's ``l2``."""
        return case.l2

    def loss_l2_phrase(self, multiple: float) -> str:
        """The returned loss's regularisation is ``multiple`` times the right one (0: none), in words."""
        if multiple == 0:
            return "the loss lacks the regularisation term"
        return f"the loss's regularisation term is {multiple:g} times the right one"

    def loss_layer_phrase(self, layer: int) -> str:
        """The returned loss lacks layer ``layer``'s regularisation, in words."""
        return f"the loss lacks the regularisation of layer {layer}"

    def loss_bias_phrase(self) -> str:
        """The returned loss regularises the biases too, in words."""
        return "the loss regularises the biases too"

    def constructor_fills(self, entry: Entry) -> str:
        """What the grader fills in a class form's constructor, in words (for the error that names
        a parameter it cannot fill)."""
        return ""

    # -- cases and data ------------------------------------------------------------------------

    all_cases: tuple[Case, ...] = ()

    def cases(self, entry: Entry) -> tuple[Case, ...]:
        """The cases an entry is run on (a class that builds two layers gets the depth-2 cases)."""
        return self.all_cases

    def layers_to_params(self, layers):
        """fnnjax's layers (``W: (M_l, M_{l-1})``, ``b: (M_l,)``) in this convention's container
        (works on NumPy arrays and on traced JAX arrays)."""
        raise NotImplementedError

    def params_to_layers(self, params) -> tuple[fnnjax.Layer, ...]:
        """The inverse of :meth:`layers_to_params` (traceable: the reference loss goes through it)."""
        raise NotImplementedError

    def data(self, case: Case, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
        """The inputs and targets as the submission gets them, from fnnjax's ``x: (N, M_0)``, ``y: (N, M_L)``."""
        raise NotImplementedError

    def request(self, case: Case, inputs: Inputs, entry: Entry) -> tuple[str, str | None, dict]:
        """``(form, entry name or None, request)`` for :func:`fnnjax.verify.grader._calls.call`."""
        raise NotImplementedError

    # -- reading what came back ----------------------------------------------------------------

    def unpack(
        self, result: dict, case: Case, inputs: Inputs, entry: Entry, *, index: int = 0, spec: str = "your function"
    ) -> Unpacked:
        """The returned gradient (and loss, output) of one case, checked for structure.

        Args:
          result: what :func:`fnnjax.verify.grader._calls.call` returned (``returned``, ``given``, ...), decoded.
          case: the case.
          inputs: its inputs.
          entry: what was called.
          index: the case's index (for messages).
          spec: how to call the submission in messages.

        Returns:
          The :class:`Unpacked` gradient, one float array per leaf of the params container.

        Raises:
          Mismatch: the structure, a shape or a dtype does not fit the convention.
        """
        raise NotImplementedError

    given_names: dict[str, str] = {}
    """How the arrays handed to the submission are called in messages, by request key."""

    # -- names -----------------------------------------------------------------------------------

    def leaf_info(self, path: str) -> tuple[int, str]:
        """``(layer l, "W" or "b")`` of a params leaf path (layers count from 1)."""
        raise NotImplementedError

    def leaf_name(self, path: str) -> str:
        """The name of the gradient of a leaf, as the course writes it (``grads['W2']``)."""
        raise NotImplementedError

    def param_name(self, layer: int, kind: str) -> str:
        """The name of a parameter, as the course writes it (``W2``)."""
        return f"{kind}{layer}"

    # -- phrases ---------------------------------------------------------------------------------

    def factor_phrase(self, alpha: float, what: str, n: int) -> str | None:
        """The course's words for ``got = alpha * expected`` (None: the generic phrase)."""
        return None

    def l2_phrase(self, beta: float, is_weight: bool, layer: int) -> str | None:
        """The course's words for an L2 term of ``beta * reg * W`` (or ``beta * reg * b``)."""
        return None

    variants: dict[str, str] = {}
    """The classic wrong recursions this course's students write, in the course's words (keys:
    ``no_hidden_fprime``, ``no_output_fprime``, ``extra_output_fprime``, ``fprime_at_activation``)."""

    def layer_line(self, layer: int, names: Sequence[str]) -> str:
        """The statement that only one layer is wrong."""
        return f"wrong only in layer {layer} ({', '.join(names)}): every other layer is right"

    def case_words(self, case: Case) -> str:
        """A case in the course's words, without the optional mark: ``5-8-4 (N = 7), reg = 0.3``."""
        return f"{case.architecture} (N = {case.batch})"

    def describe_case(self, case: Case) -> str:
        """A case in the course's words: ``5-8-4 (N = 7), reg = 0.3``; an optional case says so
        (``6-3 (N = 5), reg = 0 [optional: a depth the course never builds, no points]``)."""
        words = self.case_words(case)
        return f"{words} [optional: a depth the course never builds, no points]" if case.optional else words

    def case_name(self, number: int, case: Case) -> str:
        """A case's title in an autograder's list: ``case 1: 5-8-4 (N = 7), reg = 0.3``."""
        return f"case {number}: {self.describe_case(case)}"


def _targets(case: Case, rng: np.random.Generator) -> np.ndarray:
    n, m = case.batch, case.sizes[-1]
    if case.loss == "cross_entropy" and case.output == "softmax":
        return np.eye(m)[rng.integers(0, m, n)]
    if case.loss == "cross_entropy":
        return rng.integers(0, 2, (n, m)).astype(np.float64)
    if case.output == "sigmoid":
        return rng.uniform(0.05, 0.95, (n, m))
    if case.output == "tanh":
        return rng.uniform(-0.9, 0.9, (n, m))
    return rng.normal(0.0, 1.0, (n, m))


def _host_layer(W: np.ndarray, b: np.ndarray) -> fnnjax.Layer:
    """``fnnjax.Layer(W, b)`` of float64 NumPy arrays (Layer's fields are typed as jax.Array)."""
    return fnnjax.Layer(cast(Any, W), cast(Any, b))


def make_inputs(convention: Convention, case: Case, seed: int, index: int) -> Inputs:
    """Random float64 parameters (biases nonzero), inputs, targets and a Taylor direction for a case.

    The draws depend on ``(seed, index)`` only (not on the convention), so the same case index gets
    the same network in every convention that has it.
    """
    rng = np.random.default_rng([seed, index])
    layers = tuple(
        _host_layer(rng.normal(0.0, 1.5 / math.sqrt(n), (m, n)), rng.normal(0.0, 0.5, (m,)))
        for n, m in zip(case.sizes[:-1], case.sizes[1:])
    )
    x = rng.normal(0.0, 1.0, (case.batch, case.sizes[0]))
    y = _targets(case, rng)
    d = rng.normal(0.0, 1.0, case.mlp.num_params)
    return Inputs(convention.layers_to_params(layers), convention.data(case, x, y), x, y, d)


_Tree = TypeVar("_Tree")


def copy_tree(tree: _Tree) -> _Tree:
    """Fresh NumPy copies of every array (each call gets its own, the pristine ones stay with us)."""
    if isinstance(tree, dict):
        return cast(_Tree, {k: copy_tree(v) for k, v in tree.items()})
    if isinstance(tree, (list, tuple)) and not hasattr(type(tree), "_fields"):
        return type(tree)(copy_tree(v) for v in tree)
    if isinstance(tree, np.ndarray):
        return tree.copy()
    return tree


def match_path(pattern: str, path: str) -> re.Match[str]:
    """``re.fullmatch(pattern, path)`` for a params leaf path of a convention (always one of its own)."""
    m = re.fullmatch(pattern, path)
    if m is None:
        raise ValueError(f"{path!r} is not a parameter path of this convention (expected {pattern!r})")
    return m


def near(c: float, v: float) -> bool:
    """``c`` is ``v`` up to 1e-3 (relative for |v| > 1): a factor a diagnosis may name."""
    return abs(c - v) <= 1e-3 * max(1.0, abs(v))
