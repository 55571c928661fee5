"""Independent evidence shared by the checks: reference forward passes and losses written from
``jax.nn`` (not from fnnjax), autodiff error terms, random test problems, error measures, fits and
robust timings.

Everything here is deterministic given a seed and runs in whatever dtype its inputs have (the suite
runs it inside ``jax.enable_x64(True)``).
"""

from __future__ import annotations

import dataclasses
import functools
import statistics
import time
import zlib
from collections.abc import Callable, Sequence
from typing import NamedTuple, cast

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt

import fnnjax

__all__ = [
    "Case",
    "PAIRINGS",
    "QUICK_PAIRINGS",
    "SMOOTH_HIDDEN",
    "NUMPY_DERIVATIVES",
    "REFERENCE_ACTIVATIONS",
    "autodiff_deltas",
    "compiled",
    "FAST_COMPILE",
    "fast_compile_options",
    "TAYLOR_STEPS",
    "unit_direction",
    "evidence_for",
    "Implementations",
    "implementation_outputs",
    "reference_evidence",
    "jit_reference_forward",
    "jit_reference_risk",
    "per_sample_gradients",
    "fit_slope",
    "host_layer",
    "max_rel_error",
    "median_seconds",
    "random_case",
    "case_set",
    "draw_case",
    "gradient_cases",
    "reference_forward",
    "reference_per_sample_loss",
    "reference_risk",
    "seeds_for",
    "target_matrix",
]

Array = jax.Array

SMOOTH_HIDDEN = ("sigmoid", "tanh", "softplus", "relu", "leaky_relu", "identity")
"""Hidden activations drawn for random architectures (step is left out: its f' = 0 kills every delta)."""

PAIRINGS = (
    ("softmax", "cross_entropy"),
    ("sigmoid", "cross_entropy"),
    ("sigmoid", "mse"),
    ("identity", "squared_error"),
    ("tanh", "mse"),
    ("softmax", "mse"),
    ("softplus", "squared_error"),
)
"""(output activation, loss) pairs drawn for random problems."""

N = 4
"""The batch size of random problems."""

WIDTHS = (2, 3, 4)
"""Layer widths drawn for random architectures: few distinct shapes, so compiled operations are
reused across architectures and checks (compilation dominates the suite's run time)."""


def _heaviside(z, slope):
    return jnp.where(z > 0, jnp.ones_like(z), jnp.zeros_like(z))


REFERENCE_ACTIVATIONS: dict[str, Callable[[Array, float], Array]] = {
    "identity": lambda z, slope: z,
    "sigmoid": lambda z, slope: jax.nn.sigmoid(z),
    "tanh": lambda z, slope: jnp.tanh(z),
    "relu": lambda z, slope: jax.nn.relu(z),
    "leaky_relu": lambda z, slope: jax.nn.leaky_relu(z, negative_slope=slope),
    "softplus": lambda z, slope: jax.nn.softplus(z),
    "step": _heaviside,
    "softmax": lambda z, slope: jax.nn.softmax(z, axis=-1),
}
"""The activations as written in ``jax.nn``: the independent reference for fnnjax's."""


def _np_sigmoid_prime(z):
    e = np.exp(-np.abs(z))
    return e / (1 + e) ** 2


def _np_sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


NUMPY_DERIVATIVES: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "identity": lambda z, slope: np.ones_like(z),
    "sigmoid": lambda z, slope: _np_sigmoid_prime(z),
    "tanh": lambda z, slope: 4 * _np_sigmoid_prime(2 * z),  # 1/cosh^2, stable in the tails
    "relu": lambda z, slope: (z > 0).astype(np.float64),
    "leaky_relu": lambda z, slope: np.where(z > 0, 1.0, slope),
    "softplus": lambda z, slope: _np_sigmoid(z),
    "step": lambda z, slope: np.zeros_like(z),
}
"""Closed-form derivatives in numpy, written in numerically stable forms (F17), for elementwise
activations: the second independent reference beside autodiff."""


# ----------------------------------------------------------------------------------------------
# Reference network, losses and error terms (written from jax.nn, never from fnnjax)


def reference_forward(mlp: fnnjax.MLP, params, x: Array, shifts=None) -> tuple[list[Array], list[Array]]:
    """F1 written out: ``z^(l) = W^(l) a^(l-1) + b^(l) (+ shift_l)``, ``a^(l) = f_l(z^(l))``.

    Args:
      mlp, params: the network; x: ``(N, M_0)``.
      shifts: optional ``(N, M_l)`` added to each z^(l) (differentiating at 0 gives delta^(l)).

    Returns:
      ``(zs, activations)``: ``[z^(1)..z^(L)]`` and ``[a^(0)..a^(L)]``, each ``(N, M_l)``.
    """
    a, zs, acts = x, [], [x]
    for l, (layer, name) in enumerate(zip(params, mlp.activations)):
        z = jnp.einsum("ij,nj->ni", layer.W, a) + layer.b[None, :]
        if shifts is not None:
            z = z + shifts[l]
        a = REFERENCE_ACTIVATIONS[name](z, mlp.leaky_slope)
        zs.append(z)
        acts.append(a)
    return zs, acts


def target_matrix(mlp: fnnjax.MLP, y: Array, dtype) -> Array:
    """Targets as ``(N, M_L)``: integer labels one-hot encoded, vectors reshaped (numpy, no compiling)."""
    m = mlp.sizes[-1]
    labels = np.asarray(y)
    if np.issubdtype(labels.dtype, np.integer):
        return jnp.asarray(np.eye(m)[labels.reshape(-1)], dtype)
    return jnp.asarray(labels.reshape(-1, m), dtype)


def reference_per_sample_loss(output: str, loss: str, z: Array, a: Array, target: Array) -> Array:
    """``(N,)`` per-sample losses: F6 (softmax: -t.log softmax z), binary CE (sigmoid, via
    log-sigmoid), F9 (mse: 1/2 ||a - t||^2; squared_error: ||a - t||^2)."""
    if loss == "cross_entropy" and output == "softmax":
        return -jnp.sum(target * jax.nn.log_softmax(z, axis=-1), axis=-1)
    if loss == "cross_entropy":
        return -jnp.sum(target * jax.nn.log_sigmoid(z) + (1 - target) * jax.nn.log_sigmoid(-z), axis=-1)
    scale = 0.5 if loss == "mse" else 1.0
    return scale * jnp.sum(jnp.square(a - target), axis=-1)


def reference_risk(mlp: fnnjax.MLP, params, x: Array, target: Array, loss: str, l2=0.0) -> Array:
    """F7: ``(1/N) sum_i L_i + (l2/2) sum_l ||W^(l)||_F^2`` from the reference forward pass."""
    zs, acts = reference_forward(mlp, params, x)
    data = jnp.mean(reference_per_sample_loss(mlp.output, loss, zs[-1], acts[-1], target))
    return data + l2 / 2 * sum(jnp.sum(jnp.square(p.W)) for p in params)


def autodiff_deltas(mlp: fnnjax.MLP, params, x: Array, target: Array, loss: str) -> tuple[Array, ...]:
    """``delta_i^(l) = dL_i/dz_i^(l)`` by ``jax.grad`` with respect to a zero shift of every z^(l).

    Samples are independent, so the gradient of ``sum_i L_i`` with respect to the shift of sample
    i's z^(l) is exactly sample i's error term.

    Returns:
      ``(delta^(1), ..., delta^(L))``, each ``(N, M_l)``.
    """
    n = x.shape[0]
    shifts = tuple(jnp.zeros((n, m), x.dtype) for m in mlp.sizes[1:])

    def total(s):
        zs, acts = reference_forward(mlp, params, x, s)
        return jnp.sum(reference_per_sample_loss(mlp.output, loss, zs[-1], acts[-1], target))

    return tuple(jax.grad(total)(shifts))


def per_sample_gradients(mlp: fnnjax.MLP, params, x: Array, target: Array, loss: str):
    """``dL_i/dtheta`` for every sample i (no l2): ``jax.vmap`` of ``jax.grad`` of the reference loss.

    Returns:
      params' structure with a leading sample axis on every leaf.
    """

    def one(p, xi, ti):
        return reference_risk(mlp, p, xi[None, :], ti[None, :], loss)

    return jax.vmap(jax.grad(one), in_axes=(None, 0, 0))(params, x, target)


FAST_COMPILE = {
    "xla_backend_optimization_level": 0,
    "xla_llvm_disable_expensive_passes": True,
    "xla_cpu_use_fusion_emitters": False,
}
"""XLA options for the checks' small programs: compiling, not running, dominates the suite's time,
and these options cut compile time by a factor 2-3 (the HLO, hence the arithmetic, is unchanged).
Options this XLA does not know are dropped (see :func:`fast_compile_options`). Timing checks use
plain ``jax.jit``."""


@functools.cache
def fast_compile_options() -> tuple[tuple[str, object], ...]:
    """The subset of :data:`FAST_COMPILE` this jaxlib accepts, found once by compiling a trivial
    program (an unknown option is an error in XLA); cached because it depends only on the install."""
    for size in range(len(FAST_COMPILE), 0, -1):
        options = dict(list(FAST_COMPILE.items())[:size])
        try:
            jax.jit(lambda v: v + 1, compiler_options=options).lower(np.float32(0)).compile()
            return tuple(options.items())
        except Exception:  # noqa: BLE001 - XLA reports unknown options as a generic runtime error
            continue
    return ()


class _Compiled:
    """``jax.jit(fn, static_argnums=..., compiler_options=fast_compile_options())``, created on the
    first call (so that importing the suite compiles nothing)."""

    def __init__(self, fn: Callable, static_argnums: tuple[int, ...]):
        self.fn, self.static_argnums, self._jitted = fn, static_argnums, None
        functools.update_wrapper(self, fn)

    def __call__(self, *args, **kwargs):
        if self._jitted is None:
            self._jitted = jax.jit(
                self.fn, static_argnums=self.static_argnums, compiler_options=dict(fast_compile_options()) or None
            )
        return self._jitted(*args, **kwargs)


def compiled(fn: Callable, *static_argnums: int) -> Callable:
    """``jax.jit(fn, static_argnums=...)`` with :func:`fast_compile_options`. jax caches compilations
    per function object, static arguments, options and shapes, so calling this again for the same
    ``fn`` reuses earlier compilations."""
    return _Compiled(fn, static_argnums)


TAYLOR_STEPS = (0.0, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4)
"""The steps t of the Taylor-remainder test R(theta + t d) (F16)."""


class Implementations(NamedTuple):
    """The fnnjax functions under test that the shared bundles call (each may be replaced)."""

    forward_trace: Callable = fnnjax.forward_trace
    loss: Callable = fnnjax.loss
    deltas: Callable = fnnjax.deltas
    backprop: Callable = fnnjax.backprop


def reference_evidence(mlp: fnnjax.MLP, loss: str, params, x: Array, target: Array, l2, direction) -> dict:
    """The independent side of every comparison, in one program (one compilation per network):

    - ``zs``, ``acts``: the reference forward pass (jax.nn);
    - ``autodiff_deltas``: dL_i/dz_i^(l) by jax.grad;
    - ``reference_gradient``: jax.grad of the reference risk (with l2);
    - ``per_sample_gradients``: dL_i/dtheta for each sample (no l2), by vmap of jax.grad;
    - ``risk_along``: the reference risk at ``params + t direction`` for t in :data:`TAYLOR_STEPS`.
    """
    zs, acts = reference_forward(mlp, params, x)

    def risk_at(t):
        moved = jax.tree.map(lambda p, d: p + t * d, params, direction)
        return reference_risk(mlp, moved, x, target, loss, l2)

    return {
        "zs": zs,
        "acts": acts,
        "autodiff_deltas": autodiff_deltas(mlp, params, x, target, loss),
        "reference_gradient": jax.grad(reference_risk, argnums=1)(mlp, params, x, target, loss, l2),
        "per_sample_gradients": per_sample_gradients(mlp, params, x, target, loss),
        "risk_along": jax.vmap(risk_at)(jnp.asarray(TAYLOR_STEPS, x.dtype)),
    }


def implementation_outputs(mlp: fnnjax.MLP, loss: str, impl: Implementations, params, x: Array, y: Array, l2) -> dict:
    """What the implementations under test compute, in one program (one compilation per network and
    set of implementations):

    - ``trace``: ``impl.forward_trace(mlp, params, x)``;
    - ``risk``: ``impl.loss(mlp, params, x, y, loss, l2)``; ``per_sample_loss``: impl.loss of each
      sample alone (one-sample inputs, l2 = 0);
    - ``deltas``: ``impl.deltas(mlp, params, x, y, loss)``; ``backprop``: ``impl.backprop(..., l2)``;
    - ``backprop_single``: ``impl.backprop`` of each sample alone (l2 = 0).
    """
    return {
        "trace": impl.forward_trace(mlp, params, x),
        "risk": impl.loss(mlp, params, x, y, loss, l2),
        "per_sample_loss": jax.vmap(lambda xi, yi: impl.loss(mlp, params, xi, yi, loss, 0.0))(x, y),
        "deltas": tuple(impl.deltas(mlp, params, x, y, loss)),
        "backprop": tuple(impl.backprop(mlp, params, x, y, loss, l2)),
        "backprop_single": jax.vmap(lambda xi, yi: tuple(impl.backprop(mlp, params, xi, yi, loss, 0.0)))(x, y),
    }


_jit_reference_evidence = compiled(reference_evidence, 0, 1)
_jit_implementation_outputs = compiled(implementation_outputs, 0, 1, 2)


def evidence_for(case: Case, **implementations) -> dict:
    """:func:`reference_evidence` and :func:`implementation_outputs` for a case, in one dict.

    Compiled once per network (and set of implementations): every check asks for the same bundles,
    so they share the compilations, and a draw of the same network reuses them. The Taylor
    direction is a unit-norm random pytree drawn from the case.

    Args:
      case: the problem.
      **implementations: replacements for fields of :class:`Implementations` (forward_trace, loss,
        deltas, backprop).
    """
    impl = Implementations(**implementations)
    reference = _jit_reference_evidence(
        case.mlp, case.loss, case.params, case.x, case.target, case.l2, unit_direction(case)
    )
    outputs = _jit_implementation_outputs(case.mlp, case.loss, impl, case.params, case.x, case.y, case.l2)
    return {**reference, **outputs}


def unit_direction(case: Case):
    """A random direction of unit norm in parameter space, drawn from the case's data (deterministic)."""
    rng = np.random.default_rng([case.seed, int(1e6 * abs(float(np.asarray(case.x).ravel()[0])))])
    leaves, treedef = jax.tree_util.tree_flatten(case.params)
    draws = [rng.standard_normal(np.shape(leaf)) for leaf in leaves]
    norm = np.sqrt(sum(float(np.sum(d * d)) for d in draws))
    return jax.tree_util.tree_unflatten(treedef, [jnp.asarray(d / norm, case.x.dtype) for d in draws])


jit_reference_forward = compiled(reference_forward, 0)
jit_reference_risk = compiled(reference_risk, 0, 4)


# ----------------------------------------------------------------------------------------------
# Random problems


@dataclasses.dataclass(frozen=True)
class Case:
    """A random problem: the network, its parameters (nonzero biases), a batch and its loss."""

    mlp: fnnjax.MLP
    params: tuple
    x: Array
    y: Array
    loss: str
    l2: float
    seed: int

    @property
    def target(self) -> Array:
        """The targets as ``(N, M_L)``."""
        return target_matrix(self.mlp, self.y, self.x.dtype)

    def describe(self) -> str:
        """One line naming the architecture, activations, loss and l2."""
        return (
            f"sizes {self.mlp.sizes} hidden {'/'.join(self.mlp.hidden) or '-'} "
            f"output {self.mlp.output} loss {self.loss} l2 {self.l2:g}"
        )


def _architecture(
    rng: np.random.Generator, output: str, loss: str, *, depth: int | None, hidden, square: bool
) -> fnnjax.MLP:
    depth = int(rng.integers(2, 5)) if depth is None else depth
    binary = output == "sigmoid" and loss == "cross_entropy"
    if square:  # every layer after the input equally wide: a W / W^T mix-up passes the shapes
        width = int(rng.choice(WIDTHS[1:]))
        sizes = [int(rng.choice(WIDTHS))] + [width] * (depth - 1) + [1 if binary else width]
    else:
        sizes = [int(rng.choice(WIDTHS)) for _ in range(depth)] + [1 if binary else int(rng.choice(WIDTHS))]
    if hidden is None:
        hidden = tuple(SMOOTH_HIDDEN[i] for i in rng.integers(len(SMOOTH_HIDDEN), size=depth - 1))
    return fnnjax.MLP(tuple(sizes), hidden=hidden, output=output, leaky_slope=0.1)


def draw_case(
    rng: np.random.Generator, mlp: fnnjax.MLP, loss: str, n: int = N, l2: float = 0.0, seed: int = 0, dtype=jnp.float64
) -> Case:
    """Parameters (xavier-normal weights, N(0, 0.5^2) biases) and a batch for a given network."""
    # numpy draws: no compilation per shape (jax.random would compile for every new shape)
    sizes, m = mlp.sizes, mlp.sizes[-1]
    params = tuple(
        fnnjax.Layer(
            jnp.asarray(rng.standard_normal((m_out, m_in)) * np.sqrt(2.0 / (m_in + m_out)), dtype),
            jnp.asarray(0.5 * rng.standard_normal(m_out), dtype),
        )
        for m_in, m_out in zip(sizes[:-1], sizes[1:])
    )
    x = jnp.asarray(rng.standard_normal((n, sizes[0])), dtype)
    if loss == "cross_entropy" and mlp.output == "softmax":
        y = jnp.asarray(rng.integers(0, m, n), jnp.int32)
    elif loss == "cross_entropy":
        y = jnp.asarray(rng.uniform(size=(n, m)), dtype)
    else:
        y = jnp.asarray(rng.standard_normal((n, m)), dtype)
    return Case(mlp, params, x, y, loss, l2, seed)


def random_case(
    seed: int,
    *,
    pairing: tuple[str, str] | None = None,
    depth: int | None = None,
    hidden: Sequence[str] | str | None = None,
    square: bool = False,
    n: int = N,
    l2: float = 0.0,
    dtype=jnp.float64,
) -> Case:
    """One deterministic random problem (architecture and data both drawn from ``seed``).

    Args:
      seed: everything (architecture, parameters, data) is drawn from it.
      pairing: (output, loss); drawn from :data:`PAIRINGS` if None.
      depth: number of layers L (2-4 drawn if None).
      hidden: hidden activation(s); drawn per layer from :data:`SMOOTH_HIDDEN` if None.
      square: make every layer after the input equally wide (a W / W^T mix-up is not caught by shapes).
      n: batch size N.
      l2: the weight decay of the problem.
      dtype: the parameter dtype.

    Returns:
      A :class:`Case` with xavier-normal weights, N(0, 0.5^2) biases, N(0, 1) inputs and fitting
      targets (integer labels for softmax cross-entropy, soft labels in [0, 1] for binary
      cross-entropy, N(0, 1) for the squared errors), widths drawn from :data:`WIDTHS`.
    """
    rng = np.random.default_rng(seed)
    output, loss = pairing if pairing is not None else PAIRINGS[rng.integers(len(PAIRINGS))]
    mlp = _architecture(rng, output, loss, depth=depth, hidden=hidden, square=square)
    return draw_case(rng, mlp, loss, n, l2, seed, dtype)


def case_set(
    seed: int,
    quick: bool,
    *,
    pairings: Sequence[tuple[str, str]] = PAIRINGS,
    archs: int = 1,
    draws: int = 3,
    hidden_pool: Sequence[str] = SMOOTH_HIDDEN,
) -> list[Case]:
    """Random problems for several architectures and seeds: for each pairing, ``archs``
    architectures (the first with equally wide layers), each with ``draws`` parameter/data draws
    (the first with l2 = 0 and the others with l2 in [0.05, 0.5]). Quick mode: one architecture
    and one draw (l2 = 0.25) per pairing.

    Architectures depend only on (seed, pairing, index), so every check that asks for a pairing gets
    the same networks: compiled functions are shared between checks. Draws of one architecture
    share its shapes, so they reuse its compiled functions too.

    Args:
      seed, quick: the base seed and the size of the run.
      pairings: (output activation, loss) pairs.
      archs, draws: architectures per pairing and draws per architecture (full mode).
      hidden_pool: the hidden activations to draw from.

    Returns:
      ``len(pairings) * archs * draws`` :class:`Case` s.
    """
    archs, draws = (1, 1) if quick else (archs, draws)
    cases = []
    for pairing in pairings:
        p = zlib.crc32(f"{pairing[0]}/{pairing[1]}/{'/'.join(hidden_pool)}".encode())
        for j in range(archs):
            rng = np.random.default_rng([seed, p, j])
            pool = [h for h in hidden_pool if h != "identity"] if j == 0 and len(hidden_pool) > 1 else hidden_pool
            hidden = tuple(pool[i] for i in rng.integers(len(pool), size=3))
            depth = 3 if j == 0 else int(rng.integers(2, 4))  # L = 2 or 3: small programs compile fast
            mlp = _architecture(rng, *pairing, depth=depth, hidden=hidden[: depth - 1], square=j == 0)
            for k in range(draws):
                rng = np.random.default_rng([seed, p, j, k])
                l2 = 0.25 if draws == 1 else (0.0 if k == 0 else float(rng.uniform(0.05, 0.5)))
                cases.append(draw_case(rng, mlp, pairing[1], N, l2, seed, jnp.float64))
    return cases


QUICK_PAIRINGS = (("softmax", "cross_entropy"), ("sigmoid", "mse"))
"""The pairings :func:`gradient_cases` uses by default in quick mode."""


def gradient_cases(seed: int, quick: bool, pairings: Sequence[tuple[str, str]] | None = None) -> list[Case]:
    """The problems of the gradient checks (F8, F10-F13): two architectures for each of the first
    three pairings (softmax + CE, sigmoid + CE, sigmoid + mse), one for the others, three draws each.
    Every gradient check draws from this one set, so their compilations are shared. Quick mode: one
    architecture and one draw per pairing, and only :data:`QUICK_PAIRINGS` unless ``pairings`` is given.
    """
    if pairings is None:
        pairings = QUICK_PAIRINGS if quick else PAIRINGS
    cases = []
    for pairing in pairings:
        cases += case_set(seed, quick, pairings=[pairing], archs=2 if pairing in PAIRINGS[:3] else 1)
    return cases


def seeds_for(seed: int, quick: bool, full: int = 3) -> list[int]:
    """The seeds a check runs: ``seed`` alone in quick mode, ``full`` consecutive seeds otherwise."""
    return [seed] if quick else [seed + i for i in range(full)]


# ----------------------------------------------------------------------------------------------
# Measures


def max_rel_error(got, want) -> float:
    """``max |got - want| / max(|got|, |want|)`` per array (the scale of that tensor), maximised over
    the leaves of two pytrees of the same structure; 0 where both are exactly zero.

    Raises:
      ValueError: when the structures or shapes differ (both shown).
    """
    got_leaves, got_def = jax.tree_util.tree_flatten(got)
    want_leaves, want_def = jax.tree_util.tree_flatten(want)
    if got_def != want_def:
        raise ValueError(f"structure mismatch: got {got_def}, expected {want_def}")
    worst = 0.0
    for g, w in zip(got_leaves, want_leaves):
        g, w = np.asarray(g, np.float64), np.asarray(w, np.float64)
        if g.shape != w.shape:
            raise ValueError(f"shape mismatch: got {g.shape}, expected {w.shape}")
        if not (np.all(np.isfinite(g)) and np.all(np.isfinite(w))):
            return float("inf")
        scale = max(np.max(np.abs(g), initial=0.0), np.max(np.abs(w), initial=0.0))
        if scale > 0:
            worst = max(worst, float(np.max(np.abs(g - w)) / scale))
    return worst


def fit_slope(xs: npt.ArrayLike, ys: npt.ArrayLike) -> float:
    """The least-squares slope of ``ys`` against ``xs``."""
    return float(np.polyfit(np.asarray(xs, np.float64), np.asarray(ys, np.float64), 1)[0])


def host_layer(W: np.ndarray, b: np.ndarray) -> fnnjax.Layer:
    """``fnnjax.Layer(W, b)`` of NumPy arrays (evidence in float64 on the host): the parameters' pytree
    structure; Layer's fields are typed as jax.Array, the parameters' own type."""
    return fnnjax.Layer(cast(Array, W), cast(Array, b))


def median_seconds(fn: Callable[[], object], *, repeats: int, warmup: int = 1) -> float:
    """The median wall time of ``fn()`` (blocked until ready) over ``repeats`` calls, after warm-up."""
    for _ in range(warmup):
        jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
