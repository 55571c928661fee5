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

import math
import re
from collections.abc import Sequence
from typing import Any, NamedTuple, TypeVar, cast

import numpy as np

import fnnjax

from ._wire import Opaque

__all__ = [
    "BATCH_SIZE",
    "Case",
    "Convention",
    "Entry",
    "Inputs",
    "Mismatch",
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
    """

    sizes: tuple[int, ...]
    hidden: tuple[str, ...]
    output: str
    loss: str
    l2: float
    batch: int = BATCH_SIZE

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
    return str(max((a.dtype for a in arrays), key=lambda d: np.finfo(d).eps))


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

    def __repr__(self) -> str:
        return f"<convention {self.name}>"

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

    def describe_case(self, case: Case) -> str:
        """A case in the course's words: ``5-8-4 (N = 7), reg = 0.3``."""
        return f"{case.architecture} (N = {case.batch})"

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
