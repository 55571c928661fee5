"""Why a backprop is wrong, in its course's terms: the data term, the L2 term and the classic recursions.

For a failing parameter with the right gradient ``E = D + R`` (D the data term, R the L2 term
``reg * W``), unless G is one of the classic wrong gradients below, it is fitted as
``G = alpha D + beta R``: ``alpha`` names a factor (a sum where the mean belongs is
``alpha = N``; ``-1`` is a sign flip), ``beta`` the L2 mistake (0: missing,
2: ``reg * sum W^2`` where ``0.5 * reg * sum W^2`` belongs; for a bias, ``beta = 1`` is a
regularised bias). When no such fit holds, G is compared with the gradients of the classic wrong
recursions (a missing ReLU mask or σ', σ' taken at the activation, an extra output derivative),
compiled per case when a case fails (tried first: they are exact hypotheses), then with the
generic patterns of
:func:`fnnjax.gradcheck.diagnose_leaf` (transposed, zero, non-finite). Each convention supplies
the words (:class:`fnnjax.verify.grader._conventions.Convention`).

Every diagnosis also carries stable :class:`Code` s (``missing-l2``, ``sign-flip``, ``transposed``,
``missing-activation-derivative`` ... with the layer where one applies, :data:`CODES`), to count
mistakes by kind and by layer across a class; the words may change, the codes do not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

import fnnjax
from fnnjax import gradcheck as gc

from ._conventions import Case, Convention

__all__ = [
    "CODES",
    "Code",
    "Evidence",
    "LossTerms",
    "diagnose",
    "diagnose_case",
    "kind_code",
    "loss_code",
    "loss_diagnosis",
    "variant_gradients",
]


class Code(NamedTuple):
    """A stable name for one kind of mistake, and the layer it is in (1-based) where one applies.

    Example:
      >>> from fnnjax.verify.grader._diagnosis import Code
      >>> str(Code("missing-l2", 2)), str(Code("timeout"))
      ('missing-l2 (layer 2)', 'timeout')
    """

    code: str
    layer: int | None = None

    def __str__(self) -> str:
        return self.code if self.layer is None else f"{self.code} (layer {self.layer})"


CODES: dict[str, str] = {
    # a wrong gradient (per parameter, with its layer)
    "missing-l2": "the L2 term reg·W is missing from dW",
    "wrong-l2-factor": "dW's L2 term has the wrong factor (reg·W doubled, halved...)",
    "regularised-bias": "the bias gradient includes an L2 term",
    "sign-flip": "the gradient has the wrong sign",
    "sum-not-mean": "a sum over the batch where the mean belongs (off by N)",
    "divided-twice": "divided by the batch size twice (off by 1/N)",
    "wrong-factor": "off by a constant factor",
    "missing-activation-derivative": "the hidden layers' activation derivative (ReLU mask, σ') is missing",
    "missing-output-derivative": "the output activation's derivative is missing",
    "extra-output-derivative": "an extra output-activation derivative on top of ŷ − y",
    "derivative-at-activation": "the activation derivative is taken at the activation instead of z",
    "transposed": "the gradient is transposed",
    "wrong-shape": "the gradient has another shape than its parameter",
    "zero-gradient": "the gradient is zero (nothing computed)",
    "non-finite": "the gradient holds NaN or inf",
    "wrong-values": "wrong values, no simple pattern",
    # the returned loss and output
    "loss-l2-factor": "the loss's L2 term has the wrong factor, or is missing",
    "loss-missing-layer-l2": "the loss leaves one layer's weights out of its L2 term",
    "loss-regularised-bias": "the loss regularises the biases",
    "loss-sum-not-mean": "the loss sums over the batch where the mean belongs",
    "loss-divided-twice": "the loss is divided by the batch size twice",
    "wrong-loss": "the returned loss is wrong",
    "wrong-forward": "the forward pass (the network output) is wrong",
    "modified-inputs": "the submission changed its input arrays in place",
    # nothing to judge
    "unfinished": "not implemented yet (the starter code)",
    "raised": "the submission raised an exception",
    "timeout": "the submission ran past its time limit",
    "crash": "the submission's process crashed (killed, out of memory)",
    "exit": "the submission exited",
    "too-much-output": "the submission printed too much",
    "wrong-structure": "the returned value has the wrong structure",
    "contract": "the submission cannot be called as the course calls it",
    "too-coarse": "float16/bfloat16 gradients",
    "not-gradable": "the submission cannot be loaded or graded at all",
    "grader-error": "the grader failed on this submission",
}
"""Every stable code, with what it means (a class report counts mistakes by these)."""

_KIND_CODES = {
    "raised": "raised",
    "timeout": "timeout",
    "crash": "crash",
    "exit": "exit",
    "output": "too-much-output",
    "structure": "wrong-structure",
    "contract": "contract",
    "precision": "too-coarse",
    "wire": "wrong-structure",
    "modified": "modified-inputs",
    "load": "not-gradable",
    "unfinished": "unfinished",
}


def kind_code(kind: str) -> str:
    """The stable code of a case that produced nothing to judge (its ``kind``: ``raised``, ``timeout``...).

    Example:
      >>> from fnnjax.verify.grader._diagnosis import kind_code
      >>> kind_code("output"), kind_code("timeout")
      ('too-much-output', 'timeout')
    """
    return _KIND_CODES.get(kind, "wrong-values" if kind == "ok" else kind)


def _near(c: float, v: float) -> bool:
    return abs(c - v) <= 1e-3 * max(1.0, abs(v))


# ----------------------------------------------------------------------------------------------
# The classic wrong recursions (traced, next to the oracles)


def variant_gradients(case: Case, params, x, y) -> dict[str, tuple]:
    """Data-term gradients (no L2) of classic wrong recursions, in fnnjax's layout.

    Keys: ``no_hidden_fprime`` (delta^(l) = W^T delta^(l+1) without f'), ``no_output_fprime``
    (delta^(L) = dL/da without f_L', for losses that need it), ``extra_output_fprime`` (an f_L' on
    top of cross-entropy's y_hat - y), ``fprime_at_activation`` (f' evaluated at a^(l) instead of
    z^(l)). Built from the public :func:`fnnjax.forward_trace`, :func:`fnnjax.deltas`,
    :func:`fnnjax.activation_derivative` and :func:`fnnjax.softmax_vjp` (traceable).
    """
    mlp, n = case.mlp, x.shape[0]
    trace = fnnjax.forward_trace(mlp, params, x)
    right = fnnjax.deltas(mlp, params, x, y, case.loss)

    def fprime(l, at):  # f_l'(.) of hidden layer l (1-based), at its z or its a
        return fnnjax.activation_derivative(
            mlp.hidden[l - 1], at[l - 1] if at is trace.z else at[l], slope=mlp.leaky_slope
        )

    def grads(delta_out, at=trace.z, use_fprime=True):
        ds = [delta_out]
        for l in range(mlp.num_layers - 1, 0, -1):
            back = ds[-1] @ params[l].W
            ds.append(back * fprime(l, at) if use_fprime else back)
        ds = ds[::-1]
        return tuple(fnnjax.Layer(d.T @ a / n, jnp.sum(d, axis=0) / n) for d, a in zip(ds, trace.a[:-1]))

    out = {}
    a, z = trace.a[-1], trace.z[-1]
    if mlp.num_layers > 1:
        out["no_hidden_fprime"] = grads(right[-1], use_fprime=False)
    dloss = None if case.loss == "cross_entropy" else (a - y if case.loss == "mse" else 2 * (a - y))
    if dloss is not None and mlp.output != "identity":
        out["no_output_fprime"] = grads(dloss)
    if dloss is not None and mlp.output not in ("identity", "softmax"):
        out["fprime_at_activation"] = grads(
            dloss * fnnjax.activation_derivative(mlp.output, a, slope=mlp.leaky_slope), at=trace.a
        )
    elif mlp.num_layers > 1:
        out["fprime_at_activation"] = grads(right[-1], at=trace.a)
    if case.loss == "cross_entropy":
        extra = (
            fnnjax.softmax_vjp(a, a - y)
            if mlp.output == "softmax"
            else (a - y) * fnnjax.activation_derivative(mlp.output, z, slope=mlp.leaky_slope)
        )
        out["extra_output_fprime"] = grads(extra)
    return out


# ----------------------------------------------------------------------------------------------
# One parameter


def _factor_phrase(conv: Convention, alpha: float, what: str, n: int) -> str:
    words = conv.factor_phrase(alpha, what, n)
    if words:
        return words
    if _near(alpha, -1):
        return f"sign flipped ({what} = -expected)"
    labels = [(n, f"{conv.batch}, the batch size")] if conv.batch and n > 1 else []
    return f"off by a constant factor {gc.name_factor(alpha, labels)} ({what})"


def _l2_phrase(conv: Convention, beta: float, is_weight: bool, layer: int) -> str | None:
    if (is_weight and _near(beta, 1)) or (not is_weight and _near(beta, 0)):
        return None
    return conv.l2_phrase(beta, is_weight, layer) or (
        f"the L2 term is {beta:.4g} reg·{conv.param_name(layer, 'W' if is_weight else 'b')}"
    )


def _generic(conv: Convention, expected, got, rtol: float) -> str | None:
    words = gc.diagnose_leaf(expected, got, rtol=rtol)
    if words and words.startswith("transposed"):
        words += conv.transposed_hint
    return words


def _generic_code(words: str | None) -> str:
    """The code of what :func:`fnnjax.gradcheck.diagnose_leaf` said."""
    if not words:
        return "wrong-values"
    for start, code in (
        ("transposed", "transposed"),
        ("has shape", "wrong-shape"),
        ("contains non-finite", "non-finite"),
        ("zero where", "zero-gradient"),
        ("sign flipped", "sign-flip"),
    ):
        if words.startswith(start):
            return code
    return "wrong-factor" if "factor" in words else "wrong-values"


_VARIANT_CODES = {
    "no_hidden_fprime": "missing-activation-derivative",
    "no_output_fprime": "missing-output-derivative",
    "extra_output_fprime": "extra-output-derivative",
    "fprime_at_activation": "derivative-at-activation",
}


def _factor_code(alpha: float, n: int) -> str:
    if _near(alpha, -1):
        return "sign-flip"
    if n > 1 and _near(alpha, n):
        return "sum-not-mean"
    if n > 1 and _near(alpha, 1 / n):
        return "divided-twice"
    return "wrong-factor"


def _l2_code(beta: float, is_weight: bool) -> str:
    if not is_weight:
        return "regularised-bias"
    return "missing-l2" if _near(beta, 0) else "wrong-l2-factor"


class _Leaf(NamedTuple):
    """One failing parameter and what it is compared with (float64 arrays)."""

    expected: np.ndarray  # jax.grad of the reference
    got: np.ndarray  # the returned gradient
    reg: np.ndarray  # reg * the parameter (the L2 term of a weight; the bias-decay hypothesis of a bias)
    is_weight: bool
    layer: int
    variants: list[tuple[str, np.ndarray]]  # the classic wrong gradients of this parameter


def _explain_leaf(conv: Convention, case: Case, leaf: _Leaf, rtol: float) -> tuple[str | None, tuple[str, ...]]:
    """Why ``got`` differs from ``expected = data + reg``: a variant, a decomposition, or the generic
    tests; with the stable codes of what it found."""
    expected, got, reg, is_weight, layer, variants = leaf
    if got.shape != expected.shape or not np.all(np.isfinite(got)) or not np.any(got):
        words = _generic(conv, expected, got, rtol)  # transposed, non-finite or zero
        return words, (_generic_code(words),)
    data = expected - reg if is_weight else expected
    for key, variant in variants:  # a classic wrong recursion, exactly
        words = conv.variants.get(key)
        expected_l2 = reg if is_weight else 0.0
        if words and gc.arrays_match(got, variant + expected_l2, rtol) and not gc.arrays_match(variant, data, rtol):
            return words, (_VARIANT_CODES.get(key, key.replace("_", "-")),)
    has_data, has_reg = bool(np.any(data)), bool(np.any(reg))
    what = "the data term" if has_reg else "the gradient"
    if has_data or has_reg:
        basis = [b for b, keep in ((data, has_data), (reg, has_reg)) if keep]
        coeffs, residual = gc.fit_combination(got, basis)
        trivial = got.size <= len(basis)  # any values fit: only a simple factor means something
        simple = [1.0, -1.0, 2.0, 0.5, float(case.batch), 1.0 / case.batch]
        if residual <= rtol and (not trivial or any(_near(float(c), v) for c in coeffs for v in simple)):
            alpha = float(coeffs[0]) if has_data else 1.0
            beta = float(coeffs[-1]) if has_reg else (1.0 if is_weight else 0.0)
            if has_data and has_reg and is_weight and _near(alpha, beta) and not _near(alpha, 1):
                return _factor_phrase(conv, alpha, "the gradient", case.batch), (_factor_code(alpha, case.batch),)
            parts = [] if _near(alpha, 1) else [_factor_phrase(conv, alpha, what, case.batch)]
            codes = [] if _near(alpha, 1) else [_factor_code(alpha, case.batch)]
            l2_part = _l2_phrase(conv, beta, is_weight, layer) if has_reg else None
            if l2_part:
                parts.append(l2_part)
                codes.append(_l2_code(beta, is_weight))
            if parts:
                return "; and ".join(parts), tuple(codes)
    words = _generic(conv, expected, got, rtol)
    return words, (_generic_code(words),)


class Evidence(NamedTuple):
    """What a failing case is diagnosed from.

    Attributes:
      layout: the layout of the convention's params container.
      params: the parameters, one float64 array per leaf.
      got: the returned gradient, one array per leaf.
      expected: jax.grad of the reference, ``(P,)``.
      variants: the classic wrong gradients, one array per leaf each (see :func:`variant_gradients`).
      rtol: how close arrays must be to count as equal.
    """

    layout: gc.LeafLayout
    params: Sequence[np.ndarray]
    got: Sequence[np.ndarray]
    expected: np.ndarray
    variants: Mapping[str, Sequence[np.ndarray]]
    rtol: float


def diagnose_case(conv: Convention, case: Case, report: gc.GradCheckReport, evidence: Evidence) -> tuple[str, ...]:
    """Diagnosis lines for a failing gradient: per group of parameters, then one-layer statements.

    Args:
      conv: the convention (names and phrases).
      case: the case.
      report: the gradient check of the case.
      evidence: the arrays the diagnosis compares (:class:`Evidence`).

    Returns:
      Lines such as ``grads['W1'], grads['W2']: lacks reg·W: ...`` and ``wrong only in layer 2 ...``.
    """
    return diagnose(conv, case, report, evidence)[0]


def diagnose(
    conv: Convention, case: Case, report: gc.GradCheckReport, evidence: Evidence
) -> tuple[tuple[str, ...], tuple[Code, ...]]:
    """:func:`diagnose_case`'s lines, and the stable :class:`Code` of each failing parameter's mistake
    (with its layer), in order, without repeats."""
    layout = evidence.layout
    failing = [r for r in report.failures() if r.oracle == "autodiff"] or list(report.failures())
    if not failing:
        return ((report.diagnosis,) if report.diagnosis else ()), ((Code("wrong-values"),) if report.diagnosis else ())
    by_diag: dict[str, list[str]] = {}
    codes: dict[Code, None] = {}
    layers = set()
    for r in failing:
        i = layout.paths.index(r.path)
        layer, kind = conv.leaf_info(r.path)
        layers.add(layer)
        leaf = _Leaf(
            evidence.expected[layout.slices[i]].reshape(layout.shapes[i]),
            np.asarray(evidence.got[i], np.float64),
            conv.l2_coefficient(case) * evidence.params[i],
            kind == "W",
            layer,
            [(k, np.asarray(v[i], np.float64)) for k, v in evidence.variants.items()],
        )
        diag, leaf_codes = _explain_leaf(conv, case, leaf, evidence.rtol)
        for code in leaf_codes:
            codes[Code(code, layer)] = None
        by_diag.setdefault(diag or "wrong values, no simple pattern found", []).append(conv.leaf_name(r.path))
    lines = [f"{', '.join(names)}: {diag}" for diag, names in by_diag.items()]
    if len(layers) == 1 and case.depth > 1:
        (layer,) = layers
        names = [
            conv.leaf_name(p)
            for p in layout.paths
            if conv.leaf_info(p)[0] == layer and any(r.path == p for r in failing)
        ]
        lines.append(conv.layer_line(layer, names))
    return tuple(lines), tuple(codes)


# ----------------------------------------------------------------------------------------------
# The loss value


class LossTerms(NamedTuple):
    """The reference loss and its parts.

    Attributes:
      expected: the reference loss.
      data: its data term (the average loss over the batch).
      bias: the regularisation the biases would add (as the weights', with Σ b² for Σ W²).
      layers: the regularisation of each layer's weights.
    """

    expected: float
    data: float
    bias: float
    layers: Sequence[float]


def loss_code(case: Case, got: float, terms: LossTerms) -> Code:
    """The stable :class:`Code` of a wrong loss value (what :func:`loss_diagnosis` says, as a code).

    Args:
      case: the case.
      got: the returned loss.
      terms: the reference loss and its parts.
    """
    expected, data, bias_term, layer_terms = terms
    reg, n = expected - data, case.batch

    def close(v):
        return abs(got - v) <= 1e-6 * max(1.0, abs(v))

    if reg > 0 and any(close(data + m * reg) for m in (2.0, 0.0, 0.5)):
        return Code("loss-l2-factor")
    for layer, term in enumerate(layer_terms, start=1):
        if term > 0 and len(layer_terms) > 1 and close(expected - term):
            return Code("loss-missing-layer-l2", layer)
    if bias_term > 0 and close(expected + bias_term):
        return Code("loss-regularised-bias")
    if close(n * data + reg):
        return Code("loss-sum-not-mean")
    if close(data / n + reg):
        return Code("loss-divided-twice")
    return Code("wrong-loss")


def loss_diagnosis(conv: Convention, case: Case, got: float, terms: LossTerms) -> str:
    """What a wrong loss value looks like next to ``expected = data + regularisation``.

    Args:
      conv: the convention.
      case: the case.
      got: the returned loss.
      terms: the reference loss and its parts.

    Returns:
      One phrase, e.g. ``the loss adds reg·Σ W² where cs231n's loss adds 0.5·reg·Σ W²``.
    """
    expected, data, bias_term, layer_terms = terms
    reg = expected - data
    n = case.batch

    def close(v):
        return abs(got - v) <= 1e-6 * max(1.0, abs(v))

    for multiple in (2.0, 0.0, 0.5):
        if reg > 0 and close(data + multiple * reg):
            return conv.loss_l2_phrase(multiple)
    for layer, term in enumerate(layer_terms, start=1):
        if term > 0 and len(layer_terms) > 1 and close(expected - term):
            return conv.loss_layer_phrase(layer)
    if bias_term > 0 and close(expected + bias_term):
        return conv.loss_bias_phrase()
    if close(n * data + reg):
        return f"the loss is the sum over the N = {n} samples where the mean belongs"
    if close(data / n + reg):
        return f"the loss is divided by N = {n} twice"
    return (
        f"the loss is {got:.10g} but {conv.reference} is {expected:.10g} (data term {data:.6g}, "
        f"regularisation {reg:.6g})"
    )
